//! `nook import-factors`: collaborative factors fitted elsewhere (Spark MLlib ALS, Parquet) as a
//! model directory holding `als`.

use super::args::{DataArgs, SplitArgs};
use crate::store;
use crate::training::{ModelConfig, ModelSet};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;

/// Import collaborative factors fitted elsewhere (Spark MLlib ALS, saved as Parquet) as a
/// model directory holding `als`, for `nook eval --model` (see also `nook train --als-from`).
#[derive(Args, Debug)]
pub struct ImportFactorsArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    /// The saved Spark ALS model: DIR/userFactors/ and DIR/itemFactors/ with Parquet part files
    /// (columns `id`: int or string, `features`: array<float>).
    #[arg(long, value_name = "DIR")]
    pub from: PathBuf,
    /// Model directory to write (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &ImportFactorsArgs) -> Result<()> {
    let mut inputs = args.data.inputs();
    inputs.push(args.from.clone());
    super::check_out(&args.out, &inputs)?;
    let data = args.data.load()?;
    let split = args.split.split(&data)?;
    let als = super::train::import_als(&args.from, &data)?;
    let mut cfg = ModelConfig::default();
    cfg.als.factors = als.dim;
    let entry = crate::models::entry("als").expect("als is registered");
    let set = ModelSet { models: vec![(entry, Arc::new(als))], ..ModelSet::default() };
    store::save(&args.out, &data, &split.config, &cfg, &set, None)?;
    println!("wrote {} (model als, imported from {})", args.out.display(), args.from.display());
    Ok(())
}
