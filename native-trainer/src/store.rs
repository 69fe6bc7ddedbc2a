//! The trained-model directory written by `nook train` and read by `nook eval --model`.
//!
//! ```text
//! MODEL_DIR/model.json         what was trained, on what, with which settings
//! MODEL_DIR/ids.json           source ids of users and items, in index order
//! MODEL_DIR/{pop,als,bpr}.safetensors
//! ```

use crate::atomic;
use crate::data::Dataset;
use crate::models::{Factors, Popularity, RandomScores};
use crate::pipeline::{ModelConfig, ModelKind, ModelSet};
use crate::split::SplitConfig;
use crate::tensors;
use anyhow::{bail, ensure, Context, Result};
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
}

#[derive(Serialize, Deserialize)]
struct Ids {
    users: Vec<String>,
    items: Vec<String>,
}

pub fn save(dir: &Path, data: &Dataset, split: &SplitConfig, cfg: &ModelConfig, set: &ModelSet) -> Result<()> {
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
    };
    let ids = Ids { users: data.users.clone(), items: data.items.iter().map(|i| i.id.clone()).collect() };
    atomic::write_dir(dir, |tmp| {
        std::fs::write(tmp.join("model.json"), serde_json::to_vec_pretty(&info)?)?;
        std::fs::write(tmp.join("ids.json"), serde_json::to_vec(&ids)?)?;
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
        Ok(())
    })
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
