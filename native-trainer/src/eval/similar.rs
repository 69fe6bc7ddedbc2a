//! The item-to-item benchmark: how good is "more like this"?
//!
//! For each person with test positives, the *seed* is the last item of their history (the most
//! recent like before the test period). Every candidate item is ranked by its similarity to the
//! seed alone, the person's other training items excluded as in the warm evaluation, and the
//! ranking is scored against their test positives: would the items shown beside the thing they
//! just liked have been the ones they went on to choose? Rankers: popularity (the same list for
//! everyone: what "more like this" must beat), each text model's [`Catalog::similarity`] (what
//! `nook similar` and the browser's `similar` run; `content` is pure text similarity), and, as
//! ablations on the fused catalogues, their collaborative part alone and their text part alone;
//! then `fused-sr`'s, which adds what people liked next after the seed (its bundle's "more like
//! this").
//! [`choose_text_weight`] picks the text's share on the validation part the same way.

use super::metrics::{ndcg_at, recall_at};
use super::{top_items, EvalSet};
use crate::models::Fitted;
use nook_core::{Catalog, Scoring};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// One ranker's scores, averaged over people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimilarRow {
    pub ranker: String,
    pub recall10: f64,
    pub ndcg10: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SimilarReport {
    /// People evaluated (those with a history and a test positive).
    pub users: usize,
    pub rows: Vec<SimilarRow>,
}

/// Runs the benchmark for the text models among `models` on `set` (the warm test set), seeds
/// from `history` (each person's training items, oldest first).
pub fn evaluate(set: &EvalSet<'_>, history: &[Vec<u32>], models: &[&dyn Fitted]) -> SimilarReport {
    let users = seeds(set, history);
    let mut rows = Vec::new();
    let mut popularity_done = false;
    for t in models.iter().filter_map(|m| m.text()) {
        let c = t.catalog;
        if !popularity_done {
            rows.push(score(&users, set, "pop", |_, out| out.copy_from_slice(&c.popularity)));
            popularity_done = true;
        }
        rows.push(score(&users, set, t.name, |seed, out| similarity(c, &t.scoring, seed, out)));
        if t.name == "fused-ft" || t.name == "hybrid" {
            let cf = Scoring { similar_text_weight: Some(0.0), ..t.scoring };
            let text = Scoring { cf_weight: 0.0, ..t.scoring };
            rows.push(score(&users, set, &format!("{} cf part", t.name), |seed, out| similarity(c, &cf, seed, out)));
            rows.push(score(&users, set, &format!("{} text part", t.name), |seed, out| {
                similarity(c, &text, seed, out)
            }));
        }
    }
    for (name, catalog, scoring) in models.iter().filter_map(|m| m.similar_ranker()) {
        rows.push(score(&users, set, name, |seed, out| similarity(&catalog, &scoring, seed, out)));
    }
    SimilarReport { users: users.len(), rows }
}

/// Text weights tried for "more like this", as fractions of the history's text weight.
pub const TEXT_FRACTIONS: [f32; 7] = [0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0];

/// The text weight for "more like this" on `catalog` under `s`: of [`TEXT_FRACTIONS`] of the
/// history's text weight, the one with the best NDCG@10 on `set` (the validation part), seeds from
/// `history`. Returns it and the validation NDCG@10 of each tried.
pub fn choose_text_weight(
    set: &EvalSet<'_>,
    history: &[Vec<u32>],
    catalog: &Catalog,
    s: &Scoring,
) -> (f32, Vec<(f32, f64)>) {
    // Rounded, so the manifest says 0.01 rather than 0.010000001.
    let weights: Vec<f32> = TEXT_FRACTIONS.iter().map(|f| (s.text_weight * f * 1e4).round() / 1e4).collect();
    let scorings: Vec<Scoring> = weights.iter().map(|&w| Scoring { similar_text_weight: Some(w), ..*s }).collect();
    let tried: Vec<(f32, f64)> = weights.into_iter().zip(ndcg_by_scoring(set, history, catalog, &scorings)).collect();
    let best = tried.iter().copied().fold((s.text_weight, f64::MIN), |b, t| if t.1 > b.1 { t } else { b });
    (best.0, tried)
}

/// NDCG@10 of "more like this" on `set` ranked by `catalog` under each of `scorings`, seeds from
/// `history`.
pub fn ndcg_by_scoring(set: &EvalSet<'_>, history: &[Vec<u32>], catalog: &Catalog, scorings: &[Scoring]) -> Vec<f64> {
    let users = seeds(set, history);
    scorings.iter().map(|s| score(&users, set, "", |seed, out| similarity(catalog, s, seed, out)).ndcg10).collect()
}

fn seeds<'a>(set: &'a EvalSet<'_>, history: &[Vec<u32>]) -> Vec<(u32, u32, &'a [u32])> {
    set.users
        .iter()
        .filter_map(|(u, relevant)| history[*u as usize].last().map(|&seed| (*u, seed, relevant.as_slice())))
        .collect()
}

fn similarity(c: &Catalog, s: &Scoring, seed: u32, out: &mut [f32]) {
    c.similarity(s, seed, out).expect("seeds are catalogue items");
}

fn score(
    users: &[(u32, u32, &[u32])],
    set: &EvalSet<'_>,
    ranker: &str,
    rank: impl Fn(u32, &mut [f32]) + Sync,
) -> SimilarRow {
    let n = set.candidates.len();
    let per_user: Vec<(f64, f64)> = users
        .par_iter()
        .map_init(
            || (vec![0f32; n], vec![0f32; n]),
            |(scores, scratch), &(user, seed, relevant)| {
                rank(seed, scores);
                let top = top_items(scores, scratch, user, set, 10);
                let hits: Vec<bool> = top.iter().map(|i| relevant.binary_search(i).is_ok()).collect();
                (recall_at(&hits, relevant.len(), 10), ndcg_at(&hits, relevant.len(), 10))
            },
        )
        .collect();
    let m = per_user.len().max(1) as f64;
    SimilarRow {
        ranker: ranker.to_string(),
        recall10: per_user.iter().map(|p| p.0).sum::<f64>() / m,
        ndcg10: per_user.iter().map(|p| p.1).sum::<f64>() / m,
    }
}

impl SimilarReport {
    pub fn table(&self) -> String {
        let mut out = format!(
            "more like this: ranked by similarity to each person's last liked item ({} people, warm test positives)\n",
            self.users
        );
        out.push_str(&format!("{:<20} {:>10} {:>10}\n", "ranker", "recall@10", "ndcg@10"));
        for r in &self.rows {
            out.push_str(&format!("{:<20} {:>10.4} {:>10.4}\n", r.ranker, r.recall10, r.ndcg10));
        }
        out
    }
}
