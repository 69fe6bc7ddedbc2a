//! The trained-model directory written by `nook train` and read by `nook eval --model`.
//!
//! ```text
//! MODEL_DIR/model.json         what was trained, on what, with which settings
//! MODEL_DIR/ids.json           source ids of users and items, in index order
//! MODEL_DIR/{pop,als,bpr}.safetensors
//! MODEL_DIR/text.safetensors   item text vectors       (content/hybrid)
//! MODEL_DIR/hybrid.safetensors cf, cf_gram, popularity (content/hybrid)
//! MODEL_DIR/items.json         item display metadata   (content/hybrid)
//! MODEL_DIR/encoder/           the encoder the text vectors came from (content/hybrid)
//! ```

use crate::atomic;
use crate::data::Dataset;
use crate::models::hybrid::{Hybrid, HybridInfo};
use crate::models::{Factors, Popularity, RandomScores};
use crate::pipeline::{item_meta, EvalReport, ModelConfig, ModelKind, ModelSet};
use crate::split::SplitConfig;
use crate::tensors;
use crate::textvec::EncoderSource;
use anyhow::{bail, ensure, Context, Result};
use nook_core::{Catalog, ItemMeta};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const STORE_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelInfo {
    pub store_version: u32,
    pub nook_version: String,
    pub dataset: String,
    pub n_users: usize,
    pub n_items: usize,
    pub split: SplitConfig,
    pub config: ModelConfig,
    pub models: Vec<ModelKind>,
    pub fit_seconds: BTreeMap<String, f64>,
    #[serde(default)]
    pub hybrid: Option<HybridInfo>,
    /// Token limit the text vectors were computed with.
    #[serde(default)]
    pub encoder_max_tokens: Option<usize>,
}

/// The encoder files copied into a model directory.
pub const ENCODER_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

#[derive(Serialize, Deserialize)]
struct Ids {
    users: Vec<String>,
    items: Vec<String>,
}

pub fn save(
    dir: &Path,
    data: &Dataset,
    split: &SplitConfig,
    cfg: &ModelConfig,
    set: &ModelSet,
    encoder: Option<&EncoderSource>,
    report: Option<&EvalReport>,
) -> Result<()> {
    let info = ModelInfo {
        store_version: STORE_VERSION,
        nook_version: env!("CARGO_PKG_VERSION").to_string(),
        dataset: data.name.clone(),
        n_users: data.users.len(),
        n_items: data.items.len(),
        split: split.clone(),
        config: cfg.clone(),
        models: set.kinds(),
        fit_seconds: set.fit_seconds.clone(),
        hybrid: set.hybrid.as_ref().map(Hybrid::info),
        encoder_max_tokens: set.hybrid.as_ref().and(encoder).map(|e| e.max_tokens),
    };
    let ids = Ids { users: data.users.clone(), items: data.items.iter().map(|i| i.id.clone()).collect() };
    atomic::write_dir(dir, |tmp| {
        std::fs::write(tmp.join("model.json"), serde_json::to_vec_pretty(&info)?)?;
        std::fs::write(tmp.join("ids.json"), serde_json::to_vec(&ids)?)?;
        if let Some(report) = report {
            std::fs::write(tmp.join("eval.json"), serde_json::to_vec_pretty(report)?)?;
        }
        if let Some(pop) = &set.pop {
            std::fs::write(
                tmp.join("pop.safetensors"),
                tensors::to_bytes(&[("counts", vec![info.n_items], &pop.counts)])?,
            )?;
        }
        for f in [&set.als, &set.bpr].into_iter().flatten() {
            let mut t = vec![
                ("user_factors", vec![info.n_users, f.dim], f.users.as_slice()),
                ("item_factors", vec![info.n_items, f.dim], f.items.as_slice()),
            ];
            if let Some(b) = &f.item_bias {
                t.push(("item_bias", vec![info.n_items], b.as_slice()));
            }
            std::fs::write(tmp.join(format!("{}.safetensors", f.name)), tensors::to_bytes(&t)?)?;
        }
        if let (Some(h), Some((text, text_dim))) = (&set.hybrid, &set.text) {
            let source = encoder.context("saving a hybrid model needs its encoder")?;
            save_hybrid(tmp, &h.catalog, text, *text_dim, data)?;
            std::fs::create_dir(tmp.join("encoder"))?;
            for (name, from) in ENCODER_FILES.iter().zip(source.files()) {
                link_or_copy(&from, &tmp.join("encoder").join(name))?;
            }
        }
        Ok(())
    })
}

fn save_hybrid(dir: &Path, c: &Catalog, text: &[f32], text_dim: usize, data: &Dataset) -> Result<()> {
    let n = c.len();
    std::fs::write(dir.join("text.safetensors"), tensors::to_bytes(&[("text", vec![n, text_dim], text)])?)?;
    std::fs::write(
        dir.join("hybrid.safetensors"),
        tensors::to_bytes(&[
            ("cf", vec![n, c.cf_dim], &c.cf),
            ("cf_gram", vec![c.cf_dim, c.cf_dim], &c.cf_gram),
            ("popularity", vec![n], &c.popularity),
        ])?,
    )?;
    std::fs::write(dir.join("items.json"), serde_json::to_vec(&item_meta(data))?)?;
    Ok(())
}

