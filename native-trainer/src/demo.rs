//! `nook demo`: from a fresh clone to a served page, skipping steps already done.

use crate::cli::{Cli, Command};
use anyhow::{Context, Result};
use clap::Parser;
use std::path::Path;
use std::process::Command as Process;
use std::time::{Instant, SystemTime};

const DATA: &str = "assets/data/ml-100k";

pub fn run(out: &Path, port: u16, no_serve: bool) -> Result<()> {
    anyhow::ensure!(
        Path::new("www/index.html").is_file() && Path::new("scripts/setup-assets.sh").is_file(),
        "run `nook demo` from the repository root"
    );
    let start = Instant::now();
    let (model, bundle) = (out.join("model"), out.join("bundle"));

    if !Path::new(DATA).join("ml-100k.inter").is_file()
        || !Path::new(nook_trainer::textvec::DEFAULT_ENCODER).join("model.safetensors").is_file()
    {
        step("fetching assets");
        script("scripts/setup-assets.sh")?;
    }
    if !model.join("model.json").is_file() {
        step("training on MovieLens 100k (ALS + text encoder + hybrid)");
        let o = model.to_string_lossy();
        crate::cli::run(Cli::parse_from(["nook", "train", "--data", DATA, "--out", &o]))?;
    }
    if newer(&model.join("model.json"), &bundle.join("manifest.json")) {
        step("exporting the bundle");
        crate::cli::run(Cli::parse_from([
            "nook",
            "export",
            "--model",
            &model.to_string_lossy(),
            "--out",
            &bundle.to_string_lossy(),
        ]))?;
    }
    if wasm_stale()? {
        step("building the wasm client");
        script("scripts/build-wasm.sh")?;
    }
    println!("demo ready in {:.0}s", start.elapsed().as_secs_f64());
    if no_serve {
        return Ok(());
    }
    crate::cli::run(Cli {
        log: "info".into(),
        threads: None,
        command: Command::Serve { bundle, www: "www".into(), port, cors: false },
    })
}

fn step(what: &str) {
    println!("==> {what}");
}

fn script(path: &str) -> Result<()> {
    let status = Process::new(path).status().with_context(|| format!("running {path}"))?;
    anyhow::ensure!(status.success(), "{path} failed ({status})");
    Ok(())
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Whether `target` is missing or older than `source`.
fn newer(source: &Path, target: &Path) -> bool {
    match (modified(source), modified(target)) {
        (_, None) => true,
        (Some(s), Some(t)) => s > t,
        (None, Some(_)) => false,
    }
}

/// Whether the wasm build is missing or older than any source it is built from.
fn wasm_stale() -> Result<bool> {
    let built = Path::new("www/pkg/nook_wasm_bg.wasm");
    let Some(built_at) = modified(built) else { return Ok(true) };
    let mut stale = false;
    for dir in ["shared/src", "wasm-client/src"] {
        visit(Path::new(dir), &mut |p| stale |= modified(p).is_some_and(|m| m > built_at))?;
    }
    Ok(stale)
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            visit(&path, f)?;
        } else {
            f(&path);
        }
    }
    Ok(())
}
