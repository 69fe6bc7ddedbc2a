//! One conformance suite for every model in the registry (as implicit's shared test mixin runs
//! against every `RecommenderBase`): each fits on MovieLens 100k, scores every item with a finite
//! number, never ranks a person's training items, is fixed by its seed, and comes back from a
//! model directory scoring exactly as it did.

mod common;

use common::*;
use nook_trainer::eval::{top_items, EvalSet, Target};
use nook_trainer::finetune::FinetuneConfig;
use nook_trainer::models::{AlsConfig, BprConfig, REGISTRY};
use nook_trainer::split::{Split, SplitConfig};
use nook_trainer::store;
use nook_trainer::training::{ModelConfig, ModelSet};

/// Small settings: the suite checks behaviour, not quality.
fn config() -> ModelConfig {
    ModelConfig {
        als: AlsConfig { iterations: 3, ..AlsConfig::default() },
        bpr: BprConfig { epochs: 2, ..BprConfig::default() },
        finetune: FinetuneConfig { steps: 2, batch: 4, max_tokens: 16, ..FinetuneConfig::default() },
        hard_negatives_choices: Vec::new(),
        query_field: None,
    }
}

/// Every model's scores for the first `users` users, by model id.
fn scores(set: &ModelSet, split: &Split, users: u32) -> Vec<(String, Vec<Vec<f32>>)> {
    let history = split.final_fit().train_sequences();
    set.models
        .iter()
        .map(|(entry, model)| {
            let scorer = model.scorer(&history);
            let rows = (0..users)
                .map(|u| {
                    let mut out = vec![f32::NAN; split.n_items];
                    scorer.score(u, &mut out);
                    out
                })
                .collect();
            (entry.id.to_string(), rows)
        })
        .collect()
}

#[test]
fn every_registered_model_fits_scores_excludes_history_is_seeded_and_round_trips() {
    let data = load_dir(&ml100k(), false).unwrap();
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let inputs = train_inputs(&data, &split, tmp.path());
    let cfg = config();
    let set = ModelSet::train(&inputs, REGISTRY, &cfg).unwrap();
    assert_eq!(set.ids(), REGISTRY.iter().map(|e| e.id).collect::<Vec<_>>(), "every model was fitted, in order");
    let users = 40;
    let first = scores(&set, &split, users);

    let final_split = split.final_fit();
    let train = final_split.train_matrix();
    let eval_set = EvalSet::new(&final_split, &train, Target::Warm);
    for (id, rows) in &first {
        for (u, row) in rows.iter().enumerate() {
            assert!(row.iter().all(|v| v.is_finite()), "{id}: user {u} has a missing or non-finite score");
            let mut scratch = vec![0f32; row.len()];
            for item in top_items(row, &mut scratch, u as u32, &eval_set, 20) {
                assert!(!train.contains(u, item), "{id}: user {u} was recommended training item {item}");
            }
        }
        assert!(rows.iter().any(|r| r.iter().any(|&v| v != r[0])), "{id}: scores do not depend on the item");
    }

    // Scored together, as evaluation scores people, each person gets their own scores to the bit.
    let history = final_split.train_sequences();
    let batch: Vec<u32> = (0..11).collect(); // two groups of four and a remainder
    for ((_, model), (id, rows)) in set.models.iter().zip(&first) {
        let mut many = vec![f32::NAN; batch.len() * split.n_items];
        model.scorer(&history).score_many(&batch, &mut many);
        for (u, (together, alone)) in many.chunks_exact(split.n_items).zip(rows).enumerate() {
            let same = together.iter().zip(alone).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{id}: user {u}'s scores differ when scored with others");
        }
    }

    let again = ModelSet::train(&inputs, REGISTRY, &cfg).unwrap();
    for ((id, a), (_, b)) in first.iter().zip(scores(&again, &split, users)) {
        assert_eq!(a, &b, "{id}: a second fit with the same seed scores differently");
    }

    let dir = tmp.path().join("model");
    store::save(&dir, &data, &split.config, &cfg, &set, None).unwrap();
    let loaded = store::load(&dir, &data, &split.config).unwrap();
    assert_eq!(loaded.ids(), set.ids());
    for ((id, a), (_, b)) in first.iter().zip(scores(&loaded, &split, users)) {
        assert_eq!(a, &b, "{id}: the model read back from {} scores differently", dir.display());
    }
}
