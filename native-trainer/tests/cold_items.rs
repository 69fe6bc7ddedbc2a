//! Items nobody has interacted with yet, in the fused model: their collaborative part is predicted
//! from their text (with the popularity prior), and their profile text is scaled, as a pseudo-cold
//! validation chose — on
//! MovieLens latest-small with the frozen encoder's vectors of the plot overviews; and on the same
//! data with half the items' text taken away.

mod common;

use candle_core::Device;
use common::*;
use nook_core::ItemMeta;
use nook_trainer::eval::{evaluate, EvalSet, Target};
use nook_trainer::models::hybrid::{
    user_vectors, ColdProfile, Hybrid, HybridScorer, COLD_POPULARITY, COLD_PROFILE, FINETUNED,
};
use nook_trainer::models::{als, AlsConfig};
use nook_trainer::split::{Split, SplitConfig};
use nook_trainer::textvec::{embed_all, EncoderSource};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Cold-split AUC of a fitted family's fused model.
fn cold_auc(h: &Hybrid, split: &Split) -> f64 {
    let train = split.train_matrix();
    let users = user_vectors(&h.catalog, &h.scoring, &split.train_sequences());
    let scorer = HybridScorer { name: "fused", catalog: &h.catalog, scoring: h.scoring, users: Cow::Owned(users) };
    let set = EvalSet::new(split, &train, Target::Cold);
    evaluate(&scorer, &set, &[10]).iter().find(|r| r.metric == "auc").expect("auc is reported").value
}

/// movielens-small, its split, its items, the frozen encoder's vectors of their texts (and of an
/// empty text) and ALS: computed once for the tests of this file.
struct Fixture {
    split: Split,
    items: Vec<ItemMeta>,
    text: Vec<f32>,
    empty_text: Vec<f32>,
    dim: usize,
    als: nook_trainer::models::Factors,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = load_dir(&movielens_small(), false).unwrap();
        let split = Split::new(&data, &SplitConfig::default()).unwrap();
        let texts: Vec<String> = data.items.iter().map(|i| i.text()).collect();
        // 32 tokens: the overviews' openings, enough text to predict from, in a test's time.
        let encoder = EncoderSource { dir: encoder_dir(), max_tokens: 32 }.load(&Device::Cpu).unwrap();
        let text = embed_all(&encoder, &texts, "test items").unwrap();
        let empty_text = embed_all(&encoder, &[String::new()], "empty text").unwrap();
        let dim = text.len() / split.n_items;
        let items = data
            .items
            .iter()
            .map(|i| ItemMeta { id: i.id.clone(), title: i.title.clone(), year: None, genres: Vec::new() })
            .collect();
        let als = als::fit(&split.train_matrix(), &AlsConfig::default(), |_| {});
        Fixture { split, items, text, empty_text, dim, als }
    })
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn a_cold_items_profile_text_and_popularity_prior_are_what_pseudo_cold_validation_chose() {
    let Fixture { split, items, text, dim, als, .. } = fixture();
    let (split, dim, cfg) = (split, *dim, AlsConfig::default());
    let train = split.train_matrix();
    let h = Hybrid::fit(FINETUNED, split, &train, als, &cfg, text, dim, items.clone()).unwrap();
    assert!(h.scoring.text_weight > 0.0, "validation gives the overviews a weight");

    // Every scale was tried on the pseudo-cold items, and the best (the first of equals) was kept.
    let tried = &h.cold_profile.validation;
    assert_eq!(tried.iter().map(|p| p.0).collect::<Vec<_>>(), COLD_PROFILE);
    assert!(tried.iter().all(|p| p.1 > 0.0 && p.1 <= 1.0), "{tried:?}");
    let best = tried.iter().fold(tried[0], |b, &p| if p.1 > b.1 { p } else { b });
    assert_eq!(h.cold_profile.scale, best.0, "{tried:?}");
    assert!(tried.iter().any(|p| (p.1 - tried[0].1).abs() > 1e-3), "the scale changes the ranking: {tried:?}");
    // Then every prior weight at that scale (the first, none, is the scale's own reading).
    let priors = &h.cold_profile.popularity_validation;
    assert_eq!(priors.iter().map(|p| p.0).collect::<Vec<_>>(), COLD_POPULARITY);
    assert_eq!(priors[0].1, best.1, "{priors:?}");
    let best_prior = priors.iter().fold(priors[0], |b, &p| if p.1 > b.1 { p } else { b });
    assert_eq!(h.cold_profile.popularity, best_prior.0, "{priors:?}");
    assert!(priors.iter().any(|p| (p.1 - priors[0].1).abs() > 1e-3), "the prior changes the ranking: {priors:?}");

    // The catalogue holds exactly that: cold items' profile text scaled, warm items' as it was.
    let profile = match &h.reduction {
        Some(p) => p.apply_rows(text),
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

    // The prior moves cold items' factors along the mean person only; warm items keep theirs.
    let no_prior = ColdProfile { popularity: 0.0, ..h.cold_profile.clone() };
    let without = Hybrid { cold_profile: no_prior, ..h.clone() }.refit(split, als, &cfg, text, dim).unwrap();
    let k = als.dim;
    let n_users = als.users.len() / k;
    let mean: Vec<f32> = (0..k).map(|c| als.users.iter().skip(c).step_by(k).sum::<f32>() / n_users as f32).collect();
    for i in [cold[0], cold[cold.len() / 2], warm] {
        let (a, b) = (h.catalog.cf.row(i, k), without.catalog.cf.row(i, k));
        let shift: Vec<f32> = a.iter().zip(b.iter()).map(|(x, y)| x - y).collect();
        let along = shift.iter().zip(&mean).map(|(s, m)| s * m).sum::<f32>() / mean.iter().map(|m| m * m).sum::<f32>();
        for (c, (&s, &m)) in shift.iter().zip(&mean).enumerate() {
            assert!((s - along * m).abs() <= 1e-4, "item {i} column {c}: shift {s} is not along the mean person");
        }
        assert_eq!(along == 0.0, i == warm || h.cold_profile.popularity == 0.0, "item {i}: shift {along}");
    }

    // On the real cold items (test split) the chosen profile ranks at least as well as leaving
    // the text as it was without a prior.
    let chosen = cold_auc(&h, split);
    let unscaled =
        Hybrid { cold_profile: ColdProfile::default(), ..h.clone() }.refit(split, als, &cfg, text, dim).unwrap();
    let plain = cold_auc(&unscaled, split);
    let c = &h.cold_profile;
    eprintln!(
        "cold profile × {}, prior {}: cold AUC {chosen:.4} (× 1: {plain:.4}); pseudo-cold {tried:?} {priors:?}",
        c.scale, c.popularity
    );
    assert!(chosen >= plain, "cold AUC {chosen} at × {}, prior {} vs {plain} unscaled", c.scale, c.popularity);
}

/// Data where only some items have text must not throw the text models off: with half the
/// items' text empty (seeded), the fused model still ranks the cold items far above random, and
/// the cold items that kept their text better than those that lost it.
#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn half_the_items_without_text_still_rank_cold_items_above_random() {
    let Fixture { split, items, text, empty_text, dim, als } = fixture();
    let (dim, cfg) = (*dim, AlsConfig::default());
    let mut order: Vec<usize> = (0..split.n_items).collect();
    nook_trainer::rng::Rng::stream(7, "textless-items").shuffle(&mut order);
    let mut textless = vec![false; split.n_items];
    let mut partial = text.clone();
    for &i in &order[..split.n_items / 2] {
        textless[i] = true;
        partial[i * dim..(i + 1) * dim].copy_from_slice(empty_text);
    }
    let train = split.train_matrix();
    let h = Hybrid::fit(FINETUNED, split, &train, als, &cfg, &partial, dim, items.clone()).unwrap();
    let auc = cold_auc(&h, split);
    // The same model's AUC on the cold positives of items with and without text, each against
    // every cold candidate.
    let (with, without) = cold_auc_by(&h, split, |i| !textless[i as usize]);
    eprintln!("half the text empty: cold AUC {auc:.4}; positives with text {with:.4}, without {without:.4}");
    assert!(auc > 0.65, "cold AUC {auc} with half the items' text empty");
    assert!(without > 0.5, "cold items without text are ranked below random ({without})");
    assert!(with > without, "text should help: {with} with vs {without} without");
}

