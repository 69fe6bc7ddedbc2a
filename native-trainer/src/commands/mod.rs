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
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
    /// Replace an output directory even if nook did not write it. Without it, `--out` replaces
    /// only an empty directory or one holding nook's `.nook-output` marker; never one that
    /// holds or lies inside the run's input.
    #[arg(long, global = true)]
    pub force: bool,
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

/// Refuses an `--out` that is, holds or lies inside one of the run's inputs (with or without
/// `--force`): the output is replaced wholesale, and the input would go with it.
pub fn check_out(out: &std::path::Path, inputs: &[std::path::PathBuf]) -> Result<()> {
    let inputs: Vec<&std::path::Path> = inputs.iter().map(|p| p.as_path()).collect();
    crate::atomic::check_apart(out, &inputs)?;
    crate::atomic::check_replaceable(out)
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

/// One numeric option of one command, as clap defines it: the subcommand path, the option's long
/// name and the required arguments (with placeholder values) a command line needs to parse.
#[derive(Clone, Debug)]
pub struct NumericOption {
    pub path: Vec<String>,
    pub long: String,
    pub required: Vec<String>,
}

impl NumericOption {
    /// `nook PATH REQUIRED --LONG value extra...`
    pub fn argv(&self, value: &str, extra: &[&str]) -> Vec<String> {
        let mut argv: Vec<String> = vec!["nook".into()];
        argv.extend(self.path.iter().cloned());
        argv.extend(self.required.iter().cloned());
        argv.extend([format!("--{}", self.long), value.to_string()]);
        argv.extend(extra.iter().map(|s| s.to_string()));
        argv
    }
}

/// Every option of every command that takes a number, found by asking clap (an option whose parser
/// refuses `12abc` and that has no list of possible values).
pub fn numeric_options() -> Vec<NumericOption> {
    use clap::CommandFactory;
    let mut root = Cli::command();
    root.build();
    let mut found = Vec::new();
    let mut stack: Vec<(Vec<String>, clap::Command)> = vec![(vec![], root.clone())];
    while let Some((path, cmd)) = stack.pop() {
        for sub in cmd.get_subcommands() {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            stack.push((p, sub.clone()));
        }
        if cmd.has_subcommands() {
            continue;
        }
        let required: Vec<String> = cmd
            .get_arguments()
            .filter(|a| a.is_required_set())
            .filter_map(|a| a.get_long())
            .flat_map(|long| [format!("--{long}"), "x".to_string()])
            .collect();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if !arg.get_action().takes_values() || !arg.get_possible_values().is_empty() {
                continue;
            }
            let option = NumericOption { path: path.clone(), long: long.to_string(), required: required.clone() };
            if root.clone().try_get_matches_from(option.argv("12abc", &[])).is_err() {
                found.push(option);
            }
        }
    }
    found.sort_by(|a, b| (&a.path, &a.long).cmp(&(&b.path, &b.long)));
    found
}

#[cfg(test)]
mod tests {
    use super::{numeric_options, Cli};
    use clap::Parser;

    /// Options where 0 is a meaningful value (a seed, a weight, a port to be picked, a feature
    /// turned off).
    const ZERO_ALLOWED: &[&str] = &[
        "seed",
        "alpha",
        "bpr-reg",
        "min-rating",
        "cold-fraction",
        "ratios",
        "diversity",
        "query-weight",
        "port",
        "max-bad-rows",
        "ft-hard-negatives",
    ];

    /// Every numeric option of every command refuses NaN, infinities, negatives, absurd sizes
    /// and (unless 0 means something) zero at parse time, with clap's message naming the option —
    /// found by asking clap for every option, so a new one without a range fails here.
    #[test]
    fn every_numeric_option_refuses_degenerate_values() {
        let options = numeric_options();
        for o in &options {
            let parses = |value: &str| Cli::try_parse_from(o.argv(value, &[])).is_ok();
            let name = format!("nook {} --{}", o.path.join(" "), o.long);
            for bad in ["NaN", "inf", "-inf", "-1", "1e300", "99999999999999999999999"] {
                assert!(!parses(bad), "{name} {bad} was accepted");
            }
            if !ZERO_ALLOWED.contains(&o.long.as_str()) {
                assert!(!parses("0"), "{name} 0 was accepted");
            }
            let err = Cli::try_parse_from(o.argv("NaN", &[])).err().unwrap().to_string();
            assert!(err.contains(&format!("--{}", o.long)), "{name}: the error names the option: {err}");
        }
        assert!(options.len() > 40, "only {} numeric options found", options.len());
    }
}
