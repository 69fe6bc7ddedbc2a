//! Fetching bytes with progress, from a window or a worker.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// GETs `url` and returns its body; `on_bytes(total_so_far)` is called after each chunk.
pub async fn fetch_bytes(url: &str, on_bytes: &mut dyn FnMut(u64)) -> Result<Vec<u8>, JsError> {
    let global = js_sys::global();
    let promise = if let Some(worker) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        worker.fetch_with_str(url)
    } else if let Some(window) = global.dyn_ref::<web_sys::Window>() {
        window.fetch_with_str(url)
    } else {
        return Err(JsError::new("no fetch in this JavaScript environment"));
    };
    let response: web_sys::Response = JsFuture::from(promise)
        .await
        .map_err(|e| JsError::new(&format!("fetching {url}: {e:?}")))?
        .dyn_into()
        .map_err(|_| JsError::new("fetch did not return a Response"))?;
    if !response.ok() {
        return Err(JsError::new(&format!("fetching {url}: HTTP {}", response.status())));
    }
    let Some(body) = response.body() else { return Ok(Vec::new()) };
    let reader: web_sys::ReadableStreamDefaultReader =
        body.get_reader().dyn_into().map_err(|_| JsError::new("body reader has an unexpected type"))?;
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| JsError::new(&format!("reading {url}: {e:?}")))?;
        let done = js_sys::Reflect::get(&chunk, &"done".into()).map(|d| d.is_truthy()).unwrap_or(true);
        if done {
            break;
        }
        let value = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| JsError::new("chunk without value"))?;
        bytes.extend(js_sys::Uint8Array::new(&value).to_vec());
        on_bytes(bytes.len() as u64);
    }
    Ok(bytes)
}
