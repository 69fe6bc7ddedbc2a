//! Splits are deterministic, time-ordered per user, keep cold items out of training entirely, and
//! round-trip through `nook split`'s CSV files.

mod common;

use common::*;
use nook_trainer::data::Dataset;
use nook_trainer::split::{Protocol, Split, SplitConfig};
use std::collections::{HashMap, HashSet};

fn real_data() -> Dataset {
    load_dir(&movielens_small(), false).unwrap()
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn temporal_split_is_deterministic_and_time_ordered() {
    let d = real_data();
    let cfg = SplitConfig::default();
    let a = Split::new(&d, &cfg).unwrap();
    let b = Split::new(&d, &cfg).unwrap();
    assert_eq!((a.train.clone(), a.test.clone(), a.cold_items.clone()), (b.train, b.test, b.cold_items));

    // Per user, every training positive is no later than any valid or test positive.
    let mut latest_train: HashMap<u32, i64> = HashMap::new();
    for i in &a.train {
        let t = latest_train.entry(i.user).or_insert(i64::MIN);
        *t = (*t).max(i.timestamp.unwrap());
    }
    for i in a.valid.iter().chain(&a.test) {
        assert!(i.timestamp.unwrap() >= latest_train[&i.user], "user {} has a test event before training", i.user);
    }
    // Positives only, and roughly 80/10/10.
    assert!(a.train.iter().chain(&a.test).all(|i| i.rating.unwrap() >= 3.5));
    let total = (a.train.len() + a.valid.len() + a.test.len() + a.dropped_unseen) as f64;
    assert!((a.train.len() as f64 / total - 0.8).abs() < 0.02, "train fraction {}", a.train.len() as f64 / total);

    let other_seed = Split::new(&d, &SplitConfig { seed: 7, ..cfg }).unwrap();
    assert_ne!(other_seed.cold_items, a.cold_items, "the seed picks the cold items");
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn cold_items_never_reach_training_and_warm_test_items_are_known() {
    let d = real_data();
    let s = Split::new(&d, &SplitConfig::default()).unwrap();
    let cold: HashSet<u32> = s.cold_items.iter().copied().collect();
    let with_positives: HashSet<u32> =
        d.interactions.iter().filter(|i| i.rating.unwrap() >= 3.5).map(|i| i.item).collect();
    assert_eq!(cold.len(), (with_positives.len() as f64 * 0.1).round() as usize);
    assert!(s.train.iter().chain(&s.valid).chain(&s.test).all(|i| !cold.contains(&i.item)));
    assert!(s.cold.iter().all(|i| cold.contains(&i.item)));
    let train_items: HashSet<u32> = s.train.iter().map(|i| i.item).collect();
    assert!(s.test.iter().chain(&s.valid).all(|i| train_items.contains(&i.item)));
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn leave_last_one_holds_out_each_users_newest_positive() {
    let d = real_data();
    let cfg = SplitConfig { protocol: Protocol::LeaveLastOne, cold_fraction: 0.0, ..SplitConfig::default() };
    let s = Split::new(&d, &cfg).unwrap();
    let mut per_user: HashMap<u32, usize> = HashMap::new();
    s.test.iter().for_each(|i| *per_user.entry(i.user).or_default() += 1);
    assert!(per_user.values().all(|&n| n == 1));
    assert!(s.cold.is_empty() && s.cold_items.is_empty());
}

#[test]
fn implicit_data_is_all_positive_and_min_rating_filters() {
    let dir = dir_with(&[("inter.csv", b"user,item,timestamp\nu,a,1\nu,b,2\nv,a,3\n")]);
    let d = load_generic(&dir.path().join("inter.csv"), None).unwrap();
    let s = Split::new(&d, &SplitConfig { cold_fraction: 0.0, ..SplitConfig::default() }).unwrap();
    assert_eq!(s.train.len() + s.valid.len() + s.test.len() + s.dropped_unseen, 3);

    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes()), ("ratings.csv", RATINGS.as_bytes())]);
    let d = load_dir(dir.path(), false).unwrap();
    let s = Split::new(&d, &SplitConfig { min_rating: 5.0, cold_fraction: 0.0, ..SplitConfig::default() }).unwrap();
    assert_eq!(s.train.len(), 1, "only the 5-star rating is positive");
    let err = Split::new(&d, &SplitConfig { min_rating: 6.0, ..SplitConfig::default() }).unwrap_err().to_string();
    assert!(err.contains("no positives"), "{err}");
}

