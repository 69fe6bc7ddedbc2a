//! Fitting the requested models on a split. Settings are chosen on the split's validation part
//! and the models fitted on [`Split::final_fit`] (train + validation unless `--no-refit`).
//!
//! Models share stages: every text model needs ALS factors, both text families need item
//! vectors, `content-ft` and `fused-ft` one fine-tuned encoder. [`Trainer`] computes each stage
//! once, the first time a model asks for it, and records its time and the peak memory after it.

use crate::data::Dataset;
use crate::data::TextField;
use crate::eval::query::{self, EmbeddedBench, QueryBench};
use crate::eval::similar;
use crate::eval::{EvalSet, Target};
use crate::finetune::{self, FinetuneConfig};
use crate::matrix::Csr;
use crate::models::family::{EncoderOrigin, TextFamily};
use crate::models::hybrid::{self, Hybrid, HybridSpec, QueryColumns, FINETUNED, FROZEN};
use crate::models::seq_rules::{self, SeqRules};
use crate::models::slit::{self, Slit};
use crate::models::{als, pca, AlsConfig, BprConfig, Factors, Fitted, ModelEntry};
use crate::split::Split;
use crate::textvec::{self, EncoderSource, TextEngine};
use anyhow::{Context, Result};
use candle_core::Device;
use nook_core::{Catalog, Expansion, ItemMeta, Scoring};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Settings of every model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub als: AlsConfig,
    pub bpr: BprConfig,
    #[serde(default)]
    pub finetune: FinetuneConfig,
    /// Hard-negative counts to fine-tune with, one fine-tuning each; validation chooses among
    /// them (`fused-ft`'s warm NDCG@10). Empty: `finetune.hard_negatives` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hard_negatives_choices: Vec<usize>,
    /// The item-text field held out of what the encoder sees, for the query benchmark (which
    /// chooses the query weight on it); `None` keeps every field.
    #[serde(default)]
    pub query_field: Option<TextField>,
}

/// What training reads besides the split.
pub struct TrainInputs<'a> {
    pub data: &'a Dataset,
    pub split: &'a Split,
    /// The text encoder; needed by the text models.
    pub encoder: Option<EncoderSource>,
    /// The engine that embeds item texts (fine-tuning always trains the f32 weights).
    pub text_engine: TextEngine,
    /// Where item text vectors are cached between runs.
    pub cache_dir: PathBuf,
    pub device: Device,
    /// Where fine-tuning checkpoints go, and whether to resume from one.
    pub checkpoint_dir: PathBuf,
    pub resume: bool,
    /// ALS factors fitted elsewhere (e.g. Spark): used in place of fitting ALS here.
    pub prefit_als: Option<Factors>,
}

/// Trained (or loaded) models in registry order, with the time and memory each stage took.
#[derive(Default)]
pub struct ModelSet {
    pub models: Vec<(&'static ModelEntry, Arc<dyn Fitted>)>,
    pub fit_seconds: BTreeMap<String, f64>,
    /// The process's peak resident memory (MB) after each stage.
    pub peak_rss_mb: BTreeMap<String, f64>,
    /// Token limit the text vectors were computed with.
    pub encoder_max_tokens: Option<usize>,
}

impl ModelSet {
    /// Fits `entries` (in registry order, each once).
    pub fn train(inputs: &TrainInputs<'_>, entries: &[&'static ModelEntry], cfg: &ModelConfig) -> Result<Self> {
        let mut trainer = Trainer::new(inputs, cfg);
        let mut models = Vec::new();
        for &entry in crate::models::REGISTRY.iter().filter(|e| entries.iter().any(|x| x.id == e.id)) {
            let fitted = (entry.fit)(&mut trainer).with_context(|| format!("fitting {}", entry.id))?;
            models.push((entry, fitted));
        }
        let encoder_max_tokens = inputs.encoder.as_ref().map(|e| e.max_tokens);
        Ok(Self { models, fit_seconds: trainer.fit_seconds, peak_rss_mb: trainer.peak_rss_mb, encoder_max_tokens })
    }

    pub fn ids(&self) -> Vec<&'static str> {
        self.models.iter().map(|(e, _)| e.id).collect()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<dyn Fitted>> {
        self.models.iter().find(|(e, _)| e.id == id).map(|(_, m)| m)
    }

    /// What was chosen on the validation split, as Markdown lines for the report.
    pub fn validation_notes(&self) -> String {
        self.models.iter().filter_map(|(_, m)| m.notes()).collect()
    }

