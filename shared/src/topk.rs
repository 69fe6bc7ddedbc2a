//! Bounded-heap top-K selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An item index with its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub index: u32,
    pub score: f32,
}

/// Order used everywhere results are ranked: higher score first, then lower index, so ties
/// resolve the same way on every platform. NaN scores rank below everything.
fn better(a: &Scored, b: &Scored) -> Ordering {
    match (a.score.is_nan(), b.score.is_nan()) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| b.index.cmp(&a.index))
}

/// Heap entry ordered so the heap's top is the *worst* kept item.
struct Worst(Scored);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        better(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        better(&other.0, &self.0)
    }
}

/// The `k` best items among those `keep` accepts, best first: higher score first, then lower
/// index (ties resolve the same way on every platform), NaN scores last.
pub fn top_k(scores: &[f32], k: usize, mut keep: impl FnMut(u32) -> bool) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    for (i, &score) in scores.iter().enumerate() {
        let cand = Scored { index: i as u32, score };
        if heap.len() == k {
            let worst = &heap.peek().expect("heap holds k > 0 items").0;
            if better(&cand, worst) != Ordering::Greater {
                continue;
            }
        }
        if !keep(cand.index) {
            continue;
        }
        heap.push(Worst(cand));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut out: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
    out.sort_by(|a, b| better(b, a));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_best_with_ties_to_lower_index_and_respects_filter() {
        let scores = [0.5, 0.9, 0.9, f32::NAN, 0.1, 0.7];
        let got: Vec<u32> = top_k(&scores, 3, |i| i != 5).iter().map(|s| s.index).collect();
        assert_eq!(got, vec![1, 2, 0]);
    }

    #[test]
    fn matches_a_full_sort() {
        let scores: Vec<f32> = (0..500).map(|i| ((i * 7919) % 263) as f32).collect();
        let mut idx: Vec<u32> = (0..500).collect();
        idx.sort_by(|&a, &b| {
            better(&Scored { index: b, score: scores[b as usize] }, &Scored { index: a, score: scores[a as usize] })
        });
        let got: Vec<u32> = top_k(&scores, 25, |_| true).iter().map(|s| s.index).collect();
        assert_eq!(got, idx[..25]);
    }

    #[test]
    fn k_larger_than_input_returns_all_kept() {
        assert_eq!(top_k(&[1.0, 2.0], 10, |_| true).len(), 2);
        assert!(top_k(&[1.0], 0, |_| true).is_empty());
    }
}
