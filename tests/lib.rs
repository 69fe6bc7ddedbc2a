//! Helpers for nook's end-to-end tests: the `nook` binary, real data, and running commands.

#[path = "fuzz_targets.rs"]
pub mod fuzz_targets;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repo").to_path_buf()
}

/// MovieLens latest-small beside the checkout (`../shared/data/movielens-small`), or where
/// `NOOK_MOVIELENS_SMALL` points.
pub fn movielens_small() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NOOK_MOVIELENS_SMALL").map(PathBuf::from),
        Some(repo_root().join("../shared/data/movielens-small")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("ratings.csv").is_file())
}

/// MovieLens 100k as fetched by `scripts/setup-assets.sh`.
pub fn ml100k() -> Option<PathBuf> {
    let p = repo_root().join("assets/data/ml-100k");
    p.join("ml-100k.inter").is_file().then_some(p)
}

/// Real data is required in CI (`NOOK_REQUIRE_DATA=1`); elsewhere a missing set skips the test.
pub fn require(name: &str, path: Option<PathBuf>) -> Option<PathBuf> {
    if path.is_none() {
        assert!(std::env::var_os("NOOK_REQUIRE_DATA").is_none(), "{name} is required but missing");
        eprintln!("skipping: {name} not found");
    }
    path
}

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

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A model and bundle trained once per test process on MovieLens 100k (ALS + hybrid), shared by
/// the tests that need one. `None` when the data or the encoder is missing (and not required).
pub fn ml100k_bundle() -> Option<&'static (PathBuf, PathBuf)> {
    static BUNDLE: OnceLock<Option<(tempfile::TempDir, (PathBuf, PathBuf))>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let data = require("ml-100k", ml100k())?;
            require("all-MiniLM-L6-v2", encoder_dir())?;
            let tmp = tempfile::tempdir().expect("temp dir");
            let (model, bundle) = (tmp.path().join("model"), tmp.path().join("bundle"));
            nook_ok(&[
                "train",
                "--data",
                path_str(&data),
                "--out",
                path_str(&model),
                "--models",
                "pop,als,content,hybrid",
            ]);
            nook_ok(&["export", "--model", path_str(&model), "--out", path_str(&bundle)]);
            Some((tmp, (model, bundle)))
        })
        .as_ref()
        .map(|(_, paths)| paths)
}

/// all-MiniLM-L6-v2 as fetched by `scripts/setup-assets.sh`.
pub fn encoder_dir() -> Option<PathBuf> {
    let p = repo_root().join("assets/models/all-MiniLM-L6-v2");
    p.join("model.safetensors").is_file().then_some(p)
}
