//! The text models. `content` and `hybrid` are the two parts of one [`Hybrid`] family fitted on
//! the frozen encoder's item vectors; `content-ft` and `fused-ft` of one fitted on the fine-tuned
//! encoder's. A family is fitted once however many of its parts are asked for, and saved once:
//!
//! ```text
//! MODEL_DIR/items.json                  item display metadata
//! MODEL_DIR/hybrid/, fused-ft/          catalog.safetensors (nook-core's catalogue codec, f32, plus
//!                                       content_text: the text-only model's unreduced text, when the
//!                                       fused text differs) + info.json (scoring, choices)
//! MODEL_DIR/encoder/ (also for fused-ft)  the frozen encoder: queries go through it
//! MODEL_DIR/encoder/, encoder-ft/       the family's encoder (Hugging Face layout)
//! MODEL_DIR/finetune.json               fine-tuning settings and loss by step (fused-ft family)
//! ```

use super::hybrid::{user_vectors, ColdProfile, Hybrid, HybridInfo, HybridScorer, HybridSpec, FINETUNED, FROZEN};
use super::{Fitted, ModelEntry, QueryEncoder, Scorer, TextModel};
use crate::finetune::FineTuned;
use crate::store::{read_json, read_tensors, write_tensors, ENCODER_FILES};
use anyhow::{ensure, Context, Result};
use nook_core::catalog::codec;
use nook_core::encoder::{POOLING_FILE, PROMPTS_FILE};
use nook_core::quant::{encode_matrix, Quant};
use nook_core::{Catalog, ItemMeta, TextLayout};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CONTENT: ModelEntry = ModelEntry {
    id: "content",
    about: "frozen encoder text vectors; a person is the recency-weighted mean of their likes",
    default: true,
    needs_text: true,
    fit: |t| part(t.frozen_family()?, Part::Content),
    load: |l| part(l.family(FROZEN)?, Part::Content),
};

pub const HYBRID: ModelEntry = ModelEntry {
    id: "hybrid",
    about: "ALS factors beside frozen text vectors (weight and recency chosen on validation)",
    default: true,
    needs_text: true,
    fit: |t| part(t.frozen_family()?, Part::Fused),
    load: |l| part(l.family(FROZEN)?, Part::Fused),
};

pub const CONTENT_FT: ModelEntry = ModelEntry {
    id: "content-ft",
    about: "text vectors from the encoder fine-tuned on the interactions",
    default: true,
    needs_text: true,
    fit: |t| part(t.finetuned_family()?, Part::Content),
    load: |l| part(l.family(FINETUNED)?, Part::Content),
};

pub const FUSED_FT: ModelEntry = ModelEntry {
    id: "fused-ft",
    about: "ALS factors fused with fine-tuned text vectors (weighted, reduced by PCA)",
    default: true,
    needs_text: true,
    fit: |t| part(t.finetuned_family()?, Part::Fused),
    load: |l| part(l.family(FINETUNED)?, Part::Fused),
};

/// Where a family's encoder comes from.
pub enum EncoderOrigin {
    /// A Hugging Face directory on disk (the frozen encoder, or a saved one).
    Dir(PathBuf),
    /// Weights fine-tuned in this run.
    FineTuned(Box<FineTuned>),
}

/// A fitted family, the encoder its item vectors came from, and the one queries go through.
pub struct TextFamily {
    pub hybrid: Hybrid,
    pub encoder: EncoderOrigin,
    /// The encoder typed queries are embedded with (a Hugging Face directory): the frozen one
    /// whenever the catalogue has query columns of their own, else the family's.
    pub query_encoder: PathBuf,
    /// The fused catalogue validation chose the settings with (before the refit on train +
    /// validation): what `fused-sr` chooses its weight against. Not saved.
    pub selection: Option<Catalog>,
    /// `(hard negatives, fused validation NDCG@10)` of each fine-tuning tried when several
    /// were (empty otherwise); saved beside the fine-tuning's record.
    pub hard_negatives_validation: Vec<(usize, f64)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The text-only model (`content`, `content-ft`).
    Content,
    /// The fused model (`hybrid`, `fused-ft`).
    Fused,
}

struct FamilyModel {
    family: Arc<TextFamily>,
    part: Part,
}

fn part(family: Arc<TextFamily>, part: Part) -> Result<Arc<dyn Fitted>> {
    Ok(Arc::new(FamilyModel { family, part }))
}

