//! `nook train`: fit the models, evaluate them, save them with a report.

use super::args::TrainingArgs;
use crate::data::Dataset;
use crate::eval::query::QueryReport;
use crate::eval::results::{evaluate_all, evaluate_queries, EncoderUsed};
use crate::eval::Target;
use crate::split::Split;
use crate::training::{ModelConfig, ModelSet};
use crate::{report, spark, store};
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

/// Train models on the training part of the split, evaluate them, and save them.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct TrainArgs {
    #[command(flatten)]
    pub training: TrainingArgs,
    /// Model directory to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Skip the evaluation (whose metrics the exported bundle carries).
    #[arg(long)]
    pub no_eval: bool,
    /// Use ALS factors fitted elsewhere instead of fitting ALS here: a saved Spark MLlib ALS
    /// model (DIR/userFactors, DIR/itemFactors as Parquet) or `nook export-factors` output.
    /// Fit them on the training part (`nook split`) for an honest evaluation. The text models
    /// fuse with them; `--regularization` is the λ the browser folds users in with.
    #[arg(long, value_name = "DIR")]
    pub als_from: Option<PathBuf>,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let t = &args.training;
    let mut inputs = t.data.inputs();
    inputs.extend([t.encoder.encoder.clone(), t.encoder.checkpoint_dir.clone()]);
    inputs.extend(args.als_from.clone());
    super::check_out(&args.out, &inputs)?;
    let (data, split) = t.load()?;
    let cfg = t.model_config(&data)?;
    let mut inputs = t.inputs(&data, &split)?;
    if let Some(dir) = &args.als_from {
        inputs.prefit_als = Some(import_als(dir, &data)?);
    }
    let set = ModelSet::train(&inputs, &t.entries(), &cfg)?;
    let ks = report::with_curve_ks(&[10, 20]);
    let mut report =
        (!args.no_eval).then(|| evaluate_all(&data.name, &split, &set, &[], &cfg, &ks, &[Target::Warm, Target::Cold]));
    if let Some(report) = &mut report {
        report.data_rows = Some(data.skipped.clone());
        report.encoder = inputs.encoder.as_ref().map(EncoderUsed::of).transpose()?;
        print!("{}", report.table_for(&[10, 20]));
        if let Some(s) = &report.similar {
            print!("{}", s.table());
        }
        report.queries = query_benchmark(&data, &split, &set, &cfg)?;
    }
    store::save(&args.out, &data, &split.config, &cfg, &set, report.as_ref())?;
    if let Some(r) = &report {
        report::write(&args.out.join("report"), r, set.losses(), &set.validation_notes())?;
        println!("wrote {}", args.out.join("report/report.md").display());
    }
    println!("wrote {} model(s) to {}", set.models.len(), args.out.display());
    if let Some(bytes) = crate::memory::peak_rss_bytes() {
        println!("peak memory (resident): {:.0} MB", bytes as f64 / 1e6);
    }
    Ok(())
}

/// The query benchmark on the test part, when the run held a query field out; printed.
pub fn query_benchmark(
    data: &Dataset,
    split: &Split,
    set: &ModelSet,
    cfg: &ModelConfig,
) -> Result<Option<QueryReport>> {
    let Some(field) = cfg.query_field else { return Ok(None) };
    if !set.models.iter().any(|(_, m)| m.text().is_some()) {
        return Ok(None);
    }
    let max_tokens = set.encoder_max_tokens.unwrap_or(nook_core::encoder::DEFAULT_MAX_TOKENS);
    let q = evaluate_queries(data, split, set, field, max_tokens)?;
    print!("{}", q.table());
    Ok(Some(q))
}

/// Reads Spark ALS factors (or `nook export-factors` output) for `data`, saying what matched.
pub fn import_als(dir: &Path, data: &Dataset) -> Result<crate::models::Factors> {
    let (factors, s) = spark::load_factors("als", dir, data)?;
    tracing::info!(
        "imported {} dims: {} users ({} not in the data, {} without a row), {} items ({} not in the data, {} without a row)",
        s.dim,
        s.users_matched,
        s.users_unknown,
        s.users_missing,
        s.items_matched,
        s.items_unknown,
        s.items_missing
    );
    if s.users_unknown + s.items_unknown > 0 {
        tracing::warn!(
            "skipped {} user and {} item rows whose ids the data set lacks",
            s.users_unknown,
            s.items_unknown
        );
    }
    Ok(factors)
}
