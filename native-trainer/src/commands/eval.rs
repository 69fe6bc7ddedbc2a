//! `nook eval`: every model against the baselines on the warm test split and the cold items.

use super::args::TrainingArgs;
use crate::eval::results::{evaluate_all, EncoderUsed};
use crate::eval::Target;
use crate::models::hybrid::{user_vectors, HybridScorer};
use crate::models::Scorer;
use crate::training::ModelSet;
use crate::{atomic, export, external, report, store};
use anyhow::{Context, Result};
use clap::Args;
use std::borrow::Cow;
use std::path::PathBuf;

/// Evaluate models on the warm test split and the cold-item split.
#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub training: TrainingArgs,
    /// Evaluate the models saved here by `nook train` instead of training afresh.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Also evaluate factors trained elsewhere: NAME=DIR with DIR/user_factors.csv and
    /// DIR/item_factors.csv (`id,f0,f1,...`, no header), or a saved Spark ALS model
    /// (DIR/userFactors/, DIR/itemFactors/ as Parquet). Repeatable.
    #[arg(long = "factors-from", value_name = "NAME=DIR")]
    pub external: Vec<String>,
    /// Cut-offs for the @K metrics.
    #[arg(long, value_delimiter = ',', default_value = "10,20", value_parser = super::args::count(1, 1000))]
    pub k: Vec<usize>,
    /// Also evaluate an exported bundle (its catalog and weights, through the browser's code)
    /// as model `bundle`; it must come from the same data.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// Which held-out sets to evaluate on.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "warm,cold")]
    pub on: Vec<Target>,
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write report.md and PNG plots (loss, Recall/NDCG by K, warm vs cold) into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    anyhow::ensure!(!args.k.is_empty() && args.k.iter().all(|&k| k > 0), "--k needs positive cut-offs");
    let t = &args.training;
    anyhow::ensure!(
        !args.on.contains(&Target::Valid) || t.split.no_refit,
        "--on valid needs --no-refit: refitted models have seen the validation part"
    );
    let (data, split) = t.load()?;
    let (set, cfg, encoder) = match &args.model {
        // A saved model's settings are those it was trained with.
        Some(dir) => (store::load(dir, &data, &split.config)?, store::load_info(dir)?.config, None),
        None => {
            let cfg = t.model_config(&data)?;
            let inputs = t.inputs(&data, &split)?;
            let encoder = inputs.encoder.as_ref().map(EncoderUsed::of).transpose()?;
            (ModelSet::train(&inputs, &t.entries(), &cfg)?, cfg, encoder)
        }
    };
    let imported = args
        .external
        .iter()
        .map(|spec| {
            let (name, dir) =
                spec.split_once('=').with_context(|| format!("--factors-from wants NAME=DIR, got {spec:?}"))?;
            external::load_factors(name, dir.as_ref(), &data)
        })
        .collect::<Result<Vec<_>>>()?;
    let loaded = args.bundle.as_deref().map(export::load_bundle).transpose()?;
    if let Some(b) = &loaded {
        let ids: Vec<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
        let bundle_ids: Vec<&str> = b.catalog.items.iter().map(|i| i.id.as_str()).collect();
        anyhow::ensure!(ids == bundle_ids, "the bundle's items are not this data set's items");
    }
    let history = split.final_fit().train_sequences();
    let bundle_scorer = loaded.as_ref().map(|b| HybridScorer {
        name: "bundle",
        catalog: &b.catalog,
        scoring: b.manifest.scoring,
        users: Cow::Owned(user_vectors(&b.catalog, &b.manifest.scoring, &history)),
    });
    let mut extra: Vec<&dyn Scorer> = imported.iter().map(|f| f as &dyn Scorer).collect();
    extra.extend(bundle_scorer.as_ref().map(|s| s as &dyn Scorer));
    let all_k = if args.report.is_some() { report::with_curve_ks(&args.k) } else { args.k.clone() };
    let mut results = evaluate_all(&data.name, &split, &set, &extra, &cfg, &all_k, &args.on);
    results.data_rows = Some(data.skipped.clone());
    results.encoder = encoder;
    print!("{}", results.table_for(&args.k));
    print!("{}", results.differences_table());
    if let Some(s) = &results.similar {
        print!("{}", s.table());
    }
    if args.on.contains(&Target::Warm) {
        results.queries = super::train::query_benchmark(&data, &split, &set, &cfg)?;
    }
    if let Some(dir) = &args.report {
        let saved_losses = args.model.as_deref().and_then(report::read_losses);
        let losses = saved_losses.as_deref().or(set.losses());
        report::write(dir, &results, losses, &set.validation_notes())?;
        println!("wrote {}", dir.join("report.md").display());
    }
    for (model, secs) in &results.fit_seconds {
        println!("fit {model}: {secs:.3}s");
    }
    if let Some(path) = &args.json {
        atomic::write_file(path, &serde_json::to_vec_pretty(&results)?)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
