//! The bundle: everything the browser needs, as files listed in `manifest.json` with their SHA-256
//! and length. [`Bundle::load`] takes the files' **bytes** (the browser hands it fetched buffers),
//! verifies them and returns errors, never panics.
//!
//! ```text
//! manifest.json               format, version, dataset, dims, scoring weights, metrics, file list
//! items.json                  [{id, title, year, genres}], one per item, in index order
//! items.safetensors           cf [n, cf_dim], cf_gram [cf_dim, cf_dim], text [n, text_dim], popularity [n],
//!                             optionally text_projection [text_dim, encoder_dim] + text_mean [encoder_dim]  (f32)
//! encoder/config.json         BERT config
//! encoder/tokenizer.json      tokenizer
//! encoder/model.safetensors   BERT weights (f32)
//! ```

use crate::encoder::TextEncoder;
use crate::error::{NookError, Result};
use crate::quant::{decode_matrix, Matrix, Quant, SCALE_SUFFIX};
use crate::recommend::{Catalog, ItemMeta, Projection, Reason, Request, Scoring};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

pub const FORMAT: &str = "nook-bundle";
pub const VERSION: u32 = 1;

/// Files every v1 bundle has.
pub const REQUIRED_FILES: [&str; 5] =
    ["items.json", "items.safetensors", "encoder/config.json", "encoder/tokenizer.json", "encoder/model.safetensors"];

/// Largest file a bundle may list; refusing absurd sizes before anything is fetched or allocated.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

/// One number of the evaluation that produced the bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSnapshot {
    pub model: String,
    pub split: String,
    pub metric: String,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderInfo {
    /// Token limit the item texts were embedded with; queries use the same.
    pub max_tokens: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub dataset: String,
    pub created_by: String,
    pub n_items: usize,
    pub cf_dim: usize,
    pub text_dim: usize,
    pub scoring: Scoring,
    /// How matrices are stored (item tables and encoder weights).
    #[serde(default = "default_quant")]
    pub quant: Quant,
    /// The trained model the bundle carries (`hybrid`, `fused-ft`).
    #[serde(default)]
    pub model: String,
    pub encoder: EncoderInfo,
    #[serde(default)]
    pub metrics: Vec<MetricSnapshot>,
    pub files: BTreeMap<String, FileEntry>,
}

fn default_quant() -> Quant {
    Quant::F32
}

/// Limits that keep a hostile manifest from making the loader allocate absurd amounts.
pub const MAX_ITEMS: usize = 50_000_000;
pub const MAX_DIM: usize = 4096;

impl Manifest {
    /// Parses and checks `manifest.json`: format, version, file names and sizes.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| NookError::bundle(format!("manifest.json is not JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(NookError::bundle(format!(
                "manifest.json: not a {FORMAT} (format field is {:?})",
                value.get("format")
            )));
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == VERSION as u64 => {}
            other => {
                return Err(NookError::bundle(format!(
                    "manifest.json: format version {other:?} is not supported (this client reads version {VERSION})"
                )))
            }
        }
        let m: Manifest =
            serde_json::from_value(value).map_err(|e| NookError::bundle(format!("manifest.json: {e}")))?;
        for (name, entry) in &m.files {
            check_path(name)?;
            if entry.bytes > MAX_FILE_BYTES {
                return Err(NookError::bundle(format!(
                    "{name}: listed as {} bytes, over the {MAX_FILE_BYTES}-byte limit",
                    entry.bytes
                )));
            }
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(NookError::bundle(format!("{name}: malformed sha256 {:?}", entry.sha256)));
            }
        }
        for name in REQUIRED_FILES {
            if !m.files.contains_key(name) {
                return Err(NookError::bundle(format!("manifest.json does not list {name}")));
            }
        }
        if m.n_items == 0 || m.n_items > MAX_ITEMS {
            return Err(NookError::bundle(format!("manifest.json: n_items {} is outside 1..={MAX_ITEMS}", m.n_items)));
        }
        for (what, dim) in [("cf_dim", m.cf_dim), ("text_dim", m.text_dim)] {
            if dim == 0 || dim > MAX_DIM {
                return Err(NookError::bundle(format!("manifest.json: {what} {dim} is outside 1..={MAX_DIM}")));
            }
        }
        if m.quant == Quant::Int8 && m.text_dim.max(m.cf_dim) > crate::score::MAX_INT8_COLS {
            return Err(NookError::bundle(format!(
                "manifest.json: int8 tables wider than {} columns",
                crate::score::MAX_INT8_COLS
            )));
        }
        Ok(m)
    }
}

