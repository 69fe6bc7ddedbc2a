//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz targets' code, so
//! every input the fuzzers kept — and every crash they ever found — is checked on each CI run.

use nook_e2e::fuzz_targets;
use nook_e2e::repo_root;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = repo_root().join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    for f in &files {
        run(&std::fs::read(f).unwrap());
    }
    eprintln!("{target}: replayed {} inputs", files.len());
}

#[test]
fn csv_rows_corpus() {
    replay("csv_rows", fuzz_targets::csv_rows);
}

#[test]
fn bundle_load_corpus() {
    replay("bundle_load", fuzz_targets::bundle_load);
}

#[test]
fn bundle_use_corpus() {
    replay("bundle_use", fuzz_targets::bundle_use);
}

#[test]
fn cli_numbers_corpus() {
    replay("cli_numbers", fuzz_targets::cli_numbers);
}

#[test]
fn tokenize_corpus() {
    assert!(
        fuzz_targets::tokenizer_loaded(),
        "assets/models/all-MiniLM-L6-v2/tokenizer.json missing: run scripts/setup-assets"
    );
    replay("tokenize", fuzz_targets::tokenize);
}

#[test]
fn recommend_corpus() {
    replay("recommend", fuzz_targets::recommend);
}