/// Cold-split AUC of `h`'s fused model, split by whether each positive passes `keep`: the mean
/// over people of the share of (positive, cold negative) pairs ordered right, for each group.
fn cold_auc_by(h: &Hybrid, split: &Split, keep: impl Fn(u32) -> bool) -> (f64, f64) {
    let train = split.train_matrix();
    let set = EvalSet::new(split, &train, Target::Cold);
    let users = user_vectors(&h.catalog, &h.scoring, &split.train_sequences());
    let mut scores = vec![0f32; split.n_items];
    let mut sums = [(0f64, 0usize); 2];
    for (user, relevant) in &set.users {
        h.catalog.score(&h.scoring, &users[*user as usize], &mut scores);
        let negatives: Vec<f32> = (0..split.n_items as u32)
            .filter(|&i| set.eligible(*user, i) && relevant.binary_search(&i).is_err())
            .map(|i| scores[i as usize])
            .collect();
        for (g, group) in [true, false].into_iter().enumerate() {
            let pos: Vec<f32> = relevant.iter().filter(|&&i| keep(i) == group).map(|&i| scores[i as usize]).collect();
            if pos.is_empty() || negatives.is_empty() {
                continue;
            }
            let right: f64 = pos
                .iter()
                .map(|&p| {
                    negatives
                        .iter()
                        .map(|&n| {
                            if p > n {
                                1.0
                            } else if p == n {
                                0.5
                            } else {
                                0.0
                            }
                        })
                        .sum::<f64>()
                })
                .sum();
            sums[g].0 += right / (pos.len() * negatives.len()) as f64;
            sums[g].1 += 1;
        }
    }
    let mean = |(s, n): (f64, usize)| s / n.max(1) as f64;
    (mean(sums[0]), mean(sums[1]))
}
