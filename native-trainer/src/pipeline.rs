//! Training the requested models on a split, and evaluating them.

use crate::data::Dataset;
use crate::eval::{evaluate, EvalSet, EvalSize, MetricRow, Target};
use crate::finetune::{self, FineTuned, FinetuneConfig};
use crate::matrix::Csr;
use crate::models::hybrid::{user_vectors, Hybrid, HybridScorer, FINETUNED, FROZEN};
use crate::models::{als, bpr, AlsConfig, BprConfig, Factors, Popularity, RandomScores, Scorer};
use crate::progress;
use crate::split::{Split, SplitConfig};
use crate::textvec::{self, EncoderSource};
use candle_core::Device;
use nook_core::recommend::UserVector;
use nook_core::ItemMeta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// Short stable model ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Most popular items first.
    Pop,
    /// Implicit alternating least squares.
    Als,
    /// Bayesian personalised ranking.
    Bpr,
    /// Seeded random scores: the floor.
    Random,
    /// Text embeddings alone (frozen encoder).
    Content,
    /// ALS factors + text embeddings (frozen encoder).
    Hybrid,
    /// Text embeddings alone, encoder fine-tuned on the interactions.
    ContentFt,
    /// ALS factors fused with fine-tuned text embeddings (weighted, reduced).
    FusedFt,
}

impl ModelKind {
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Pop,
        ModelKind::Als,
        ModelKind::Bpr,
        ModelKind::Random,
        ModelKind::Content,
        ModelKind::Hybrid,
        ModelKind::ContentFt,
        ModelKind::FusedFt,
    ];
    pub fn id(self) -> &'static str {
        match self {
            ModelKind::Pop => "pop",
            ModelKind::Als => "als",
            ModelKind::Bpr => "bpr",
            ModelKind::Random => "random",
            ModelKind::Content => "content",
            ModelKind::Hybrid => "hybrid",
            ModelKind::ContentFt => "content-ft",
            ModelKind::FusedFt => "fused-ft",
        }
    }

    /// Whether the model needs item text vectors.
    pub fn needs_text(self) -> bool {
        matches!(self, ModelKind::Content | ModelKind::Hybrid | ModelKind::ContentFt | ModelKind::FusedFt)
    }

    /// Whether the model needs the fine-tuned encoder.
    pub fn needs_finetuning(self) -> bool {
        matches!(self, ModelKind::ContentFt | ModelKind::FusedFt)
    }
}

/// Settings of every model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub als: AlsConfig,
    pub bpr: BprConfig,
    #[serde(default)]
    pub finetune: FinetuneConfig,
}

/// What training reads besides the split.
pub struct TrainInputs<'a> {
    pub data: &'a Dataset,
    pub split: &'a Split,
    /// The text encoder; needed by `content` and `hybrid`.
    pub encoder: Option<EncoderSource>,
    /// Where item text vectors are cached between runs.
    pub cache_dir: PathBuf,
    pub device: Device,
    /// Where fine-tuning checkpoints go, and whether to resume from one.
    pub checkpoint_dir: PathBuf,
    pub resume: bool,
    /// ALS factors fitted elsewhere (e.g. Spark): used in place of fitting ALS here.
    pub prefit_als: Option<Factors>,
}

/// Trained models with their fit times.
#[derive(Default)]
pub struct ModelSet {
    pub pop: Option<Popularity>,
    pub als: Option<Factors>,
    pub bpr: Option<Factors>,
    pub random: Option<RandomScores>,
    /// Item text vectors, row-major `n x text_dim`.
    pub text: Option<(Vec<f32>, usize)>,
    /// Hybrid and content scoring (present when either was asked for).
    pub hybrid: Option<Hybrid>,
    /// The fine-tuned encoder and its fused/content models.
    pub finetuned: Option<FineTuned>,
    pub fused: Option<Hybrid>,
    pub fit_seconds: BTreeMap<String, f64>,
    /// The process's peak resident memory (MB) after each stage.
    pub peak_rss_mb: BTreeMap<String, f64>,
}