/// Hard-links when possible (same file system), else copies.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// The catalog and weights of a saved hybrid model, read back for export.
pub struct SavedHybrid {
    pub info: ModelInfo,
    pub catalog: Catalog,
    pub hybrid: HybridInfo,
    pub encoder_dir: std::path::PathBuf,
}

/// Reads what `nook export` needs from a model directory.
pub fn load_hybrid(dir: &Path) -> Result<SavedHybrid> {
    let info: ModelInfo = read_json(&dir.join("model.json"))?;
    let hybrid = info
        .hybrid
        .clone()
        .with_context(|| format!("{}: has no hybrid model (train with --models including hybrid)", dir.display()))?;
    let items: Vec<ItemMeta> = read_json(&dir.join("items.json"))?;
    ensure!(
        items.len() == info.n_items,
        "{}: items.json has {} items, model.json says {}",
        dir.display(),
        items.len(),
        info.n_items
    );
    let path = dir.join("hybrid.safetensors");
    let bytes = read(&path)?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
    let cf_dim = st.tensor("cf").with_context(|| format!("{}: no tensor `cf`", path.display()))?.shape()[1];
    let cf = tensors::read_f32(&path, &st, "cf", &[info.n_items, cf_dim])?;
    let cf_gram = tensors::read_f32(&path, &st, "cf_gram", &[cf_dim, cf_dim])?;
    let popularity = tensors::read_f32(&path, &st, "popularity", &[info.n_items])?;
    let tpath = dir.join("text.safetensors");
    let tbytes = read(&tpath)?;
    let tst = SafeTensors::deserialize(&tbytes).with_context(|| format!("{}: not safetensors", tpath.display()))?;
    let text_dim = tst.tensor("text").with_context(|| format!("{}: no tensor `text`", tpath.display()))?.shape()[1];
    let text = tensors::read_f32(&tpath, &tst, "text", &[info.n_items, text_dim])?;
    let catalog = Catalog::new(items, cf, cf_dim, cf_gram, text, text_dim, popularity)?;
    Ok(SavedHybrid { info, catalog, hybrid, encoder_dir: dir.join("encoder") })
}

/// Loads a model directory, refusing one trained on other data or another split.
pub fn load(dir: &Path, data: &Dataset, split: &SplitConfig) -> Result<ModelSet> {
    let info: ModelInfo = read_json(&dir.join("model.json"))?;
    ensure!(
        info.store_version == STORE_VERSION,
        "{}: model store version {} (this nook reads {STORE_VERSION})",
        dir.display(),
        info.store_version
    );
    let ids: Ids = read_json(&dir.join("ids.json"))?;
    let items: Vec<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
    ensure!(
        ids.users == data.users && ids.items == items,
        "{}: trained on other data ({} users, {} items) than the data given ({} users, {} items)",
        dir.display(),
        ids.users.len(),
        ids.items.len(),
        data.users.len(),
        items.len()
    );
    if &info.split != split {
        bail!("{}: trained with split {:?}, but evaluation asks for {:?}", dir.display(), info.split, split);
    }
    let mut set = ModelSet { fit_seconds: info.fit_seconds.clone(), ..ModelSet::default() };
    for kind in &info.models {
        match kind {
            ModelKind::Pop => {
                let path = dir.join("pop.safetensors");
                let bytes = read(&path)?;
                let st =
                    SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
                set.pop = Some(Popularity { counts: tensors::read_f32(&path, &st, "counts", &[info.n_items])? });
            }
            ModelKind::Als => set.als = Some(load_factors(dir, "als", &info, false)?),
            ModelKind::Bpr => set.bpr = Some(load_factors(dir, "bpr", &info, true)?),
            ModelKind::Random => set.random = Some(RandomScores { seed: info.split.seed }),
            ModelKind::Content | ModelKind::Hybrid => {
                if set.hybrid.is_none() {
                    let saved = load_hybrid(dir)?;
                    let text = saved.catalog.text.clone();
                    let dim = saved.catalog.text_dim;
                    set.hybrid = Some(Hybrid {
                        catalog: saved.catalog,
                        scoring: saved.hybrid.scoring,
                        content: saved.hybrid.content,
                        validation: saved.hybrid.validation,
                    });
                    set.text = Some((text, dim));
                }
            }
        }
    }
    Ok(set)
}

fn load_factors(dir: &Path, name: &str, info: &ModelInfo, bias: bool) -> Result<Factors> {
    let path = dir.join(format!("{name}.safetensors"));
    let bytes = read(&path)?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
    let dim = st
        .tensor("item_factors")
        .with_context(|| format!("{}: no tensor `item_factors`", path.display()))?
        .shape()
        .get(1)
        .copied()
        .with_context(|| format!("{}: item_factors is not a matrix", path.display()))?;
    Ok(Factors {
        name: name.to_string(),
        dim,
        users: tensors::read_f32(&path, &st, "user_factors", &[info.n_users, dim])?,
        items: tensors::read_f32(&path, &st, "item_factors", &[info.n_items, dim])?,
        item_bias: if bias { Some(tensors::read_f32(&path, &st, "item_bias", &[info.n_items])?) } else { None },
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).with_context(|| format!("{}: not the expected JSON", path.display()))
}
