//! Scoring: one dot product per item against a query vector.

use crate::linalg::dot;

/// `out[i] = items[i] · query (+ bias[i])` for a row-major `n x dim` item table.
pub fn score_items(items: &[f32], dim: usize, query: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(query.len(), dim, "query has {} dims, items have {dim}", query.len());
    assert_eq!(items.len(), out.len() * dim, "item table is not out.len() x dim");
    for (o, row) in out.iter_mut().zip(items.chunks_exact(dim)) {
        *o = dot(row, query);
    }
    if let Some(bias) = bias {
        assert_eq!(bias.len(), out.len(), "one bias per item");
        for (o, b) in out.iter_mut().zip(bias) {
            *o += b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_dot_products_plus_bias() {
        let items = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0];
        let mut out = [0f32; 3];
        score_items(&items, 2, &[3.0, -1.0], Some(&[0.0, 0.5, 1.0]), &mut out);
        assert_eq!(out, [3.0, -0.5, 5.0]);
    }
}
