//! The trained-model directory written by `nook train` and read by `nook eval --model` and
//! `nook export`. Each model writes its own files ([`crate::models::Fitted::save`]); this module
//! writes what describes them all and reads them back through the registry.
//!
//! ```text
//! MODEL_DIR/model.json                 what was trained, on what, with which settings
//! MODEL_DIR/ids.json                   source ids of users and items, in index order
//! MODEL_DIR/eval.json                  the evaluation run at training time
//! MODEL_DIR/{pop,als,bpr}.safetensors  per model (see each model's file)
//! MODEL_DIR/hybrid/, fused-ft/, ...    the text families (see `models::family`)
//! ```
//!
//! Tensors are written and read with nook-core's [`quant`](nook_core::quant) codec, the one the
//! bundle uses: shapes are checked and NaN or infinite values refused on the way in.

use crate::atomic;
use crate::data::Dataset;
use crate::eval::results::EvalReport;
use crate::models::family::TextFamily;
use crate::models::hybrid::HybridSpec;
use crate::models::{self, Factors};
use crate::split::SplitConfig;
use crate::training::{ModelConfig, ModelSet};
use anyhow::{bail, ensure, Context, Result};
use nook_core::quant::{self, Encoded};
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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
    /// Registry ids of the models saved here.
    pub models: Vec<String>,
    pub fit_seconds: BTreeMap<String, f64>,
    /// Token limit the text vectors were computed with.
    #[serde(default)]
    pub encoder_max_tokens: Option<usize>,
    /// The item fields in the text the encoder saw (what a typed query can match).
    #[serde(default)]
    pub text_fields: Vec<String>,
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
        models: set.ids().into_iter().map(String::from).collect(),
        fit_seconds: set.fit_seconds.clone(),
        encoder_max_tokens: set.encoder_max_tokens,
        text_fields: data.text_fields(cfg.query_field),
    };
    let ids = Ids { users: data.users.clone(), items: data.items.iter().map(|i| i.id.clone()).collect() };
    atomic::write_dir(dir, |tmp| {
        std::fs::write(tmp.join("model.json"), serde_json::to_vec_pretty(&info)?)?;
        std::fs::write(tmp.join("ids.json"), serde_json::to_vec(&ids)?)?;
        if let Some(report) = report {
            std::fs::write(tmp.join("eval.json"), serde_json::to_vec_pretty(report)?)?;
        }
        for (entry, model) in &set.models {
            model.save(tmp).with_context(|| format!("saving {}", entry.id))?;
        }
        Ok(())
    })
}

/// What a model's `load` reads from: the directory, its `model.json`, and the text families
/// already read (each family is read once for both of its models).
pub struct Loader<'a> {
    pub dir: &'a Path,
    pub info: &'a ModelInfo,
    families: RefCell<Vec<Arc<TextFamily>>>,
}

impl Loader<'_> {
    pub fn family(&self, spec: HybridSpec) -> Result<Arc<TextFamily>> {
        if let Some(f) = self.families.borrow().iter().find(|f| f.hybrid.spec.name == spec.name) {
            return Ok(f.clone());
        }
        let family = Arc::new(TextFamily::load(self.dir, spec, self.info.n_items)?);
        self.families.borrow_mut().push(family.clone());
        Ok(family)
    }
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
    let loader = Loader { dir, info: &info, families: RefCell::default() };
    let mut models = Vec::new();
    for id in &info.models {
        let entry = models::entry(id).with_context(|| format!("{}: unknown model {id:?}", dir.display()))?;
        let model = (entry.load)(&loader).with_context(|| format!("{}: loading {id}", dir.display()))?;
        models.push((entry, model));
    }
    Ok(ModelSet {
        models,
        fit_seconds: info.fit_seconds.clone(),
        peak_rss_mb: BTreeMap::new(),
        encoder_max_tokens: info.encoder_max_tokens,
    })
}

/// Reads `model.json` of a model directory.
pub fn load_info(dir: &Path) -> Result<ModelInfo> {
    read_json(&dir.join("model.json"))
}

/// The `als` or `bpr` factors of a model directory with the user and item ids of their rows.
pub fn load_factors_with_ids(dir: &Path, name: &str) -> Result<(Factors, Vec<String>, Vec<String>)> {
    let info = load_info(dir)?;
    ensure!(
        info.models.iter().any(|m| m == name),
        "{}: has no {name} model (it has: {:?})",
        dir.display(),
        info.models
    );
    let ids: Ids = read_json(&dir.join("ids.json"))?;
    ensure!(
        ids.users.len() == info.n_users && ids.items.len() == info.n_items,
        "{}: ids.json does not match model.json",
        dir.display()
    );
    let factors = Factors::load(dir, name, info.n_users, info.n_items, name == "bpr")?;
    Ok((factors, ids.users, ids.items))
}

/// Writes tensors as one safetensors file.
pub fn write_tensors(path: &Path, tensors: &[Encoded]) -> Result<()> {
    let bytes = quant::serialize(tensors).with_context(|| format!("encoding {}", path.display()))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A safetensors file being read; errors name it.
pub struct TensorFile<'a> {
    path: String,
    st: SafeTensors<'a>,
}

impl TensorFile<'_> {
    pub fn st(&self) -> &SafeTensors<'_> {
        &self.st
    }

    /// An f32 tensor of exactly `shape`, finite values only.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        Ok(quant::decode_f32(&self.st, &self.path, name, shape)?)
    }

    /// The second dimension of a 2-D tensor.
    pub fn width(&self, name: &str) -> Result<usize> {
        let view = self.st.tensor(name).with_context(|| format!("{}: no tensor `{name}`", self.path))?;
        match view.shape() {
            [_, cols] => Ok(*cols),
            other => bail!("{}: `{name}` has shape {other:?}, expected a matrix", self.path),
        }
    }
}

/// Reads the safetensors file at `path` and hands it to `f`.
pub fn read_tensors<T>(path: &Path, f: impl FnOnce(&TensorFile<'_>) -> Result<T>) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
    f(&TensorFile { path: path.display().to_string(), st })
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: not the expected JSON", path.display()))
}
