//! `nook demo` end to end (short fine-tuning, no server): it trains and exports a first bundle,
//! builds the page, then fine-tunes and upgrades the bundle; the bundle it leaves is the fine-tuned
//! one and answers `nook recommend`, and a second run finds everything done.

use nook_e2e::*;

#[test]
fn demo_prepares_a_page_and_a_rerun_skips_every_step() {
    ml100k();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let args = ["demo", "--no-serve", "--out", path_str(&out), "--ft-steps", "4"];
    let first = nook_ok(&args);
    let steps = [
        "==> training a first model",
        "==> exporting the first bundle",
        "demo ready",
        "==> fine-tuning",
        "fine-tuned bundle ready",
    ];
    let mut at = 0;
    for step in steps {
        let found = first[at..].find(step).unwrap_or_else(|| panic!("first run: no {step:?} (in order) in\n{first}"));
        at += found + step.len();
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bundle/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["model"], "fused-sr", "the upgrade replaced the first bundle with the best model trained");
    assert!(manifest["scoring"]["sequence"]["weight"].is_number(), "it weighs the order of likes");
    assert!(!out.join("first").exists(), "the first model, superseded, was removed");
    assert!(repo_root().join("www/nook/pkg/nook_wasm_bg.wasm").is_file(), "the wasm client was built");
    let recs = nook_ok(&["recommend", "--bundle", path_str(&out.join("bundle")), "--like", "50", "--json"]);
    let recs: serde_json::Value = serde_json::from_str(&recs).unwrap();
    assert_eq!(recs["items"].as_array().unwrap().len(), 10);

    let second = nook_ok(&args);
    assert!(!second.contains("==>"), "a re-run redid a step:\n{second}");
    assert!(second.contains("demo ready"));
}
