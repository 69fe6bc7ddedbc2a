//! nook's browser client: a thin wasm-bindgen layer over `nook-core`.

use wasm_bindgen::prelude::*;

/// The version of nook this client was built from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Folds liked items into a user vector (implicit-ALS user step, see `nook_core::foldin`).
/// `item_factors` is row-major `n x dim`; `gram` is `YᵀY + λI` (`dim x dim`); `confidence` is the
/// signed confidence of each liked (positive) or disliked (negative) item.
#[wasm_bindgen]
pub fn fold_in(
    item_factors: &[f32],
    gram: &[f32],
    dim: usize,
    items: &[u32],
    confidence: &[f32],
) -> Result<Vec<f32>, JsError> {
    if dim == 0 || item_factors.len() % dim != 0 || gram.len() != dim * dim || items.len() != confidence.len() {
        return Err(JsError::new("fold_in: inconsistent shapes"));
    }
    let n = (item_factors.len() / dim) as u32;
    if let Some(bad) = items.iter().find(|&&i| i >= n) {
        return Err(JsError::new(&format!("fold_in: item index {bad} out of range (0..{n})")));
    }
    let solver = nook_core::RowSolver::new(item_factors, gram, dim);
    Ok(nook_core::fold_in(&solver, items, confidence))
}
