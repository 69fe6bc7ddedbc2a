//! `nook demo`: from a fresh clone to a served page, skipping steps already done. Each step is
//! a typed call of the command that does it (`train`, `export`, `serve`), so a renamed option
//! is a compile error here, not a demo that breaks at run time.

use super::args::{DataArgs, ModelArgs, TrainingArgs, DEFAULT_DATA};
use super::{export, serve, train};
use crate::finetune::FinetuneConfig;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Instant, SystemTime};

/// The whole path on MovieLens 100k: fetch assets, train, export, build the wasm client and serve
/// the page. Re-runs skip finished steps.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Working directory for the model and bundle.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Prepare everything but do not serve.
    #[arg(long)]
    pub no_serve: bool,
    /// Fine-tuning steps of the demo's training.
    #[arg(long, default_value_t = FinetuneConfig::default().steps, value_parser = super::args::count(1, 10_000_000))]
    pub ft_steps: usize,
}

pub fn run(args: &DemoArgs) -> Result<()> {
    anyhow::ensure!(
        Path::new("www/index.html").is_file() && Path::new("scripts/setup-assets.sh").is_file(),
        "run `nook demo` from the repository root"
    );
    let start = Instant::now();
    let (model, bundle) = (args.out.join("model"), args.out.join("bundle"));

    if !Path::new(DEFAULT_DATA).join("ml-100k.inter").is_file()
        || !Path::new(crate::textvec::DEFAULT_ENCODER).join("model.safetensors").is_file()
    {
        step("fetching assets");
        script("scripts/setup-assets.sh")?;
    }
    if !model.join("model.json").is_file() {
        step("training on MovieLens 100k (ALS + text encoder + fine-tuning + fusion)");
        let training = TrainingArgs {
            data: DataArgs { data: Some(DEFAULT_DATA.into()), ..DataArgs::default() },
            models: ModelArgs { ft_steps: args.ft_steps, ..ModelArgs::default() },
            ..TrainingArgs::default()
        };
        train::run(&train::TrainArgs { training, out: model.clone(), ..train::TrainArgs::default() })?;
    }
    if newer(&model.join("model.json"), &bundle.join("manifest.json")) {
        step("exporting the bundle");
        export::run(&export::ExportArgs::new(model.clone(), bundle.clone()))?;
    }
    if wasm_stale()? {
        step("building the wasm client");
        script("scripts/build-wasm.sh")?;
    }
    println!("demo ready in {:.0}s", start.elapsed().as_secs_f64());
    if args.no_serve {
        return Ok(());
    }
    serve::run(&serve::ServeArgs::new(bundle, args.port))
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

/// Whether the browser package (and the page's file list, written last) is missing or older than
/// any source it is built from.
fn wasm_stale() -> Result<bool> {
    let Some(built_at) = modified(Path::new("www/shell.js")) else { return Ok(true) };
    let mut stale = !Path::new("www/nook/pkg/nook_wasm_bg.wasm").is_file();
    for dir in ["shared/src", "wasm-client/src", "wasm-client/js"] {
        visit(Path::new(dir), &mut |p| stale |= modified(p).is_some_and(|m| m > built_at))?;
    }
    for page in ["www/index.html", "www/app.js", "www/style.css"] {
        stale |= modified(Path::new(page)).is_some_and(|m| m > built_at);
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
