//! The trained-model directory written by `nook train` and read by `nook eval --model` and
//! `nook export`.
//!
//! ```text
//! MODEL_DIR/model.json                 what was trained, on what, with which settings
//! MODEL_DIR/ids.json                   source ids of users and items, in index order
//! MODEL_DIR/eval.json                  the evaluation run at training time
//! MODEL_DIR/{pop,als,bpr}.safetensors
//! MODEL_DIR/items.json                 item display metadata            (text models)
//! MODEL_DIR/hybrid/, fused-ft/         catalog.safetensors + info.json  (cf, cf_gram, text, popularity,
//!                                      [text_projection, text_mean], [content_text])
//! MODEL_DIR/encoder/, encoder-ft/      the frozen and the fine-tuned encoder (Hugging Face layout)
//! MODEL_DIR/finetune.json              fine-tuning settings and loss by step
//! ```

use crate::atomic;
use crate::data::Dataset;
use crate::models::hybrid::{Hybrid, HybridInfo, HybridSpec, FINETUNED, FROZEN};
use crate::models::{Factors, Popularity, RandomScores};
use crate::pipeline::{item_meta, EvalReport, ModelConfig, ModelKind, ModelSet};
use crate::split::SplitConfig;
use crate::tensors;
use crate::textvec::EncoderSource;
use anyhow::{bail, ensure, Context, Result};
use nook_core::{Catalog, ItemMeta, Projection};
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
        encoder_max_tokens: encoder.map(|e| e.max_tokens),
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
        if set.hybrid.is_some() || set.fused.is_some() {
            let source = encoder.context("saving a text model needs its encoder")?;
            std::fs::write(tmp.join("items.json"), serde_json::to_vec(&item_meta(data))?)?;
            std::fs::create_dir(tmp.join("encoder"))?;
            for (name, from) in ENCODER_FILES.iter().zip(source.files()) {
                link_or_copy(&from, &tmp.join("encoder").join(name))?;
            }
        }
        for h in [&set.hybrid, &set.fused].into_iter().flatten() {
            save_family(&tmp.join(h.spec.name), h)?;
        }
        if let Some(ft) = &set.finetuned {
            ft.save_dir(&tmp.join("encoder-ft"))?;
            let record = serde_json::json!({ "config": cfg.finetune, "losses": ft.losses, "seconds": ft.seconds });
            std::fs::write(tmp.join("finetune.json"), serde_json::to_vec_pretty(&record)?)?;
        }
        Ok(())
    })
}

fn save_family(dir: &Path, h: &Hybrid) -> Result<()> {
    std::fs::create_dir(dir)?;
    let c = &h.catalog;
    let n = c.len();
    let (cf, text, full_text) = (c.cf.to_f32(), c.text.to_f32(), h.content_catalog.text.to_f32());
    let mut t: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("cf", vec![n, c.cf_dim], &cf),
        ("cf_gram", vec![c.cf_dim, c.cf_dim], &c.cf_gram),
        ("text", vec![n, c.text_dim], &text),
        ("popularity", vec![n], &c.popularity),
    ];
    if let Some(p) = &c.projection {
        t.push(("text_projection", vec![p.out_dim, p.in_dim], &p.components));
        t.push(("text_mean", vec![p.in_dim], &p.mean));
        t.push(("content_text", vec![n, h.content_catalog.text_dim], &full_text));
    }
    std::fs::write(dir.join("catalog.safetensors"), tensors::to_bytes(&t)?)?;
    std::fs::write(dir.join("info.json"), serde_json::to_vec_pretty(&h.info())?)?;
    Ok(())
}

/// Hard-links when possible (same file system), else copies.
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// A saved hybrid family, read back for export and evaluation.
pub struct SavedFamily {
    pub info: ModelInfo,
    pub hybrid: Hybrid,
    /// The encoder whose vectors the catalog holds.
    pub encoder_dir: std::path::PathBuf,
}

