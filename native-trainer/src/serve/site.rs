//! What nook answers: routing, the Host check, files through tower-http, and the headers every
//! response carries.
//!
//! Every response nook writes carries a Content-Security-Policy that allows no third-party origin,
//! COOP/COEP so the page is cross-origin isolated, `nosniff`, `no-referrer` and a same-origin
//! resource policy — the 400s, 403s, 404s and 405s too.

use super::conns::Busy;
use super::files::{self, Refusal};
use super::ServeConfig;
use anyhow::{Context, Result};
use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use tower::ServiceExt;
use tower_http::services::ServeFile;

/// No third-party origin for anything; wasm compilation allowed; isolation headers.
pub const CSP: &str =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub struct Site {
    www: PathBuf,
    bundle: PathBuf,
    cors: bool,
    allowed_hosts: Vec<String>,
}

impl Site {
    pub fn new(cfg: &ServeConfig) -> Result<Self> {
        anyhow::ensure!(cfg.www.join("index.html").is_file(), "{}: no index.html", cfg.www.display());
        anyhow::ensure!(
            cfg.bundle.join("manifest.json").is_file(),
            "{}: not a bundle (no manifest.json)",
            cfg.bundle.display()
        );
        // The roots the user named may be links themselves; below them, nothing is followed.
        let canonical = |p: &PathBuf| p.canonicalize().with_context(|| format!("resolving {}", p.display()));
        Ok(Self {
            www: canonical(&cfg.www)?,
            bundle: canonical(&cfg.bundle)?,
            cors: cfg.cors,
            allowed_hosts: cfg.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        })
    }

    /// Answers one request; `busy` marks the connection busy until the response body is done.
    pub async fn respond<B>(&self, req: Request<B>, busy: Busy) -> Response<Body>
    where
        B: Send + 'static,
    {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let mut res = self.route(req).await;
        self.add_headers(res.headers_mut());
        tracing::debug!("{method} {path} -> {}", res.status().as_u16());
        res.map(|inner| Body { inner, _busy: busy })
    }

    async fn route<B: Send + 'static>(&self, req: Request<B>) -> Response<Inner> {
        if !self.host_allowed(&req) {
            return text(StatusCode::FORBIDDEN, "host not allowed: open the page through the address nook printed");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut res = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let path = req.uri().path();
        let (root, rest) = match path.strip_prefix("/bundle/") {
            Some(rest) => (&self.bundle, rest),
            None => (&self.www, path.trim_start_matches('/')),
        };
        let rest = if rest.is_empty() || rest.ends_with('/') { format!("{rest}index.html") } else { rest.to_string() };
        let file = match files::resolve(root, &rest) {
            Ok(file) => file,
            Err(Refusal::BadPath) => return text(StatusCode::BAD_REQUEST, "bad path"),
            Err(Refusal::NotFound) => return text(StatusCode::NOT_FOUND, "not found"),
        };
        let mime: mime::Mime = files::content_type(&file).parse().unwrap_or(mime::APPLICATION_OCTET_STREAM);
        let served = ServeFile::new_with_mime(&file, &mime).precompressed_br().precompressed_gzip().oneshot(req).await;
        let mut res = match served {
            Ok(res) => res.map(|b| b.map_err(std::io::Error::other).boxed_unsync()),
            Err(never) => match never {},
        };
        // The bundle's files are checked against its manifest; the page revalidates everything.
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res
    }

    /// DNS rebinding: a page on an attacker's name that resolves to this machine would reach the
    /// server with that name as Host. IP literals and `localhost` are this machine by definition;
    /// other names must be allowed explicitly (`--allowed-host`).
    fn host_allowed<B>(&self, req: &Request<B>) -> bool {
        let Some(host) = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
        let name = host_name(host).to_ascii_lowercase();
        name == "localhost" || name.parse::<std::net::IpAddr>().is_ok() || self.allowed_hosts.contains(&name)
    }

    fn add_headers(&self, h: &mut http::HeaderMap) {
        let mut set = |name: HeaderName, value: &'static str| {
            h.insert(name, HeaderValue::from_static(value));
        };
        set(header::CONTENT_SECURITY_POLICY, CSP);
        set(HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
        set(HeaderName::from_static("cross-origin-embedder-policy"), "require-corp");
        set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        set(header::REFERRER_POLICY, "no-referrer");
        if self.cors {
            set(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
            set(HeaderName::from_static("cross-origin-resource-policy"), "cross-origin");
        } else {
            set(HeaderName::from_static("cross-origin-resource-policy"), "same-origin");
        }
    }
}

/// `Host` without its port: `example.org:8080` → `example.org`, `[::1]:80` → `::1`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

type Inner = UnsyncBoxBody<Bytes, std::io::Error>;

fn text(status: StatusCode, body: &'static str) -> Response<Inner> {
    let mut res =
        Response::new(Full::new(Bytes::from_static(body.as_bytes())).map_err(|never| match never {}).boxed_unsync());
    *res.status_mut() = status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}

/// A response body that keeps its connection marked busy until it is finished or dropped.
pub struct Body {
    inner: Inner,
    _busy: Busy,
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("example.org:8080"), "example.org");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("localhost"), "localhost");
    }
}
