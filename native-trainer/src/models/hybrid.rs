//! Hybrid item vectors: ALS factors beside text embeddings (concatenate, weight, optionally reduce
//! the text part by PCA), scored by nook-core's [`Catalog`] (the browser's code). Items without
//! training interactions get their collaborative part from a ridge map text → ALS factor fitted on
//! the warm items. Text weight and dimensions are chosen on the validation split.

use super::ridge::RidgeMap;
use super::{pca, AlsConfig, Factors, Scorer};
use crate::data::Interaction;
use crate::eval::query::QueryScores;
use crate::eval::{ndcg, EvalSet, Target};
use crate::matrix::Csr;
use crate::rng::Rng;
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
/// Scales tried for a cold item's profile text in the fused vectors. Its collaborative part is
/// already the ridge map's prediction from that same text, so the history's text term counts the
/// text twice, and its noisier half; scaling it down lets the prediction lead. Chosen on items
/// made cold for validation ([`choose_cold_profile`]); the query columns are not scaled. Not 0:
/// a new item someone likes should still shape their text profile.
pub const COLD_PROFILE: [f32; 4] = [1.0, 0.5, 0.25, 0.1];
/// Weights tried for a cold item's popularity prior ([`ColdProfile::popularity`]), chosen on the
/// same items made cold after the profile scale.
pub const COLD_POPULARITY: [f32; 4] = [0.0, 0.01, 0.03, 0.1];

/// Names and choices of one hybrid family.
#[derive(Clone, Copy, Debug)]
pub struct HybridSpec {
    /// The fused model's id (`hybrid`, `fused-ft`).
    pub name: &'static str,
    /// The text-only model's id (`content`, `content-ft`).
    pub content_name: &'static str,
    /// Text dimensions tried for the fused vectors (`None`: unreduced; `Some(k)`: PCA to k).
    pub reductions: &'static [Option<usize>],
    /// Scales tried for the profile text of items without interactions (see [`COLD_PROFILE`]);
    /// `[1.0]` keeps it as it is (the frozen family, whose typed queries read the same columns).
    pub cold_profiles: &'static [f32],
}

/// Frozen encoder: concatenate and weight.
pub const FROZEN: HybridSpec =
    HybridSpec { name: "hybrid", content_name: "content", reductions: &[None], cold_profiles: &[1.0] };
/// Fine-tuned encoder: concatenate, weight and reduce.
pub const FINETUNED: HybridSpec = HybridSpec {
    name: "fused-ft",
    content_name: "content-ft",
    reductions: &[None, Some(128), Some(64)],
    cold_profiles: &COLD_PROFILE,
};

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
    /// The settings chosen among them (after parsimony) and their validation NDCG@10: what the
    /// model as shipped scored. `None` for a model directory written before it was recorded.
    pub chosen: Option<ValidationPoint>,
    /// The query benchmark's validation blend at each query weight tried (empty when the run
    /// held no query field out).
    pub query_validation: Vec<(f32, QueryScores)>,
    /// The reduction of the profile text that was chosen (to refit with; not saved).
    pub reduction: Option<Projection>,
    /// The scale of a cold item's profile text, and how it was chosen.
    pub cold_profile: ColdProfile,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<ValidationPoint>,
    #[serde(default)]
    pub query_validation: Vec<(f32, QueryScores)>,
    #[serde(default)]
    pub cold_profile: ColdProfile,
}

/// How a fused catalogue weighs the profile text of items without interactions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColdProfile {
    /// 1: as a warm item's.
    pub scale: f32,
    /// `(scale, pseudo-cold validation ndcg@10)` for each scale tried (empty when not chosen).
    pub validation: Vec<(f32, f64)>,
    /// Weight of the popularity prior in a cold item's collaborative part: its log training
    /// popularity as predicted from its text (a ridge map fitted on the warm items), less the warm
    /// items' mean, along the mean person's direction — so a person near the mean gains this
    /// weight × the predicted log popularity, in the same vector the browser scores (0: none).
    #[serde(default)]
    pub popularity: f32,
    /// `(weight, pseudo-cold validation ndcg@10)` for each prior weight tried, at the chosen scale.
    #[serde(default)]
    pub popularity_validation: Vec<(f32, f64)>,
}

impl Default for ColdProfile {
    fn default() -> Self {
        Self { scale: 1.0, validation: Vec::new(), popularity: 0.0, popularity_validation: Vec::new() }
    }
}

