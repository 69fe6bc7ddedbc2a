//! The bundle: everything the browser needs, as files listed in `manifest.json` with their SHA-256
//! and length. [`Bundle::load`] takes the files' **bytes** (the browser hands it fetched buffers),
//! verifies them and returns errors, never panics.
//!
//! ```text
//! manifest.json               format, version, dataset, dims, scoring weights, metrics, file list
//! items.json                  [{id, title, year, genres}], one per item, in index order
//! items.safetensors           cf [n, cf_dim], cf_gram [cf_dim, cf_dim], text [n, text_dim], popularity [n],
//!                             optionally text_projection [text_dim, encoder_dim] + text_mean [encoder_dim]  (f32),
//!                             optionally rules_next + rules_weight [n, k]: sequential rules (`fused-sr`)
//! encoder/config.json         BERT config
//! encoder/tokenizer.json      tokenizer
//! encoder/model.safetensors   BERT weights (f32)
//! ```

mod manifest;
mod request;

pub use manifest::{
    seal, sha256_hex, verify_file, EncoderInfo, FileEntry, IncomingFile, Manifest, MetricSnapshot, VerifiedFiles,
    FORMAT, MAX_DIM, MAX_FILE_BYTES, MAX_ITEMS, MAX_TOKENS, MIN_TOKENS, REQUIRED_FILES, VERSION,
};
pub use request::{IdRequest, Recommendations, RecommendedItem, Skipped, MAX_K, MAX_QUERY_BYTES};

use crate::catalog::{codec, Catalog, ItemMeta};
use crate::encoder::TextEncoder;
use crate::error::{NookError, Result};
use crate::quant::{decode_matrix, Quant, SCALE_SUFFIX};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::HashMap;

/// A verified, loaded bundle.
pub struct Bundle {
    pub manifest: Manifest,
    pub catalog: Catalog,
    pub encoder: TextEncoder,
}

impl Bundle {
    /// Verifies and loads a bundle from its files' bytes (keyed by manifest path).
    pub fn load(manifest: Manifest, mut files: HashMap<String, Vec<u8>>) -> Result<Self> {
        let mut verified = VerifiedFiles::new(&manifest);
        for name in manifest.files.keys() {
            let bytes = files.remove(name).ok_or_else(|| NookError::bundle(format!("{name} is missing")))?;
            verified.insert(&manifest, name, bytes)?;
        }
        Self::from_verified(manifest, verified)
    }

    /// Loads a bundle from files already checked against `manifest` (see [`VerifiedFiles`]).
    pub fn from_verified(manifest: Manifest, files: VerifiedFiles) -> Result<Self> {
        let mut files = files.into_files(&manifest)?;
        let mut take = |name: &str| files.remove(name).ok_or_else(|| NookError::bundle(format!("{name} is missing")));
        let items: Vec<ItemMeta> =
            serde_json::from_slice(&take("items.json")?).map_err(|e| NookError::bundle(format!("items.json: {e}")))?;
        if items.len() != manifest.n_items {
            return Err(NookError::bundle(format!(
                "items.json has {} items, manifest says {}",
                items.len(),
                manifest.n_items
            )));
        }
        let tensors = take("items.safetensors")?;
        let catalog = read_catalog(&manifest, items, &tensors)?;
        match (manifest.scoring.sequence.is_some(), catalog.rules.is_some()) {
            (true, false) => {
                return Err(NookError::bundle("manifest.json weighs sequential rules that items.safetensors lacks"))
            }
            (false, true) => {
                return Err(NookError::bundle("items.safetensors has sequential rules the manifest does not weigh"))
            }
            _ => {}
        }
        let (config, tokenizer) = (take("encoder/config.json")?, take("encoder/tokenizer.json")?);
        let model = take("encoder/model.safetensors")?;
        let max_tokens = manifest.encoder.max_tokens;
        // An int8 bundle's encoder runs as shipped, on integer products (a quarter of the memory
        // of expanding it to f32, and faster); f32 and f16 bundles run on candle in f32.
        let encoder = match manifest.quant {
            Quant::Int8 => TextEncoder::new_int8(&config, &tokenizer, model, max_tokens),
            Quant::F32 | Quant::F16 => {
                encoder_weights(&model).and_then(|w| TextEncoder::new(&config, &tokenizer, w, max_tokens))
            }
        }
        .map_err(|e| NookError::bundle(format!("encoder: {e}")))?
        .with_pooling(manifest.encoder.pooling)
        .with_prompts(manifest.encoder.prompts.clone());
        if encoder.dim() != catalog.query_dim() {
            return Err(NookError::bundle(format!(
                "encoder produces {} dims, the item text vectors expect {}",
                encoder.dim(),
                catalog.query_dim()
            )));
        }
        Ok(Self { manifest, catalog, encoder })
    }
}

/// Reads `items.safetensors` for `m` (shapes, dtypes and values checked).
pub fn read_catalog(m: &Manifest, items: Vec<ItemMeta>, bytes: &[u8]) -> Result<Catalog> {
    const FILE: &str = "items.safetensors";
    let st = SafeTensors::deserialize(bytes).map_err(|e| NookError::bundle(format!("{FILE}: {e}")))?;
    // The manifest's storage is what the tables must be: a page shows it, the size check used it.
    for table in ["cf", "text"] {
        let stored = match st.tensor(table).map(|v| v.dtype()) {
            Ok(Dtype::I8) => Quant::Int8,
            Ok(Dtype::F32) => Quant::F32,
            Ok(Dtype::F16) => Quant::F16,
            Ok(other) => return Err(NookError::bundle(format!("{FILE}: {table} is stored as {other:?}"))),
            Err(_) => return Err(NookError::bundle(format!("{FILE} has no tensor {table:?}"))),
        };
        if stored != m.quant {
            return Err(NookError::bundle(format!(
                "{FILE}: {table} is stored as {stored:?}, the manifest says {:?}",
                m.quant
            )));
        }
    }
    codec::decode(&st, FILE, items, Some(codec::Dims { cf_dim: m.cf_dim, text_dim: m.text_dim }))
}

/// The encoder's weights from any supported storage (f32, f16, int8 rows), as f32 tensors.
/// Integer tensors (the position-id buffer some exports carry) are not weights and are skipped.
fn encoder_weights(bytes: &[u8]) -> Result<VarBuilder<'static>> {
    const FILE: &str = "encoder/model.safetensors";
    let st = SafeTensors::deserialize(bytes).map_err(|e| NookError::bundle(format!("{FILE}: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if name.ends_with(SCALE_SUFFIX) || matches!(view.dtype(), Dtype::I64 | Dtype::I32 | Dtype::U8 | Dtype::BOOL) {
            continue;
        }
        let shape = view.shape().to_vec();
        let values = decode_matrix(&st, FILE, &name, &shape)?.to_f32();
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu)
            .map_err(|e| NookError::bundle(format!("{FILE}: {name}: {e}")))?;
        tensors.insert(name, tensor);
    }
    Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}
