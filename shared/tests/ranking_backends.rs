//! One conformance suite, run against every ranking backend: the CPU path and the GPU path (wgpu;
//! natively on Vulkan, e.g. Mesa's lavapipe in CI) must return the same ids, and scores within
//! 1e-4 (int8 tables: exactly the same scores), for likes, dislikes, queries and diversity, also
//! when the tables are split across several GPU buffers. Both go through the `recommend` the
//! browser calls, so the fallbacks it takes (popularity, more candidates than the kernels keep)
//! are covered too. The same suite runs on a catalogue with sequential rules (the order of likes'
//! sparse part, which the GPU path adds to its candidates plus the items the rules reach).
#![cfg(feature = "gpu")]

use nook_core::gpu::{GpuRanker, MAX_K};
use nook_core::sequence::Sequence;
use nook_core::{synthetic, Catalog, Recommendation, Request, Scoring};

fn scoring() -> Scoring {
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.7,
        query_weight: 1.2,
        like_confidence: 3.0,
        dislike_confidence: 3.0,
        recency_half_life: 20.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
        sequence: Some(Sequence { weight: 3.0, decay: 0.9, recent: 40, similar_weight: None }),
    }
}

fn requests() -> Vec<Request> {
    let q = synthetic::values(32, 99);
    vec![
        Request { likes: vec![3, 17, 400, 5001], k: 10, ..Request::default() },
        Request { likes: vec![1, 2], dislikes: vec![9, 77], query: Some(q.clone()), k: 25, ..Request::default() },
        Request { query: Some(q.clone()), k: 40, diversity: 0.5, ..Request::default() },
        Request { likes: (0..60).map(|i| i * 97).collect(), k: 100, ..Request::default() },
        // Nothing to personalise on: popularity.
        Request { k: 12, ..Request::default() },
        // More candidates than the GPU keeps: the CPU answers.
        Request { likes: vec![5, 6], query: Some(q), k: MAX_K + 20, ..Request::default() },
    ]
}

/// The GPU ranker; CI installs Mesa's lavapipe, so a missing adapter is a failure, not a skip.
fn gpu(c: &Catalog, shard_items: usize) -> GpuRanker {
    pollster::block_on(GpuRanker::with_shard_items(c, shard_items))
        .unwrap_or_else(|e| panic!("{e} (natively this needs a Vulkan driver: apt-get install mesa-vulkan-drivers)"))
}

fn conformance(int8: bool, shard_items: usize, rules: bool) {
    let mut c = synthetic::catalog(12_000, 16, 32, int8, 11);
    if rules {
        let n = c.len();
        c = c.with_rules(synthetic::rules(n, 20, 3)).unwrap();
    }
    let g = gpu(&c, shard_items);
    eprintln!("adapter {}: {} shard(s)", g.adapter_name, g.shard_count());
    let s = scoring();
    let ids = |v: &[Recommendation]| v.iter().map(|r| r.index).collect::<Vec<_>>();
    for req in requests() {
        let cpu = c.recommend(&s, &req).unwrap();
        let gpu = pollster::block_on(g.recommend(&c, &s, &req)).unwrap();
        if rules && !req.likes.is_empty() {
            let plan = c.plan(&s, &req).unwrap();
            assert!(!plan.sequence.is_empty(), "the rules reach items for {req:?}");
            let blend_alone = c.recommend(&Scoring { sequence: None, ..s }, &req).unwrap();
            assert_ne!(ids(&blend_alone), ids(&cpu), "the rules change the ranking for {req:?}");
        }
        assert_eq!(ids(&gpu), ids(&cpu), "ids differ for {req:?}");
        assert_eq!(cpu.len(), req.k.min(c.len() - req.likes.len() - req.dislikes.len()));
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
    conformance(true, usize::MAX, false);
}

#[test]
fn f32_gpu_equals_cpu() {
    conformance(false, usize::MAX, false);
}

#[test]
fn tables_split_across_buffers_rank_the_same() {
    conformance(true, 4096, false);
}

#[test]
fn the_order_of_likes_ranks_the_same_on_both_int8() {
    conformance(true, 4096, true);
}

#[test]
fn the_order_of_likes_ranks_the_same_on_both_f32() {
    conformance(false, usize::MAX, true);
}

#[test]
fn a_wrong_request_is_the_callers_error_not_the_gpus() {
    let c = synthetic::catalog(3000, 16, 32, true, 5);
    let g = gpu(&c, usize::MAX);
    let bad = Request { likes: vec![99_999], k: 5, ..Request::default() };
    let err = pollster::block_on(g.recommend(&c, &scoring(), &bad)).unwrap_err();
    assert!(matches!(err, nook_core::gpu::GpuError::Request(_)), "{err:?}");
}
