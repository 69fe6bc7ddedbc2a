//! Hybrid item vectors: ALS factors beside text embeddings (concatenate, weight, optionally reduce
//! the text part by PCA), scored by nook-core's [`Catalog`] (the browser's code). Items without
//! training interactions get their collaborative part from a ridge map text → ALS factor fitted on
//! the warm items. Text weight and dimensions are chosen on the validation split.

use super::ridge::RidgeMap;
use super::{pca, AlsConfig, Factors, Scorer};
use crate::eval::query::QueryScores;
use crate::eval::{evaluate, EvalSet, Target};
use crate::matrix::Csr;
use crate::split::Split;
use nook_core::recommend::UserVector;
use nook_core::{gramian, Catalog, Expansion, ItemMeta, Projection, Scoring};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Text weights tried on the validation split.
const TEXT_WEIGHTS: [f32; 11] = [0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0];
/// How far below the best validation NDCG@10 a smaller text dimension may be and still be chosen.
const PARSIMONY: f64 = 0.015;
/// Recency half-lives tried (in likes; 0 = every like weighs the same).
pub(crate) const HALF_LIVES: [f32; 4] = [0.0, 10.0, 25.0, 60.0];
/// Ridge penalties tried for the text → cf map.
const RIDGE_GRID: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];

/// Names and choices of one hybrid family.
#[derive(Clone, Copy, Debug)]
pub struct HybridSpec {
    /// The fused model's id (`hybrid`, `fused-ft`).
    pub name: &'static str,
    /// The text-only model's id (`content`, `content-ft`).
    pub content_name: &'static str,
    /// Text dimensions tried for the fused vectors (`None`: unreduced; `Some(k)`: PCA to k).
    pub reductions: &'static [Option<usize>],
}

/// Frozen encoder: concatenate and weight.
pub const FROZEN: HybridSpec = HybridSpec { name: "hybrid", content_name: "content", reductions: &[None] };
/// Fine-tuned encoder: concatenate, weight and reduce.
pub const FINETUNED: HybridSpec =
    HybridSpec { name: "fused-ft", content_name: "content-ft", reductions: &[None, Some(128), Some(64)] };

/// A typed query's weight before the query benchmark has chosen one (a run without a held-out
/// query field, e.g. MovieLens 100k): the weight validation chose on movielens-small.
pub const DEFAULT_QUERY_WEIGHT: f32 = 1.0;
/// The query expansion before the benchmark has chosen one (likewise from movielens-small).
pub const DEFAULT_EXPANSION: Expansion = Expansion { items: 30, weight: 0.5 };

/// A fitted hybrid family: the fused model and its text-only part.
#[derive(Clone, Debug)]
pub struct Hybrid {
    pub spec: HybridSpec,
    /// The fused model's catalog (profile text possibly reduced; query columns beside it).
    pub catalog: Catalog,
    pub scoring: Scoring,
    /// The text-only model's catalog (unreduced text).
    pub content_catalog: Catalog,
    pub content: Scoring,
    /// Validation NDCG@10 of every (text dims, text weight) tried.
    pub validation: Vec<ValidationPoint>,
    /// The query benchmark's validation blend at each query weight tried (empty when the run
    /// held no query field out).
    pub query_validation: Vec<(f32, QueryScores)>,
    /// The reduction of the profile text that was chosen (to refit with; not saved).
    pub reduction: Option<Projection>,
    /// The query columns added beside the profile text (to refit with; not saved).
    pub query: Option<QueryColumns>,
}

