//! The `nook` command line: one file per subcommand, each owning its arguments and its `run`
//! (the layout of cargo's own `src/bin/cargo/commands/`), the argument groups several share in
//! [`args`].

pub mod args;
pub mod bench;
pub mod demo;
pub mod eval;
pub mod export;
pub mod export_factors;
pub mod import_factors;
pub mod recommend;
pub mod serve;
pub mod similar;
pub mod split;
pub mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nook",
    version,
    about = "Train recommenders whose ranking runs privately in the browser",
    long_about = "nook learns from interaction logs and item text, evaluates honestly against baselines, \
and exports what its WebAssembly client needs to recommend on-device.\n\n\
Typical use:\n  nook demo                                  fetch, train, export, build and serve the page\n  \
nook eval --data DIR --json out/eval.json   every model against the baselines\n  \
nook train --data DIR --out out/model       train and save (with an evaluation)\n  \
nook export --model out/model --out out/bundle\n  \
nook recommend --bundle out/bundle --like 1 --query \"space opera\"\n  \
nook recommend --bundle out/bundle --users histories.csv --out recs.jsonl\n  \
nook similar --bundle out/bundle --item 1    more like this\n  \
nook serve --bundle out/bundle\n  \
nook split --data DIR --out out/split       the exact split as CSV for other tools"
)]
pub struct Cli {
    /// Log filter (tracing syntax): error, warn, info, debug, or e.g. `nook_trainer=debug`.
    #[arg(long, global = true, default_value = "info", env = "NOOK_LOG")]
    pub log: String,
    /// Worker threads (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    Split(split::SplitCmd),
    Train(train::TrainArgs),
    Eval(eval::EvalArgs),
    ImportFactors(import_factors::ImportFactorsArgs),
    ExportFactors(export_factors::ExportFactorsArgs),
    Export(export::ExportArgs),
    Recommend(recommend::RecommendArgs),
    Similar(similar::SimilarArgs),
    Serve(serve::ServeArgs),
    Bench(bench::BenchArgs),
    Demo(demo::DemoArgs),
}

pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Split(a) => split::run(&a),
        Command::Train(a) => train::run(&a),
        Command::Eval(a) => eval::run(&a),
        Command::ImportFactors(a) => import_factors::run(&a),
        Command::ExportFactors(a) => export_factors::run(&a),
        Command::Export(a) => export::run(&a),
        Command::Recommend(a) => recommend::run(&a),
        Command::Similar(a) => similar::run(&a),
        Command::Serve(a) => serve::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::Demo(a) => demo::run(&a),
    }
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    // Colour codes only where a person reads them: a log redirected to a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}