impl ModelSet {
    /// Trains `kinds`: settings are chosen on the split's validation part, and the models are
    /// fitted on [`Split::final_fit`] (train + validation unless `--no-refit`).
    pub fn train(inputs: &TrainInputs<'_>, kinds: &[ModelKind], cfg: &ModelConfig) -> anyhow::Result<Self> {
        let split = inputs.split;
        let final_split = split.final_fit();
        let refit = split.config.refit;
        let train = split.train_matrix();
        let final_train = final_split.train_matrix();
        let mut set = ModelSet::default();
        let needs_text = kinds.iter().any(|k| k.needs_text());
        for &kind in kinds.iter().filter(|k| !k.needs_text()) {
            let start = Instant::now();
            match kind {
                ModelKind::Pop => set.pop = Some(Popularity::fit(&final_train)),
                ModelKind::Als => set.als = Some(als_factors(inputs, &final_train, &cfg.als)),
                ModelKind::Bpr => set.bpr = Some(train_bpr(&final_train, &cfg.bpr)),
                ModelKind::Random => set.random = Some(RandomScores { seed: split.config.seed }),
                _ => unreachable!("text models are filtered out above"),
            }
            set.record(kind.id(), start);
        }
        if needs_text {
            let source = inputs.encoder.as_ref().ok_or_else(|| anyhow::anyhow!("text models need --encoder"))?;
            let texts: Vec<String> = inputs.data.items.iter().map(|i| i.text()).collect();
            if set.als.is_none() {
                let start = Instant::now();
                set.als = Some(als_factors(inputs, &final_train, &cfg.als));
                set.record("als", start);
            }
            let final_als = set.als.clone().expect("trained above");
            // Text weights and dimensions are chosen against ALS fitted without the validation
            // part (imported factors are used as they are).
            let als = match refit && inputs.prefit_als.is_none() {
                true => {
                    let start = Instant::now();
                    let als = train_als(&train, &cfg.als);
                    set.record("als-selection", start);
                    als
                }
                false => final_als.clone(),
            };
            let refit_family = |h: Hybrid, text: &[f32], dim: usize| match refit {
                true => h.refit(&final_split, &final_als, &cfg.als, text, dim),
                false => Ok(h),
            };
            let items = item_meta(inputs.data);
            if kinds.contains(&ModelKind::Content) || kinds.contains(&ModelKind::Hybrid) {
                let start = Instant::now();
                let vectors = textvec::embed_cached(source, &inputs.device, &texts, &inputs.cache_dir)?;
                let dim = vectors.len() / texts.len().max(1);
                set.record("text", start);
                let start = Instant::now();
                let hybrid = Hybrid::fit(FROZEN, split, &train, &als, &cfg.als, &vectors, dim, items.clone())?;
                set.hybrid = Some(refit_family(hybrid, &vectors, dim)?);
                set.record("hybrid", start);
                set.text = Some((vectors, dim));
            }
            if kinds.iter().any(|k| k.needs_finetuning()) {
                let start = Instant::now();
                let ft = finetune::run(
                    source,
                    &texts,
                    split,
                    &cfg.finetune,
                    &inputs.device,
                    &inputs.checkpoint_dir,
                    inputs.resume,
                )?;
                set.record("finetune", start);
                let start = Instant::now();
                let key = format!("{}|{}", ft.fingerprint, source.max_tokens);
                let vectors = textvec::embed_cached_with(&key, &texts, &inputs.cache_dir, || {
                    ft.encoder(source.max_tokens, &inputs.device)
                })?;
                let dim = vectors.len() / texts.len().max(1);
                set.record("text-ft", start);
                let start = Instant::now();
                let fused = Hybrid::fit(FINETUNED, split, &train, &als, &cfg.als, &vectors, dim, items)?;
                set.fused = Some(refit_family(fused, &vectors, dim)?);
                set.record("fused-ft", start);
                set.finetuned = Some(ft);
            }
        }
        Ok(set)
    }

