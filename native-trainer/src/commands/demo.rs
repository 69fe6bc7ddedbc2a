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
    /// The caller (scripts/demo.sh) builds the wasm client and writes its exit status to this
    /// file when done: wait for it before serving instead of building it here.
    #[arg(long, hide = true, value_name = "STATUS_FILE")]
    pub wasm_built_by: Option<PathBuf>,
}

/// The models of the first bundle: everything but fine-tuning, which takes most of the training
/// time on 2 cores (ml-100k: ~2 of ~3 minutes) and upgrades the bundle afterwards.
const FIRST_MODELS: [&str; 4] = ["pop", "als", "content", "hybrid"];

pub fn run(args: &DemoArgs) -> Result<()> {
    anyhow::ensure!(
        Path::new("www/index.html").is_file() && Path::new("scripts/setup-assets.sh").is_file(),
        "run `nook demo` from the repository root"
    );
    let start = Instant::now();
    let (first, model, bundle) = (args.out.join("first"), args.out.join("model"), args.out.join("bundle"));
    if !args.no_serve {
        // Fail now rather than after training.
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, args.port))
            .with_context(|| format!("port {} on 127.0.0.1 is taken: pass --port", args.port))?;
    }

    if !Path::new(DEFAULT_DATA).join("ml-100k.inter").is_file()
        || !Path::new(crate::textvec::DEFAULT_ENCODER).join("model.safetensors").is_file()
    {
        step("fetching assets");
        script("scripts/setup-assets.sh")?;
    }
    // The wasm client does not depend on training: it builds alongside. (scripts/demo.sh has
    // usually started it already, alongside nook's own build.)
    let wasm = if let Some(status) = &args.wasm_built_by {
        Some(WasmBuild::Caller(status.clone()))
    } else if wasm_stale()? {
        step("building the wasm client (alongside training)");
        Some(WasmBuild::Child(spawn("scripts/build-wasm.sh")?))
    } else {
        None
    };
    let fine_tuned = model.join("model.json").is_file();
    if fine_tuned {
        if newer(&model.join("model.json"), &bundle.join("manifest.json")) {
            step("exporting the bundle");
            export::run(&export::ExportArgs::new(model.clone(), bundle.clone()))?;
        }
    } else if !bundle.join("manifest.json").is_file() {
        step("training a first model on MovieLens 100k (ALS + text encoder + fusion; fine-tuning follows)");
        train(&first, FIRST_MODELS.iter().map(|m| m.to_string()).collect(), args.ft_steps)?;
        step("exporting the first bundle");
        export::run(&export::ExportArgs::new(first.clone(), bundle.clone()))?;
    }
    if let Some(build) = wasm {
        build.wait()?;
    }
    println!("demo ready in {:.0}s", start.elapsed().as_secs_f64());

    if !fine_tuned {
        let ft_steps = args.ft_steps;
        let upgrade = move || -> Result<()> {
            step("fine-tuning the text encoder and training every model (the page picks the new bundle up on its next load)");
            train(&model, ModelArgs::default().models, ft_steps)?;
            export::run(&export::ExportArgs::new(model.clone(), bundle.clone()))?;
            // The first model was this command's own output and is superseded.
            let _ = std::fs::remove_dir_all(&first);
            println!("fine-tuned bundle ready in {:.0}s", start.elapsed().as_secs_f64());
            Ok(())
        };
        if args.no_serve {
            return upgrade();
        }
        // The page serves the first bundle meanwhile; the export swaps the directory atomically.
        std::thread::spawn(move || {
            if let Err(e) = upgrade() {
                tracing::error!("fine-tuning failed, the first bundle stays: {e:#}");
            }
        });
    } else if args.no_serve {
        return Ok(());
    }
    serve::run(&serve::ServeArgs::new(args.out.join("bundle"), args.port))
}

/// `nook train` on MovieLens 100k with `models` into `out`.
fn train(out: &Path, models: Vec<String>, ft_steps: usize) -> Result<()> {
    let training = TrainingArgs {
        data: DataArgs { data: Some(DEFAULT_DATA.into()), ..DataArgs::default() },
        models: ModelArgs { models, ft_steps, ..ModelArgs::default() },
        ..TrainingArgs::default()
    };
    train::run(&train::TrainArgs { training, out: out.to_path_buf(), ..train::TrainArgs::default() })
}

fn step(what: &str) {
    println!("==> {what}");
}

fn script(path: &str) -> Result<()> {
    wait(spawn(path)?, path)
}

fn spawn(path: &str) -> Result<std::process::Child> {
    Process::new(path).spawn().with_context(|| format!("running {path}"))
}

fn wait(mut child: std::process::Child, path: &str) -> Result<()> {
    let status = child.wait().with_context(|| format!("waiting for {path}"))?;
    anyhow::ensure!(status.success(), "{path} failed ({status})");
    Ok(())
}

/// The wasm client's build, running alongside.
enum WasmBuild {
    Child(std::process::Child),
    /// Started by scripts/demo.sh, which writes its exit status to this file.
    Caller(PathBuf),
}

impl WasmBuild {
    fn wait(self) -> Result<()> {
        let status = match self {
            WasmBuild::Child(child) => return wait(child, "scripts/build-wasm.sh"),
            WasmBuild::Caller(status) => status,
        };
        if !status.is_file() {
            step("waiting for the wasm client's build (log: out/build-wasm.log)");
        }
        while !status.is_file() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let code = std::fs::read_to_string(&status).with_context(|| format!("reading {}", status.display()))?;
        anyhow::ensure!(
            code.trim() == "0",
            "scripts/build-wasm.sh failed (exit status {}; log: out/build-wasm.log)",
            code.trim()
        );
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::WasmBuild;

    #[test]
    fn waits_for_the_callers_status_file_and_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("build-wasm.status");
        let writer = {
            let status = status.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(300));
                // Whole or not at all, as scripts/demo.sh writes it: a plain write creates the
                // file empty first, and the waiting side may read it then (it did, on a busy
                // machine: "exit status ;").
                let partial = status.with_extension("partial");
                std::fs::write(&partial, "0\n").unwrap();
                std::fs::rename(&partial, &status).unwrap();
            })
        };
        WasmBuild::Caller(status.clone()).wait().unwrap();
        writer.join().unwrap();

        std::fs::write(&status, "2\n").unwrap();
        let err = WasmBuild::Caller(status).wait().unwrap_err().to_string();
        assert!(err.contains("exit status 2") && err.contains("out/build-wasm.log"), "{err}");
    }
}
