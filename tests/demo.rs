//! `nook demo` end to end (short fine-tuning, no server): it trains, exports and builds the page,
//! the bundle it leaves answers `nook recommend`, and a second run finds everything done.

use nook_e2e::*;

#[test]
fn demo_prepares_a_page_and_a_rerun_skips_every_step() {
    ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let args = ["demo", "--no-serve", "--out", path_str(&out), "--ft-steps", "4"];
    let first = nook_ok(&args);
    for step in ["==> training", "==> exporting the bundle", "demo ready"] {
        assert!(first.contains(step), "first run: no {step:?} in\n{first}");
    }
    assert!(repo_root().join("www/nook/pkg/nook_wasm_bg.wasm").is_file(), "the wasm client was built");
    let recs = nook_ok(&["recommend", "--bundle", path_str(&out.join("bundle")), "--like", "50", "--json"]);
    let recs: serde_json::Value = serde_json::from_str(&recs).unwrap();
    assert_eq!(recs["items"].as_array().unwrap().len(), 10);

    let second = nook_ok(&args);
    assert!(!second.contains("==>"), "a re-run redid a step:\n{second}");
    assert!(second.contains("demo ready"));
}
