//! `nook recommend`: rank a bundle's catalogue for one person, with the code the browser runs.

use anyhow::Result;
use clap::Args;
use nook_core::bundle::IdRequest;
use nook_trainer::export;
use std::path::PathBuf;

/// Recommend from a bundle, with the same code the browser runs.
#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// Bundle directory written by `nook export`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// An item id the person likes (repeatable).
    #[arg(long = "like", value_name = "ID")]
    pub likes: Vec<String>,
    /// An item id the person dislikes (repeatable).
    #[arg(long = "dislike", value_name = "ID")]
    pub dislikes: Vec<String>,
    /// Free text: what the person is in the mood for.
    #[arg(long)]
    pub query: Option<String>,
    /// How many results.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// 0 ranks by relevance alone; up to 1 favours variety (MMR).
    #[arg(long, default_value_t = 0.0)]
    pub diversity: f32,
    /// How much --query counts against the likes (standard deviations of query match per
    /// standard deviation of history match; 0 ignores the query) [default: the bundle's, chosen
    /// on the query benchmark].
    #[arg(long)]
    pub query_weight: Option<f32>,
    /// Print JSON (`[{id, title, score, reason, ...}]`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &RecommendArgs) -> Result<()> {
    let bundle = export::load_bundle(&args.bundle)?;
    let req = IdRequest {
        likes: args.likes.clone(),
        dislikes: args.dislikes.clone(),
        query: args.query.clone(),
        k: args.k,
        diversity: args.diversity,
        query_weight: args.query_weight,
    };
    let recs = bundle.recommend(&req)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&recs)?);
        return Ok(());
    }
    for (rank, r) in recs.iter().enumerate() {
        let year = r.year.map(|y| format!(" ({y})")).unwrap_or_default();
        println!("{:>3}. {:<8} {:>7.4}  {}{year} — {}", rank + 1, r.id, r.score, r.title, r.reason);
    }
    Ok(())
}
