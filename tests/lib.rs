//! Helpers for nook's end-to-end tests: the `nook` binary, real data, and running commands.

#[path = "fuzz_targets.rs"]
pub mod fuzz_targets;

pub use nook_test_support::{encoder_dir, find_movielens_small, ml100k, movielens_small, path_str, repo_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `nook` binary of this build profile, (re)built once per test process so it is never stale
/// (cargo does not rebuild another package's binary for this crate's tests).
pub fn nook_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--quiet", "-p", "nook-trainer", "--bin", "nook"]).current_dir(repo_root());
        // target/debug holds `cargo test`'s builds: use the test profile (optimised, see Cargo.toml).
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => cmd.args(["--profile", "test"]),
            Some(profile) => cmd.args(["--profile", profile]),
        };
        assert!(cmd.status().expect("cargo runs").success(), "building nook failed");
        profile_dir.join("nook")
    })
    .clone()
}

/// Runs `nook` with `args`; returns its output whatever the exit status.
pub fn nook(args: &[&str]) -> Output {
    Command::new(nook_bin()).args(args).env("NOOK_LOG", "warn").current_dir(repo_root()).output().expect("nook runs")
}

/// Runs `nook` and insists it succeeds; returns stdout.
pub fn nook_ok(args: &[&str]) -> String {
    let out = nook(args);
    assert!(
        out.status.success(),
        "nook {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// A model and bundle trained once per test process on MovieLens 100k (ALS + hybrid), shared by
/// the tests that need one.
pub fn ml100k_bundle() -> &'static (PathBuf, PathBuf) {
    static BUNDLE: OnceLock<(tempfile::TempDir, (PathBuf, PathBuf))> = OnceLock::new();
    let (_, paths) = BUNDLE.get_or_init(|| {
        let data = ml100k();
        encoder_dir();
        let tmp = tempfile::tempdir().expect("temp dir");
        let (model, bundle) = (tmp.path().join("model"), tmp.path().join("bundle"));
        nook_ok(&["train", "--data", path_str(&data), "--out", path_str(&model), "--models", "pop,als,content,hybrid"]);
        nook_ok(&["export", "--model", path_str(&model), "--out", path_str(&bundle)]);
        (tmp, (model, bundle))
    });
    paths
}

/// A copy of MovieLens 100k in a new temporary directory (as `DIR/ml-100k`), for tests that damage
/// the data or point `--out` at it. Keep the `TempDir` alive while the copy is used.
pub fn ml100k_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ml-100k");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(ml100k()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    (tmp, dir)
}
