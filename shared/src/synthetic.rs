//! Synthetic item tables for benchmarks and tests: seeded, platform-independent numbers, so a
//! benchmark in the browser and a test natively see the same catalogue.

use crate::catalog::{Catalog, ItemMeta};
use crate::quant::{Int8Rows, Matrix};
use crate::sequence::Rules;

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

/// `k` sequential rules per item for a catalogue of `n`: targets spread over the catalogue (each
/// row distinct), weights in `(0, 1]`, the last slot of every third row empty.
pub fn rules(n: usize, k: usize, seed: u64) -> Rules {
    let noise = values(n * k, seed);
    let mut index = Vec::with_capacity(n * k);
    let mut weights = Vec::with_capacity(n * k);
    for i in 0..n {
        for slot in 0..k {
            let empty = slot + 1 == k && i % 3 == 0;
            index.push(if empty { Rules::PAD } else { ((i * 7919 + slot * 104_729 + 1) % n) as u32 });
            weights.push(if empty { 0.0 } else { noise[i * k + slot] + 0.5 + 1e-3 });
        }
    }
    Rules::new(n, k, index, weights).expect("synthetic rules are in range")
}
