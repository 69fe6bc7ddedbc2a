//! nook's browser client: a thin wasm-bindgen layer over `nook-core`. All ranking, embedding and
//! verification happens in nook-core (the code `nook recommend` runs natively); this layer only
//! fetches bytes, keeps them in the Cache API, picks the ranking backend and converts between
//! JavaScript values and Rust. The JavaScript package (`wasm-client/js/`, the `Nook` class) is
//! the API a site uses; this is what it runs in its worker.
//!
//! Errors thrown to JavaScript are `Error`s with a `code` property (see [`error`]), which the
//! package turns into its `NookError` subclasses.

mod backend;
pub mod bench;
mod error;
mod fetch;
mod load;

use error::{coded, Code};
use nook_core::bundle::IdRequest;
use nook_core::Bundle;
use serde::Serialize;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The version of nook this client was built from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The threaded build's pool: `initThreadPool(n)` starts `n` Web Workers sharing this module's
/// memory, on which the encoder's products and attention heads run (the package's engine calls it
/// once, before loading a bundle).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// How many threads embed a query: the pool's size in the threaded build, else 1.
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    #[cfg(feature = "threads")]
    return rayon::current_num_threads();
    #[cfg(not(feature = "threads"))]
    1
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// A loaded, verified bundle, ready to embed and recommend.
#[wasm_bindgen]
pub struct NookClient {
    inner: Rc<backend::Inner>,
    /// Where the bundle came from and what its manifest said, to look for a newer one.
    origin: load::Origin,
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

pub(crate) fn console_warn(message: &str) {
    let console = js_sys::Reflect::get(&js_sys::global(), &"console".into()).ok();
    if let Some(warn) = console.as_ref().and_then(|c| js_sys::Reflect::get(c, &"warn".into()).ok()) {
        if let Some(f) = warn.dyn_ref::<js_sys::Function>() {
            let _ = f.call1(console.as_ref().unwrap_or(&JsValue::NULL), &message.into());
        }
    }
}

/// A Rust value as a plain JavaScript object (maps as objects, `None` as `null`).
fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let s = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&s).map_err(|e| coded(Code::Internal, e))
}

fn request_from(value: JsValue) -> Result<IdRequest, JsValue> {
    serde_wasm_bindgen::from_value(value).map_err(|e| coded(Code::Request, format!("request: {e}")))
}

#[wasm_bindgen]
impl NookClient {
    /// Opens the bundle under `base_url` (which ends in `/`). A complete, verified copy in the
    /// Cache API is used at once (a second visit, or offline), while the network manifest is
    /// asked for alongside so [`NookClient::check_for_update`] can answer without waiting;
    /// otherwise every file is fetched, verified against the manifest's SHA-256 and cached.
    /// `on_progress(loaded_bytes, total_bytes, file)` is called as bytes arrive.
    pub async fn load(base_url: String, on_progress: Option<js_sys::Function>) -> Result<NookClient, JsValue> {
        let (bundle, origin) = load::open(&base_url, on_progress.as_ref()).await?;
        Ok(Self::from_parts(bundle, origin))
    }

    /// Looks for a newer bundle at the same address: when the server's manifest differs from
    /// this one, fetches and verifies the new files (this client keeps serving meanwhile) and
    /// resolves to a new client; resolves to `undefined` when nothing changed or the network is
    /// unreachable. Cache entries the new bundle does not use are then dropped.
    #[wasm_bindgen(js_name = checkForUpdate)]
    pub async fn check_for_update(&self, on_progress: Option<js_sys::Function>) -> Result<Option<NookClient>, JsValue> {
        let update = load::update(&self.origin, on_progress.as_ref()).await?;
        Ok(update.map(|(bundle, origin)| Self::from_parts(bundle, origin)))
    }

    /// Builds from bytes already in hand: the manifest and an object mapping file name → Uint8Array.
    #[wasm_bindgen(js_name = fromFiles)]
    pub fn from_files(manifest: &[u8], files: &js_sys::Object) -> Result<NookClient, JsValue> {
        let (bundle, origin) = load::from_files(manifest, files)?;
        Ok(Self::from_parts(bundle, origin))
    }

