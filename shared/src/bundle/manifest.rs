//! `manifest.json`: what a bundle holds, each file with its SHA-256 and length, checked before
//! anything else is fetched or allocated.

use crate::error::{NookError, Result};
use crate::quant::Quant;
use crate::recommend::Scoring;
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
    /// How the encoder pools its token states (absent: mean, as in bundles from before it was
    /// recorded, so their manifests and ids are unchanged).
    #[serde(default, skip_serializing_if = "crate::encoder::Pooling::is_mean")]
    pub pooling: crate::encoder::Pooling,
    /// The prefixes the item texts were embedded after and a typed query is embedded after
    /// (absent: none, as in bundles from before they were recorded).
    #[serde(default, skip_serializing_if = "crate::encoder::Prompts::is_empty")]
    pub prompts: crate::encoder::Prompts,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The bundle id: SHA-256 (hex) of `manifest.json` with this value left empty (see
    /// [`seal`]). It covers the manifest as the file hashes cover the files, and names the
    /// bundle (the browser's cache keys on it).
    #[serde(default)]
    pub id: String,
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
    /// The item fields the catalogue's text came from (what a typed query can match), so a page
    /// can tell a person; empty in bundles from before it was recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text_fields: Vec<String>,
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
/// Token limits a bundle may state: room for `[CLS]`, a word and `[SEP]`, up to far past any
/// BERT's position table (the encoder caps it there).
pub const MIN_TOKENS: usize = 3;
pub const MAX_TOKENS: usize = 8192;

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
        let id = value.get("id").and_then(|v| v.as_str()).unwrap_or_default();
        check_id(bytes, id)?;
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
        m.scoring.check().map_err(|e| NookError::bundle(format!("manifest.json: {e}")))?;
        if !(MIN_TOKENS..=MAX_TOKENS).contains(&m.encoder.max_tokens) {
            return Err(NookError::bundle(format!(
                "manifest.json: encoder.max_tokens {} is outside {MIN_TOKENS}..={MAX_TOKENS}",
                m.encoder.max_tokens
            )));
        }
        m.encoder.prompts.check().map_err(|e| NookError::bundle(format!("manifest.json: encoder.prompts: {e}")))?;
        if m.quant == Quant::Int8 && m.text_dim.max(m.cf_dim) > crate::score::MAX_INT8_COLS {
            return Err(NookError::bundle(format!(
                "manifest.json: int8 tables wider than {} columns",
                crate::score::MAX_INT8_COLS
            )));
        }
        Ok(m)
    }
}

impl Manifest {
    /// `manifest.json`'s bytes, with the id computed over them (the id field is set here).
    pub fn to_bytes(&mut self) -> Result<Vec<u8>> {
        self.id.clear();
        let unsealed = serde_json::to_vec_pretty(self).map_err(|e| NookError::bundle(format!("manifest.json: {e}")))?;
        let sealed = seal(&unsealed)?;
        self.id = sha256_hex(&unsealed);
        Ok(sealed)
    }
}

/// Fills in the id of a manifest whose `"id"` is `""`: the SHA-256 of exactly these bytes. For
/// the exporter and for tools (and tests) that edit a manifest on purpose.
pub fn seal(unsealed: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(unsealed).map_err(|_| NookError::bundle("manifest.json is not UTF-8"))?;
    let id = sha256_hex(unsealed);
    for blank in ["\"id\": \"\"", "\"id\":\"\""] {
        if let Some(at) = text.find(blank) {
            let quote = at + blank.len() - 1;
            return Ok(format!("{}{id}{}", &text[..quote], &text[quote..]).into_bytes());
        }
    }
    Err(NookError::bundle("manifest.json has no empty \"id\" to seal"))
}

/// The manifest's bytes must hash to its id with the id's value removed: an edited or corrupted
/// manifest (a changed `quant`, weight or file list) is refused before anything is believed.
fn check_id(bytes: &[u8], id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(NookError::bundle(
            "manifest.json has no id (written before nook sealed manifests): export it again",
        ));
    }
    if id.len() != 64 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(NookError::bundle(format!("manifest.json: malformed id {id:?}")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| NookError::bundle("manifest.json is not UTF-8"))?;
    if text.matches(id).count() != 1 {
        return Err(NookError::bundle("manifest.json: its id appears more than once"));
    }
    if sha256_hex(text.replacen(id, "", 1).as_bytes()) != id {
        return Err(NookError::bundle(
            "manifest.json does not match its id: the manifest was edited or corrupted after export",
        ));
    }
    Ok(())
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
    let mut hasher = Sha256::new();
    hash_chunks(&mut hasher, bytes);
    hex(hasher)
}