/// Reads the family `name` (`hybrid` or `fused-ft`) from a model directory.
pub fn load_family(dir: &Path, spec: HybridSpec) -> Result<SavedFamily> {
    let info: ModelInfo = read_json(&dir.join("model.json"))?;
    let fdir = dir.join(spec.name);
    ensure!(
        fdir.is_dir(),
        "{}: has no {} model (train with --models including {})",
        dir.display(),
        spec.name,
        spec.name
    );
    let hinfo: HybridInfo = read_json(&fdir.join("info.json"))?;
    let items: Vec<ItemMeta> = read_json(&dir.join("items.json"))?;
    ensure!(
        items.len() == info.n_items,
        "{}: items.json has {} items, model.json says {}",
        dir.display(),
        items.len(),
        info.n_items
    );
    let path = fdir.join("catalog.safetensors");
    let bytes = read(&path)?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
    let dim_of = |name: &str, axis: usize| -> Result<usize> {
        st.tensor(name)
            .with_context(|| format!("{}: no tensor `{name}`", path.display()))?
            .shape()
            .get(axis)
            .copied()
            .with_context(|| format!("{}: `{name}` has too few dimensions", path.display()))
    };
    let n = info.n_items;
    let (cf_dim, text_dim) = (dim_of("cf", 1)?, dim_of("text", 1)?);
    let cf = tensors::read_f32(&path, &st, "cf", &[n, cf_dim])?;
    let cf_gram = tensors::read_f32(&path, &st, "cf_gram", &[cf_dim, cf_dim])?;
    let text = tensors::read_f32(&path, &st, "text", &[n, text_dim])?;
    let popularity = tensors::read_f32(&path, &st, "popularity", &[n])?;
    let catalog =
        Catalog::new(items.clone(), cf.clone(), cf_dim, cf_gram.clone(), text.clone(), text_dim, popularity.clone())?;
    let (catalog, content_catalog) = if st.names().iter().any(|n| *n == "text_mean") {
        let in_dim = dim_of("text_mean", 0)?;
        let mean = tensors::read_f32(&path, &st, "text_mean", &[in_dim])?;
        let components = tensors::read_f32(&path, &st, "text_projection", &[text_dim, in_dim])?;
        let full = tensors::read_f32(&path, &st, "content_text", &[n, in_dim])?;
        let content = Catalog::new(items, cf, cf_dim, cf_gram, full, in_dim, popularity)?;
        (catalog.with_projection(Projection::new(mean, components, text_dim)?)?, content)
    } else {
        (catalog.clone(), catalog)
    };
    let encoder_dir = dir.join(if spec.name == FINETUNED.name { "encoder-ft" } else { "encoder" });
    let hybrid = Hybrid {
        spec,
        catalog,
        scoring: hinfo.scoring,
        content_catalog,
        content: hinfo.content,
        validation: hinfo.validation,
    };
    Ok(SavedFamily { info, hybrid, encoder_dir })
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
        // Models saved before the refit protocol (or with --no-refit) differ only in that flag.
        let only_refit_differs = SplitConfig { refit: split.refit, ..info.split.clone() } == *split;
        let hint = match only_refit_differs {
            true if !info.split.refit => {
                " (this model was fitted without the refit on train + validation: add --no-refit)"
            }
            true => " (this model was refitted on train + validation: drop --no-refit)",
            false => "",
        };
        bail!("{}: trained with split {:?}, but evaluation asks for {:?}{hint}", dir.display(), info.split, split);
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
                    set.hybrid = Some(load_family(dir, FROZEN)?.hybrid);
                }
            }
            ModelKind::ContentFt | ModelKind::FusedFt => {
                if set.fused.is_none() {
                    set.fused = Some(load_family(dir, FINETUNED)?.hybrid);
                }
            }
        }
    }
    Ok(set)
}

/// The `als` or `bpr` factors of a model directory with the user and item ids of their rows.
pub fn load_factors_with_ids(dir: &Path, name: &str) -> Result<(Factors, Vec<String>, Vec<String>)> {
    let info: ModelInfo = read_json(&dir.join("model.json"))?;
    let has = info.models.iter().any(|k| k.id() == name);
    ensure!(has, "{}: has no {name} model (it has: {:?})", dir.display(), info.models);
    let ids: Ids = read_json(&dir.join("ids.json"))?;
    ensure!(
        ids.users.len() == info.n_users && ids.items.len() == info.n_items,
        "{}: ids.json does not match model.json",
        dir.display()
    );
    let factors = load_factors(dir, name, &info, name == "bpr")?;
    Ok((factors, ids.users, ids.items))
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
        item_known: None,
    })
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    serde_json::from_slice(&read(path)?).with_context(|| format!("{}: not the expected JSON", path.display()))
}
