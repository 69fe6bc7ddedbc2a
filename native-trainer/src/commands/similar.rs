//! `nook similar`: "more like this" for one item, with the code the browser runs.

use crate::export;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Items most like one item ("more like this"), with the same code the browser runs.
///
/// Ranked as for a person whose only signal is having liked the item: its collaborative fold-in
/// and text, the recommender's own notion of "people who liked this".
#[derive(Args, Debug)]
pub struct SimilarArgs {
    /// Bundle directory written by `nook export`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The item to find more like.
    #[arg(long, value_name = "ID")]
    pub item: String,
    /// How many results.
    #[arg(long, default_value_t = 10, value_parser = super::args::count(1, nook_core::bundle::MAX_K as u64))]
    pub k: usize,
    /// An item id never to return (repeatable), e.g. those the person already rated.
    #[arg(long, value_name = "ID")]
    pub exclude: Vec<String>,
    /// Print JSON (`[{id, title, score, reason, ...}]`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &SimilarArgs) -> Result<()> {
    let bundle = export::load_bundle(&args.bundle)?;
    let items = bundle.similar(&args.item, args.k, &args.exclude)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else {
        super::recommend::print_items(&items);
    }
    Ok(())
}
