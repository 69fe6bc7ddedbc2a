//! `nook split`: the exact split as CSV, so other tools train and evaluate on the same data.

use super::args::{DataArgs, SplitArgs};
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Split the data and write the parts as CSV, so other tools use exactly the same split:
/// train, valid, test, cold, and fit.csv (what the final models are fitted on).
#[derive(Args, Debug)]
pub struct SplitCmd {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    /// Output directory (replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &SplitCmd) -> Result<()> {
    super::check_out(&args.out, &args.data.inputs())?;
    let data = args.data.load()?;
    let split = args.split.split(&data)?;
    crate::splitio::write(&args.out, &data, &split)?;
    println!("wrote split to {}", args.out.display());
    Ok(())
}