    /// The fine-tuning loss by step, when a model was built on a fine-tuned encoder.
    pub fn losses(&self) -> Option<&[f32]> {
        self.models.iter().find_map(|(_, m)| m.losses())
    }
}

/// The shared stages of one training run; see the module documentation.
pub struct Trainer<'a> {
    inputs: &'a TrainInputs<'a>,
    cfg: &'a ModelConfig,
    final_split: Split,
    final_train: Csr,
    final_als: Option<Arc<Factors>>,
    selection_als: Option<Arc<Factors>>,
    frozen_vectors: Option<Arc<Vec<f32>>>,
    frozen: Option<Arc<TextFamily>>,
    finetuned: Option<Arc<TextFamily>>,
    seq_rules: Option<Arc<SeqRules>>,
    slit: Option<Arc<Slit>>,
    /// The validation part's query cases and their queries through the frozen encoder.
    query_bench: Option<Arc<EmbeddedBench>>,
    fit_seconds: BTreeMap<String, f64>,
    peak_rss_mb: BTreeMap<String, f64>,
}

impl<'a> Trainer<'a> {
    pub fn new(inputs: &'a TrainInputs<'a>, cfg: &'a ModelConfig) -> Self {
        let final_split = inputs.split.final_fit();
        let final_train = final_split.train_matrix();
        Self {
            inputs,
            cfg,
            final_split,
            final_train,
            final_als: None,
            selection_als: None,
            frozen_vectors: None,
            frozen: None,
            finetuned: None,
            seq_rules: None,
            slit: None,
            query_bench: None,
            fit_seconds: BTreeMap::new(),
            peak_rss_mb: BTreeMap::new(),
        }
    }

    /// The split settings are chosen on.
    pub fn split(&self) -> &Split {
        self.inputs.split
    }

    pub fn cfg(&self) -> &ModelConfig {
        self.cfg
    }

    /// What the final models are fitted on (user x item positives).
    pub fn final_train(&self) -> &Csr {
        &self.final_train
    }

    /// Runs `f`, recording its time (and the peak memory after it) as stage `what`.
    pub fn timed<T>(&mut self, what: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let start = Instant::now();
        let out = f(self);
        let secs = start.elapsed().as_secs_f64();
        let peak = crate::memory::peak_rss_bytes().map(|b| b as f64 / 1e6);
        tracing::info!(
            "fitted {what} in {secs:.3}s (peak memory so far: {} MB)",
            peak.map_or("?".into(), |m| format!("{m:.0}"))
        );
        // A stage run more than once (a fine-tuning per hard-negative count) counts its total.
        *self.fit_seconds.entry(what.to_string()).or_default() += secs;
        if let Some(mb) = peak {
            self.peak_rss_mb.insert(what.to_string(), mb);
        }
        out
    }

    /// ALS on the final fit (or the imported factors).
    pub fn final_als(&mut self) -> Arc<Factors> {
        if let Some(f) = &self.final_als {
            return f.clone();
        }
        let f = Arc::new(self.timed("als", |t| match &t.inputs.prefit_als {
            Some(f) => t.imported_als(f),
            None => als::fit_with_progress(&t.final_train, &t.cfg.als),
        }));
        self.final_als = Some(f.clone());
        f
    }

    /// ALS fitted without the validation part, which text weights and dimensions are chosen
    /// against (imported factors are used as they are).
    pub fn selection_als(&mut self) -> Arc<Factors> {
        if !self.inputs.split.config.refit || self.inputs.prefit_als.is_some() {
            return self.final_als();
        }
        if let Some(f) = &self.selection_als {
            return f.clone();
        }
        let train = self.inputs.split.train_matrix();
        let f = Arc::new(self.timed("als-selection", |t| als::fit_with_progress(&train, &t.cfg.als)));
        self.selection_als = Some(f.clone());
        f
    }

    fn imported_als(&self, f: &Factors) -> Factors {
        tracing::info!("using imported ALS factors ({} dims) instead of fitting ALS", f.dim);
        let known = |i: &u32| f.item_known.as_ref().is_some_and(|k| k[*i as usize]);
        let cold_known = self.inputs.split.cold_items.iter().filter(|i| known(i)).count();
        if cold_known > 0 {
            tracing::warn!(
                "{cold_known} items held out as cold have imported factors: the cold evaluation is honest only \
                 if those factors were fitted without their interactions (fit on `nook split`'s fit.csv)"
            );
        }
        f.clone()
    }

