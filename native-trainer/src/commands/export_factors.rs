//! `nook export-factors`: a model's factors in Spark MLlib's ALS layout.

use crate::{spark, store};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Write a model's factors in Spark MLlib's ALS layout (userFactors/, itemFactors/ as Parquet),
/// e.g. to warm-start or compare with a cluster job.
#[derive(Args, Debug)]
pub struct ExportFactorsArgs {
    /// Model directory written by `nook train` or `nook import-factors`.
    #[arg(long)]
    pub model: PathBuf,
    /// Which factors: als or bpr.
    #[arg(long, default_value = "als")]
    pub factors: String,
    /// Output directory (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ExportFactorsArgs) -> Result<()> {
    super::check_out(&args.out, std::slice::from_ref(&args.model))?;
    let name = args.factors.as_str();
    anyhow::ensure!(name == "als" || name == "bpr", "--factors is als or bpr, not {name:?}");
    let (f, users, items) = store::load_factors_with_ids(&args.model, name)?;
    spark::save_factors(&args.out, &f, &users, &items)?;
    println!("wrote {} users and {} items ({} dims) to {}", users.len(), items.len(), f.dim, args.out.display());
    Ok(())
}