impl Hybrid {
    pub fn info(&self) -> HybridInfo {
        HybridInfo {
            scoring: self.scoring,
            content: self.content,
            validation: self.validation.clone(),
            chosen: self.chosen,
            query_validation: self.query_validation.clone(),
            cold_profile: self.cold_profile.clone(),
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
        let parts = CatalogParts { split, als, als_cfg, text, text_dim, reduction: None };
        let full = parts.build(&ColdProfile::default(), items.clone())?;
        let ndcg10 = |scorer: &HybridScorer<'_>| ndcg(scorer, &valid, 10);
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
        tracing::info!(
            "{}: recency half-life {} (validation ndcg@10 {:.4})",
            spec.content_name,
            content.1.recency_half_life,
            content.0
        );
        let content = content.1;
        let mut validation = Vec::new();
        let mut best: Option<(f64, Scoring, Catalog, Option<Projection>)> = None;
        for &reduction in spec.reductions {
            let projection = reduction.map(|k| pca::fit(text, text_dim, k));
            let catalog = match &projection {
                None => full.clone(),
                Some(p) => {
                    CatalogParts { reduction: Some(p), ..parts }.build(&ColdProfile::default(), items.clone())?
                }
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
                let catalog = CatalogParts { reduction: Some(&projection), ..parts }
                    .build(&ColdProfile::default(), items.clone())?;
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
        let chosen_point = ValidationPoint {
            text_dims: catalog.text_dim,
            text_weight: chosen.text_weight,
            recency_half_life: chosen.recency_half_life,
            ndcg10: ndcg,
        };
        let chosen_parts = CatalogParts { reduction: reduction.as_ref(), ..parts };
        let cold_profile = choose_cold_profile(spec, &chosen_parts, &chosen, &items)?;
        let catalog = match cold_profile.scale == 1.0 && cold_profile.popularity == 0.0 {
            true => catalog,
            false => chosen_parts.build(&cold_profile, items.clone())?,
        };
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
            chosen: Some(chosen_point),
            query_validation,
            reduction,
            cold_profile,
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
        let parts = CatalogParts { split, als, als_cfg, text, text_dim, reduction: None };
        let content_catalog = parts.build(&ColdProfile::default(), items.clone())?;
        let cold = &self.cold_profile;
        let catalog = match (&self.reduction, cold.scale == 1.0 && cold.popularity == 0.0) {
            (None, true) => content_catalog.clone(),
            (reduction, _) => CatalogParts { reduction: reduction.as_ref(), ..parts }.build(cold, items)?,
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
        sequence: None,
    }
}

/// Items with collaborative factors of their own: a training positive, or (imported factors) a
/// row in the factor file.
fn trained_items(split: &Split, als: &Factors) -> Vec<bool> {
    let mut trained = split.train_items();
    if let Some(known) = &als.item_known {
        trained.iter_mut().zip(known).for_each(|(t, &k)| *t |= k);
    }
    trained
}

/// ALS's item factors where `trained`, elsewhere the prediction of a ridge map from the unreduced
/// text, fitted on the trained items.
fn fill_cold_factors(
    trained: &[bool],
    als: &Factors,
    als_cfg: &AlsConfig,
    text: &[f32],
    text_dim: usize,
) -> anyhow::Result<Vec<f32>> {
    let dim = als.dim;
    let warm: Vec<usize> = (0..trained.len()).filter(|&i| trained[i]).collect();
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
    let mut cf = als.items.clone();
    let cold: Vec<usize> = (0..trained.len()).filter(|&i| !trained[i]).collect();
    let predicted = map.apply(&gather(text, text_dim, &cold));
    for (k, &i) in cold.iter().enumerate() {
        cf[i * dim..(i + 1) * dim].copy_from_slice(&predicted[k * dim..(k + 1) * dim]);
    }
    Ok(cf)
}

/// The popularity prior of the items without factors ([`ColdProfile::popularity`]), fitted once
/// and added at any weight: each such item's log training popularity as a ridge map on the
/// trained items predicts it from the unreduced text, less the trained items' mean, along the
/// mean person's direction. The factors' own popularity signal is shrunk with the rest of the
/// ridge prediction; this puts a separately predicted one back where scoring reads it.
struct PopularityPrior {
    /// `(item, predicted log popularity − the trained items' mean)` for each item without factors.
    items: Vec<(usize, f32)>,
    mean_user: Vec<f32>,
    norm2: f32,
}

impl PopularityPrior {
    /// `popularity`: training positives per item.
    fn fit(
        trained: &[bool],
        popularity: &[f32],
        als: &Factors,
        als_cfg: &AlsConfig,
        text: &[f32],
        text_dim: usize,
    ) -> Self {
        let gather = |rows: &[usize]| -> Vec<f32> {
            rows.iter().flat_map(|&r| text[r * text_dim..(r + 1) * text_dim].iter().copied()).collect()
        };
        let warm: Vec<usize> = (0..trained.len()).filter(|&i| trained[i]).collect();
        let cold: Vec<usize> = (0..trained.len()).filter(|&i| !trained[i]).collect();
        let mean_user = mean_row(&als.users, als.dim);
        let norm2: f32 = mean_user.iter().map(|v| v * v).sum();
        if warm.len() < 2 || cold.is_empty() || norm2 <= 0.0 {
            return Self { items: Vec::new(), mean_user, norm2 };
        }
        let log_pop: Vec<f32> = warm.iter().map(|&i| popularity[i].ln_1p()).collect();
        let mean = log_pop.iter().sum::<f32>() / log_pop.len() as f32;
        let map = RidgeMap::fit_tuned(&gather(&warm), &log_pop, text_dim, 1, &RIDGE_GRID, als_cfg.seed);
        let predicted = map.apply(&gather(&cold));
        let items = cold.into_iter().zip(predicted).map(|(i, p)| (i, p - mean)).collect();
        Self { items, mean_user, norm2 }
    }

    /// `cf` (every item's factors) with the prior added at `weight`.
    fn apply(&self, mut cf: Vec<f32>, weight: f32) -> Vec<f32> {
        let dim = self.mean_user.len();
        for &(i, above_mean) in self.items.iter().filter(|_| weight != 0.0) {
            let shift = weight * above_mean / self.norm2;
            cf[i * dim..(i + 1) * dim].iter_mut().zip(&self.mean_user).for_each(|(c, &m)| *c += shift * m);
        }
        cf
    }
}

/// The mean of `dim`-wide rows (zeros when there are none).
fn mean_row(rows: &[f32], dim: usize) -> Vec<f32> {
    let n = rows.len() / dim.max(1);
    let mut mean = vec![0f32; dim];
    for row in rows.chunks_exact(dim) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v / n as f32);
    }
    mean
}

/// Training positives per item.
fn train_popularity(split: &Split) -> Vec<f32> {
    let mut popularity = vec![0f32; split.n_items];
    split.train.iter().for_each(|i| popularity[i.item as usize] += 1.0);
    popularity
}

/// What a catalogue is built from: ALS factors and the item text (the ridge map always reads
/// the unreduced text; the catalogue keeps it or its `reduction`).
#[derive(Clone, Copy)]
struct CatalogParts<'a> {
    split: &'a Split,
    als: &'a Factors,
    als_cfg: &'a AlsConfig,
    text: &'a [f32],
    text_dim: usize,
    reduction: Option<&'a Projection>,
}

impl CatalogParts<'_> {
    /// Collaborative factors for every item (ALS where trained or imported, ridge-predicted from
    /// text elsewhere), the ALS gramian for fold-in, and training popularity, beside the item
    /// text (a cold item's profile text times the `cold` scale, its factors with `cold`'s
    /// popularity prior). The ridge map reads the unreduced text: a reduction that suits scoring
    /// (fewer dimensions to ship) would only take information from the prediction.
    fn build(&self, cold: &ColdProfile, items: Vec<ItemMeta>) -> anyhow::Result<Catalog> {
        let trained = trained_items(self.split, self.als);
        let (als, cfg, text, text_dim) = (self.als, self.als_cfg, self.text, self.text_dim);
        let mut cf = fill_cold_factors(&trained, als, cfg, text, text_dim)?;
        if cold.popularity != 0.0 {
            let popularity = train_popularity(self.split);
            cf = PopularityPrior::fit(&trained, &popularity, als, cfg, text, text_dim).apply(cf, cold.popularity);
        }
        self.assemble(&trained, cf, cold.scale, items)
    }