    fn encoder(&self) -> Result<&'a EncoderSource> {
        self.inputs.encoder.as_ref().context("text models need --encoder")
    }

    /// The text the encoder sees for each item (without the held-out query field).
    fn texts(&self) -> Vec<String> {
        self.inputs.data.items.iter().map(|i| i.text_without(self.cfg.query_field)).collect()
    }

    /// The frozen encoder's item vectors (row-major, `n x dim`).
    fn frozen_vectors(&mut self) -> Result<Arc<Vec<f32>>> {
        if let Some(v) = &self.frozen_vectors {
            return Ok(v.clone());
        }
        let source = self.encoder()?;
        let (inputs, texts) = (self.inputs, self.texts());
        let vectors = self.timed("text", |_| {
            textvec::embed_cached(source, inputs.text_engine, &inputs.device, &texts, &inputs.cache_dir)
        })?;
        let vectors = Arc::new(vectors);
        self.frozen_vectors = Some(vectors.clone());
        Ok(vectors)
    }

    /// `content` and `hybrid`: the frozen encoder's item vectors fused with ALS; queries match
    /// the same vectors.
    pub fn frozen_family(&mut self) -> Result<Arc<TextFamily>> {
        if let Some(f) = &self.frozen {
            return Ok(f.clone());
        }
        let source = self.encoder()?;
        let vectors = self.frozen_vectors()?;
        let (hybrid, selection) = self.timed("hybrid", |t| t.fit_family(FROZEN, &vectors, None))?;
        let encoder = EncoderOrigin::Dir(source.dir.clone());
        let family = Arc::new(TextFamily {
            hybrid,
            encoder,
            query_encoder: source.dir.clone(),
            selection: Some(selection),
            hard_negatives_validation: Vec::new(),
        });
        self.frozen = Some(family.clone());
        Ok(family)
    }

    /// `content-ft` and `fused-ft`: the encoder fine-tuned on the interactions, its item vectors
    /// fused with ALS. With several hard-negative counts, one fine-tuning each and the family
    /// whose fused model validates best.
    pub fn finetuned_family(&mut self) -> Result<Arc<TextFamily>> {
        if let Some(f) = &self.finetuned {
            return Ok(f.clone());
        }
        let choices = match self.cfg.hard_negatives_choices.as_slice() {
            [] => vec![self.cfg.finetune.hard_negatives],
            many => many.to_vec(),
        };
        let mut best: Option<(f64, usize, TextFamily)> = None;
        let mut tried = Vec::new();
        for &n in &choices {
            let cfg = FinetuneConfig { hard_negatives: n, ..self.cfg.finetune.clone() };
            // One checkpoint per fine-tuning, so each of them resumes.
            let dir = match choices.len() {
                1 => self.inputs.checkpoint_dir.clone(),
                _ => self.inputs.checkpoint_dir.join(format!("hard-negatives-{n}")),
            };
            let family = self.finetune_with(&cfg, &dir)?;
            // As each would ship: its chosen settings' score, not its best point's (parsimony
            // may have taken fewer dimensions at a slightly lower score).
            let ndcg = family.hybrid.chosen.context("a fitted family records its chosen settings")?.ndcg10;
            if choices.len() > 1 {
                tracing::info!("fine-tuned with {n} hard negatives: fused-ft validation ndcg@10 {ndcg:.4}");
            }
            tried.push((n, ndcg));
            // Ties keep the earlier (cheaper, when listed first) choice.
            if best.as_ref().is_none_or(|(b, _, _)| ndcg > *b) {
                best = Some((ndcg, n, family));
            }
        }
        let (_, n, mut family) = best.context("no hard-negative count to fine-tune with")?;
        if choices.len() > 1 {
            family.hard_negatives_validation = tried;
            tracing::info!("fine-tuning: chose {n} hard negatives on validation");
        }
        let family = Arc::new(family);
        self.finetuned = Some(family.clone());
        Ok(family)
    }

    /// One fine-tuning with `cfg`, checkpointed in `checkpoint_dir`, and its family.
    fn finetune_with(&mut self, cfg: &FinetuneConfig, checkpoint_dir: &std::path::Path) -> Result<TextFamily> {
        let source = self.encoder()?;
        let (inputs, texts) = (self.inputs, self.texts());
        // The items validation makes cold to choose cold-item settings must be as new to the
        // encoder as the test's cold items are.
        let pseudo_cold = hybrid::pseudo_cold_items(inputs.split, self.cfg.als.seed);
        let frozen = match cfg.hard_negatives {
            0 => None,
            _ => Some(self.frozen_vectors()?),
        };
        let ft = self.timed("finetune", |t| {
            finetune::run(
                source,
                &texts,
                t.inputs.split,
                cfg,
                Some(&pseudo_cold),
                frozen.as_deref().map(Vec::as_slice),
                &inputs.device,
                checkpoint_dir,
                inputs.resume,
            )
        })?;
        let key = format!("{}|{}{}", ft.fingerprint, source.max_tokens, inputs.text_engine.key_suffix());
        let vectors = self.timed("text-ft", |_| {
            textvec::embed_cached_with(&key, &texts, &inputs.cache_dir, || match inputs.text_engine {
                TextEngine::F32 => ft.encoder(source.max_tokens, &inputs.device),
                TextEngine::Int8 => ft.encoder_int8(source.max_tokens),
            })
        })?;
        // Fine-tuning on co-consumption reshapes the space to taste and loses what words mean
        // (README, "Words that steer"): typed queries match the frozen encoder's vectors instead.
        let frozen = self.frozen_vectors()?;
        let (hybrid, selection) = self.timed("fused-ft", |t| t.fit_family(FINETUNED, &vectors, Some(&frozen)))?;
        let encoder = EncoderOrigin::FineTuned(Box::new(ft));
        Ok(TextFamily {
            hybrid,
            encoder,
            query_encoder: source.dir.clone(),
            selection: Some(selection),
            hard_negatives_validation: Vec::new(),
        })
    }

    /// Chooses a family's settings against the selection ALS (with `query_vectors` as query
    /// columns beside its text, and the query weight on the query benchmark), then (with refit)
    /// rebuilds its catalogues on the final ALS.
    /// Also returns the fused catalogue as validation measured it (before the refit).
    fn fit_family(
        &mut self,
        spec: HybridSpec,
        vectors: &[f32],
        query_vectors: Option<&[f32]>,
    ) -> Result<(Hybrid, Catalog)> {
        let final_als = self.final_als();
        let als = self.selection_als();
        let split = self.inputs.split;
        let dim = vectors.len() / split.n_items.max(1);
        let train = split.train_matrix();
        let mut h = Hybrid::fit(spec, split, &train, &als, &self.cfg.als, vectors, dim, self.item_meta())?;
        if let Some(q) = query_vectors {
            let columns = query_columns(q, split.n_items, h.catalog.text_dim);
            h = h.with_query_columns(columns)?;
        }
        if let Some(bench) = self.query_bench()? {
            h = choose_query_weight(h, split, &train, &bench)?;
        }
        h = choose_similar_weight(h, split, &train);
        let selection = h.catalog.clone();
        let h = match split.config.refit {
            true => h.refit(&self.final_split, &final_als, &self.cfg.als, vectors, dim)?,
            false => h,
        };
        Ok((h, selection))
    }

    /// Sequential rules, their setting chosen on validation, fitted on the final fit.
    pub fn seq_rules(&mut self) -> Result<Arc<SeqRules>> {
        if let Some(r) = &self.seq_rules {
            return Ok(r.clone());
        }
        let sequences = self.final_split.train_sequences();
        let rules = Arc::new(self.timed(seq_rules::ID, |t| seq_rules::fit_chosen(t.inputs.split, &sequences)));
        self.seq_rules = Some(rules.clone());
        Ok(rules)
    }

    /// Learned transitions, their setting chosen on validation, fitted on the final fit.
    pub fn slit(&mut self) -> Result<Arc<Slit>> {
        if let Some(s) = &self.slit {
            return Ok(s.clone());
        }
        let sequences = self.final_split.train_sequences();
        let fitted = Arc::new(self.timed(slit::ID, |t| slit::fit_chosen(t.inputs.split, &sequences))?);
        self.slit = Some(fitted.clone());
        Ok(fitted)
    }

    pub fn item_meta(&self) -> Vec<ItemMeta> {
        item_meta(self.inputs.data)
    }

    /// The validation part's query cases, when the run holds a query field out.
    fn query_bench(&mut self) -> Result<Option<Arc<EmbeddedBench>>> {
        let Some(field) = self.cfg.query_field else { return Ok(None) };
        if let Some(b) = &self.query_bench {
            return Ok(Some(b.clone()));
        }
        let split = self.inputs.split;
        let train = split.train_matrix();
        let set = EvalSet::new(split, &train, Target::Valid);
        let bench = QueryBench::new(self.inputs.data, &set, &split.valid, field, split.config.seed);
        let source = self.encoder()?;
        let encoder = source.load(&Device::Cpu)?;
        let embedded = embed_queries(&encoder, &bench.queries)?;
        tracing::info!(
            "query benchmark ({field:?}): {} queries, {} validation cases",
            bench.queries.len(),
            bench.pairs.len()
        );
        let b = Arc::new(EmbeddedBench { bench, queries: embedded });
        self.query_bench = Some(b.clone());
        Ok(Some(b))
    }
}

