//! `nook serve`: the page, the wasm client and a bundle over HTTP, fit to run on a deployment's own
//! machine.
//!
//! `/` serves `www/` (with the browser package in `www/nook/`), `/bundle/` the bundle directory.
//! hyper (HTTP/1.1) on tokio; files go through tower-http's `ServeFile`, streamed in chunks
//! (`Range`, `HEAD`, conditional requests, precompressed `.br`/`.gz` siblings), so a hundred slow
//! downloads do not hold a hundred copies in memory. Limits ([`Limits`]): a bounded connection
//! table that evicts the oldest idle connection when full, a deadline for each request head, a
//! stall timeout while a response is in flight, a cap on header size. An accept error (out of
//! descriptors) frees one and backs off; it never stops the server. Every response nook writes
//! carries the security headers ([`site`]); requests must name an allowed host (DNS rebinding).

mod conns;
mod files;
mod site;

pub use site::CSP;

use anyhow::{Context, Result};
use conns::{Connections, Metered};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct ServeConfig {
    pub www: PathBuf,
    pub bundle: PathBuf,
    /// Address to bind: loopback unless the user opts out (`--host`).
    pub host: IpAddr,
    pub port: u16,
    /// Adds `Access-Control-Allow-Origin: *` so a test page on another port can fetch the bundle.
    pub cors: bool,
    /// Host names (besides IP literals and `localhost`) a request may name in its `Host` header.
    pub allowed_hosts: Vec<String>,
    pub limits: Limits,
}

impl ServeConfig {
    pub fn new(www: PathBuf, bundle: PathBuf, port: u16) -> Self {
        Self {
            www,
            bundle,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            cors: false,
            allowed_hosts: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// What one client, or many, can hold of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Open connections at most; at the limit the oldest idle one is closed for a new one.
    pub max_connections: usize,
    /// A request head must arrive within this, and an idle keep-alive connection is closed after
    /// it (slowloris clients that trickle headers are cut off here).
    pub header_timeout: Duration,
    /// A response during which no byte moves either way for this long is abandoned.
    pub stall_timeout: Duration,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: conns::default_max_connections(),
            header_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
        }
    }
}

/// Binds and serves until interrupted (Ctrl-C or SIGTERM). Returns the bound URL via `on_ready`.
pub fn serve(cfg: ServeConfig, on_ready: impl FnOnce(&str)) -> Result<()> {
    let site = site::Site::new(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(run(cfg, Arc::new(site), on_ready))
}

async fn run(cfg: ServeConfig, site: Arc<site::Site>, on_ready: impl FnOnce(&str)) -> Result<()> {
    let listener = listen(SocketAddr::new(cfg.host, cfg.port))
        .with_context(|| format!("binding {}", SocketAddr::new(cfg.host, cfg.port)))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    if !cfg.host.is_loopback() {
        tracing::warn!("serving on {addr}: reachable from other machines (--host); requests must name an allowed host");
    }
    let limits = cfg.limits;
    tracing::info!(
        "limits: {} connections, {:?} per request head, {:?} stall, {} header bytes",
        limits.max_connections,
        limits.header_timeout,
        limits.stall_timeout,
        limits.max_header_bytes
    );
    on_ready(&format!("http://{addr}/"));
    let conns = Arc::new(Connections::new(limits));
    tokio::spawn(conns.clone().sweep());
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut accept_errors = conns::RateLimited::new(Duration::from_secs(5));
    loop {
        tokio::select! {
            () = &mut stop => {
                tracing::info!("stopping");
                return Ok(());
            }
            accepted = accept(&listener, &conns) => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let entry = conns.admit();
                    tokio::spawn(connection(stream, entry, site.clone(), limits));
                }
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or a connection reset before accept:
                    // free the oldest idle connection, back off briefly and go on serving.
                    if accept_errors.ready() {
                        tracing::warn!("accept failed: {e} ({} connections open); closing idle ones", conns.len());
                    }
                    conns.evict_idle();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

/// The listening socket, with a backlog deep enough (4,096, the usual kernel cap) that a flood of
/// idle connections waiting to be accepted does not push a real client's SYN out of the queue.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// The next connection, once the sockets still open are under the cap. Evicted connections close
/// on their own tasks a moment later; waiting for them here keeps the process within its
/// descriptor limit instead of accepting into EMFILE.
async fn accept(
    listener: &tokio::net::TcpListener,
    conns: &Connections,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    while conns.sockets() >= conns.socket_cap() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    listener.accept().await
}

async fn connection(stream: tokio::net::TcpStream, entry: conns::Entry, site: Arc<site::Site>, limits: Limits) {
    let io = TokioIo::new(Metered::new(stream, entry.state()));
    let state = entry.state();
    let service = service_fn(move |req| {
        let (site, busy) = (site.clone(), conns::Busy::new(state.clone()));
        async move { Ok::<_, std::convert::Infallible>(site.respond(req, busy).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .serve_connection(io, service);
    tokio::select! {
        result = conn => if let Err(e) = result {
            tracing::debug!("connection ended: {e}");
        },
        () = entry.closed() => tracing::debug!("connection closed by the server (idle, stalled or evicted)"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
