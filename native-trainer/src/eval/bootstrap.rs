//! Paired bootstrap over test users (Efron & Tibshirani 1993; as recommended for recommender
//! comparisons by Sakai 2014): resample the users with replacement, recompute the mean of each
//! user's difference between two models, and read the 95% interval off the 2.5th and 97.5th
//! percentiles. Pairing (both models on the same resampled users) is what makes small
//! differences between close models measurable.

use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resamples per comparison.
pub const RESAMPLES: usize = 2000;

/// Per-user values of the metrics intervals are reported for, by metric name; a user with no
/// value (AUC without negatives) holds NaN.
pub type PerUser = BTreeMap<String, Vec<f64>>;

/// The metrics compared, per split: the headline ranking metric and a recall.
pub fn compared_metrics(split: &str) -> &'static [&'static str] {
    match split {
        "cold" => &["auc", "recall@20", "ndcg@10"],
        _ => &["ndcg@10", "recall@20"],
    }
}

/// `model − baseline` on one metric, with its 95% paired-bootstrap interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Difference {
    pub model: String,
    pub baseline: String,
    pub split: String,
    pub metric: String,
    pub model_value: f64,
    pub baseline_value: f64,
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    pub users: usize,
    pub resamples: usize,
}

impl Difference {
    /// Whether the interval excludes zero.
    pub fn significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// The mean difference of paired values `a − b` (pairs where either is NaN left out) and its 95%
/// percentile interval over `resamples` seeded resamples; `None` without pairs.
pub fn paired(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64, f64)> {
    let d: Vec<f64> = a.iter().zip(b).filter(|(x, y)| !x.is_nan() && !y.is_nan()).map(|(x, y)| x - y).collect();
    if d.is_empty() {
        return None;
    }
    let n = d.len();
    let mean = d.iter().sum::<f64>() / n as f64;
    let mut rng = Rng::stream(seed, "bootstrap");
    let mut means: Vec<f64> = (0..resamples).map(|_| (0..n).map(|_| d[rng.below(n)]).sum::<f64>() / n as f64).collect();
    means.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64) as usize).min(resamples - 1)];
    Some((mean, at(0.025), at(0.975)))
}

/// Models that rank cold items (no training positives) by nothing: on cold items they are all
/// random, and comparisons with them say nothing.
const BLIND_TO_COLD: [&str; 9] = ["pop", "random", "als", "bpr", "ease", "rp3b", "als-recency", "sr", "slit"];

/// Which comparisons a table reports on `split`: every model against `ease`, and each model
/// against its ablation (what the one change it makes is worth); on cold items only those
/// between models that can rank them.
pub fn comparisons(models: &[String], split: &str) -> Vec<(String, String)> {
    let all = all_comparisons(models);
    match split {
        "cold" => {
            all.into_iter().filter(|(m, b)| ![m, b].iter().any(|x| BLIND_TO_COLD.contains(&x.as_str()))).collect()
        }
        _ => all,
    }
}

fn all_comparisons(models: &[String]) -> Vec<(String, String)> {
    const ABLATIONS: [(&str, &str); 10] = [
        ("fused-sr", "fused-ft"),
        ("fused-sr", "sr"),
        ("fused-sr", "slit"),
        ("slit", "sr"),
        ("fused-ft", "als-recency"),
        ("hybrid", "als-recency"),
        ("fused-ft", "hybrid"),
        ("content-ft", "content"),
        ("als-recency", "als"),
        ("ease", "als"),
    ];
    let has = |m: &str| models.iter().any(|x| x == m);
    let mut out: Vec<(String, String)> = Vec::new();
    if has("ease") {
        out.extend(models.iter().filter(|m| *m != "ease").map(|m| (m.clone(), "ease".to_string())));
    }
    for (m, b) in ABLATIONS {
        if has(m) && has(b) && !out.iter().any(|(x, y)| x == m && y == b) {
            out.push((m.to_string(), b.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_difference_has_a_point_interval() {
        let a = vec![0.5; 50];
        let b = vec![0.25; 50];
        let (d, lo, hi) = paired(&a, &b, 500, 1).unwrap();
        assert_eq!((d, lo, hi), (0.25, 0.25, 0.25));
    }

    #[test]
    fn the_interval_covers_the_mean_and_narrows_with_more_users() {
        let mut rng = Rng::stream(3, "t");
        let noisy = |n: usize, rng: &mut Rng| -> (Vec<f64>, Vec<f64>) {
            let b: Vec<f64> = (0..n).map(|_| rng.f32() as f64).collect();
            let a = b.iter().map(|x| x + 0.05 + 0.2 * (rng.f32() as f64 - 0.5)).collect();
            (a, b)
        };
        let (a, b) = noisy(100, &mut rng);
        let (d, lo, hi) = paired(&a, &b, 1000, 1).unwrap();
        assert!(lo < d && d < hi && lo > 0.0, "{lo} < {d} < {hi}");
        let (a2, b2) = noisy(10_000, &mut rng);
        let (_, lo2, hi2) = paired(&a2, &b2, 1000, 1).unwrap();
        assert!(hi2 - lo2 < (hi - lo) / 4.0, "100x the users: {} vs {}", hi2 - lo2, hi - lo);
        // NaN pairs are left out; none at all gives no interval.
        assert!(paired(&[f64::NAN], &[1.0], 10, 1).is_none());
    }

    #[test]
    fn every_model_meets_ease_and_its_ablation() {
        let models: Vec<String> =
            ["pop", "als", "ease", "als-recency", "fused-ft"].iter().map(|s| s.to_string()).collect();
        let c = comparisons(&models, "warm");
        assert!(c.contains(&("fused-ft".into(), "ease".into())));
        assert!(c.contains(&("fused-ft".into(), "als-recency".into())));
        assert!(c.contains(&("als-recency".into(), "als".into())));
        assert!(!c.iter().any(|(m, b)| m == b));
        // On cold items only models that can rank them meet.
        let cold = comparisons(&["content".into(), "content-ft".into(), "ease".into(), "fused-ft".into()], "cold");
        assert_eq!(cold, vec![("content-ft".to_string(), "content".to_string())]);
    }
}
