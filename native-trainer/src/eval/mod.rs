//! Full-sort evaluation: each user's scores over every candidate item, training items excluded.
//!
//! * `warm`: the test split; candidates are all items with a training positive.
//! * `cold`: every positive on held-out cold items; candidates are the cold items only (none of them
//!   was seen in training, so this measures how well a model ranks brand-new items).
//! * `valid`: like `warm` on the validation split, for choosing settings.

pub mod bootstrap;
pub mod metrics;
pub mod query;
pub mod results;
pub mod similar;

use crate::data::Interaction;
use crate::matrix::Csr;
use crate::models::Scorer;
use crate::rng::Rng;
use crate::split::Split;
use nook_core::top_k;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Which held-out positives to evaluate against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The test split, warm items.
    Warm,
    /// The held-out cold items.
    Cold,
    /// The validation split (for choosing settings).
    Valid,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Warm => "warm",
            Target::Cold => "cold",
            Target::Valid => "valid",
        }
    }
}

/// One number in a results table: `{"model": "als", "split": "warm", "metric": "ndcg@10", "value": 0.056}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    pub model: String,
    pub split: String,
    pub metric: String,
    pub value: f64,
}

/// The users, positives and candidate items of one evaluation.
pub struct EvalSet<'a> {
    pub target: Target,
    /// `(user, sorted relevant items)` for users with training history and at least one positive.
    pub users: Vec<(u32, Vec<u32>)>,
    pub candidates: Vec<bool>,
    pub n_candidates: usize,
    /// Training positives, excluded from every user's ranking.
    pub train: &'a Csr,
    /// A seeded permutation of the items: ties in score are broken by it rather than by item index,
    /// so a model with constant scores (popularity on cold items) ranks like random, not like the
    /// catalogue's file order.
    pub tie_order: Vec<u32>,
}

/// Size of an evaluation, reported beside the metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalSize {
    pub users: usize,
    pub positives: usize,
    pub candidates: usize,
}

impl<'a> EvalSet<'a> {
    pub fn new(split: &Split, train: &'a Csr, target: Target) -> Self {
        let (held_out, candidates): (&[Interaction], Vec<bool>) = match target {
            Target::Warm => (&split.test, split.train_items()),
            Target::Valid => (&split.valid, split.train_items()),
            Target::Cold => {
                let mut c = vec![false; split.n_items];
                split.cold_items.iter().for_each(|&i| c[i as usize] = true);
                (&split.cold, c)
            }
        };
        Self::from_parts(split, train, target, candidates, held_out)
    }

    /// An evaluation of `held_out`'s positives on `candidates`, for users with a row in `train`
    /// (whose positives are excluded from their rankings).
    pub fn from_parts(
        split: &Split,
        train: &'a Csr,
        target: Target,
        candidates: Vec<bool>,
        held_out: &[Interaction],
    ) -> Self {
        let mut tie_order: Vec<u32> = (0..split.n_items as u32).collect();
        Rng::stream(split.config.seed, "eval-ties").shuffle(&mut tie_order);
        let mut per_user: Vec<Vec<u32>> = vec![Vec::new(); split.n_users];
        for i in held_out {
            if candidates[i.item as usize] && train.row_len(i.user as usize) > 0 {
                per_user[i.user as usize].push(i.item);
            }
        }
        let users = per_user
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(u, mut items)| {
                items.sort_unstable();
                (u as u32, items)
            })
            .collect();
        let n_candidates = candidates.iter().filter(|&&c| c).count();
        Self { target, users, candidates, n_candidates, train, tie_order }
    }

    /// Whether `item` is ranked for `user`: a candidate they have no training positive for.
    pub fn eligible(&self, user: u32, item: u32) -> bool {
        self.candidates[item as usize] && !self.train.contains(user as usize, item)
    }

    pub fn size(&self) -> EvalSize {
        EvalSize {
            users: self.users.len(),
            positives: self.users.iter().map(|(_, p)| p.len()).sum(),
            candidates: self.n_candidates,
        }
    }
}

/// Per-user sums of each [`metrics::AT_K`] metric for each K, plus AUC.
#[derive(Clone, Default)]
struct Sums {
    per_k: Vec<[f64; metrics::AT_K.len()]>,
    auc: f64,
    auc_users: usize,
}

/// Evaluates one model; metrics are averaged over users.
pub fn evaluate(model: &dyn Scorer, set: &EvalSet<'_>, ks: &[usize]) -> Vec<MetricRow> {
    evaluate_with_users(model, set, ks).0
}

/// NDCG@`k` averaged over the set's users: [`evaluate`]'s `ndcg@k`, to the bit, without the AUC
/// it also computes (every user's negatives sorted). The validation grids read this one number
/// hundreds of times per fit.
pub fn ndcg(model: &dyn Scorer, set: &EvalSet<'_>, k: usize) -> f64 {
    let per_user = per_user(model, set, |scores, permuted, user, relevant| {
        let top = top_items(scores, permuted, user, set, k);
        let hits: Vec<bool> = top.iter().map(|i| relevant.binary_search(i).is_ok()).collect();
        metrics::ndcg_at(&hits, relevant.len(), k)
    });
    // Summed in user order from zero, as `evaluate` sums its rows.
    per_user.iter().fold(0.0, |a, b| a + b) / set.users.len().max(1) as f64
}

