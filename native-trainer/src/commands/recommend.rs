//! `nook recommend`: rank a bundle's catalogue for one person, or for every person in a file,
//! with the code the browser runs.

use crate::{atomic, batch, export, progress};
use anyhow::{Context, Result};
use clap::Args;
use nook_core::bundle::{IdRequest, RecommendedItem, Skipped};
use std::path::PathBuf;

/// Recommend from a bundle, with the same code the browser runs.
///
/// Ids the bundle's catalogue does not hold (an item withdrawn since the history was recorded)
/// are skipped and named, never fatal.
#[derive(Args, Debug)]
pub struct RecommendArgs {
    /// Bundle directory written by `nook export`.
    #[arg(long)]
    pub bundle: PathBuf,
    /// An item id the person likes (repeatable; oldest first).
    #[arg(long = "like", value_name = "ID")]
    pub likes: Vec<String>,
    /// An item id the person dislikes (repeatable).
    #[arg(long = "dislike", value_name = "ID")]
    pub dislikes: Vec<String>,
    /// Free text: what the person is in the mood for.
    #[arg(long)]
    pub query: Option<String>,
    /// How many results.
    #[arg(long, default_value_t = 10, value_parser = super::args::count(1, nook_core::bundle::MAX_K as u64))]
    pub k: usize,
    /// 0 ranks by relevance alone; up to 1 favours variety (MMR).
    #[arg(long, default_value_t = 0.0, value_parser = super::args::finite(0.0, 1.0))]
    pub diversity: f32,
    /// How much --query counts against the likes: at 1 the query's best matches rise as far as
    /// the history's best items; 0 ignores the query [default: the bundle's, chosen on the query
    /// benchmark].
    #[arg(long, value_parser = super::args::finite(0.0, nook_core::MAX_QUERY_WEIGHT as f64))]
    pub query_weight: Option<f32>,
    /// Print JSON (`{"items": [{id, title, score, reason, ...}], "skipped": {likes, dislikes}}`)
    /// instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Rank everyone in FILE instead of one person: CSV with a header naming `user` and `item`
    /// (optionally `timestamp`; every row a like, oldest first), or JSON Lines of
    /// `{"user", "likes", "dislikes", "query"}`. Writes one JSON line per person,
    /// `{"user", "items", "skipped"}`, in input order; --k, --diversity and --query-weight apply
    /// to all.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["likes", "dislikes", "query", "json"])]
    pub users: Option<PathBuf>,
    /// With --users: write the JSON lines here (atomically) instead of standard output.
    #[arg(long, value_name = "FILE", requires = "users")]
    pub out: Option<PathBuf>,
}

pub fn run(args: &RecommendArgs) -> Result<()> {
    let bundle = export::load_bundle(&args.bundle)?;
    if let Some(users) = &args.users {
        return run_batch(args, &bundle, users);
    }
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
    warn_skipped(&recs.skipped);
    print_items(&recs.items);
    Ok(())
}

/// One line per result: rank, id, score, title and year, reason.
pub fn print_items(items: &[RecommendedItem]) {
    for (rank, r) in items.iter().enumerate() {
        let year = r.year.map(|y| format!(" ({y})")).unwrap_or_default();
        println!("{:>3}. {:<8} {:>7.4}  {}{year} — {}", rank + 1, r.id, r.score, r.title, r.reason);
    }
}

fn warn_skipped(skipped: &Skipped) {
    for (what, ids) in [("liked", &skipped.likes), ("disliked", &skipped.dislikes)] {
        if !ids.is_empty() {
            let list = ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ");
            tracing::warn!("skipped {} {what} id(s) this bundle's catalogue does not hold: {list}", ids.len());
        }
    }
}

fn run_batch(args: &RecommendArgs, bundle: &nook_core::Bundle, users: &std::path::Path) -> Result<()> {
    let histories = batch::read(users)?;
    let options = batch::Options { k: args.k, diversity: args.diversity, query_weight: args.query_weight };
    let bar = progress::bar(histories.len() as u64, "recommend");
    let on_done = |n: usize| bar.inc(n as u64);
    let with_skips = match &args.out {
        Some(path) => {
            let mut lines = Vec::new();
            let n = batch::run(bundle, &histories, &options, &mut lines, &on_done)?;
            atomic::write_file(path, &lines).with_context(|| format!("writing {}", path.display()))?;
            n
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let n = batch::run(bundle, &histories, &options, &mut out, &on_done)?;
            std::io::Write::flush(&mut out)?;
            n
        }
    };
    bar.finish_and_clear();
    tracing::info!("ranked {} people's histories from {}", histories.len(), users.display());
    if with_skips > 0 {
        tracing::warn!(
            "{with_skips} histories named ids this bundle's catalogue does not hold (skipped; see `skipped`)"
        );
    }
    Ok(())
}
