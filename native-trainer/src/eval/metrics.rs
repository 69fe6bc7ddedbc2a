//! Ranking metrics for one user, from the relevance of each ranked position.
//!
//! `hits[r]` says whether the item at rank `r` (0-based) is relevant; `n_relevant` is the number of
//! relevant items for the user among the candidates. Definitions follow the common ones:
//! recall = hits / relevant; NDCG with binary gains and `log2(rank + 2)` discounts, normalised by the
//! ideal ranking of `min(relevant, K)` hits; MAP@K averages precision at each hit over `min(relevant, K)`.

/// A metric at a cut-off K, computed per user and averaged over users.
pub struct AtK {
    /// Reported as `<name>@<K>`.
    pub name: &'static str,
    /// The user's value from `hits`, their number of relevant items and K.
    pub per_user: fn(hits: &[bool], n_relevant: usize, k: usize) -> f64,
}

/// Every per-user metric at K, in the order tables and reports list them. `coverage@K` (a
/// catalogue-level number) follows them, then AUC.
pub const AT_K: [AtK; 5] = [
    AtK { name: "recall", per_user: recall_at },
    AtK { name: "ndcg", per_user: ndcg_at },
    AtK { name: "map", per_user: average_precision_at },
    AtK { name: "precision", per_user: |hits, _, k| precision_at(hits, k) },
    AtK { name: "hit", per_user: |hits, _, k| hit_rate_at(hits, k) },
];

/// Share of the candidate items that appear in some user's top K.
pub const COVERAGE: &str = "coverage";
/// Area under the ROC curve, over each user's candidates.
pub const AUC: &str = "auc";

/// Column names of a table at the cut-offs `ks`: every metric at each K, then AUC.
pub fn columns(ks: &[usize]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    for k in ks {
        cols.extend(AT_K.iter().map(|m| format!("{}@{k}", m.name)));
        cols.push(format!("{COVERAGE}@{k}"));
    }
    cols.push(AUC.to_string());
    cols
}

pub fn precision_at(hits: &[bool], k: usize) -> f64 {
    count(hits, k) as f64 / k as f64
}

pub fn recall_at(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    if n_relevant == 0 {
        return 0.0;
    }
    count(hits, k) as f64 / n_relevant as f64
}

pub fn hit_rate_at(hits: &[bool], k: usize) -> f64 {
    (count(hits, k) > 0) as u8 as f64
}

pub fn ndcg_at(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    let dcg: f64 = hits.iter().take(k).enumerate().filter(|(_, &h)| h).map(|(r, _)| discount(r)).sum();
    let ideal: f64 = (0..n_relevant.min(k)).map(discount).sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

pub fn average_precision_at(hits: &[bool], n_relevant: usize, k: usize) -> f64 {
    let (mut found, mut sum) = (0usize, 0.0f64);
    for (r, _) in hits.iter().take(k).enumerate().filter(|(_, &h)| h) {
        found += 1;
        sum += found as f64 / (r + 1) as f64;
    }
    let denom = n_relevant.min(k);
    if denom == 0 {
        0.0
    } else {
        sum / denom as f64
    }
}

/// Probability that a random relevant candidate outscores a random irrelevant one (ties count half).
/// `negatives` must be sorted ascending; `None` when either side is empty.
pub fn auc(positives: &[f32], negatives: &[f32]) -> Option<f64> {
    if positives.is_empty() || negatives.is_empty() {
        return None;
    }
    let mut wins = 0.0f64;
    for &p in positives {
        let below = negatives.partition_point(|&n| n < p);
        let not_above = negatives.partition_point(|&n| n <= p);
        wins += below as f64 + 0.5 * (not_above - below) as f64;
    }
    Some(wins / (positives.len() as f64 * negatives.len() as f64))
}

fn count(hits: &[bool], k: usize) -> usize {
    hits.iter().take(k).filter(|&&h| h).count()
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;
    // Ranked list: relevant at ranks 1 and 3 (1-based), 4 relevant items in total.
    const HITS: [bool; 5] = [true, false, true, false, false];

    #[test]
    fn precision_recall_hit() {
        assert!((precision_at(&HITS, 5) - 2.0 / 5.0).abs() < EPS);
        assert!((precision_at(&HITS, 2) - 1.0 / 2.0).abs() < EPS);
        assert!((recall_at(&HITS, 4, 5) - 0.5).abs() < EPS);
        assert!((recall_at(&HITS, 4, 1) - 0.25).abs() < EPS);
        assert_eq!(hit_rate_at(&HITS, 1), 1.0);
        assert_eq!(hit_rate_at(&[false, false, true], 2), 0.0);
    }

    #[test]
    fn ndcg_by_hand() {
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over min(4,5)=4 hits = 1 + 0.63093 + 0.5 + 0.43068.
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5 + 1.0 / 5f64.log2();
        assert!((ndcg_at(&HITS, 4, 5) - 1.5 / idcg).abs() < EPS);
        // At K=2 only rank 1 counts: DCG = 1, IDCG = 1 + 1/log2(3).
        assert!((ndcg_at(&HITS, 4, 2) - 1.0 / (1.0 + 1.0 / 3f64.log2())).abs() < EPS);
        assert_eq!(ndcg_at(&[true], 1, 1), 1.0);
        assert_eq!(ndcg_at(&[false, false], 0, 2), 0.0);
    }

    #[test]
    fn map_by_hand() {
        // Precision at the hits: 1/1 and 2/3; divided by min(4, 5) = 4.
        assert!((average_precision_at(&HITS, 4, 5) - (1.0 + 2.0 / 3.0) / 4.0).abs() < EPS);
        // At K=3 with 2 relevant items: (1 + 2/3) / 2.
        assert!((average_precision_at(&HITS, 2, 3) - (1.0 + 2.0 / 3.0) / 2.0).abs() < EPS);
    }

    #[test]
    fn auc_by_hand_with_ties() {
        // Positives 0.9 and 0.5 against negatives {0.1, 0.5, 0.7}: 0.9 beats 3; 0.5 beats 1, ties 1.
        let auc = auc(&[0.9, 0.5], &[0.1, 0.5, 0.7]).unwrap();
        assert!((auc - (3.0 + 1.5) / 6.0).abs() < EPS);
        assert_eq!(super::auc(&[1.0], &[]), None);
        assert_eq!(super::auc(&[0.3, 0.3], &[0.3]), Some(0.5));
    }
}