/// [`evaluate`], plus each user's value of the metrics [`bootstrap::compared_metrics`] names for
/// the set's split (in the order of `set.users`), for paired intervals.
pub fn evaluate_with_users(
    model: &dyn Scorer,
    set: &EvalSet<'_>,
    ks: &[usize],
) -> (Vec<MetricRow>, bootstrap::PerUser) {
    let max_k = ks.iter().copied().max().unwrap_or(10);
    let n_items = set.candidates.len();
    let per_user = per_user(model, set, |scores, permuted, user, relevant| {
        user_metrics(scores, permuted, user, relevant, set, ks, max_k)
    });

    let mut total = Sums { per_k: vec![[0.0; metrics::AT_K.len()]; ks.len()], ..Sums::default() };
    let mut recommended: Vec<Vec<bool>> = vec![vec![false; n_items]; ks.len()];
    for (sums, top) in &per_user {
        for (t, s) in total.per_k.iter_mut().zip(&sums.per_k) {
            t.iter_mut().zip(s).for_each(|(a, b)| *a += b);
        }
        total.auc += sums.auc;
        total.auc_users += sums.auc_users;
        for (ki, &k) in ks.iter().enumerate() {
            top.iter().take(k).for_each(|&i| recommended[ki][i as usize] = true);
        }
    }
    let n = set.users.len().max(1) as f64;
    let row = |metric: String, value: f64| MetricRow {
        model: model.name().to_string(),
        split: set.target.name().to_string(),
        metric,
        value,
    };
    let mut rows = Vec::new();
    for (ki, &k) in ks.iter().enumerate() {
        for (metric, sum) in metrics::AT_K.iter().zip(total.per_k[ki]) {
            rows.push(row(format!("{}@{k}", metric.name), sum / n));
        }
        let covered = recommended[ki].iter().filter(|&&r| r).count();
        rows.push(row(format!("{}@{k}", metrics::COVERAGE), covered as f64 / set.n_candidates.max(1) as f64));
    }
    rows.push(row(metrics::AUC.into(), total.auc / total.auc_users.max(1) as f64));
    let mut per_user_values = bootstrap::PerUser::new();
    for name in bootstrap::compared_metrics(set.target.name()) {
        let values: Option<Vec<f64>> = match name.split_once('@') {
            None => Some(per_user.iter().map(|(s, _)| if s.auc_users == 1 { s.auc } else { f64::NAN }).collect()),
            Some((metric, k)) => {
                let ki = ks.iter().position(|&x| k.parse() == Ok(x));
                let mi = metrics::AT_K.iter().position(|m| m.name == metric);
                ki.zip(mi).map(|(ki, mi)| per_user.iter().map(|(s, _)| s.per_k[ki][mi]).collect())
            }
        };
        if let Some(v) = values {
            per_user_values.insert(name.to_string(), v);
        }
    }
    (rows, per_user_values)
}

/// Users scored together: a model that reads a whole item table per user reads it once per
/// batch ([`Scorer::score_many`]).
const BATCH: usize = 8;

/// `f(scores, scratch, user, relevant items)` for each of the set's users, in their order, the
/// users scored in batches across the cores.
fn per_user<R: Send>(
    model: &dyn Scorer,
    set: &EvalSet<'_>,
    f: impl Fn(&[f32], &mut [f32], u32, &[u32]) -> R + Sync,
) -> Vec<R> {
    let n_items = set.candidates.len();
    let batches: Vec<Vec<R>> = set
        .users
        .par_chunks(BATCH)
        .map_init(
            || (vec![0f32; BATCH * n_items], vec![0f32; n_items]),
            |(scores, permuted), batch| {
                let users: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
                let scores = &mut scores[..batch.len() * n_items];
                model.score_many(&users, scores);
                let row = |i: usize| &scores[i * n_items..(i + 1) * n_items];
                batch.iter().enumerate().map(|(i, (user, relevant))| f(row(i), permuted, *user, relevant)).collect()
            },
        )
        .collect();
    batches.into_iter().flatten().collect()
}

/// The `k` best candidates for `user` by `scores`, never one of their training items; equal
/// scores fall in the set's seeded tie order. `permuted` is scratch space of the same length.
pub fn top_items(scores: &[f32], permuted: &mut [f32], user: u32, set: &EvalSet<'_>, k: usize) -> Vec<u32> {
    let eligible = |i: u32| set.eligible(user, i);
    // Rank in tie order: position p holds item tie_order[p], so equal scores fall in that order.
    for (p, &item) in set.tie_order.iter().enumerate() {
        permuted[p] = scores[item as usize];
    }
    let order = &set.tie_order;
    top_k(permuted, k, |p| eligible(order[p as usize])).iter().map(|s| order[s.index as usize]).collect()
}

fn user_metrics(
    scores: &[f32],
    permuted: &mut [f32],
    user: u32,
    relevant: &[u32],
    set: &EvalSet<'_>,
    ks: &[usize],
    max_k: usize,
) -> (Sums, Vec<u32>) {
    let top = top_items(scores, permuted, user, set, max_k);
    let eligible = |i: u32| set.eligible(user, i);
    let hits: Vec<bool> = top.iter().map(|i| relevant.binary_search(i).is_ok()).collect();
    let mut sums = Sums::default();
    for &k in ks {
        sums.per_k.push(metrics::AT_K.map(|m| (m.per_user)(&hits, relevant.len(), k)));
    }
    let positives: Vec<f32> = relevant.iter().map(|&i| scores[i as usize]).collect();
    let mut negatives: Vec<f32> = (0..scores.len() as u32)
        .filter(|&i| eligible(i) && relevant.binary_search(&i).is_err())
        .map(|i| scores[i as usize])
        .collect();
    negatives.sort_unstable_by(|a, b| a.total_cmp(b));
    if let Some(auc) = metrics::auc(&positives, &negatives) {
        sums.auc = auc;
        sums.auc_users = 1;
    }
    (sums, top)
}