/// A file name inside the bundle: relative, `/`-separated, no `..`, no empty or hidden tricks.
fn check_path(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name.contains(':')
        || name.split('/').any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(NookError::bundle(format!("manifest lists a path outside the bundle: {name:?}")));
    }
    Ok(())
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one fetched file against its manifest entry.
pub fn verify_file(manifest: &Manifest, name: &str, bytes: &[u8]) -> Result<()> {
    let entry = manifest.files.get(name).ok_or_else(|| NookError::bundle(format!("{name} is not in the manifest")))?;
    if bytes.len() as u64 != entry.bytes {
        return Err(NookError::bundle(format!(
            "{name}: {} bytes, manifest says {} (truncated or replaced?)",
            bytes.len(),
            entry.bytes
        )));
    }
    let got = sha256_hex(bytes);
    if got != entry.sha256 {
        return Err(NookError::bundle(format!(
            "{name}: checksum mismatch (sha256 {got}, manifest says {})",
            entry.sha256
        )));
    }
    Ok(())
}

/// A verified, loaded bundle.
pub struct Bundle {
    pub manifest: Manifest,
    pub catalog: Catalog,
    pub encoder: TextEncoder,
}

impl Bundle {
    /// Verifies and loads a bundle from its files' bytes (keyed by manifest path).
    pub fn load(manifest: Manifest, mut files: HashMap<String, Vec<u8>>) -> Result<Self> {
        for name in manifest.files.keys() {
            let bytes = files.get(name).ok_or_else(|| NookError::bundle(format!("{name} is missing")))?;
            verify_file(&manifest, name, bytes)?;
        }
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
        let (config, tokenizer) = (take("encoder/config.json")?, take("encoder/tokenizer.json")?);
        let weights = encoder_weights(&take("encoder/model.safetensors")?)?;
        let encoder = TextEncoder::new(&config, &tokenizer, weights, manifest.encoder.max_tokens)
            .map_err(|e| NookError::bundle(format!("encoder: {e}")))?;
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

/// Most results one request may ask for.
pub const MAX_K: usize = 1000;
/// Longest query accepted, in bytes (the encoder truncates to its token limit anyway).
pub const MAX_QUERY_BYTES: usize = 4096;

/// A recommendation request by item id, as the browser and `nook recommend` send it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdRequest {
    #[serde(default)]
    pub likes: Vec<String>,
    #[serde(default)]
    pub dislikes: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
    pub k: usize,
    /// 0 (default) ranks by relevance alone; up to 1 favours variety.
    #[serde(default)]
    pub diversity: f32,
}

/// One result as shown to a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendedItem {
    pub id: String,
    pub title: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
    pub score: f32,
    /// Human-readable reason: "because you liked Toy Story", "matches your search", "popular".
    pub reason: String,
    /// `liked`, `search` or `popular`.
    pub reason_kind: String,
    /// The liked item behind a `liked` reason.
    pub because: Option<String>,
}

