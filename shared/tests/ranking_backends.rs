//! One conformance suite, run against every ranking backend: the CPU path and the GPU path (wgpu;
//! natively on Vulkan, e.g. Mesa's lavapipe in CI) must return the same ids, and scores within
//! 1e-4 (int8 tables: exactly the same scores), for likes, dislikes, queries and diversity, also
//! when the tables are split across several GPU buffers.
#![cfg(feature = "gpu")]

use nook_core::gpu::GpuRanker;
use nook_core::quant::{Int8Rows, Matrix};
use nook_core::{Catalog, ItemMeta, Request, Scoring};

fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

fn catalog(n: usize, int8: bool) -> Catalog {
    let (cf_dim, text_dim) = (16, 32);
    let items = (0..n)
        .map(|i| ItemMeta { id: format!("i{i}"), title: format!("Item {i}"), year: None, genres: vec![] })
        .collect();
    let cf = values(n * cf_dim, 11);
    let text = values(n * text_dim, 12);
    let gram = nook_core::gramian(&cf, cf_dim, 0.5);
    let popularity = (0..n).map(|i| (i % 97) as f32).collect();
    let (cf, text) = if int8 {
        (Matrix::Int8(Int8Rows::quantize(&cf, cf_dim)), Matrix::Int8(Int8Rows::quantize(&text, text_dim)))
    } else {
        (Matrix::F32(cf), Matrix::F32(text))
    };
    Catalog::from_matrices(items, cf, cf_dim, gram, text, text_dim, popularity).unwrap()
}

fn scoring() -> Scoring {
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.7,
        query_weight: 1.2,
        like_confidence: 3.0,
        dislike_confidence: 3.0,
        recency_half_life: 20.0,
    }
}

fn requests() -> Vec<Request> {
    let q = values(32, 99);
    vec![
        Request { likes: vec![3, 17, 400, 5001], k: 10, ..Request::default() },
        Request { likes: vec![1, 2], dislikes: vec![9, 77], query: Some(q.clone()), k: 25, ..Request::default() },
        Request { query: Some(q), k: 40, diversity: 0.5, ..Request::default() },
        Request { likes: (0..60).map(|i| i * 97).collect(), k: 100, ..Request::default() },
    ]
}

fn gpu(c: &Catalog, shard_items: usize) -> Option<GpuRanker> {
    match pollster::block_on(GpuRanker::with_shard_items(c, shard_items)) {
        Ok(g) => Some(g),
        Err(e) => {
            assert!(std::env::var_os("NOOK_REQUIRE_GPU").is_none(), "a GPU adapter is required here: {e}");
            eprintln!("skipping: {e}");
            None
        }
    }
}

fn conformance(int8: bool, shard_items: usize) {
    let c = catalog(12_000, int8);
    let Some(g) = gpu(&c, shard_items) else { return };
    eprintln!("adapter {}: {} shard(s)", g.adapter_name, g.shard_count());
    let s = scoring();
    for req in requests() {
        let cpu = c.recommend(&s, &req).unwrap();
        let plan = c.plan(&s, &req).unwrap();
        let top = pollster::block_on(g.top_k(&s, plan.user.as_ref().unwrap(), &plan.exclude, plan.pool)).unwrap();
        let gpu = c.finish(&s, &req, &plan, top);
        let ids = |v: &[nook_core::Recommendation]| v.iter().map(|r| r.index).collect::<Vec<_>>();
        assert_eq!(ids(&gpu), ids(&cpu), "ids differ for {req:?}");
        for (a, b) in gpu.iter().zip(&cpu) {
            if int8 {
                assert_eq!(a.score.to_bits(), b.score.to_bits(), "int8 scores are exact: {} vs {}", a.score, b.score);
            } else {
                assert!((a.score - b.score).abs() <= 1e-4, "{} vs {}", a.score, b.score);
            }
            assert_eq!(a.reason, b.reason);
        }
    }
}

#[test]
fn int8_gpu_equals_cpu() {
    conformance(true, usize::MAX);
}

#[test]
fn f32_gpu_equals_cpu() {
    conformance(false, usize::MAX);
}

#[test]
fn tables_split_across_buffers_rank_the_same() {
    conformance(true, 4096);
}