    fn assemble(
        &self,
        trained: &[bool],
        cf: Vec<f32>,
        cold_profile: f32,
        items: Vec<ItemMeta>,
    ) -> anyhow::Result<Catalog> {
        let dim = self.als.dim;
        // Fold-in uses the gramian of the factors ALS trained with (cold rows are zero there).
        let cf_gram = gramian(&self.als.items, dim, self.als_cfg.regularization);
        let popularity = train_popularity(self.split);
        let (mut text, text_dim) = match self.reduction {
            Some(p) => (p.apply_rows(self.text), p.out_dim),
            None => (self.text.to_vec(), self.text_dim),
        };
        if cold_profile != 1.0 {
            for (row, _) in text.chunks_exact_mut(text_dim).zip(trained).filter(|(_, &t)| !t) {
                row.iter_mut().for_each(|v| *v *= cold_profile);
            }
        }
        Ok(Catalog::new(items, cf, dim, cf_gram, text, text_dim, popularity)?)
    }
}

/// The warm items made cold to choose cold-item settings on validation: a seeded share (the
/// split's cold fraction) of the items with training positives. Fine-tuning leaves their pairs
/// out too ([`crate::finetune::run`]): a text space trained on their interactions knows them,
/// and validation would then favour the text and popularity far more than the real cold split
/// does (README, Results).
pub fn pseudo_cold_items(split: &Split, seed: u64) -> Vec<bool> {
    let trained = split.train_items();
    let mut warm: Vec<usize> = (0..split.n_items).filter(|&i| trained[i]).collect();
    let n_pseudo = (warm.len() as f64 * split.config.cold_fraction).round() as usize;
    let mut pseudo = vec![false; split.n_items];
    if n_pseudo == 0 || n_pseudo + 2 > warm.len() {
        return pseudo;
    }
    Rng::stream(seed, "pseudo-cold").shuffle(&mut warm);
    warm[..n_pseudo].iter().for_each(|&i| pseudo[i] = true);
    pseudo
}