/// Vectors a typed query is matched against, one row per item, and the map a query embedding
/// goes through to reach them.
#[derive(Clone, Debug)]
pub struct QueryColumns {
    pub rows: Vec<f32>,
    pub dim: usize,
    pub projection: Option<Projection>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationPoint {
    pub text_dims: usize,
    pub text_weight: f32,
    #[serde(default)]
    pub recency_half_life: f32,
    pub ndcg10: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HybridInfo {
    pub scoring: Scoring,
    pub content: Scoring,
    pub validation: Vec<ValidationPoint>,
    #[serde(default)]
    pub query_validation: Vec<(f32, QueryScores)>,
}

impl Hybrid {
    pub fn info(&self) -> HybridInfo {
        HybridInfo {
            scoring: self.scoring,
            content: self.content,
            validation: self.validation.clone(),
            query_validation: self.query_validation.clone(),
        }
    }

    /// Builds catalogs from ALS factors and text vectors, then picks the text dimensions and weight
    /// on the validation split.
    #[allow(clippy::too_many_arguments)]
    pub fn fit(
        spec: HybridSpec,
        split: &Split,
        train: &Csr,
        als: &Factors,
        als_cfg: &AlsConfig,
        text: &[f32],
        text_dim: usize,
        items: Vec<ItemMeta>,
    ) -> anyhow::Result<Self> {
        let base = base_scoring(als_cfg);
        let valid = EvalSet::new(split, train, Target::Valid);
        let sequences = split.train_sequences();
        let full = build_catalog(split, als, als_cfg, text, text_dim, None, items.clone())?;
        let ndcg10 = |scorer: &HybridScorer<'_>| {
            evaluate(scorer, &valid, &[10]).iter().find(|r| r.metric == "ndcg@10").map_or(0.0, |r| r.value)
        };
        // The text-only model: its recency on validation too.
        let mut content = (f64::MIN, Scoring { cf_weight: 0.0, text_weight: 1.0, ..base });
        for &h in &HALF_LIVES {
            let scoring = Scoring { recency_half_life: h, ..content.1 };
            let users = user_vectors(&full, &scoring, &sequences);
            let ndcg = ndcg10(&HybridScorer {
                name: spec.content_name,
                catalog: &full,
                scoring,
                users: Cow::Borrowed(&users),
            });
            if ndcg > content.0 {
                content = (ndcg, scoring);
            }
        }
        let content = content.1;
        let mut validation = Vec::new();
        let mut best: Option<(f64, Scoring, Catalog, Option<Projection>)> = None;
        for &reduction in spec.reductions {
            let projection = reduction.map(|k| pca::fit(text, text_dim, k));
            let catalog = match &projection {
                None => full.clone(),
                Some(p) => build_catalog(split, als, als_cfg, text, text_dim, Some(p), items.clone())?,
            };
            for &h in &HALF_LIVES {
                let with_recency = Scoring { recency_half_life: h, ..base };
                let users = user_vectors(&catalog, &with_recency, &sequences);
                for &w in &TEXT_WEIGHTS {
                    let scoring = Scoring { text_weight: w, ..with_recency };
                    let ndcg = ndcg10(&HybridScorer {
                        name: spec.name,
                        catalog: &catalog,
                        scoring,
                        users: Cow::Borrowed(&users),
                    });
                    tracing::debug!(
                        "{}: {} dims, half-life {h}, weight {w}: validation ndcg@10 {ndcg:.4}",
                        spec.name,
                        catalog.text_dim
                    );
                    validation.push(ValidationPoint {
                        text_dims: catalog.text_dim,
                        text_weight: w,
                        recency_half_life: h,
                        ndcg10: ndcg,
                    });
                    if best.as_ref().is_none_or(|b| ndcg > b.0) {
                        best = Some((ndcg, scoring, catalog.clone(), projection.clone()));
                    }
                }
            }
        }
        let (best_ndcg, best_scoring, best_catalog, best_reduction) = best.expect("at least one setting was tried");
        // Parsimony: the bundle ships these vectors to every browser, so take the fewest text
        // dimensions whose validation NDCG@10 is within PARSIMONY of the best.
        let (ndcg, chosen, catalog, reduction) = match validation
            .iter()
            .filter(|p| p.ndcg10 >= best_ndcg * (1.0 - PARSIMONY) && p.text_dims < best_catalog.text_dim)
            .min_by(|a, b| a.text_dims.cmp(&b.text_dims).then(b.ndcg10.total_cmp(&a.ndcg10)))
        {
            Some(p) => {
                let reduction = spec.reductions.iter().flatten().find(|&&k| k == p.text_dims).copied();
                let projection = pca::fit(text, text_dim, reduction.expect("reduced dims come from the grid"));
                let catalog = build_catalog(split, als, als_cfg, text, text_dim, Some(&projection), items.clone())?;
                (
                    p.ndcg10,
                    Scoring { text_weight: p.text_weight, recency_half_life: p.recency_half_life, ..base },
                    catalog,
                    Some(projection),
                )
            }
            None => (best_ndcg, best_scoring, best_catalog, best_reduction),
        };
        tracing::info!(
            "{}: {} text dims, text weight {}, recency half-life {} (validation ndcg@10 {ndcg:.4})",
            spec.name,
            catalog.text_dim,
            chosen.text_weight,
            chosen.recency_half_life
        );
        let scoring = Scoring { query_weight: DEFAULT_QUERY_WEIGHT, expansion: DEFAULT_EXPANSION, ..chosen };
        let content = Scoring { query_weight: DEFAULT_QUERY_WEIGHT, ..content };
        let query_validation = Vec::new();
        Ok(Self {
            spec,
            catalog,
            scoring,
            content_catalog: full,
            content,
            validation,
            query_validation,
            reduction,
            query: None,
        })
    }

    /// Puts `query` beside the fused catalogue's text, for typed queries to be matched against.
    pub fn with_query_columns(self, query: QueryColumns) -> anyhow::Result<Self> {
        let catalog = self.catalog.with_query_columns(&query.rows, query.dim, query.projection.clone())?;
        Ok(Self { catalog, query: Some(query), ..self })
    }

    /// The same choices (text dimensions and projection, weights, recency) on new collaborative
    /// factors: used once settings are chosen, to refit on train + validation. `text` is the
    /// unreduced item text, as given to [`Hybrid::fit`].
    pub fn refit(
        self,
        split: &Split,
        als: &Factors,
        als_cfg: &AlsConfig,
        text: &[f32],
        text_dim: usize,
    ) -> anyhow::Result<Self> {
        let items = self.content_catalog.items.clone();
        let content_catalog = build_catalog(split, als, als_cfg, text, text_dim, None, items.clone())?;
        let catalog = match &self.reduction {
            None => content_catalog.clone(),
            Some(p) => build_catalog(split, als, als_cfg, text, text_dim, Some(p), items)?,
        };
        let catalog = match &self.query {
            Some(q) => catalog.with_query_columns(&q.rows, q.dim, q.projection.clone())?,
            None => catalog,
        };
        Ok(Self { catalog, content_catalog, ..self })
    }
}

/// Collaborative factors only, every like weighing the same: what fused models start from (and
/// `als-recency` keeps, with a recency chosen on validation).
pub fn base_scoring(als_cfg: &AlsConfig) -> Scoring {
    let like_confidence = 1.0 + als_cfg.alpha;
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.0,
        query_weight: 1.0,
        like_confidence,
        dislike_confidence: like_confidence,
        recency_half_life: 0.0,
        expansion: Expansion::OFF,
        similar_text_weight: None,
    }
}

