//! Fetching bytes with progress, from a window or a worker, through the Cache API.
//!
//! Bundle files are content-addressed by the manifest's SHA-256, so they are kept in the Cache API
//! under `URL?sha256=…` after the first download and read back on later visits, offline too. The
//! caller verifies every byte against the manifest; a cached copy that fails is dropped and fetched
//! again ([`Store::forget`]). How a load uses them is [`crate::load`]'s business.

use crate::error::{coded, Code};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Name of the Cache API store holding bundle files.
pub const CACHE_NAME: &str = "nook-bundle-v1";

/// `fetch(url)`; `revalidate` asks past any HTTP cache (for the manifest, whose change is how a
/// new bundle is noticed).
fn global_fetch(url: &str, revalidate: bool) -> Result<js_sys::Promise, JsValue> {
    let init = web_sys::RequestInit::new();
    if revalidate {
        init.set_cache(web_sys::RequestCache::NoCache);
    }
    let global = js_sys::global();
    if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        Ok(worker.fetch_with_str_and_init(url, &init))
    } else if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        Ok(window.fetch_with_str_and_init(url, &init))
    } else {
        Err(coded(Code::Internal, "no fetch in this JavaScript environment"))
    }
}

fn caches() -> Option<web_sys::CacheStorage> {
    let global = js_sys::global();
    if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.caches().ok()
    } else {
        global.dyn_ref::<web_sys::Window>().and_then(|w| w.caches().ok())
    }
}

/// The bundle's Cache API store; every operation degrades to "not cached" where the browser has
/// no Cache API (e.g. an insecure origin) or refuses it.
pub struct Store {
    cache: Option<web_sys::Cache>,
}

impl Store {
    pub async fn open() -> Self {
        let cache = match caches() {
            Some(c) => JsFuture::from(c.open(CACHE_NAME)).await.ok().and_then(|c| c.dyn_into::<web_sys::Cache>().ok()),
            None => None,
        };
        Self { cache }
    }

    /// The cached body of `key`, if any.
    pub async fn get(&self, key: &str) -> Option<Vec<u8>> {
        let cache = self.cache.as_ref()?;
        let hit = JsFuture::from(cache.match_with_str(key)).await.ok()?;
        let response: web_sys::Response = hit.dyn_into().ok()?;
        let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
        Some(js_sys::Uint8Array::new(&buffer).to_vec())
    }

    /// Hands the cached body of `key` to `on_chunk` piece by piece as the browser reads it.
    /// `None`: not cached (or unreadable); `Some(Err)`: `on_chunk` refused a piece.
    pub async fn get_streamed(
        &self,
        key: &str,
        on_chunk: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
    ) -> Option<Result<(), JsValue>> {
        let cache = self.cache.as_ref()?;
        let hit = JsFuture::from(cache.match_with_str(key)).await.ok()?;
        let response: web_sys::Response = hit.dyn_into().ok()?;
        match read_body(&response, on_chunk).await {
            Ok(()) => Some(Ok(())),
            Err(Chunk::Stream(_)) => None,
            Err(Chunk::Consumer(e)) => Some(Err(e)),
        }
    }

    /// Stores `bytes` under `key` (best effort: a full quota costs the next visit a download,
    /// nothing else).
    pub async fn put(&self, key: &str, bytes: &[u8]) {
        let Some(cache) = &self.cache else { return };
        let body = js_sys::Uint8Array::from(bytes);
        if let Ok(response) = web_sys::Response::new_with_opt_buffer_source(Some(&body)) {
            if let Err(e) = JsFuture::from(cache.put_with_str(key, &response)).await {
                crate::console_warn(&format!("nook: could not cache {key}: {}", describe(&e)));
            }
        }
    }

    /// Every key in the store.
    pub async fn keys(&self) -> Vec<String> {
        let Some(cache) = &self.cache else { return Vec::new() };
        let Ok(keys) = JsFuture::from(cache.keys()).await else { return Vec::new() };
        js_sys::Array::from(&keys)
            .iter()
            .filter_map(|r| r.dyn_into::<web_sys::Request>().ok())
            .map(|r| r.url())
            .collect()
    }

    /// Drops a cached entry that failed verification.
    pub async fn forget(&self, key: &str) {
        if let Some(cache) = &self.cache {
            let _ = JsFuture::from(cache.delete_with_str(key)).await;
        }
    }
}

/// GETs `url` from the network and returns its body (the manifest; bundle files stream through
/// [`fetch_streamed`] into their verification). Failures are `network` errors.
pub async fn fetch_bytes(url: &str, revalidate: bool) -> Result<Vec<u8>, JsValue> {
    let mut bytes = Vec::new();
    fetch_streamed(url, revalidate, &mut |chunk| {
        bytes.extend_from_slice(chunk);
        Ok(())
    })
    .await?;
    Ok(bytes)
}

/// GETs `url` from the network, handing the body to `on_chunk` piece by piece as it arrives (an
/// error from `on_chunk` stops the read and is returned). Failures are `network` errors.
pub async fn fetch_streamed(
    url: &str,
    revalidate: bool,
    on_chunk: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
) -> Result<(), JsValue> {
    let network = |what: String| coded(Code::Network, what);
    let response: web_sys::Response = JsFuture::from(global_fetch(url, revalidate)?)
        .await
        .map_err(|e| network(format!("fetching {url}: {}", describe(&e))))?
        .dyn_into()
        .map_err(|_| network("fetch did not return a Response".into()))?;
    if !response.ok() {
        return Err(network(format!("fetching {url}: HTTP {}", response.status())));
    }
    read_body(&response, on_chunk).await.map_err(|e| match e {
        Chunk::Stream(e) => network(format!("reading {url}: {}", describe(&e))),
        Chunk::Consumer(e) => e,
    })
}

/// Why a body read stopped: the stream failed, or the consumer refused a piece.
enum Chunk {
    Stream(JsValue),
    Consumer(JsValue),
}

/// Reads a response body as it arrives (so the consumer, e.g. a hash, works while the browser is
/// still reading), copying each piece into one reused buffer in wasm memory.
async fn read_body(
    response: &web_sys::Response,
    on_chunk: &mut dyn FnMut(&[u8]) -> Result<(), JsValue>,
) -> Result<(), Chunk> {
    let Some(body) = response.body() else { return Ok(()) };
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| Chunk::Stream("body reader has an unexpected type".into()))?;
    let mut buffer = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(Chunk::Stream)?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            return Ok(());
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(Chunk::Stream)?;
        let piece = js_sys::Uint8Array::new(&value);
        buffer.resize(piece.length() as usize, 0);
        piece.copy_to(&mut buffer);
        on_chunk(&buffer).map_err(Chunk::Consumer)?;
    }
}

pub fn describe(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}
