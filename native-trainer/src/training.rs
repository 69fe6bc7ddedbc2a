//! Fitting the requested models on a split. Settings are chosen on the split's validation part
//! and the models fitted on [`Split::final_fit`] (train + validation unless `--no-refit`).
//!
//! Models share stages: every text model needs ALS factors, both text families need item
//! vectors, `content-ft` and `fused-ft` one fine-tuned encoder. [`Trainer`] computes each stage
//! once, the first time a model asks for it, and records its time and the peak memory after it.

use crate::data::Dataset;
use crate::finetune::{self, FinetuneConfig};
use crate::matrix::Csr;
use crate::models::family::{EncoderOrigin, TextFamily};
use crate::models::hybrid::{Hybrid, HybridSpec, FINETUNED, FROZEN};
use crate::models::{als, AlsConfig, BprConfig, Factors, Fitted, ModelEntry};
use crate::split::Split;
use crate::textvec::{self, EncoderSource};
use anyhow::{Context, Result};
use candle_core::Device;
use nook_core::ItemMeta;
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
}

/// What training reads besides the split.
pub struct TrainInputs<'a> {
    pub data: &'a Dataset,
    pub split: &'a Split,
    /// The text encoder; needed by the text models.
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
    frozen: Option<Arc<TextFamily>>,
    finetuned: Option<Arc<TextFamily>>,
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
            frozen: None,
            finetuned: None,
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
        self.fit_seconds.insert(what.to_string(), secs);
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
    fn selection_als(&mut self) -> Arc<Factors> {
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

    fn texts(&self) -> Vec<String> {
        self.inputs.data.items.iter().map(|i| i.text()).collect()
    }

    /// `content` and `hybrid`: the frozen encoder's item vectors fused with ALS.
    pub fn frozen_family(&mut self) -> Result<Arc<TextFamily>> {
        if let Some(f) = &self.frozen {
            return Ok(f.clone());
        }
        let source = self.encoder()?;
        let (inputs, texts) = (self.inputs, self.texts());
        let vectors =
            self.timed("text", |_| textvec::embed_cached(source, &inputs.device, &texts, &inputs.cache_dir))?;
        let hybrid = self.timed("hybrid", |t| t.fit_family(FROZEN, &vectors))?;
        let family = Arc::new(TextFamily { hybrid, encoder: EncoderOrigin::Dir(source.dir.clone()) });
        self.frozen = Some(family.clone());
        Ok(family)
    }

    /// `content-ft` and `fused-ft`: the encoder fine-tuned on the interactions, its item vectors
    /// fused with ALS.
    pub fn finetuned_family(&mut self) -> Result<Arc<TextFamily>> {
        if let Some(f) = &self.finetuned {
            return Ok(f.clone());
        }
        let source = self.encoder()?;
        let (inputs, texts) = (self.inputs, self.texts());
        let ft = self.timed("finetune", |t| {
            finetune::run(
                source,
                &texts,
                t.inputs.split,
                &t.cfg.finetune,
                &inputs.device,
                &inputs.checkpoint_dir,
                inputs.resume,
            )
        })?;
        let key = format!("{}|{}", ft.fingerprint, source.max_tokens);
        let vectors = self.timed("text-ft", |_| {
            textvec::embed_cached_with(&key, &texts, &inputs.cache_dir, || {
                ft.encoder(source.max_tokens, &inputs.device)
            })
        })?;
        let hybrid = self.timed("fused-ft", |t| t.fit_family(FINETUNED, &vectors))?;
        let family = Arc::new(TextFamily { hybrid, encoder: EncoderOrigin::FineTuned(Box::new(ft)) });
        self.finetuned = Some(family.clone());
        Ok(family)
    }

    /// Chooses a family's settings against the selection ALS, then (with refit) rebuilds its
    /// catalogues on the final ALS.
    fn fit_family(&mut self, spec: HybridSpec, vectors: &[f32]) -> Result<Hybrid> {
        let final_als = self.final_als();
        let als = self.selection_als();
        let split = self.inputs.split;
        let dim = vectors.len() / split.n_items.max(1);
        let train = split.train_matrix();
        let h = Hybrid::fit(spec, split, &train, &als, &self.cfg.als, vectors, dim, self.item_meta())?;
        match split.config.refit {
            true => h.refit(&self.final_split, &final_als, &self.cfg.als, vectors, dim),
            false => Ok(h),
        }
    }

    fn item_meta(&self) -> Vec<ItemMeta> {
        item_meta(self.inputs.data)
    }
}

/// Display metadata of every item, in index order.
pub fn item_meta(data: &Dataset) -> Vec<ItemMeta> {
    data.items
        .iter()
        .map(|i| ItemMeta { id: i.id.clone(), title: i.title.clone(), year: i.year, genres: i.genres.clone() })
        .collect()
}
