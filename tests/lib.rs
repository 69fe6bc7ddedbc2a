//! Helpers for nook's end-to-end tests: locating the binary and the shared real data.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the repo").to_path_buf()
}

/// MovieLens latest-small beside the checkout (`../shared/data/movielens-small`), or where
/// `NOOK_MOVIELENS_SMALL` points. `None` when neither exists.
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
