//! Maximal marginal relevance (Carbonell & Goldstein 1998): the diversity re-ranking behind the
//! page's variety slider and `--diversity`.

use crate::catalog::Catalog;
use crate::linalg::dot;
use crate::topk::Scored;
use std::borrow::Cow;

impl Catalog {
    /// Maximal marginal relevance (Carbonell & Goldstein 1998): repeatedly take the candidate with
    /// the best `(1 − d)·relevance − d·(highest similarity to those already taken)`, relevance
    /// rescaled to [0, 1] over the pool. Results keep their original scores.
    pub(crate) fn mmr(&self, pool: Vec<Scored>, k: usize, diversity: f32) -> Vec<Scored> {
        if pool.is_empty() {
            return pool;
        }
        let (hi, lo) = (pool[0].score, pool[pool.len() - 1].score);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let unit = |v: Cow<'_, [f32]>| -> Vec<f32> {
            let n = dot(&v, &v).sqrt();
            v.iter().map(|x| if n > 0.0 { x / n } else { 0.0 }).collect()
        };
        let vectors: Vec<(Vec<f32>, Vec<f32>)> =
            pool.iter().map(|c| (unit(self.cf_row(c.index)), unit(self.text_row(c.index)))).collect();
        let mut closest = vec![f32::NEG_INFINITY; pool.len()];
        let mut taken = vec![false; pool.len()];
        let mut out = Vec::with_capacity(k);
        while out.len() < k.min(pool.len()) {
            let mut best: Option<(usize, f32)> = None;
            for (i, c) in pool.iter().enumerate().filter(|(i, _)| !taken[*i]) {
                let relevance = (c.score - lo) / span;
                let penalty = if out.is_empty() { 0.0 } else { closest[i] };
                let value = (1.0 - diversity) * relevance - diversity * penalty;
                if best.is_none_or(|(_, b)| value > b) {
                    best = Some((i, value));
                }
            }
            let (chosen, _) = best.expect("pool has untaken candidates");
            taken[chosen] = true;
            out.push(pool[chosen]);
            let (cf, text) = &vectors[chosen];
            for (i, (cf_i, text_i)) in vectors.iter().enumerate().filter(|(i, _)| !taken[*i]) {
                let sim = 0.5 * (dot(cf, cf_i) + dot(text, text_i));
                closest[i] = closest[i].max(sim);
            }
        }
        out
    }
}