/// Query columns of the frozen encoder's vectors: as they are when they fit beside the profile
/// text under int8 scoring's width limit and the bundle's budget for them, else reduced by PCA.
fn query_columns(frozen: &[f32], n_items: usize, profile_dims: usize) -> QueryColumns {
    let dim = frozen.len() / n_items.max(1);
    if profile_dims + dim <= nook_core::score::MAX_INT8_COLS && n_items * dim <= FULL_QUERY_VALUES {
        return QueryColumns { rows: frozen.to_vec(), dim, projection: None };
    }
    let projection = pca::fit(frozen, dim, REDUCED_QUERY_DIMS);
    QueryColumns { rows: projection.apply_rows(frozen), dim: projection.out_dim, projection: Some(projection) }
}

/// Query columns when the full frozen vectors do not fit.
const REDUCED_QUERY_DIMS: usize = 128;
/// Most query-column values a bundle carries at full width (16 MB at int8: 40k items at 384).
const FULL_QUERY_VALUES: usize = 16 << 20;

/// Sets a family's query weight and expansion from the benchmark's validation cases: for each
/// expansion of [`query::EXPANSIONS`] the weight [`query::choose_weight`] picks, then the
/// expansion whose pick recalls the most targets.
fn choose_query_weight(mut h: Hybrid, split: &Split, train: &Csr, b: &EmbeddedBench) -> Result<Hybrid> {
    let set = EvalSet::new(split, train, Target::Valid);
    let history = split.train_sequences();
    let mut best: Option<(f64, f32, Expansion, Vec<query::QueryScores>)> = None;
    let mut alone = query::QueryScores::default();
    for expansion in query::EXPANSIONS {
        let s = Scoring { expansion, ..h.scoring };
        let m = b.bench.evaluate(&set, &history, &h.catalog, &s, &b.queries, &query::WEIGHTS);
        let w = query::choose_weight(&m.history, &m.blends);
        let recall = m.blends[query::WEIGHTS.iter().position(|&x| x == w).unwrap_or(0)].recall10;
        tracing::debug!("{}: expansion {expansion:?}: weight {w}, validation recall@10 {recall:.4}", h.spec.name);
        alone = m.history;
        if best.as_ref().is_none_or(|b| recall > b.0) {
            best = Some((recall, w, expansion, m.blends));
        }
    }
    let (recall, w, expansion, blends) = best.expect("EXPANSIONS is not empty");
    tracing::info!(
        "{}: query weight {w}, expansion {} items at {} (validation recall@10 on query targets {:.4} → {recall:.4})",
        h.spec.name,
        expansion.items,
        expansion.weight,
        alone.recall10,
    );
    h.scoring.query_weight = w;
    h.scoring.expansion = expansion;
    h.content.query_weight = w;
    h.query_validation = query::WEIGHTS.iter().copied().zip(blends).collect();
    Ok(h)
}