impl Fitted for FamilyModel {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        let h = &self.family.hybrid;
        let (name, catalog, scoring) = match self.part {
            Part::Content => (h.spec.content_name, &h.content_catalog, h.content),
            Part::Fused => (h.spec.name, &h.catalog, h.scoring),
        };
        // Users are folded in from their history by nook-core, as in the browser.
        let users = Cow::Owned(user_vectors(catalog, &scoring, history));
        Box::new(HybridScorer { name, catalog, scoring, users })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.family.save(dir)
    }

    fn notes(&self) -> Option<String> {
        let h = &self.family.hybrid;
        // The settings shipped (parsimony may have taken fewer dimensions than the best point);
        // model directories from before they were recorded name the best point.
        let chosen = h.chosen.or_else(|| h.validation.iter().copied().max_by(|a, b| a.ndcg10.total_cmp(&b.ndcg10)))?;
        (self.part == Part::Fused).then(|| {
            format!(
                "- `{}`: {} text dimensions, text weight {}, recency half-life {} likes (validation NDCG@10 {:.4}; {} settings tried); \"more like this\" text weight {}{}{}\n",
                h.spec.name,
                chosen.text_dims,
                chosen.text_weight,
                chosen.recency_half_life,
                chosen.ndcg10,
                h.validation.len(),
                h.scoring.similar_text_weight.map_or("as the history's".into(), |w| w.to_string()),
                cold_profile_note(&h.cold_profile),
                hard_negatives_note(&self.family),
            )
        })
    }

    fn losses(&self) -> Option<&[f32]> {
        match &self.family.encoder {
            EncoderOrigin::FineTuned(ft) => Some(&ft.losses),
            EncoderOrigin::Dir(_) => None,
        }
    }

    fn text(&self) -> Option<TextModel<'_>> {
        let (f, h) = (&*self.family, &self.family.hybrid);
        let own = match &f.encoder {
            EncoderOrigin::Dir(d) => QueryEncoder::Dir(d),
            EncoderOrigin::FineTuned(ft) => QueryEncoder::FineTuned(ft),
        };
        Some(match self.part {
            // The text-only model matches queries against its own (unreduced) text.
            Part::Content => TextModel {
                name: h.spec.content_name,
                catalog: &h.content_catalog,
                scoring: h.content,
                query_encoder: own,
                query_validation: &[],
            },
            Part::Fused => TextModel {
                name: h.spec.name,
                catalog: &h.catalog,
                scoring: h.scoring,
                query_encoder: QueryEncoder::Dir(&f.query_encoder),
                query_validation: &h.query_validation,
            },
        })
    }
}

/// The hard-negative counts fine-tuning tried, when validation chose among several.
fn hard_negatives_note(family: &TextFamily) -> String {
    let EncoderOrigin::FineTuned(ft) = &family.encoder else { return String::new() };
    if family.hard_negatives_validation.is_empty() {
        return String::new();
    }
    let tried: Vec<String> =
        family.hard_negatives_validation.iter().map(|(n, ndcg)| format!("{n}: {ndcg:.4}")).collect();
    format!(
        "; fine-tuned with {} hard negatives (validation NDCG@10 by count: {})",
        ft.config.hard_negatives,
        tried.join(", ")
    )
}

/// How a cold item's profile text was weighed, for the report (nothing when it was not chosen).
fn cold_profile_note(c: &ColdProfile) -> String {
    let tried: Vec<String> = c.validation.iter().map(|(s, n)| format!("× {s}: {n:.4}")).collect();
    match tried.is_empty() {
        true => String::new(),
        false => {
            format!("; cold items' profile text × {} (pseudo-cold validation NDCG@10 {})", c.scale, tried.join(", "))
        }
    }
}

/// The directory a family's encoder is saved in.
fn encoder_dir_name(spec: HybridSpec) -> &'static str {
    if spec.name == FINETUNED.name {
        "encoder-ft"
    } else {
        "encoder"
    }
}

