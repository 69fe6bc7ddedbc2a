//! In headless Chromium, the browser client's rankings equal native `nook recommend` exactly.
//!
//! `scripts/browser-tests.sh` trains and exports a bundle, records native results for several
//! requests, serves the bundle, and builds this test with:
//! * `NOOK_PARITY_BUNDLE_URL`: where the bundle is served (with CORS);
//! * `NOOK_PARITY_CASES`: JSON `[{"request": {...}, "expected": [...]}]` from `nook recommend --json`.

use nook_core::bundle::RecommendedItem;
use nook_wasm::NookClient;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[derive(serde::Deserialize)]
struct Case {
    request: serde_json::Value,
    expected: Vec<RecommendedItem>,
}

/// The bundle's URL and the native answers, baked in at build time by scripts/browser-tests.sh.
fn inputs() -> (&'static str, Vec<Case>) {
    let (Some(url), Some(cases)) = (option_env!("NOOK_PARITY_BUNDLE_URL"), option_env!("NOOK_PARITY_CASES")) else {
        panic!("parity inputs missing (NOOK_PARITY_BUNDLE_URL, NOOK_PARITY_CASES): run scripts/browser-tests.sh");
    };
    (url, serde_json::from_str(cases).expect("NOOK_PARITY_CASES is JSON"))
}

#[wasm_bindgen_test]
async fn browser_ranks_exactly_like_native() {
    let (url, cases) = inputs();
    assert!(!cases.is_empty());
    let client = match NookClient::load(url.to_string(), None).await {
        Ok(c) => c,
        Err(e) => panic!("loading {url}: {:?}", wasm_bindgen::JsValue::from(e)),
    };
    for case in &cases {
        let request = case.request.to_string();
        let got = client.recommend(&request).map_err(wasm_bindgen::JsValue::from).expect("recommend");
        let got: Vec<RecommendedItem> = serde_json::from_str(&got).unwrap();
        let ids = |v: &[RecommendedItem]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(&case.expected), "top-k ids differ for {request}");
        for (g, e) in got.iter().zip(&case.expected) {
            assert!(
                (g.score - e.score).abs() <= 1e-4,
                "{request}: {} scores {} in the browser, {} natively",
                g.id,
                g.score,
                e.score
            );
            assert_eq!(g.reason, e.reason, "{request}: reason for {}", g.id);
        }
    }
}

/// WebGPU (SwiftShader in headless Chromium) ranks like the CPU: same ids, scores within 1e-4.
#[wasm_bindgen_test]
async fn webgpu_ranks_like_the_cpu() {
    let (url, cases) = inputs();
    let client = match NookClient::load(url.to_string(), None).await {
        Ok(c) => c,
        Err(e) => panic!("loading {url}: {:?}", wasm_bindgen::JsValue::from(e)),
    };
    let backend = wasm_bindgen_futures::JsFuture::from(client.init_backend("gpu".into())).await.unwrap();
    let backend = backend.as_string().unwrap();
    assert!(backend.starts_with("WebGPU"), "no WebGPU adapter in this browser: {backend}");
    for case in &cases {
        let request = case.request.to_string();
        let cpu: Vec<RecommendedItem> =
            serde_json::from_str(&client.recommend(&request).map_err(wasm_bindgen::JsValue::from).unwrap()).unwrap();
        let gpu =
            wasm_bindgen_futures::JsFuture::from(client.recommend_async(request.clone())).await.expect("GPU recommend");
        let gpu: Vec<RecommendedItem> = serde_json::from_str(&gpu.as_string().unwrap()).unwrap();
        assert_eq!(client.backend(), backend, "the GPU stayed in use (no fallback) for {request}");
        let ids = |v: &[RecommendedItem]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&gpu), ids(&cpu), "WebGPU and CPU ids differ for {request}");
        for (g, c) in gpu.iter().zip(&cpu) {
            assert!(
                (g.score - c.score).abs() <= 1e-4,
                "{request}: {} scores {} on WebGPU, {} on the CPU",
                g.id,
                g.score,
                c.score
            );
        }
    }
}