impl Bundle {
    /// Embeds a query with the bundle's encoder.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(NookError::request(format!("query is {} bytes; the limit is {MAX_QUERY_BYTES}", text.len())));
        }
        self.encoder.embed(&[text])
    }

    /// Ranks the catalogue for a request by ids on the CPU: the path shared by native and browser.
    pub fn recommend(&self, req: &IdRequest) -> Result<Vec<RecommendedItem>> {
        let request = self.to_request(req)?;
        let recs = self.catalog.recommend(&self.manifest.scoring, &request)?;
        Ok(self.to_items(recs))
    }

    /// Checks a request by ids and resolves it to item indices (embedding the query).
    pub fn to_request(&self, req: &IdRequest) -> Result<Request> {
        if req.k == 0 || req.k > MAX_K {
            return Err(NookError::request(format!("k must be between 1 and {MAX_K}, got {}", req.k)));
        }
        let c = &self.catalog;
        let to_indices = |ids: &[String]| ids.iter().map(|id| c.index_of(id)).collect::<Result<Vec<u32>>>();
        let query = match req.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => Some(self.embed(q)?),
            None => None,
        };
        Ok(Request {
            likes: to_indices(&req.likes)?,
            dislikes: to_indices(&req.dislikes)?,
            query,
            k: req.k,
            diversity: req.diversity,
        })
    }

    /// Ranked results as shown to a person.
    pub fn to_items(&self, recs: Vec<crate::recommend::Recommendation>) -> Vec<RecommendedItem> {
        let c = &self.catalog;
        recs.into_iter()
            .map(|r| {
                let item = &c.items[r.index as usize];
                let (reason, reason_kind, because) = match r.reason {
                    Reason::BecauseYouLiked { item: liked } => {
                        let liked = &c.items[liked as usize];
                        (format!("because you liked {}", liked.title), "liked", Some(liked.id.clone()))
                    }
                    Reason::MatchesYourSearch => ("matches your search".to_string(), "search", None),
                    Reason::Popular => ("popular".to_string(), "popular", None),
                };
                RecommendedItem {
                    id: item.id.clone(),
                    title: item.title.clone(),
                    year: item.year,
                    genres: item.genres.clone(),
                    score: r.score,
                    reason,
                    reason_kind: reason_kind.to_string(),
                    because,
                }
            })
            .collect()
    }
}

/// Reads `items.safetensors` for `m` (shapes, dtypes and values checked).
pub fn read_catalog(m: &Manifest, items: Vec<ItemMeta>, bytes: &[u8]) -> Result<Catalog> {
    const FILE: &str = "items.safetensors";
    let st = SafeTensors::deserialize(bytes).map_err(|e| NookError::bundle(format!("{FILE}: {e}")))?;
    let n = m.n_items;
    let cf = decode_matrix(&st, FILE, "cf", &[n, m.cf_dim])?;
    let text = decode_matrix(&st, FILE, "text", &[n, m.text_dim])?;
    let cf_gram = f32_tensor(&st, "cf_gram", &[m.cf_dim, m.cf_dim])?;
    let popularity = f32_tensor(&st, "popularity", &[n])?;
    let catalog = Catalog::from_matrices(items, cf, m.cf_dim, cf_gram, text, m.text_dim, popularity)?;
    if st.names().iter().any(|name| *name == "text_mean") {
        let encoder_dim = st.tensor("text_mean").map(|t| t.shape().first().copied().unwrap_or(0)).unwrap_or(0);
        let mean = f32_tensor(&st, "text_mean", &[encoder_dim])?;
        let components = f32_tensor(&st, "text_projection", &[m.text_dim, encoder_dim])?;
        return catalog.with_projection(Projection::new(mean, components, m.text_dim)?);
    }
    Ok(catalog)
}

fn f32_tensor(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    match decode_matrix(st, "items.safetensors", name, shape)? {
        Matrix::F32(v) => Ok(v),
        Matrix::Int8(_) => Err(NookError::bundle(format!("items.safetensors: {name} must be F32 or F16, not I8"))),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_leaving_the_bundle_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "C:\\x", "", "./a"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("encoder/model.safetensors").is_ok());
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
