//! In headless Chromium, the browser client's rankings equal native `nook recommend` exactly.
//!
//! `scripts/browser-tests.sh` trains and exports a bundle, records native results for several
//! requests, serves the bundle, and builds this test with:
//! * `NOOK_PARITY_BUNDLE_URL`: where the bundle is served (with CORS);
//! * `NOOK_PARITY_CASES`: JSON `[{"request": {...}, "expected": {"items": [...], "skipped": ...}}]`
//!   from `nook recommend --json`.

use nook_core::bundle::{Recommendations, RecommendedItem};
use nook_wasm::NookClient;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[derive(serde::Deserialize)]
struct Case {
    request: serde_json::Value,
    expected: Recommendations,
}

fn js_request(request: &serde_json::Value) -> wasm_bindgen::JsValue {
    js_sys::JSON::parse(&request.to_string()).expect("request is JSON")
}

fn recommendations(value: wasm_bindgen::JsValue) -> Recommendations {
    serde_json::from_str(&String::from(js_sys::JSON::stringify(&value).unwrap())).expect("recommendations")
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
        Err(e) => panic!("loading {url}: {e:?}"),
    };
    for case in &cases {
        let request = case.request.to_string();
        let got = recommendations(client.recommend(js_request(&case.request)).expect("recommend"));
        assert_eq!(got.skipped, case.expected.skipped, "skipped ids differ for {request}");
        let (got, expected) = (got.items, &case.expected.items);
        let ids = |v: &[RecommendedItem]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&got), ids(expected), "top-k ids differ for {request}");
        for (g, e) in got.iter().zip(expected) {
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
        Err(e) => panic!("loading {url}: {e:?}"),
    };
    let backend = wasm_bindgen_futures::JsFuture::from(client.init_backend("gpu".into())).await.unwrap();
    let backend = backend.as_string().unwrap();
    assert!(backend.starts_with("WebGPU"), "no WebGPU adapter in this browser: {backend}");
    for case in &cases {
        let request = case.request.to_string();
        let cpu = recommendations(client.recommend(js_request(&case.request)).unwrap()).items;
        let gpu = wasm_bindgen_futures::JsFuture::from(client.recommend_async(js_request(&case.request)))
            .await
            .expect("GPU recommend");
        let gpu = recommendations(gpu).items;
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

#[derive(serde::Deserialize)]
struct SimilarCase {
    item: String,
    k: usize,
    expected: Vec<RecommendedItem>,
}

/// "More like this" in the browser equals `nook similar` natively.
#[wasm_bindgen_test]
async fn more_like_this_matches_native() {
    let (url, _) = inputs();
    let Some(cases) = option_env!("NOOK_PARITY_SIMILAR") else {
        panic!("parity inputs missing (NOOK_PARITY_SIMILAR): run scripts/browser-tests.sh");
    };
    let cases: Vec<SimilarCase> = serde_json::from_str(cases).expect("NOOK_PARITY_SIMILAR is JSON");
    assert!(!cases.is_empty());
    let client = match NookClient::load(url.to_string(), None).await {
        Ok(c) => c,
        Err(e) => panic!("loading {url}: {e:?}"),
    };
    for case in &cases {
        let got = client.similar(&case.item, case.k, vec![]).expect("similar");
        let got: Vec<RecommendedItem> =
            serde_json::from_str(&String::from(js_sys::JSON::stringify(&got).unwrap())).unwrap();
        assert_eq!(got.len(), case.k);
        assert!(got.iter().all(|r| r.id != case.item), "{} is not similar to itself", case.item);
        for (g, e) in got.iter().zip(&case.expected) {
            assert_eq!(g.id, e.id, "more like {}", case.item);
            assert!((g.score - e.score).abs() <= 1e-4, "more like {}: {} {} vs {}", case.item, g.id, g.score, e.score);
            assert_eq!(g.reason, e.reason);
        }
    }
    let err = client.similar("no-such-item", 10, vec![]).expect_err("an unknown subject is an error");
    let code = js_sys::Reflect::get(&err, &"code".into()).unwrap();
    assert_eq!(code.as_string().as_deref(), Some("unknown_item"));
}