#[test]
fn bad_split_settings_are_refused() {
    let dir = dir_with(&[("movies.csv", MOVIES.as_bytes()), ("ratings.csv", RATINGS.as_bytes())]);
    let d = load_dir(dir.path(), false).unwrap();
    let err = Split::new(&d, &SplitConfig { ratios: [0.5, 0.1, 0.1], ..SplitConfig::default() }).unwrap_err();
    assert!(err.to_string().contains("--ratios"), "{err}");
    let err = Split::new(&d, &SplitConfig { cold_fraction: 1.0, ..SplitConfig::default() }).unwrap_err();
    assert!(err.to_string().contains("--cold-fraction"), "{err}");
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn written_split_files_match_the_split() {
    let d = real_data();
    let s = Split::new(&d, &SplitConfig::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("split");
    nook_trainer::splitio::write(&dir, &d, &s).unwrap();
    let fit = s.final_fit().train;
    for (name, part) in [
        ("train.csv", &s.train),
        ("test.csv", &s.test),
        ("valid.csv", &s.valid),
        ("cold.csv", &s.cold),
        ("fit.csv", &fit),
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("user,item,rating,timestamp"));
        let rows: Vec<(String, String)> = lines
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[1].to_string())
            })
            .collect();
        let want: Vec<(String, String)> =
            part.iter().map(|i| (d.users[i.user as usize].clone(), d.items[i.item as usize].id.clone())).collect();
        assert_eq!(rows, want, "{name}");
    }
    let cold_items = std::fs::read_to_string(dir.join("cold_items.csv")).unwrap();
    assert_eq!(cold_items.lines().count(), s.cold_items.len() + 1);
}

#[test]
#[ignore = "needs movielens-small (NOOK_MOVIELENS_SMALL or ../shared/data/movielens-small)"]
fn refit_joins_validation_to_training_in_time_order() {
    let d = real_data();
    let s = Split::new(&d, &SplitConfig::default()).unwrap();
    assert!(s.config.refit, "refit is the default protocol");
    let f = s.final_fit();
    assert!(f.valid.is_empty());
    assert_eq!(f.train.len(), s.train.len() + s.valid.len());
    assert_eq!((&f.test, &f.cold, &f.cold_items), (&s.test, &s.cold, &s.cold_items));
    // Per user: the training positives, then the validation ones, each in time order.
    let seqs = f.train_sequences();
    let (train, valid) = (s.train_sequences(), Split { train: s.valid.clone(), ..s.clone() }.train_sequences());
    for u in 0..s.n_users {
        assert_eq!(seqs[u], [train[u].clone(), valid[u].clone()].concat(), "user {u}");
    }
    let ts = |split: &Split| split.train.iter().map(|i| (i.user, i.timestamp)).collect::<Vec<_>>();
    assert!(ts(&f).windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 <= w[1].1)));
    // The test and cold parts stay out of what the final models are fitted on.
    let fitted: HashSet<(u32, u32)> = f.train.iter().map(|i| (i.user, i.item)).collect();
    assert!(s.test.iter().chain(&s.cold).all(|i| !fitted.contains(&(i.user, i.item))));
    // --no-refit: the final models see the training part alone.
    let plain = Split::new(&d, &SplitConfig { refit: false, ..SplitConfig::default() }).unwrap().final_fit();
    assert_eq!((plain.train.len(), plain.valid.len()), (s.train.len(), s.valid.len()));
}
