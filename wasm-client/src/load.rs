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
use crate::now_ms;
use nook_core::bundle::VerifiedFiles;
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
    /// Milliseconds spent in each step of the load that made this bundle, in order.
    pub timings: Timings,
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
        timings: Timings,
    ) -> Self {
        Self {
            base_url: base_url.to_string(),
            // The manifest's own id (a hash over it, checked when it was parsed).
            bundle_id: bundle.manifest.id.clone(),
            manifest_bytes,
            from_cache,
            timings,
            pending: RefCell::new(pending),
        }
    }
}

/// Where a load's time went: `(step, milliseconds)`, summed per step, in the order first seen.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Timings(pub Vec<(&'static str, f64)>);

impl Timings {
    /// Runs `f`, adding its wall time to `step`.
    pub fn time<T>(&mut self, step: &'static str, f: impl FnOnce() -> T) -> T {
        let start = now_ms();
        let out = f();
        self.add(step, now_ms() - start);
        out
    }

    pub fn add(&mut self, step: &'static str, ms: f64) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some((_, total)) => *total += ms,
            None => self.0.push((step, ms)),
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
        Ok(match fetch::fetch_bytes(&url, true).await {
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
    let mut timings = Timings::default();
    let start = now_ms();
    let store = Store::open().await;
    let network = ask_manifest(base_url);
    let cached = store.get(&manifest_url(base_url)).await;
    timings.add("cache read", now_ms() - start);
    if let Some(bytes) = cached {
        if let Some(bundle) = from_cache(&store, base_url, &bytes, on_progress, &mut timings).await {
            let origin = Origin::new(base_url, bytes, &bundle, true, Some(network), timings);
            return Ok((bundle, origin));
        }
    }
    let start = now_ms();
    let bytes = await_bytes(network).await?;
    timings.add("network", now_ms() - start);
    let bundle = fetch_bundle(&store, base_url, &bytes, on_progress, &mut timings).await?;
    let origin = Origin::new(base_url, bytes, &bundle, false, None, timings);
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
    let mut timings = Timings::default();
    let bundle = fetch_bundle(&store, base_url, &bytes, on_progress, &mut timings).await?;
    let origin = Origin::new(base_url, bytes, &bundle, false, None, timings);
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
    let mut timings = Timings::default();
    let loaded = timings.time("build", || Bundle::load(parsed, map)).map_err(bundle)?;
    let origin = Origin::new("", manifest.to_vec(), &loaded, false, None, timings);
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
    timings: &mut Timings,
) -> Option<Bundle> {
    let manifest = Manifest::parse(manifest_bytes).ok()?;
    let total: u64 = manifest.files.values().map(|f| f.bytes).sum();
    let mut files = VerifiedFiles::new(&manifest);
    let mut done = 0;
    for (name, entry) in &manifest.files {
        let key = cache_key(base_url, name, &entry.sha256);
        let start = now_ms();
        let cached = read_cached(store, &manifest, &mut files, &key, name).await;
        timings.add("cache read", now_ms() - start);
        done += cached?;
        report(on_progress, done, total, name);
    }
    match timings.time("build", || Bundle::from_verified(manifest, files)) {
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
    timings: &mut Timings,
) -> Result<Bundle, JsValue> {
    let manifest = parse(manifest_bytes)?;
    let total: u64 = manifest.files.values().map(|f| f.bytes).sum();
    let mut files = VerifiedFiles::new(&manifest);
    let mut done = 0u64;
    for (name, entry) in &manifest.files {
        let key = cache_key(base_url, name, &entry.sha256);
        let start = now_ms();
        let cached = read_cached(store, &manifest, &mut files, &key, name).await;
        timings.add("cache read", now_ms() - start);
        if let Some(len) = cached {
            done += len;
            report(on_progress, done, total, name);
            continue;
        }
        let url = format!("{base_url}{name}");
        let start = now_ms();
        let mut incoming = files.begin(&manifest, name).map_err(bundle)?;
        fetch::fetch_streamed(&url, false, &mut |chunk| {
            incoming.push(chunk).map_err(bundle)?;
            report(on_progress, done + incoming.len() as u64, total, name);
            Ok(())
        })
        .await?;
        let len = incoming.len() as u64;
        // Verified before it is cached: a bad download never reaches the cache.
        files.finish(&manifest, incoming).map_err(bundle)?;
        timings.add("network", now_ms() - start);
        let start = now_ms();
        if let Some(bytes) = files.get(name) {
            store.put(&key, bytes).await;
        }
        timings.add("cache write", now_ms() - start);
        done += len;
        report(on_progress, done, total, name);
    }
    let loaded = timings.time("build", || Bundle::from_verified(manifest, files)).map_err(bundle)?;
    store.put(&manifest_url(base_url), manifest_bytes).await;
    prune(store, base_url, &loaded.manifest).await;
    Ok(loaded)
}

/// Reads the cached copy of the manifest's file `name` into `files`, hashing it as the browser
/// reads it; its length, or `None` when it is not cached or fails verification (a bad entry is
/// dropped, for the caller to fetch again).
async fn read_cached(
    store: &Store,
    manifest: &Manifest,
    files: &mut VerifiedFiles,
    key: &str,
    name: &str,
) -> Option<u64> {
    let mut incoming = files.begin(manifest, name).ok()?;
    let streamed = store.get_streamed(key, &mut |chunk| incoming.push(chunk).map_err(bundle)).await?;
    let len = incoming.len() as u64;
    match streamed
        .map_err(|e| fetch::describe(&e))
        .and_then(|()| files.finish(manifest, incoming).map_err(|e| e.to_string()))
    {
        Ok(()) => Some(len),
        Err(why) => {
            crate::console_warn(&format!("nook: cached {name} failed verification ({why}); fetching it again"));
            store.forget(key).await;
            None
        }
    }
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