/// Collaborative factors for every item (ALS where trained or imported, ridge-predicted from text
/// elsewhere), the ALS gramian for fold-in, and training popularity, beside the item text
/// (`text`, or its `reduction`). The ridge map always reads the unreduced text: a reduction that
/// suits scoring (fewer dimensions to ship) would only take information from the prediction.
#[allow(clippy::too_many_arguments)]
fn build_catalog(
    split: &Split,
    als: &Factors,
    als_cfg: &AlsConfig,
    text: &[f32],
    text_dim: usize,
    reduction: Option<&Projection>,
    items: Vec<ItemMeta>,
) -> anyhow::Result<Catalog> {
    let dim = als.dim;
    let mut trained = split.train_items();
    if let Some(known) = &als.item_known {
        trained.iter_mut().zip(known).for_each(|(t, &k)| *t |= k);
    }
    let warm: Vec<usize> = (0..split.n_items).filter(|&i| trained[i]).collect();
    anyhow::ensure!(warm.len() > 1, "too few items with training interactions to fit the text map");
    let gather = |m: &[f32], d: usize, rows: &[usize]| -> Vec<f32> {
        rows.iter().flat_map(|&r| m[r * d..(r + 1) * d].iter().copied()).collect()
    };
    let map = RidgeMap::fit_tuned(
        &gather(text, text_dim, &warm),
        &gather(&als.items, dim, &warm),
        text_dim,
        dim,
        &RIDGE_GRID,
        als_cfg.seed,
    );
    // Fold-in uses the gramian of the factors ALS trained with (cold rows are zero there).
    let cf_gram = gramian(&als.items, dim, als_cfg.regularization);
    let mut cf = als.items.clone();
    let cold: Vec<usize> = (0..split.n_items).filter(|&i| !trained[i]).collect();
    let predicted = map.apply(&gather(text, text_dim, &cold));
    for (k, &i) in cold.iter().enumerate() {
        cf[i * dim..(i + 1) * dim].copy_from_slice(&predicted[k * dim..(k + 1) * dim]);
    }
    let mut popularity = vec![0f32; split.n_items];
    split.train.iter().for_each(|i| popularity[i.item as usize] += 1.0);
    let (text, text_dim) = match reduction {
        Some(p) => (p.apply_rows(text), p.out_dim),
        None => (text.to_vec(), text_dim),
    };
    Ok(Catalog::new(items, cf, dim, cf_gram, text, text_dim, popularity)?)
}

