//! `nook serve`: loopback only, right MIME types, a CSP with no third-party origin, no escaping
//! the served directories.

use nook_e2e::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bundle: &std::path::Path) -> Server {
    let mut child = Command::new(nook_bin())
        .args(["serve", "--bundle", path_str(bundle), "--www", path_str(&repo_root().join("www")), "--port", "0"])
        .env("NOOK_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("serving on http://").expect("serve prints its URL").trim_end_matches('/');
    assert!(url.starts_with("127.0.0.1:"), "loopback only: {url}");
    Server { child, addr: url.to_string() }
}

/// A raw GET (no client-side path normalisation), returning status line, headers and body.
fn get(addr: &str, path: &str) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (status.to_string(), headers.to_lowercase(), raw[split + 4..].to_vec())
}

#[test]
fn serves_page_and_bundle_with_security_headers() {
    let (_, bundle) = ml100k_bundle();
    let server = start(bundle);
    let (status, headers, body) = get(&server.addr, "/");
    assert!(status.contains("200"), "{status}");
    assert!(headers.contains("content-type: text/html"));
    assert!(String::from_utf8_lossy(&body).contains("<title>nook"));
    assert!(headers.contains("content-security-policy: default-src 'self'"), "{headers}");
    assert!(!headers.contains("http://") && !headers.contains("https://"), "no third-party origin in any header");
    assert!(headers.contains("cross-origin-opener-policy: same-origin"));
    assert!(headers.contains("cross-origin-embedder-policy: require-corp"));

    let (status, headers, _) = get(&server.addr, "/app.js");
    assert!(status.contains("200") && headers.contains("content-type: text/javascript"), "{status} {headers}");
    let (status, headers, body) = get(&server.addr, "/bundle/manifest.json");
    assert!(status.contains("200") && headers.contains("content-type: application/json"));
    assert!(String::from_utf8_lossy(&body).contains("nook-bundle"));
}

#[test]
fn refuses_paths_outside_its_directories() {
    let (_, bundle) = ml100k_bundle();
    let server = start(bundle);
    for path in ["/../Cargo.toml", "/bundle/../../Cargo.toml", "/%2e%2e/Cargo.toml", "/bundle/..%2fmodel.json"] {
        let (status, _, body) = get(&server.addr, path);
        assert!(status.contains("400") || status.contains("404"), "{path}: {status}");
        assert!(!String::from_utf8_lossy(&body).contains("[workspace]"), "{path} leaked a file");
    }
    let (status, _, _) = get(&server.addr, "/no-such-file.js");
    assert!(status.contains("404"));
}