    fn from_parts(bundle: Bundle, origin: load::Origin) -> Self {
        Self { inner: Rc::new(backend::Inner::new(bundle)), origin }
    }

    /// The manifest (dataset, dimensions, scoring, metrics, files) as an object.
    pub fn manifest(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.bundle.manifest)
    }

    /// Identifies this bundle: the SHA-256 of its manifest, which lists every file's SHA-256.
    #[wasm_bindgen(js_name = bundleId)]
    pub fn bundle_id(&self) -> String {
        self.origin.bundle_id.clone()
    }

    /// Whether the bundle came from the Cache API rather than the network.
    #[wasm_bindgen(js_name = fromCache)]
    pub fn from_cache(&self) -> bool {
        self.origin.from_cache
    }

    /// Where this bundle's load spent its time, as `[[step, milliseconds], …]` in order: `cache
    /// read` and `network` (each file's SHA-256 is checked as its bytes arrive, so verification
    /// is inside these), `cache write`, `build` (parsing the files into the catalogue, tokenizer
    /// and encoder); steps a load did not take are absent.
    #[wasm_bindgen(js_name = loadTimings)]
    pub fn load_timings(&self) -> Result<JsValue, JsValue> {
        to_js(&self.origin.timings)
    }

    /// Number of items in the catalogue.
    #[wasm_bindgen(js_name = itemCount)]
    pub fn item_count(&self) -> usize {
        self.inner.bundle.catalog.len()
    }

    /// Unit-length embedding of `text`, computed on this device.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>, JsValue> {
        self.inner.bundle.embed(text).map_err(error::from_core)
    }

    /// Ranks on the CPU (wasm SIMD). `request`: `{likes: [id], dislikes: [id], query: "text",
    /// k: 10, diversity: 0, query_weight}`. Returns `{items: [{id, title, year, genres, score,
    /// reason, reason_kind, because}], skipped: {likes, dislikes}}`: ids the catalogue does not
    /// hold are skipped and listed, never an error.
    pub fn recommend(&self, request: JsValue) -> Result<JsValue, JsValue> {
        let req = request_from(request)?;
        to_js(&self.inner.bundle.recommend(&req).map_err(error::from_core)?)
    }

    /// Like [`NookClient::recommend`] on the chosen backend (a Promise). A failing GPU (lost
    /// device) answers this request on the CPU and is not used again.
    #[wasm_bindgen(js_name = recommendAsync)]
    pub fn recommend_async(&self, request: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let req = request_from(request)?;
            to_js(&inner.recommend(&req).await.map_err(error::from_core)?)
        })
    }

    /// "More like this": the `k` items most like item `id`, never `id` itself or the ids in
    /// `exclude`, as `[{id, title, ..., reason: "similar to …"}]`. An unknown `id` is an error
    /// with code `unknown_item`.
    pub fn similar(&self, id: &str, k: usize, exclude: Vec<String>) -> Result<JsValue, JsValue> {
        to_js(&self.inner.bundle.similar(id, k, &exclude).map_err(error::from_core)?)
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

    /// Items whose title matches `text`, best first, as `[{id, title, year, genres}]`.
    pub fn search(&self, text: &str, limit: usize) -> Result<JsValue, JsValue> {
        let c = &self.inner.bundle.catalog;
        let hits: Vec<_> = c.search_titles(text, limit).into_iter().map(|i| &c.items[i as usize]).collect();
        to_js(&hits)
    }

    /// The catalogue's metadata for those of `ids` it holds (`{id: {id, title, year, genres}}`),
    /// e.g. to show a stored history; ids it lacks are left out.
    pub fn items(&self, ids: Vec<String>) -> Result<JsValue, JsValue> {
        let c = &self.inner.bundle.catalog;
        let found: std::collections::BTreeMap<&str, _> =
            ids.iter().filter_map(|id| c.get(id).map(|i| (id.as_str(), &c.items[i as usize]))).collect();
        to_js(&found)
    }

    /// Frees the GPU resources now (the rest goes with the client).
    #[wasm_bindgen(js_name = releaseGpu)]
    pub fn release_gpu(&self) {
        self.inner.release_gpu();
    }
}