/// Every user's vector from their training positives (oldest first), through nook-core's fold-in
/// and profile.
pub fn user_vectors(catalog: &Catalog, scoring: &Scoring, sequences: &[Vec<u32>]) -> Vec<UserVector> {
    sequences
        .par_iter()
        .map(|likes| catalog.user_vector(scoring, likes, &[], None).expect("training indices are in range"))
        .collect()
}

/// Scores with nook-core's [`Catalog::score`], the code the browser runs.
pub struct HybridScorer<'a> {
    pub name: &'static str,
    pub catalog: &'a Catalog,
    pub scoring: Scoring,
    /// One vector per user, from [`user_vectors`].
    pub users: Cow<'a, [UserVector]>,
}

impl Scorer for HybridScorer<'_> {
    fn name(&self) -> &str {
        self.name
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        self.catalog.score(&self.scoring, &self.users[user as usize], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interaction;
    use crate::split::SplitConfig;

    /// A cold item's collaborative part comes from the full text even when the catalogue keeps a
    /// reduction of it that drops what predicts the factors.
    #[test]
    fn the_text_map_reads_the_unreduced_text() {
        // 40 warm items and one cold one (40). Text column 0 is loud and says nothing; column 1
        // is quiet and sets the one collaborative factor (10 × it). A 1-d PCA keeps column 0.
        let n = 41;
        let signal = |i: usize| ((i * 7 % 40) as f32 / 20.0) - 1.0;
        let text: Vec<f32> = (0..n)
            .flat_map(|i| [if i % 2 == 0 { 10.0 } else { -10.0 }, if i == 40 { 0.8 } else { signal(i) }])
            .collect();
        let cf: Vec<f32> = (0..n).map(|i| if i == 40 { 0.0 } else { 10.0 * signal(i) }).collect();
        let split = Split {
            config: SplitConfig::default(),
            n_users: 1,
            n_items: n,
            train: (0..40).map(|i| Interaction { user: 0, item: i, rating: None, timestamp: None }).collect(),
            valid: Vec::new(),
            test: Vec::new(),
            cold: Vec::new(),
            cold_items: vec![40],
            dropped_unseen: 0,
        };
        let als =
            Factors { name: "als".into(), dim: 1, users: vec![1.0], items: cf, item_bias: None, item_known: None };
        let items: Vec<ItemMeta> = (0..n)
            .map(|i| ItemMeta { id: i.to_string(), title: format!("item {i}"), year: None, genres: Vec::new() })
            .collect();
        let reduction = pca::fit(&text, 2, 1);
        let catalog = build_catalog(&split, &als, &AlsConfig::default(), &text, 2, Some(&reduction), items).unwrap();
        assert_eq!(catalog.text_dim, 1, "the catalogue keeps the reduction");
        let predicted = catalog.cf.row(40, 1)[0];
        assert!(
            (predicted - 8.0).abs() < 0.8,
            "the cold item's factor {predicted}, from its text 0.8, should be near 8"
        );
    }
}
