//! The calibrated blend: a person's history and their typed query on one scale.
//!
//! A score has two parts: the history part `h(j) = cf_weight·u_cf·cf_j + text_weight·u_p·t_j`
//! (likes folded in, the liked items' text profile) and the query part `g(j) = q·f_j` (the query
//! embedding against the item's query columns). Their raw values differ by an order of magnitude
//! and from person to person, so a fixed weight on raw dot products lets one drown the other.
//! Each part is divided by its *lead*: how far its best items stand above a typical one (the mean
//! of the [`LEADERS`] best minus the mean, over the calibration sample), so
//!
//! ```text
//! score(j) = h(j) / lead_h + query_weight · g(j) / lead_g
//! ```
//!
//! and at `query_weight` 1 the query's best matches rise as far as the history's best items do:
//! the weight reads as "how much my words count against my likes". (Dividing by the standard
//! deviation instead let a person with a sharply peaked history drown any query: the history's
//! best items sit 15–20 deviations above the mean, a query's best 4–5.) With query expansion
//! ([`crate::Expansion`]) the query part also holds `e·c̄·cf_j / lead_c`: `c̄` the mean
//! collaborative factor of the query's best text matches, so "a heist with a twist" also reaches
//! what the people who chose heist films chose.
//!
//! Both parts stay linear in the item's vectors, so the blend is still one dot product per item
//! and table (the GPU kernels and int8 scoring are unchanged): only the user's vectors are
//! rescaled. The leads are measured on a fixed, evenly spaced sample of the catalogue
//! ([`CALIBRATION_ITEMS`]), the same items natively and in the browser, so every platform scales
//! identically. Without a query the ranking is that of the history part alone.

use crate::catalog::Catalog;
use crate::linalg::{axpy, dot};
use crate::recommend::{Scoring, UserVector};
use crate::topk::top_k;

/// Items the leads are measured on (every `⌈n / this⌉`-th item).
pub const CALIBRATION_ITEMS: usize = 2048;
/// How many of the sample's best items a part's lead averages over.
pub const LEADERS: usize = 10;

/// A user's vectors for one request, ready to score with (one per table), and the factors the
/// two parts were divided by.
#[derive(Clone, Debug, PartialEq)]
pub struct Blend {
    /// Against the collaborative table.
    pub cf: Vec<f32>,
    /// Against the text table (profile and query columns).
    pub text: Vec<f32>,
    /// `1 / lead_h` (0 when there is no history).
    pub history_scale: f32,
    /// `query_weight / lead_g` (0 without a query).
    pub query_scale: f32,
    /// The query expansion's share of `cf` (already scaled; empty without one), so a reason can
    /// tell the words' part of a score from the history's.
    pub query_cf: Vec<f32>,
}

impl Catalog {
    /// The calibrated vectors for `user` under `s`.
    pub fn blend(&self, s: &Scoring, user: &UserVector) -> Blend {
        let (p, o) = (self.layout.profile_dims, self.layout.query_offset);
        let mut cf = user.cf.clone();
        cf.resize(self.cf_dim, 0.0);
        cf.iter_mut().for_each(|v| *v *= s.cf_weight);
        let mut profile = vec![0f32; p];
        axpy(s.text_weight, &user.profile, &mut profile);
        let history = |j: u32| dot(&cf, &self.cf_row(j)) + dot(&profile, &self.text_row(j)[..p]);
        let history_scale = inverse_lead(self.lead(history));
        let query_scale = match &user.query {
            Some(q) => s.query_weight * inverse_lead(self.lead(|j| dot(q, &self.text_row(j)[o..]))),
            None => 0.0,
        };
        let expansion = match &user.query {
            Some(q) if s.query_weight > 0.0 => self.expansion(s, q),
            _ => None,
        };
        cf.iter_mut().for_each(|v| *v *= history_scale);
        let query_cf = expansion.unwrap_or_default();
        if !query_cf.is_empty() {
            axpy(1.0, &query_cf, &mut cf);
        }
        let mut text = vec![0f32; self.text_dim];
        axpy(history_scale, &profile, &mut text[..p]);
        if let Some(q) = &user.query {
            axpy(query_scale, q, &mut text[o..]);
        }
        Blend { cf, text, history_scale, query_scale, query_cf }
    }

    /// The query part's collaborative vector, already scaled: the mean factor of the query's
    /// `s.expansion.items` best matches, at `query_weight · expansion.weight / lead`. One pass over
    /// the query columns (the only whole-catalogue work besides the ranking itself).
    fn expansion(&self, s: &Scoring, q: &[f32]) -> Option<Vec<f32>> {
        let e = s.expansion;
        if e.items == 0 || e.weight <= 0.0 || self.cf_dim == 0 || s.cf_weight == 0.0 {
            return None;
        }
        let o = self.layout.query_offset;
        let matches: Vec<f32> = (0..self.len() as u32).map(|j| dot(q, &self.text_row(j)[o..])).collect();
        let best = top_k(&matches, e.items as usize, |_| true);
        let mut factors = vec![0f32; self.cf_dim];
        for t in &best {
            axpy(1.0 / best.len() as f32, &self.cf_row(t.index), &mut factors);
        }
        let scale = s.query_weight * e.weight * inverse_lead(self.lead(|j| dot(&factors, &self.cf_row(j))));
        factors.iter_mut().for_each(|v| *v *= scale);
        Some(factors)
    }

    /// How far the best of `f` stand above its mean, over the calibration sample.
    fn lead(&self, f: impl Fn(u32) -> f32) -> f64 {
        let step = self.len().div_ceil(CALIBRATION_ITEMS).max(1);
        let mut values: Vec<f64> = (0..self.len()).step_by(step).map(|j| f(j as u32) as f64).collect();
        if values.is_empty() {
            return 0.0;
        }
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.sort_unstable_by(|a, b| b.total_cmp(a));
        // A tiny catalogue leads with its better half (all of it would lead by nothing).
        let best = &values[..LEADERS.min(values.len().div_ceil(2))];
        best.iter().sum::<f64>() / best.len() as f64 - mean
    }
}

/// `1 / lead`, or 0 for a part that does not vary (no history, an empty query).
fn inverse_lead(lead: f64) -> f32 {
    if lead > 1e-12 && lead.is_finite() {
        (1.0 / lead) as f32
    } else {
        0.0
    }
}