    fn record(&mut self, what: &str, start: Instant) {
        let secs = start.elapsed().as_secs_f64();
        let peak = crate::memory::peak_rss_bytes().map(|b| b as f64 / 1e6);
        tracing::info!(
            "fitted {what} in {secs:.3}s (peak memory so far: {} MB)",
            peak.map_or("?".into(), |m| format!("{m:.0}"))
        );
        self.fit_seconds.insert(what.to_string(), secs);
        if let Some(mb) = peak {
            self.peak_rss_mb.insert(what.to_string(), mb);
        }
    }

    pub fn scorers(&self) -> Vec<&dyn Scorer> {
        let mut out: Vec<&dyn Scorer> = Vec::new();
        if let Some(m) = &self.pop {
            out.push(m);
        }
        if let Some(m) = &self.als {
            out.push(m);
        }
        if let Some(m) = &self.bpr {
            out.push(m);
        }
        if let Some(m) = &self.random {
            out.push(m);
        }
        out
    }

    pub fn kinds(&self) -> Vec<ModelKind> {
        let present = [
            self.pop.is_some(),
            self.als.is_some(),
            self.bpr.is_some(),
            self.random.is_some(),
            self.hybrid.is_some(),
            self.hybrid.is_some(),
            self.fused.is_some(),
            self.fused.is_some(),
        ];
        ModelKind::ALL.iter().zip(present).filter(|(_, p)| *p).map(|(k, _)| *k).collect()
    }
}

/// Display metadata of every item, in index order.
pub fn item_meta(data: &Dataset) -> Vec<ItemMeta> {
    data.items
        .iter()
        .map(|i| ItemMeta { id: i.id.clone(), title: i.title.clone(), year: i.year, genres: i.genres.clone() })
        .collect()
}

fn als_factors(inputs: &TrainInputs<'_>, train: &Csr, cfg: &AlsConfig) -> Factors {
    match &inputs.prefit_als {
        Some(f) => {
            tracing::info!("using imported ALS factors ({} dims) instead of fitting ALS", f.dim);
            let known = |i: &u32| f.item_known.as_ref().is_some_and(|k| k[*i as usize]);
            let cold_known = inputs.split.cold_items.iter().filter(|i| known(i)).count();
            if cold_known > 0 {
                tracing::warn!(
                    "{cold_known} items held out as cold have imported factors: the cold evaluation is honest only \
                     if those factors were fitted without their interactions (fit on `nook split`'s fit.csv)"
                );
            }
            f.clone()
        }
        None => train_als(train, cfg),
    }
}

fn train_als(train: &Csr, cfg: &AlsConfig) -> Factors {
    let bar = progress::bar(cfg.iterations as u64, "als");
    let factors = als::fit(train, cfg, |it| bar.set_position(it as u64));
    bar.finish_and_clear();
    factors
}

fn train_bpr(train: &Csr, cfg: &BprConfig) -> Factors {
    let bar = progress::bar(cfg.epochs as u64, "bpr");
    let factors = bpr::fit(train, cfg, |epoch, correct| {
        bar.set_position(epoch as u64);
        bar.set_message(format!("ranked right {:.1}%", 100.0 * correct));
    });
    bar.finish_and_clear();
    factors
}

/// The machine-readable evaluation report (`nook eval --json`). Other tools read it: keep its shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub dataset: String,
    pub protocol: SplitConfig,
    pub seed: u64,
    pub ks: Vec<usize>,
    pub splits: BTreeMap<String, EvalSize>,
    pub models: ModelConfig,
    pub fit_seconds: BTreeMap<String, f64>,
    /// Peak resident memory of the trainer (MB) after each stage.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_rss_mb: BTreeMap<String, f64>,
    pub results: Vec<MetricRow>,
}

