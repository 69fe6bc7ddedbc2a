//! `nook serve`: the page, the wasm client and a bundle over HTTP.

use crate::serve::{self, Limits, ServeConfig};
use anyhow::Result;
use clap::Args;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Serve the page, the wasm client and a bundle (loopback unless --host says otherwise).
///
/// Limits: at most --max-connections open (default: the open-files limit less 64; at the limit
/// the oldest idle connection is closed); a request head must arrive within --header-timeout
/// (idle keep-alive connections close then too); a response stalled for --stall-timeout is
/// dropped; request heads over 16 KiB are refused. Files are streamed (Range and HEAD work; a
/// `.br`/`.gz` beside a file is sent to clients that accept it). Hidden files and symbolic links
/// below the served directories are never served. Requests must name this machine (an IP address
/// or localhost) or an --allowed-host in their Host header. Ctrl-C or SIGTERM stops it.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct ServeArgs {
    /// Bundle directory to serve under /bundle/.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The page (with the browser package in nook/, built by scripts/build-wasm.sh).
    #[arg(long, default_value = "www")]
    pub www: PathBuf,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to bind. The default serves this machine only; 0.0.0.0 or :: makes the page
    /// reachable from others (put a TLS proxy in front for anything beyond a trusted network).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// A host name clients may use to reach the server (repeatable), e.g. the name a proxy or
    /// your network gives this machine. IP addresses and localhost are always allowed.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Open connections at most [default: open-files limit - 64, at most 10000].
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: Option<u32>,
    /// Seconds a client has to send a request head (and an idle connection stays open).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub header_timeout: u32,
    /// Seconds a response may go without a byte moving before it is dropped.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub stall_timeout: u32,
    /// Allow any origin to fetch (for tests that load the bundle from another port).
    #[arg(long)]
    pub cors: bool,
}

impl ServeArgs {
    pub fn new(bundle: PathBuf, port: u16) -> Self {
        Self {
            bundle,
            www: "www".into(),
            port,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            allowed_hosts: Vec::new(),
            max_connections: None,
            header_timeout: 10,
            stall_timeout: 30,
            cors: false,
        }
    }
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let defaults = Limits::default();
    let limits = Limits {
        max_connections: args.max_connections.map_or(defaults.max_connections, |n| n as usize),
        header_timeout: Duration::from_secs(args.header_timeout.into()),
        stall_timeout: Duration::from_secs(args.stall_timeout.into()),
        ..defaults
    };
    let cfg = ServeConfig {
        host: args.host,
        cors: args.cors,
        allowed_hosts: args.allowed_hosts.clone(),
        limits,
        ..ServeConfig::new(args.www.clone(), args.bundle.clone(), args.port)
    };
    serve::serve(cfg, |url| println!("serving on {url}"))
}
