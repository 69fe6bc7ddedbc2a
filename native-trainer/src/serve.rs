//! `nook serve`: the page, the wasm client and a bundle over loopback HTTP.
//!
//! `/` serves `www/` (with the browser package in `www/nook/`), `/bundle/` serves the bundle directory.
//! Every response carries a Content-Security-Policy that allows no third-party origin, plus
//! COOP/COEP so the page is cross-origin isolated.

use anyhow::{Context, Result};
use std::path::{Component, Path, PathBuf};
use tiny_http::{Header, Method, Response, Server, StatusCode};

pub struct ServeConfig {
    pub www: PathBuf,
    pub bundle: PathBuf,
    pub port: u16,
    /// Adds `Access-Control-Allow-Origin: *` so a test page on another port can fetch the bundle.
    pub cors: bool,
}

/// Binds loopback and serves until the process ends. Returns the bound address via `on_ready`.
pub fn serve(cfg: ServeConfig, on_ready: impl FnOnce(&str)) -> Result<()> {
    anyhow::ensure!(cfg.www.join("index.html").is_file(), "{}: no index.html", cfg.www.display());
    anyhow::ensure!(
        cfg.bundle.join("manifest.json").is_file(),
        "{}: not a bundle (no manifest.json)",
        cfg.bundle.display()
    );
    let server =
        Server::http(("127.0.0.1", cfg.port)).map_err(|e| anyhow::anyhow!("binding 127.0.0.1:{}: {e}", cfg.port))?;
    let addr = server.server_addr().to_ip().context("server has no IP address")?;
    on_ready(&format!("http://{addr}/"));
    let cfg = std::sync::Arc::new(cfg);
    for request in server.incoming_requests() {
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let url = request.url().to_string();
            let response = respond(&cfg, request.method(), &url);
            tracing::debug!("{} {url} -> {}", request.method(), response.status_code().0);
            if let Err(e) = request.respond(response) {
                tracing::debug!("{url}: client went away: {e}");
            }
        });
    }
    Ok(())
}

fn respond(cfg: &ServeConfig, method: &Method, url: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    if !matches!(method, Method::Get | Method::Head) {
        return with_security_headers(text(405, "method not allowed"), cfg.cors);
    }
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let (root, rest) = match path.strip_prefix("/bundle/") {
        Some(rest) => (&cfg.bundle, rest),
        None => (&cfg.www, path.trim_start_matches('/')),
    };
    let rest = if rest.is_empty() || rest.ends_with('/') { format!("{rest}index.html") } else { rest.to_string() };
    let Some(file) = safe_join(root, &rest) else { return with_security_headers(text(400, "bad path"), cfg.cors) };
    match std::fs::read(&file) {
        Ok(bytes) => {
            let mut r = Response::from_data(bytes).with_header(header("Content-Type", content_type(&file)));
            r = with_security_headers(r, cfg.cors);
            // The bundle is content-addressed by its manifest; the page revalidates everything.
            r.with_header(header("Cache-Control", "no-cache"))
        }
        Err(_) => with_security_headers(text(404, "not found"), cfg.cors),
    }
}

/// Joins a URL path under `root`, refusing `..`, absolute paths and percent-encoded tricks.
fn safe_join(root: &Path, rel: &str) -> Option<PathBuf> {
    if rel.contains('%') || rel.contains('\\') {
        return None;
    }
    let rel = Path::new(rel);
    if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// No third-party origin for anything; wasm compilation allowed; isolation headers.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_security_headers<R: std::io::Read>(r: Response<R>, cors: bool) -> Response<R> {
    let r = r
        .with_header(header("Content-Security-Policy", CSP))
        .with_header(header("Cross-Origin-Opener-Policy", "same-origin"))
        .with_header(header("Cross-Origin-Embedder-Policy", "require-corp"))
        .with_header(header("X-Content-Type-Options", "nosniff"))
        .with_header(header("Referrer-Policy", "no-referrer"));
    if cors {
        r.with_header(header("Access-Control-Allow-Origin", "*"))
            .with_header(header("Cross-Origin-Resource-Policy", "cross-origin"))
    } else {
        r.with_header(header("Cross-Origin-Resource-Policy", "same-origin"))
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("static header is valid")
}

fn text(code: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body.as_bytes().to_vec())
        .with_status_code(StatusCode(code))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape_the_root() {
        let root = Path::new("/srv");
        assert_eq!(safe_join(root, "pkg/a.js"), Some(PathBuf::from("/srv/pkg/a.js")));
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", "%2e%2e/x", "a\\..\\b"] {
            assert_eq!(safe_join(root, bad), None, "{bad}");
        }
    }
}
