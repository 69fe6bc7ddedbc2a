//! Opening a bundle and moving to a newer one without breaking the page.
//!
//! The Cache API holds, per bundle address, the manifest of the last bundle that loaded completely
//! (`BASE/manifest.json`) and the files of the bundles seen (`BASE/FILE?sha256=…`, content
//! addressed). A load:
//!
//! 1. asks the network for the manifest at once, without waiting for the answer;
//! 2. meanwhile, when the cached manifest's files are all in the cache and verify, loads those:
//!    a second visit (or an offline one) ranks without waiting for the network;
//! 3. otherwise waits for the network manifest and fetches what the cache lacks, verifying every
//!    file against the manifest's SHA-256 before it is used or stored.
//!
//! [`update`] then compares the network's manifest with the one in use: when the server has a
//! new bundle, its files are fetched and verified while the old bundle keeps serving, the new
//! manifest is recorded only once its bundle loaded, and cache entries no bundle at this address
//! uses any more are dropped. A page therefore never runs a half-downloaded or unverified bundle,
//! and a bad bundle on the server leaves the old one in use.

use crate::error::bundle;
use crate::fetch::{self, Store};
use nook_core::bundle::verify_file;
use nook_core::{Bundle, Manifest};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Where a bundle came from, and what is needed to look for a newer one.
pub struct Origin {
    pub base_url: String,
    pub manifest_bytes: Vec<u8>,
    pub bundle_id: String,
    pub from_cache: bool,
    /// The network's answer for the manifest, asked for when the load began (a Promise of a
    /// `Uint8Array`); taken by the first [`update`].
    pending: RefCell<Option<js_sys::Promise>>,
}

impl Origin {
    fn new(
        base_url: &str,
        manifest_bytes: Vec<u8>,
        bundle: &Bundle,
        from_cache: bool,
        pending: Option<js_sys::Promise>,
    ) -> Self {
        Self {
            base_url: base_url.to_string(),
            // The manifest's own id (a hash over it, checked when it was parsed).
            bundle_id: bundle.manifest.id.clone(),
            manifest_bytes,
            from_cache,
            pending: RefCell::new(pending),
        }
    }
}

fn manifest_url(base_url: &str) -> String {
    format!("{base_url}manifest.json")
}

/// The manifest from the network, as a Promise that starts now. It resolves to the bytes or to
/// the error, never rejects: it may be awaited only later (or never, offline), and a rejection
/// nobody has awaited yet would be reported to the console as unhandled.
fn ask_manifest(base_url: &str) -> js_sys::Promise {
    let url = manifest_url(base_url);
    wasm_bindgen_futures::future_to_promise(async move {
        Ok(match fetch::fetch_bytes(&url, true, &mut |_| {}).await {
            Ok(bytes) => js_sys::Uint8Array::from(&bytes[..]).into(),
            Err(error) => error,
        })
    })
}

async fn await_bytes(promise: js_sys::Promise) -> Result<Vec<u8>, JsValue> {
    let value = JsFuture::from(promise).await?;
    match value.dyn_into::<js_sys::Uint8Array>() {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(error) => Err(error),
    }
}

fn parse(bytes: &[u8]) -> Result<Manifest, JsValue> {
    Manifest::parse(bytes).map_err(bundle)
}

pub async fn open(base_url: &str, on_progress: Option<&js_sys::Function>) -> Result<(Bundle, Origin), JsValue> {
    let store = Store::open().await;
    let network = ask_manifest(base_url);
    if let Some(bytes) = store.get(&manifest_url(base_url)).await {
        if let Some(bundle) = from_cache(&store, base_url, &bytes, on_progress).await {
            let origin = Origin::new(base_url, bytes, &bundle, true, Some(network));
            return Ok((bundle, origin));
        }
    }
    let bytes = await_bytes(network).await?;
    let bundle = fetch_bundle(&store, base_url, &bytes, on_progress).await?;
    let origin = Origin::new(base_url, bytes, &bundle, false, None);
    Ok((bundle, origin))
}

pub async fn update(
    current: &Origin,
    on_progress: Option<&js_sys::Function>,
) -> Result<Option<(Bundle, Origin)>, JsValue> {
    let base_url = &current.base_url;
    let pending = current.pending.borrow_mut().take().unwrap_or_else(|| ask_manifest(base_url));
    // Unreachable (offline, server down): nothing to update to; the bundle in use stays.
    let Ok(bytes) = await_bytes(pending).await else { return Ok(None) };
    if bytes == current.manifest_bytes {
        return Ok(None);
    }
    let store = Store::open().await;
    let bundle = fetch_bundle(&store, base_url, &bytes, on_progress).await?;
    let origin = Origin::new(base_url, bytes, &bundle, false, None);
    Ok(Some((bundle, origin)))
}

