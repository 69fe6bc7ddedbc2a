//! Synthetic item tables for benchmarks and tests: seeded, platform-independent numbers, so a
//! benchmark in the browser and a test natively see the same catalogue.

use crate::catalog::{Catalog, ItemMeta};
use crate::quant::{Int8Rows, Matrix};

/// `n` values uniform in `[-0.5, 0.5)` from a xorshift generator seeded with `seed`.
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// A catalogue of `n` items (ids `0`, `1`, ...) with random `cf_dim` and `text_dim` tables,
/// stored as int8 rows or f32, a fold-in gramian with λ = 0.5 and popularity `i % 97`.
pub fn catalog(n: usize, cf_dim: usize, text_dim: usize, int8: bool, seed: u64) -> Catalog {
    let items = (0..n)
        .map(|i| ItemMeta { id: i.to_string(), title: format!("Item {i}"), year: None, genres: vec![] })
        .collect();
    let cf = values(n * cf_dim, seed);
    let text = values(n * text_dim, seed.wrapping_add(1));
    let gram = crate::gramian(&cf, cf_dim, 0.5);
    let popularity = (0..n).map(|i| (i % 97) as f32).collect();
    let (cf, text) = match int8 {
        true => (Matrix::Int8(Int8Rows::quantize(&cf, cf_dim)), Matrix::Int8(Int8Rows::quantize(&text, text_dim))),
        false => (Matrix::F32(cf), Matrix::F32(text)),
    };
    Catalog::from_matrices(items, cf, cf_dim, gram, text, text_dim, popularity)
        .expect("synthetic tables have consistent shapes")
}