/// Evaluates every model of `set` on the warm and cold splits.
pub fn evaluate_all(
    dataset: &str,
    split: &Split,
    set: &ModelSet,
    extra: &[&dyn Scorer],
    cfg: &ModelConfig,
    ks: &[usize],
    targets: &[Target],
) -> EvalReport {
    // The models were fitted on the final split; the validation part (empty after a refit) only
    // chose settings.
    let split = &split.final_fit();
    let train = split.train_matrix();
    let mut splits = BTreeMap::new();
    let mut results = Vec::new();
    // Hybrid users are folded in from their training positives by nook-core, as in the browser.
    let families: Vec<&Hybrid> = [&set.hybrid, &set.fused].into_iter().flatten().collect();
    let sequences = split.train_sequences();
    let users: Vec<(Vec<UserVector>, Vec<UserVector>)> = families
        .iter()
        .map(|h| {
            (user_vectors(&h.catalog, &h.scoring, &sequences), user_vectors(&h.content_catalog, &h.content, &sequences))
        })
        .collect();
    let family_scorers: Vec<[HybridScorer<'_>; 2]> =
        families.iter().zip(&users).map(|(h, (u, c))| h.scorers(u, c)).collect();
    let mut scorers = set.scorers();
    scorers.extend(family_scorers.iter().flatten().map(|s| s as &dyn Scorer));
    scorers.extend(extra.iter().copied());
    for &target in targets {
        let eval_set = EvalSet::new(split, &train, target);
        splits.insert(target.name().to_string(), eval_set.size());
        if eval_set.users.is_empty() {
            tracing::warn!("{} split has no users to evaluate", target.name());
            continue;
        }
        for &model in &scorers {
            results.extend(evaluate(model, &eval_set, ks));
        }
    }
    EvalReport {
        dataset: dataset.to_string(),
        protocol: split.config.clone(),
        seed: split.config.seed,
        ks: ks.to_vec(),
        splits,
        models: cfg.clone(),
        fit_seconds: set.fit_seconds.clone(),
        peak_rss_mb: set.peak_rss_mb.clone(),
        results,
    }
}

impl ModelSet {
    /// What was chosen on the validation split, as Markdown lines for the report.
    pub fn validation_notes(&self) -> String {
        let mut notes = String::new();
        for h in [&self.hybrid, &self.fused].into_iter().flatten() {
            let best = h.validation.iter().max_by(|a, b| a.ndcg10.total_cmp(&b.ndcg10));
            if let Some(b) = best {
                notes.push_str(&format!(
                    "- `{}`: {} text dimensions, text weight {}, recency half-life {} likes (validation NDCG@10 {:.4}; {} settings tried)\n",
                    h.spec.name,
                    b.text_dims,
                    b.text_weight,
                    b.recency_half_life,
                    b.ndcg10,
                    h.validation.len()
                ));
            }
        }
        notes
    }
}

impl EvalReport {
    /// A value by (model, split, metric).
    pub fn get(&self, model: &str, split: &str, metric: &str) -> Option<f64> {
        self.results.iter().find(|r| r.model == model && r.split == split && r.metric == metric).map(|r| r.value)
    }

    /// A plain-text table: one line per (model, split), the main metrics at every K as columns.
    pub fn table(&self) -> String {
        self.table_for(&self.ks)
    }

    /// Like [`EvalReport::table`], for the cut-offs `ks` only.
    pub fn table_for(&self, ks: &[usize]) -> String {
        let mut cols: Vec<String> = Vec::new();
        for k in ks {
            for m in ["recall", "ndcg", "map", "precision", "hit", "coverage"] {
                cols.push(format!("{m}@{k}"));
            }
        }
        cols.push("auc".into());
        let mut out = format!("{:<14} {:<6}", "model", "split");
        cols.iter().for_each(|c| out.push_str(&format!(" {c:>12}")));
        out.push('\n');
        let mut keys: Vec<(String, String)> = Vec::new();
        for r in &self.results {
            let key = (r.model.clone(), r.split.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        // Warm, then cold, then valid; models keep their evaluation order within each.
        let rank = |split: &str| ["warm", "cold", "valid"].iter().position(|s| *s == split);
        keys.sort_by_key(|k| rank(&k.1));
        for (model, split) in keys {
            out.push_str(&format!("{model:<14} {split:<6}"));
            for c in &cols {
                match self.get(&model, &split, c) {
                    Some(v) => out.push_str(&format!(" {v:>12.4}")),
                    None => out.push_str(&format!(" {:>12}", "-")),
                }
            }
            out.push('\n');
        }
        out
    }
}