/// Sets a family's "more like this" text weight on the item-to-item benchmark's validation part.
fn choose_similar_weight(mut h: Hybrid, split: &Split, train: &Csr) -> Hybrid {
    let set = EvalSet::new(split, train, Target::Valid);
    let (w, tried) = similar::choose_text_weight(&set, &split.train_sequences(), &h.catalog, &h.scoring);
    let best = tried.iter().map(|t| t.1).fold(f64::MIN, f64::max);
    tracing::info!(
        "{}: \"more like this\" text weight {w} (history's {}; validation ndcg@10 {best:.4})",
        h.spec.name,
        h.scoring.text_weight
    );
    h.scoring.similar_text_weight = Some(w);
    h
}

/// Unit-length embeddings of typed `queries` (after the encoder's query prompt), one vector each.
pub fn embed_queries(encoder: &nook_core::encoder::TextEncoder, queries: &[String]) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(queries.len());
    let prompts = encoder.prompts();
    for chunk in queries.chunks(64) {
        let prompted: Vec<_> = chunk.iter().map(|q| prompts.query(q)).collect();
        let refs: Vec<&str> = prompted.iter().map(|q| q.as_ref()).collect();
        let flat = encoder.embed(&refs)?;
        out.extend(flat.chunks_exact(encoder.dim()).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// Display metadata of every item, in index order.
pub fn item_meta(data: &Dataset) -> Vec<ItemMeta> {
    data.items
        .iter()
        .map(|i| ItemMeta { id: i.id.clone(), title: i.title.clone(), year: i.year, genres: i.genres.clone() })
        .collect()
}
