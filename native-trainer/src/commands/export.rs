//! `nook export`: a trained model directory → a verified browser bundle.

use crate::export::{self, Variant};
use anyhow::Result;
use clap::Args;
use nook_core::quant::Quant;
use std::path::PathBuf;

/// Write a browser bundle from a trained model directory (atomically).
#[derive(Args, Clone, Debug, PartialEq)]
pub struct ExportArgs {
    /// Model directory written by `nook train` (with the hybrid model).
    #[arg(long)]
    pub model: PathBuf,
    /// Bundle directory to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Which model the bundle carries.
    #[arg(long, value_enum, default_value = "auto")]
    pub variant: Variant,
    /// Storage of the encoder matrices and item tables: int8 (per-row absmax), f16 or f32.
    #[arg(long, default_value = "int8")]
    pub quant: Quant,
}

impl ExportArgs {
    /// The defaults of every option but the directories.
    pub fn new(model: PathBuf, out: PathBuf) -> Self {
        Self { model, out, variant: Variant::Auto, quant: Quant::Int8 }
    }
}

pub fn run(args: &ExportArgs) -> Result<()> {
    super::check_out(&args.out, std::slice::from_ref(&args.model))?;
    let manifest = export::export(&args.model, &args.out, args.variant, args.quant)?;
    let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
    println!("wrote bundle {} ({} items, {:.1} MB)", args.out.display(), manifest.n_items, bytes as f64 / 1e6);
    Ok(())
}
