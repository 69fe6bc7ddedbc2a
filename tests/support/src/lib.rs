//! Helpers shared by every crate's tests: where the real data and the encoder live.
//!
//! A test that needs data never passes silently without it. MovieLens 100k and the encoder are
//! fetched by `scripts/setup-assets.sh` (which `scripts/test.sh` runs first), so a test needing
//! them fails when they are missing, saying how to fetch them. MovieLens latest-small is not
//! fetched (it sits beside the checkout in this workplace): tests needing it are marked
//! `#[ignore = "needs movielens-small ..."]`, so `cargo test` lists them as ignored, and
//! `scripts/test.sh` runs them (`--include-ignored`) when it finds the data.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("tests/support sits in the repo")
}

/// MovieLens 100k (RecBole atomic files) as fetched by `scripts/setup-assets.sh`.
pub fn ml100k() -> PathBuf {
    let p = repo_root().join("assets/data/ml-100k");
    assert!(p.join("ml-100k.inter").is_file(), "{} is missing: run scripts/setup-assets.sh", p.display());
    p
}

/// all-MiniLM-L6-v2 as fetched by `scripts/setup-assets.sh`.
pub fn encoder_dir() -> PathBuf {
    let p = repo_root().join("assets/models/all-MiniLM-L6-v2");
    assert!(p.join("model.safetensors").is_file(), "{} is missing: run scripts/setup-assets.sh", p.display());
    p
}

/// Where MovieLens latest-small is: `NOOK_MOVIELENS_SMALL`, else `../shared/data/movielens-small`
/// beside the checkout; `None` when neither holds it.
pub fn find_movielens_small() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NOOK_MOVIELENS_SMALL").map(PathBuf::from),
        Some(repo_root().join("../shared/data/movielens-small")),
    ];
    candidates.into_iter().flatten().find(|p| p.join("ratings.csv").is_file())
}

/// MovieLens latest-small, for tests marked `#[ignore = "needs movielens-small ..."]`: run on
/// purpose, a missing data set is a failure.
pub fn movielens_small() -> PathBuf {
    find_movielens_small()
        .expect("movielens-small not found: set NOOK_MOVIELENS_SMALL or put it at ../shared/data/movielens-small")
}

/// The path as UTF-8, for command lines.
pub fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Cosine similarity of two equally long vectors (the encoder tests' measure of agreement).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