pub fn from_files(manifest: &[u8], files: &js_sys::Object) -> Result<(Bundle, Origin), JsValue> {
    let parsed = parse(manifest)?;
    let mut map = HashMap::new();
    for name in parsed.files.keys() {
        let value = js_sys::Reflect::get(files, &name.into()).unwrap_or(JsValue::UNDEFINED);
        if value.is_undefined() {
            return Err(bundle(format!("{name} is missing")));
        }
        map.insert(name.clone(), js_sys::Uint8Array::new(&value).to_vec());
    }
    let loaded = Bundle::load(parsed, map).map_err(bundle)?;
    let origin = Origin::new("", manifest.to_vec(), &loaded, false, None);
    Ok((loaded, origin))
}

fn cache_key(base_url: &str, name: &str, sha256: &str) -> String {
    format!("{base_url}{name}?sha256={sha256}")
}

/// Calls `on_progress(loaded, total, file)`.
fn report(on_progress: Option<&js_sys::Function>, loaded: u64, total: u64, file: &str) {
    if let Some(f) = on_progress {
        let _ = f.call3(&JsValue::NULL, &(loaded as f64).into(), &(total as f64).into(), &file.into());
    }
}

/// The bundle of a cached manifest, when every file is cached and verifies. A cached file that
/// fails verification is dropped (and the caller fetches the bundle from the network).
async fn from_cache(
    store: &Store,
    base_url: &str,
    manifest_bytes: &[u8],
    on_progress: Option<&js_sys::Function>,
) -> Option<Bundle> {
    let manifest = Manifest::parse(manifest_bytes).ok()?;
    let total: u64 = manifest.files.values().map(|f| f.bytes).sum();
    let mut files = HashMap::new();
    let mut done = 0;
    for (name, entry) in &manifest.files {
        let key = cache_key(base_url, name, &entry.sha256);
        let bytes = store.get(&key).await?;
        if verify_file(&manifest, name, &bytes).is_err() {
            crate::console_warn(&format!("nook: cached {name} failed verification; fetching it again"));
            store.forget(&key).await;
            return None;
        }
        done += bytes.len() as u64;
        report(on_progress, done, total, name);
        files.insert(name.clone(), bytes);
    }
    match Bundle::load(manifest, files) {
        Ok(b) => Some(b),
        Err(e) => {
            crate::console_warn(&format!("nook: the cached bundle does not load ({e}); fetching it again"));
            None
        }
    }
}

/// Loads the bundle `manifest_bytes` describes, taking verified files from the cache and the
/// rest from the network (verified, then cached). Once it loads, its manifest becomes the cached
/// one and entries no longer listed are dropped.
async fn fetch_bundle(
    store: &Store,
    base_url: &str,
    manifest_bytes: &[u8],
    on_progress: Option<&js_sys::Function>,
) -> Result<Bundle, JsValue> {
    let manifest = parse(manifest_bytes)?;
    let total: u64 = manifest.files.values().map(|f| f.bytes).sum();
    let mut files = HashMap::new();
    let mut done = 0u64;
    for (name, entry) in &manifest.files {
        let key = cache_key(base_url, name, &entry.sha256);
        let cached = match store.get(&key).await {
            Some(bytes) if verify_file(&manifest, name, &bytes).is_ok() => Some(bytes),
            Some(_) => {
                crate::console_warn(&format!("nook: cached {name} failed verification; fetching it again"));
                store.forget(&key).await;
                None
            }
            None => None,
        };
        let bytes = match cached {
            Some(bytes) => bytes,
            None => {
                let url = format!("{base_url}{name}");
                let bytes =
                    fetch::fetch_bytes(&url, false, &mut |n| report(on_progress, done + n, total, name)).await?;
                verify_file(&manifest, name, &bytes).map_err(bundle)?;
                store.put(&key, &bytes).await;
                bytes
            }
        };
        done += bytes.len() as u64;
        report(on_progress, done, total, name);
        files.insert(name.clone(), bytes);
    }
    let loaded = Bundle::load(manifest, files).map_err(bundle)?;
    store.put(&manifest_url(base_url), manifest_bytes).await;
    prune(store, base_url, &loaded.manifest).await;
    Ok(loaded)
}

/// Drops this address's cached files that `manifest` does not list (earlier bundles').
async fn prune(store: &Store, base_url: &str, manifest: &Manifest) {
    let keep: HashSet<String> =
        manifest.files.iter().map(|(name, entry)| cache_key(base_url, name, &entry.sha256)).collect();
    let manifest_key = manifest_url(base_url);
    for key in store.keys().await {
        if key.starts_with(base_url) && key != manifest_key && !keep.contains(&key) {
            store.forget(&key).await;
        }
    }
}
