//! nook's browser client: a thin wasm-bindgen layer over `nook-core`. All ranking, embedding and
//! verification happens in nook-core (the code `nook recommend` runs natively); this layer only
//! fetches bytes, picks the ranking backend and converts between JavaScript and Rust.

mod backend;
pub mod bench;
mod fetch;

use nook_core::bundle::{IdRequest, Manifest};
use nook_core::Bundle;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The version of nook this client was built from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A loaded, verified bundle, ready to embed and recommend.
#[wasm_bindgen]
pub struct NookClient {
    inner: Rc<backend::Inner>,
}

/// `performance.now()` in a window or a worker (sub-millisecond), else `Date.now()`.
pub(crate) fn now_ms() -> f64 {
    let performance = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
    let now = performance.as_ref().and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok());
    match (performance, now.and_then(|n| n.dyn_into::<js_sys::Function>().ok())) {
        (Some(p), Some(f)) => f.call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or_else(js_sys::Date::now),
        _ => js_sys::Date::now(),
    }
}

fn web_sys_warn(message: &str) {
    let console = js_sys::Reflect::get(&js_sys::global(), &"console".into()).ok();
    if let Some(warn) = console.as_ref().and_then(|c| js_sys::Reflect::get(c, &"warn".into()).ok()) {
        if let Some(f) = warn.dyn_ref::<js_sys::Function>() {
            let _ = f.call1(console.as_ref().unwrap_or(&JsValue::NULL), &message.into());
        }
    }
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl NookClient {
    /// Fetches the bundle under `base_url` (which ends in `/`), verifying every file against the
    /// manifest's SHA-256. Files come from the Cache API when a verified copy is there (so a second
    /// visit works offline); a cached copy that fails verification is dropped and fetched again.
    /// `on_progress(loaded_bytes, total_bytes, file)` is called as bytes arrive.
    pub async fn load(base_url: String, on_progress: Option<js_sys::Function>) -> Result<NookClient, JsError> {
        let store = fetch::Store::open().await;
        let manifest_url = format!("{base_url}manifest.json");
        let manifest_bytes = match fetch::fetch_bytes(&manifest_url, &mut |_| {}).await {
            Ok(bytes) => {
                store.put(&manifest_url, &bytes).await;
                bytes
            }
            // Offline (or the server is gone): the last manifest seen, if any.
            Err(network) => store.get(&manifest_url).await.ok_or(network)?,
        };
        let manifest = Manifest::parse(&manifest_bytes).map_err(js_err)?;
        let total: u64 = manifest.files.values().map(|f| f.bytes).sum();
        let mut files = HashMap::new();
        let mut done = 0u64;
        for (name, entry) in &manifest.files {
            let report = |loaded: u64| {
                if let Some(f) = &on_progress {
                    let _ =
                        f.call3(&JsValue::NULL, &((done + loaded) as f64).into(), &(total as f64).into(), &name.into());
                }
            };
            let url = format!("{base_url}{name}");
            let key = format!("{url}?sha256={}", entry.sha256);
            let cached = match store.get(&key).await {
                Some(bytes) if nook_core::bundle::verify_file(&manifest, name, &bytes).is_ok() => Some(bytes),
                Some(_) => {
                    web_sys_warn(&format!("nook: cached {name} failed verification; fetching it again"));
                    store.forget(&key).await;
                    None
                }
                None => None,
            };
            let bytes = match cached {
                Some(bytes) => {
                    report(bytes.len() as u64);
                    bytes
                }
                None => {
                    let bytes = fetch::fetch_bytes(&url, &mut |n| report(n)).await?;
                    nook_core::bundle::verify_file(&manifest, name, &bytes).map_err(js_err)?;
                    store.put(&key, &bytes).await;
                    bytes
                }
            };
            done += bytes.len() as u64;
            files.insert(name.clone(), bytes);
        }
        Ok(Self::from_bundle(Bundle::load(manifest, files).map_err(js_err)?))
    }

    /// Builds from bytes already in hand: the manifest and an object mapping file name → Uint8Array.
    #[wasm_bindgen(js_name = fromFiles)]
    pub fn from_files(manifest: &[u8], files: &js_sys::Object) -> Result<NookClient, JsError> {
        let manifest = Manifest::parse(manifest).map_err(js_err)?;
        let mut map = HashMap::new();
        for name in manifest.files.keys() {
            let value = js_sys::Reflect::get(files, &name.into()).map_err(|_| js_err(format!("{name} is missing")))?;
            if value.is_undefined() {
                return Err(js_err(format!("{name} is missing")));
            }
            map.insert(name.clone(), js_sys::Uint8Array::new(&value).to_vec());
        }
        Ok(Self::from_bundle(Bundle::load(manifest, map).map_err(js_err)?))
    }

    fn from_bundle(bundle: Bundle) -> Self {
        Self { inner: Rc::new(backend::Inner::new(bundle)) }
    }

    /// The manifest as JSON (dataset, dims, metrics, ...).
    #[wasm_bindgen(js_name = manifestJson)]
    pub fn manifest_json(&self) -> Result<String, JsError> {
        serde_json::to_string(&self.inner.bundle.manifest).map_err(js_err)
    }

    /// Number of items in the catalogue.
    #[wasm_bindgen(js_name = itemCount)]
    pub fn item_count(&self) -> usize {
        self.inner.bundle.catalog.len()
    }

    /// Unit-length embedding of `text`, computed on this device.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, JsError> {
        self.inner.bundle.embed(text).map_err(js_err)
    }

    /// Ranks on the CPU (wasm SIMD). `request_json`: `{"likes": [id], "dislikes": [id],
    /// "query": "text", "k": 10, "diversity": 0}`. Returns JSON
    /// `[{id, title, year, genres, score, reason, reason_kind, because}]`.
    pub fn recommend(&self, request_json: &str) -> Result<String, JsError> {
        let req: IdRequest = serde_json::from_str(request_json).map_err(|e| js_err(format!("request: {e}")))?;
        let recs = self.inner.bundle.recommend(&req).map_err(js_err)?;
        serde_json::to_string(&recs).map_err(js_err)
    }

    /// Like [`NookClient::recommend`] on the chosen backend (a Promise of the JSON string). A
    /// failing GPU (lost device) answers this request on the CPU and is not used again.
    #[wasm_bindgen(js_name = recommendAsync)]
    pub fn recommend_async(&self, request_json: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let req: IdRequest =
                serde_json::from_str(&request_json).map_err(|e| JsValue::from(js_err(format!("request: {e}"))))?;
            let recs = inner.recommend(&req).await.map_err(|e| JsValue::from(js_err(e)))?;
            Ok(serde_json::to_string(&recs).map_err(|e| JsValue::from(js_err(e)))?.into())
        })
    }

    /// Chooses the ranking backend: `"cpu"`, `"gpu"` (WebGPU; falls back to the CPU when
    /// unavailable) or `"auto"` (times both on a few requests and keeps the faster). Resolves to
    /// the backend's description.
    #[wasm_bindgen(js_name = initBackend)]
    pub fn init_backend(&self, prefer: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move { Ok(inner.choose(&prefer).await.into()) })
    }

    /// The backend in use: "CPU, wasm SIMD" or "WebGPU (<adapter>)".
    pub fn backend(&self) -> String {
        self.inner.describe()
    }

    /// Items whose title matches `text`, best first, as JSON `[{id, title, year, genres}]`.
    pub fn search(&self, text: &str, limit: usize) -> Result<String, JsError> {
        let c = &self.inner.bundle.catalog;
        let hits: Vec<_> = c.search_titles(text, limit).into_iter().map(|i| &c.items[i as usize]).collect();
        serde_json::to_string(&hits).map_err(js_err)
    }
}
