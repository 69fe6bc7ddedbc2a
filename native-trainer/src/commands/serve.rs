//! `nook serve`: the page, the wasm client and a bundle on loopback.

use anyhow::Result;
use clap::Args;
use nook_trainer::serve::{self, ServeConfig};
use std::path::PathBuf;

/// Serve the page, the wasm client and a bundle on loopback.
#[derive(Args, Clone, Debug, PartialEq)]
pub struct ServeArgs {
    /// Bundle directory to serve under /bundle/.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The page (with the browser package in nook/, built by scripts/build-wasm.sh).
    #[arg(long, default_value = "www")]
    pub www: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Allow any origin to fetch (for tests that load the bundle from another port).
    #[arg(long)]
    pub cors: bool,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let cfg = ServeConfig { www: args.www.clone(), bundle: args.bundle.clone(), port: args.port, cors: args.cors };
    serve::serve(cfg, |url| println!("serving on {url}"))
}
