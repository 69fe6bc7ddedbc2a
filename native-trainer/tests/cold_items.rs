//! Items nobody has interacted with yet, in the fused model: their collaborative part is predicted
//! from their text, and their profile text is scaled by what a pseudo-cold validation chose — on
//! MovieLens latest-small with the frozen encoder's vectors of the plot overviews.

mod common;

use candle_core::Device;
use common::*;
use nook_core::ItemMeta;
use nook_trainer::eval::{evaluate, EvalSet, Target};
use nook_trainer::models::hybrid::{user_vectors, ColdProfile, Hybrid, HybridScorer, COLD_PROFILE, FINETUNED};
use nook_trainer::models::{als, AlsConfig};
use nook_trainer::split::{Split, SplitConfig};
use nook_trainer::textvec::{embed_all, EncoderSource};
use std::borrow::Cow;

/// Cold-split AUC of a fitted family's fused model.
fn cold_auc(h: &Hybrid, split: &Split) -> f64 {
    let train = split.train_matrix();
    let users = user_vectors(&h.catalog, &h.scoring, &split.train_sequences());
    let scorer = HybridScorer { name: "fused", catalog: &h.catalog, scoring: h.scoring, users: Cow::Owned(users) };
    let set = EvalSet::new(split, &train, Target::Cold);
    evaluate(&scorer, &set, &[10]).iter().find(|r| r.metric == "auc").expect("auc is reported").value
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn a_cold_items_profile_text_is_scaled_as_pseudo_cold_validation_chose() {
    let data = load_dir(&movielens_small(), false).unwrap();
    let split = Split::new(&data, &SplitConfig::default()).unwrap();
    let texts: Vec<String> = data.items.iter().map(|i| i.text()).collect();
    // 32 tokens: the overviews' openings, enough text to predict from, in a test's time.
    let encoder = EncoderSource { dir: encoder_dir(), max_tokens: 32 }.load(&Device::Cpu).unwrap();
    let text = embed_all(&encoder, &texts, "test items").unwrap();
    let dim = text.len() / split.n_items;
    let items: Vec<ItemMeta> = data
        .items
        .iter()
        .map(|i| ItemMeta { id: i.id.clone(), title: i.title.clone(), year: None, genres: Vec::new() })
        .collect();
    let train = split.train_matrix();
    let cfg = AlsConfig::default();
    let als = als::fit(&train, &cfg, |_| {});
    let h = Hybrid::fit(FINETUNED, &split, &train, &als, &cfg, &text, dim, items).unwrap();
    assert!(h.scoring.text_weight > 0.0, "validation gives the overviews a weight");

    // Every scale was tried on the pseudo-cold items, and the best (the first of equals) was kept.
    let tried = &h.cold_profile.validation;
    assert_eq!(tried.iter().map(|p| p.0).collect::<Vec<_>>(), COLD_PROFILE);
    assert!(tried.iter().all(|p| p.1 > 0.0 && p.1 <= 1.0), "{tried:?}");
    let best = tried.iter().fold(tried[0], |b, &p| if p.1 > b.1 { p } else { b });
    assert_eq!(h.cold_profile.scale, best.0, "{tried:?}");
    assert!(tried.iter().any(|p| (p.1 - tried[0].1).abs() > 1e-3), "the scale changes the ranking: {tried:?}");

    // The catalogue holds exactly that: cold items' profile text scaled, warm items' as it was.
    let profile = match &h.reduction {
        Some(p) => p.apply_rows(&text),
        None => text.clone(),
    };
    let (width, p) = (h.catalog.text_dim, h.catalog.layout.profile_dims);
    let cold: Vec<usize> = split.cold_items.iter().map(|&i| i as usize).collect();
    let warm = (0..split.n_items).find(|i| !cold.contains(i)).unwrap();
    for (i, scale) in [(cold[0], h.cold_profile.scale), (cold[cold.len() / 2], h.cold_profile.scale), (warm, 1.0)] {
        let row = h.catalog.text.row(i, width);
        for (k, (&got, &want)) in row[..p].iter().zip(&profile[i * p..(i + 1) * p]).enumerate() {
            assert!(
                (got - scale * want).abs() <= 1e-5 * want.abs().max(1.0),
                "item {i} column {k}: {got} vs {scale} × {want}"
            );
        }
    }

    // On the real cold items (test split) the chosen scale ranks at least as well as leaving the
    // text as it was.
    let chosen = cold_auc(&h, &split);
    let unscaled =
        Hybrid { cold_profile: ColdProfile::default(), ..h.clone() }.refit(&split, &als, &cfg, &text, dim).unwrap();
    let plain = cold_auc(&unscaled, &split);
    eprintln!("cold profile × {}: cold AUC {chosen:.4} (× 1: {plain:.4}); pseudo-cold {tried:?}", h.cold_profile.scale);
    assert!(chosen >= plain, "cold AUC {chosen} at × {} vs {plain} unscaled", h.cold_profile.scale);
}