impl TextFamily {
    /// Writes the family (once) into a model directory being built.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let h = &self.hybrid;
        let fdir = dir.join(h.spec.name);
        if fdir.exists() {
            return Ok(());
        }
        if !dir.join("items.json").exists() {
            std::fs::write(dir.join("items.json"), serde_json::to_vec(&h.content_catalog.items)?)?;
        }
        std::fs::create_dir(&fdir)?;
        let mut tensors = codec::encode(&h.catalog, Quant::F32);
        if h.catalog.text != h.content_catalog.text {
            // The text-only model scores the unreduced vectors, without query columns.
            let c = &h.content_catalog;
            tensors.extend(encode_matrix("content_text", &c.text.to_f32(), c.len(), Some(c.text_dim), Quant::F32));
        }
        write_tensors(&fdir.join("catalog.safetensors"), &tensors)?;
        std::fs::write(fdir.join("info.json"), serde_json::to_vec_pretty(&h.info())?)?;
        let encoder_dir = dir.join(encoder_dir_name(h.spec));
        match &self.encoder {
            EncoderOrigin::Dir(from) => copy_encoder(from, &encoder_dir)?,
            EncoderOrigin::FineTuned(ft) => {
                ft.save_dir(&encoder_dir)?;
                let mut record = serde_json::json!({ "config": ft.config, "losses": ft.losses, "seconds": ft.seconds });
                if !self.hard_negatives_validation.is_empty() {
                    record["hard_negatives_validation"] = serde_json::json!(self.hard_negatives_validation);
                }
                std::fs::write(dir.join("finetune.json"), serde_json::to_vec_pretty(&record)?)?;
            }
        }
        if h.catalog.layout != TextLayout::shared(h.catalog.text_dim) {
            copy_encoder(&self.query_encoder, &dir.join(QUERY_ENCODER_DIR))?;
        }
        Ok(())
    }

    /// Reads the family `spec` from a model directory holding `n_items` items.
    pub fn load(dir: &Path, spec: HybridSpec, n_items: usize) -> Result<Self> {
        let fdir = dir.join(spec.name);
        ensure!(
            fdir.is_dir(),
            "{}: has no {} model (train with --models including {})",
            dir.display(),
            spec.name,
            spec.name
        );
        let info: HybridInfo = read_json(&fdir.join("info.json"))?;
        let items: Vec<ItemMeta> = read_json(&dir.join("items.json"))?;
        ensure!(
            items.len() == n_items,
            "{}: items.json has {} items, model.json says {n_items}",
            dir.display(),
            items.len()
        );
        let path = fdir.join("catalog.safetensors");
        let (catalog, content_catalog) = read_tensors(&path, |t| {
            let catalog = codec::decode(t.st(), &path.display().to_string(), items, None)?;
            let content_catalog = match t.st().names().iter().any(|n| *n == "content_text") {
                false => catalog.clone(),
                true => {
                    let dim = t.width("content_text")?;
                    Catalog::new(
                        catalog.items.clone(),
                        catalog.cf.to_f32(),
                        catalog.cf_dim,
                        catalog.cf_gram.clone(),
                        t.f32("content_text", &[n_items, dim])?,
                        dim,
                        catalog.popularity.clone(),
                    )?
                }
            };
            Ok((catalog, content_catalog))
        })?;
        let hybrid = Hybrid {
            spec,
            catalog,
            scoring: info.scoring,
            content_catalog,
            content: info.content,
            validation: info.validation,
            chosen: info.chosen,
            query_validation: info.query_validation,
            reduction: None,
            cold_profile: info.cold_profile,
            query: None,
        };
        let own = dir.join(encoder_dir_name(spec));
        // Model directories written before query columns existed matched queries against the
        // family's own text, through its own encoder.
        let query_encoder = match hybrid.catalog.layout == TextLayout::shared(hybrid.catalog.text_dim) {
            true => own.clone(),
            false => dir.join(QUERY_ENCODER_DIR),
        };
        Ok(Self {
            hybrid,
            encoder: EncoderOrigin::Dir(own),
            query_encoder,
            selection: None,
            hard_negatives_validation: Vec::new(),
        })
    }
}

/// Where a model directory keeps the encoder queries go through when a family has query columns
/// of their own: the frozen encoder's directory.
const QUERY_ENCODER_DIR: &str = "encoder";

/// Copies an encoder directory's files into `to` (created), unless `to` is there already.
fn copy_encoder(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        return Ok(());
    }
    std::fs::create_dir(to)?;
    for name in ENCODER_FILES {
        link_or_copy(&from.join(name), &to.join(name))?;
    }
    // The pooling, when the model names one (sentence-transformers layout).
    if from.join(POOLING_FILE).is_file() {
        std::fs::create_dir_all(to.join("1_Pooling"))?;
        link_or_copy(&from.join(POOLING_FILE), &to.join(POOLING_FILE))?;
    }
    // And its prompts: item texts were embedded after them, and queries must be.
    if from.join(PROMPTS_FILE).is_file() {
        link_or_copy(&from.join(PROMPTS_FILE), &to.join(PROMPTS_FILE))?;
    }
    Ok(())
}

/// Hard-links when possible (same file system), else copies.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}