/// Chooses how cold items are scored, the way the cold split measures it, on validation: the
/// [`pseudo_cold_items`] are made cold (ALS refitted without their interactions, their factors
/// predicted by maps fitted without them, their positives taken out of every history), and each
/// person's training and validation positives on them are ranked among them. First the scale of a cold item's profile text
/// ([`COLD_PROFILE`]), then at that scale the weight of the popularity prior ([`COLD_POPULARITY`]).
fn choose_cold_profile(
    spec: HybridSpec,
    parts: &CatalogParts,
    scoring: &Scoring,
    items: &[ItemMeta],
) -> anyhow::Result<ColdProfile> {
    let CatalogParts { split, als, als_cfg, text, text_dim, .. } = *parts;
    let pseudo = pseudo_cold_items(split, als_cfg.seed);
    let n_pseudo = pseudo.iter().filter(|&&p| p).count();
    if spec.cold_profiles.len() < 2 || scoring.text_weight == 0.0 || n_pseudo == 0 {
        return Ok(ColdProfile::default());
    }
    let mut trained = trained_items(split, als);
    trained.iter_mut().zip(&pseudo).for_each(|(t, &p)| *t &= !p);
    let kept = |i: &&Interaction| !pseudo[i.item as usize];
    let history =
        Csr::from_triples(split.n_users, split.n_items, split.train.iter().filter(kept).map(|i| (i.user, i.item, 1.0)));
    let mut sequences = vec![Vec::new(); split.n_users];
    split.train.iter().filter(kept).for_each(|i| sequences[i.user as usize].push(i.item));
    let mut popularity = vec![0f32; split.n_items];
    split.train.iter().filter(kept).for_each(|i| popularity[i.item as usize] += 1.0);
    let held_out: Vec<Interaction> =
        split.train.iter().chain(&split.valid).filter(|i| pseudo[i.item as usize]).cloned().collect();
    let set = EvalSet::from_parts(split, &history, Target::Cold, pseudo, &held_out);
    // Collaborative factors fitted without them, as the test's cold items are absent from the
    // final fit: factors that saw them carry their popularity into every other item and person.
    let als = &super::als::fit(&history, als_cfg, |_| {});
    let parts = &CatalogParts { als, ..*parts };
    let without_prior = fill_cold_factors(&trained, als, als_cfg, text, text_dim)?;
    let prior_fit = PopularityPrior::fit(&trained, &popularity, als, als_cfg, text, text_dim);
    let ndcg10 = |cf: Vec<f32>, scale: f32| -> anyhow::Result<f64> {
        let catalog = parts.assemble(&trained, cf, scale, items.to_vec())?;
        let users = user_vectors(&catalog, scoring, &sequences);
        let scorer = HybridScorer { name: spec.name, catalog: &catalog, scoring: *scoring, users: Cow::Owned(users) };
        Ok(ndcg(&scorer, &set, 10))
    };
    // The first value of each grid (no change) unless another is strictly better.
    let best = |tried: &[(f32, f64)]| tried.iter().fold(tried[0], |b, &p| if p.1 > b.1 { p } else { b });
    let mut validation = Vec::new();
    for &scale in spec.cold_profiles {
        let ndcg = ndcg10(without_prior.clone(), scale)?;
        tracing::debug!("{}: cold profile text × {scale}: pseudo-cold validation ndcg@10 {ndcg:.4}", spec.name);
        validation.push((scale, ndcg));
    }
    let (scale, at_scale) = best(&validation);
    let mut popularity_validation = vec![(COLD_POPULARITY[0], at_scale)];
    for &prior in &COLD_POPULARITY[1..] {
        let ndcg = ndcg10(prior_fit.apply(without_prior.clone(), prior), scale)?;
        tracing::debug!("{}: cold popularity prior {prior}: pseudo-cold validation ndcg@10 {ndcg:.4}", spec.name);
        popularity_validation.push((prior, ndcg));
    }
    let (prior, chosen) = best(&popularity_validation);
    tracing::info!(
        "{}: cold items' profile text × {scale}, popularity prior {prior} (chosen on {n_pseudo} items made cold: \
         validation ndcg@10 {chosen:.4}; × 1 without the prior {:.4})",
        spec.name,
        validation[0].1
    );
    Ok(ColdProfile { scale, validation, popularity: prior, popularity_validation })
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
    fn score_many(&self, users: &[u32], out: &mut [f32]) {
        let blends: Vec<_> =
            users.iter().map(|&u| self.catalog.blend(&self.scoring, &self.users[u as usize])).collect();
        self.catalog.score_blend_many(&blends, out);
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
        let cfg = AlsConfig::default();
        let parts = CatalogParts {
            split: &split,
            als: &als,
            als_cfg: &cfg,
            text: &text,
            text_dim: 2,
            reduction: Some(&reduction),
        };
        let catalog = parts.build(&ColdProfile::default(), items).unwrap();
        assert_eq!(catalog.text_dim, 1, "the catalogue keeps the reduction");
        let predicted = catalog.cf.row(40, 1)[0];
        assert!(
            (predicted - 8.0).abs() < 0.8,
            "the cold item's factor {predicted}, from its text 0.8, should be near 8"
        );
    }

    /// The popularity prior moves a cold item along the mean person's direction by its predicted
    /// log popularity (relative to the warm items' mean), and nothing else; at 0 it is absent.
    #[test]
    fn the_popularity_prior_follows_the_texts_predicted_popularity() {
        // 40 warm items whose one text column sets their log popularity (2 × it); their factors
        // say nothing (zero), so any cold factor comes from the prior. Items 40 and 41 are cold.
        let signal = |i: usize| ((i * 7 % 40) as f32 / 20.0) - 1.0;
        let text: Vec<f32> = (0..42)
            .map(|i| match i {
                40 => 0.8,
                41 => -0.8,
                _ => signal(i),
            })
            .collect();
        let popularity: Vec<f32> = (0..42).map(|i| if i < 40 { (2.0 * signal(i)).exp() - 1.0 } else { 0.0 }).collect();
        let trained: Vec<bool> = (0..42).map(|i| i < 40).collect();
        // Two people whose mean is (1, 1): norm² 2.
        let als = Factors {
            name: "als".into(),
            dim: 2,
            users: vec![2.0, 0.0, 0.0, 2.0],
            items: vec![0.0; 84],
            item_bias: None,
            item_known: None,
        };
        let cfg = AlsConfig::default();
        let none = fill_cold_factors(&trained, &als, &cfg, &text, 1).unwrap();
        let prior = PopularityPrior::fit(&trained, &popularity, &als, &cfg, &text, 1);
        assert_eq!(prior.apply(none.clone(), 0.0), none, "at weight 0 the prior is absent");
        assert!(none.iter().all(|&v| v.abs() < 1e-6), "without the prior the ridge map predicts zero: {none:?}");
        let cf = prior.apply(none.clone(), 0.1);
        assert_eq!(cf[..80], none[..80], "warm items keep their factors");
        let mean_log_pop = (0..40).map(|i| 2.0 * signal(i)).sum::<f32>() / 40.0;
        for (item, t) in [(40, 0.8f32), (41, -0.8)] {
            let want = 0.1 * (2.0 * t - mean_log_pop) / 2.0;
            let row = &cf[item * 2..item * 2 + 2];
            assert_eq!(row[0], row[1], "along the mean person (1, 1): {row:?}");
            assert!((row[0] - want).abs() < 0.02, "item {item}: {} vs {want}", row[0]);
        }
    }
}