/// Feeds `bytes` to `hasher` in chunks rather than in one call: a browser's engine starts wasm
/// functions in baseline code and only later switches to optimised code, which takes effect on
/// the function's next call. One call over a 23 MB encoder ran entirely in baseline code (482 ms
/// in Chromium, 67 ms once optimised); with chunks the compression function is called often
/// enough to switch.
fn hash_chunks(hasher: &mut Sha256, bytes: &[u8]) {
    const CHUNK: usize = 64 << 10;
    bytes.chunks(CHUNK).for_each(|c| hasher.update(c));
}

fn hex(hasher: Sha256) -> String {
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// One bundle file arriving in pieces (a network or cache stream), hashed as each piece comes so
/// verification overlaps the reading; [`VerifiedFiles::finish`] checks it.
pub struct IncomingFile {
    name: String,
    /// The length the manifest lists.
    expected: u64,
    bytes: Vec<u8>,
    hasher: Sha256,
}

impl IncomingFile {
    /// Appends `chunk` and hashes it; more bytes than the manifest lists is an error at once (a
    /// server that never stops sending cannot fill the memory).
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        let len = self.bytes.len() as u64 + chunk.len() as u64;
        if len > self.expected {
            return Err(NookError::bundle(format!(
                "{}: more than the {} bytes the manifest lists",
                self.name, self.expected
            )));
        }
        hash_chunks(&mut self.hasher, chunk);
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Files of one bundle, each checked against its manifest ([`verify_file`]) as it was added:
/// what [`crate::Bundle::from_verified`] takes, so a caller that verifies while it reads (to drop
/// a bad cache entry, say) does not hash every byte twice.
#[derive(Debug, Default)]
pub struct VerifiedFiles {
    /// The manifest's file list the files were checked against.
    entries: BTreeMap<String, FileEntry>,
    files: HashMap<String, Vec<u8>>,
}

impl VerifiedFiles {
    pub fn new(manifest: &Manifest) -> Self {
        Self { entries: manifest.files.clone(), files: HashMap::new() }
    }

    /// Verifies `bytes` as the manifest's file `name` and keeps them; a mismatch is an error and
    /// nothing is kept.
    pub fn insert(&mut self, manifest: &Manifest, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.same_list(manifest)?;
        verify_file(manifest, name, &bytes)?;
        self.files.insert(name.to_string(), bytes);
        Ok(())
    }

    /// Starts receiving the manifest's file `name` in pieces (room for its listed size is
    /// reserved up front, capped, so a lying manifest cannot make it reserve gigabytes).
    pub fn begin(&self, manifest: &Manifest, name: &str) -> Result<IncomingFile> {
        self.same_list(manifest)?;
        let entry =
            manifest.files.get(name).ok_or_else(|| NookError::bundle(format!("{name} is not in the manifest")))?;
        let reserve = entry.bytes.min(256 << 20) as usize;
        Ok(IncomingFile {
            name: name.to_string(),
            expected: entry.bytes,
            bytes: Vec::with_capacity(reserve),
            hasher: Sha256::new(),
        })
    }

    /// Checks a file received with [`VerifiedFiles::begin`] (its length and SHA-256, hashed as it
    /// arrived) and keeps it; a mismatch is an error and nothing is kept.
    pub fn finish(&mut self, manifest: &Manifest, file: IncomingFile) -> Result<()> {
        self.same_list(manifest)?;
        let IncomingFile { name, bytes, hasher, .. } = file;
        check_entry(manifest, &name, bytes.len(), || hex(hasher))?;
        self.files.insert(name, bytes);
        Ok(())
    }

    /// The verified bytes of `name`, if added.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// The verified files, for a load against the manifest they were checked against.
    pub(crate) fn into_files(self, manifest: &Manifest) -> Result<HashMap<String, Vec<u8>>> {
        self.same_list(manifest)?;
        Ok(self.files)
    }

    fn same_list(&self, manifest: &Manifest) -> Result<()> {
        if manifest.files != self.entries {
            return Err(NookError::bundle("the files were verified against another manifest's file list"));
        }
        Ok(())
    }
}

/// Checks one fetched file against its manifest entry.
pub fn verify_file(manifest: &Manifest, name: &str, bytes: &[u8]) -> Result<()> {
    check_entry(manifest, name, bytes.len(), || sha256_hex(bytes))
}

/// Checks a file's length, then its SHA-256 (computed by `sha256` only once the length agrees),
/// against its manifest entry.
fn check_entry(manifest: &Manifest, name: &str, len: usize, sha256: impl FnOnce() -> String) -> Result<()> {
    let entry = manifest.files.get(name).ok_or_else(|| NookError::bundle(format!("{name} is not in the manifest")))?;
    if len as u64 != entry.bytes {
        return Err(NookError::bundle(format!(
            "{name}: {len} bytes, manifest says {} (truncated or replaced?)",
            entry.bytes
        )));
    }
    let got = sha256();
    if got != entry.sha256 {
        return Err(NookError::bundle(format!(
            "{name}: checksum mismatch (sha256 {got}, manifest says {})",
            entry.sha256
        )));
    }
    Ok(())
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
