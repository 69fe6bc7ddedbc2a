//! Hybrid recommendation: collaborative fold-in + text profile + optional query, one scoring path
//! for the trainer's evaluation, `nook recommend` and the browser.
//!
//! For a person with liked items `L` (and disliked `D`) and an optional query embedding `q`:
//!
//! ```text
//! u_cf   = fold-in of L (confidence c⁺) and D (negative preference, confidence c⁻)   [ALS user step]
//! u_text = normalise(mean of the profile columns of L's text vectors)
//! h(j)   = cf_weight · u_cf·cf_j + text_weight · u_text·text_j           (history part)
//! g(j)   = q·query_j                            (query part, the text table's query columns)
//! score(j) = h(j) / lead_h + query_weight · g(j) / lead_g               (see [`crate::blend`])
//! ```
//!
//! Items without interactions carry a collaborative part predicted from their text by the trainer,
//! so they are ranked like any other item.

use crate::blend::Blend;
use crate::catalog::Catalog;
use crate::error::{NookError, Result};
use crate::foldin::{fold_in, RowSolver};
use crate::linalg::{axpy, dot};
use crate::quant::Matrix;
use crate::score::{score_items_many, score_matrix, score_matrix_rows};
use crate::sequence::Sequence;
use crate::topk::{top_k, Scored};
use serde::{Deserialize, Serialize};

/// How the parts of a score are weighted; chosen by the trainer on the validation split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    pub cf_weight: f32,
    pub text_weight: f32,
    /// How much a typed query counts against the history: at 1 the query's best matches lead a
    /// typical item as far as the history's best do (see [`crate::blend`]). Chosen on the query
    /// benchmark's validation part.
    pub query_weight: f32,
    /// Confidence of a like in the fold-in (`1 + alpha` of the ALS model).
    pub like_confidence: f32,
    /// Confidence of a dislike (a negative preference) in the fold-in.
    pub dislike_confidence: f32,
    /// Recent likes count more: a like `h` likes ago weighs `0.5^(h / half_life)` in the fold-in
    /// confidence and the text profile. 0 turns this off.
    #[serde(default)]
    pub recency_half_life: f32,
    /// Query expansion: the query's best text matches lend it their collaborative factors (see
    /// [`crate::blend`]). Off in bundles from before it existed.
    #[serde(default)]
    pub expansion: Expansion,
    /// The text weight of "more like this" ([`Catalog::similar`]): one item's neighbours want less
    /// text than a history does (a single item's text profile is sharply peaked: on
    /// movielens-small the history's weight makes "more like this" a title match). Chosen on the
    /// item-to-item benchmark's validation part; absent in older bundles, which use `text_weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similar_text_weight: Option<f32>,
    /// How the order of likes counts, through the catalogue's sequential rules
    /// ([`crate::sequence`]); absent for models without them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Sequence>,
}

/// Pseudo-relevance feedback for a typed query: the `items` best matches of the query alone
/// stand in for what the words mean in the interactions, and the mean of their collaborative
/// factors joins the query part at `weight` (each part on its own calibrated scale). Words then
/// reach items whose text never says them but that the same people chose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Expansion {
    /// How many best matches (0: no expansion).
    pub items: u32,
    /// Their factors' weight in the query part, relative to the words' own match.
    pub weight: f32,
}

impl Expansion {
    pub const OFF: Self = Self { items: 0, weight: 0.0 };
}

/// Largest weight or confidence a bundle may state; real ones are below 100.
pub const MAX_WEIGHT: f32 = 1e4;

impl Scoring {
    /// Refuses weights a trainer never writes: negative, not finite, or absurdly large (a
    /// tampered manifest must not turn scores into NaN or infinity).
    pub fn check(&self) -> std::result::Result<(), String> {
        let fields = [
            ("cf_weight", self.cf_weight),
            ("text_weight", self.text_weight),
            ("query_weight", self.query_weight),
            ("like_confidence", self.like_confidence),
            ("dislike_confidence", self.dislike_confidence),
            ("recency_half_life", self.recency_half_life),
            ("expansion.weight", self.expansion.weight),
            ("similar_text_weight", self.similar_text_weight.unwrap_or(0.0)),
        ];
        for (name, value) in fields {
            if !(0.0..=MAX_WEIGHT).contains(&value) {
                return Err(format!("scoring.{name} is {value}, outside 0..={MAX_WEIGHT}"));
            }
        }
        if let Some(seq) = &self.sequence {
            seq.check()?;
        }
        if self.expansion.items > 1000 {
            return Err(format!("scoring.expansion.items is {}, over 1000", self.expansion.items));
        }
        Ok(())
    }

    /// Weights of `n` likes listed oldest first (the newest weighs 1).
    pub fn like_weights(&self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|k| {
                let age = (n - 1 - k) as f32;
                if self.recency_half_life > 0.0 {
                    0.5f32.powf(age / self.recency_half_life)
                } else {
                    1.0
                }
            })
            .collect()
    }
}

/// Why an item was recommended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// Mostly the liked item most similar to this one.
    BecauseYouLiked { item: u32 },
    /// Mostly the query.
    MatchesYourSearch,
    /// "More like this" for the item.
    SimilarTo { item: u32 },
    /// Nothing to personalise on yet.
    Popular,
}

/// One ranked result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub index: u32,
    pub score: f32,
    pub reason: Reason,
}

/// A person's signals, by item index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Request {
    /// Liked items, oldest first.
    pub likes: Vec<u32>,
    pub dislikes: Vec<u32>,
    /// Unit-length embedding of the query text.
    pub query: Option<Vec<f32>>,
    pub k: usize,
    /// 0 ranks by relevance alone; up to 1 trades relevance for variety (maximal marginal
    /// relevance over the best candidates).
    pub diversity: f32,
    /// Overrides the bundle's [`Scoring::query_weight`] for this request (a person's "how much
    /// should my words count").
    pub query_weight: Option<f32>,
}

/// The largest query weight a request may ask for.
pub const MAX_QUERY_WEIGHT: f32 = 20.0;

impl Request {
    /// `s` with this request's query weight, if it sets one.
    pub fn scoring(&self, s: &Scoring) -> Scoring {
        Scoring { query_weight: self.query_weight.unwrap_or(s.query_weight), ..*s }
    }
}

/// What [`Catalog::plan`] hands a ranking backend.
#[derive(Clone, Debug)]
pub struct Plan {
    pub user: Option<UserVector>,
    /// The user's calibrated vectors (what a backend scores with), when there is a user.
    pub blend: Option<Blend>,
    /// Items never to return (rated already), sorted.
    pub exclude: Vec<u32>,
    /// How many of the best items the backend should return.
    pub pool: usize,
    /// The order of likes' part ([`crate::sequence`]), added to the blend's scores of the items
    /// it lists (by index; empty when the catalogue has no rules or there are no likes).
    pub sequence: Vec<(u32, f32)>,
}

/// How many candidates MMR re-ranks, at least.
const MMR_POOL: usize = 50;

/// The user side of the score.
#[derive(Clone, Debug, PartialEq)]
pub struct UserVector {
    pub cf: Vec<f32>,
    pub profile: Vec<f32>,
    pub query: Option<Vec<f32>>,
}

impl Catalog {
    /// The user side of the score for these signals. `likes` are listed oldest first.
    pub fn user_vector(
        &self,
        s: &Scoring,
        likes: &[u32],
        dislikes: &[u32],
        query: Option<&[f32]>,
    ) -> Result<UserVector> {
        self.check_indices("likes", likes)?;
        self.check_indices("dislikes", dislikes)?;
        if let Some(q) = query {
            if q.len() != self.query_dim() {
                return Err(NookError::request(format!("query has {} dims, expected {}", q.len(), self.query_dim())));
            }
        }
        let query = query.map(|q| match &self.projection {
            Some(p) => p.apply(q),
            None => q.to_vec(),
        });
        let weights = s.like_weights(likes.len());
        let cols: Vec<u32> = likes.iter().chain(dislikes).copied().collect();
        let conf: Vec<f32> = weights
            .iter()
            .map(|w| 1.0 + (s.like_confidence - 1.0) * w)
            .chain(dislikes.iter().map(|_| -s.dislike_confidence))
            .collect();
        // The fold-in reads only the rated items' rows: gather them (as f32) and solve on those.
        let rows: Vec<f32> = cols.iter().flat_map(|&i| self.cf_row(i).into_owned()).collect();
        let local: Vec<u32> = (0..cols.len() as u32).collect();
        let solver = RowSolver::new(&rows, &self.cf_gram, self.cf_dim);
        let cf = fold_in(&solver, &local, &conf);
        let p = self.layout.profile_dims;
        let mut profile = vec![0f32; p];
        for (&i, &w) in likes.iter().zip(&weights) {
            axpy(w, &self.text_row(i)[..p], &mut profile);
        }
        let norm = dot(&profile, &profile).sqrt();
        if norm > 0.0 {
            profile.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(UserVector { cf, profile, query })
    }

    /// Scores every item for `user` into `out` (the calibrated blend, see [`crate::blend`]).
    pub fn score(&self, s: &Scoring, user: &UserVector, out: &mut [f32]) {
        self.score_blend(&self.blend(s, user), out);
    }

    /// Scores every item with vectors from [`Catalog::blend`].
    pub fn score_blend(&self, b: &Blend, out: &mut [f32]) {
        score_matrix(&self.cf, self.cf_dim, &b.cf, out);
        let mut text_scores = vec![0f32; out.len()];
        score_matrix(&self.text, self.text_dim, &b.text, &mut text_scores);
        out.iter_mut().zip(&text_scores).for_each(|(o, t)| *o += t);
    }

    /// [`Catalog::score_blend`] for several blends, one row of `out` (every item) per blend: the
    /// same bits, with each item's row read once per few blends on f32 tables (evaluation scores
    /// hundreds of people per setting tried).
    pub fn score_blend_many(&self, blends: &[Blend], out: &mut [f32]) {
        let n = self.items.len();
        assert_eq!(out.len(), blends.len() * n, "one row of scores per blend");
        let (Matrix::F32(cf), Matrix::F32(text)) = (&self.cf, &self.text) else {
            blends.iter().zip(out.chunks_exact_mut(n.max(1))).for_each(|(b, o)| self.score_blend(b, o));
            return;
        };
        let part = |table: &[f32], dim: usize, vectors: Vec<&[f32]>, into: &mut [f32]| match dim {
            0 => into.fill(0.0),
            _ => score_items_many(table, dim, &vectors, into),
        };
        part(cf, self.cf_dim, blends.iter().map(|b| b.cf.as_slice()).collect(), out);
        let mut text_scores = vec![0f32; out.len()];
        part(text, self.text_dim, blends.iter().map(|b| b.text.as_slice()).collect(), &mut text_scores);
        out.iter_mut().zip(&text_scores).for_each(|(o, t)| *o += t);
    }

    /// [`Catalog::score_blend`] for just the listed items (the same bits for those items).
    pub fn score_blend_items(&self, b: &Blend, items: &[u32]) -> Vec<f32> {
        let mut out = vec![0f32; items.len()];
        score_matrix_rows(&self.cf, self.cf_dim, &b.cf, items, &mut out);
        let mut text_scores = vec![0f32; items.len()];
        score_matrix_rows(&self.text, self.text_dim, &b.text, items, &mut text_scores);
        out.iter_mut().zip(&text_scores).for_each(|(o, t)| *o += t);
        out
    }

    /// Adds the plan's sequence part to a backend's best `plan.pool` items by the blend alone
    /// (`top`), and returns the best `plan.pool` of the sum. Exact: the part is never negative
    /// (rule weights, decay and the sequence weight are checked non-negative), so an item the
    /// rules do not reach, keeping its blend score, is in the final list only if fewer than
    /// `pool` items beat it on the blend alone, i.e. it was among `top`; the items they do reach
    /// are all scored here.
    pub fn add_sequence(&self, plan: &Plan, blend: &Blend, top: Vec<Scored>) -> Vec<Scored> {
        if plan.sequence.is_empty() {
            return top;
        }
        let allowed = |i: u32| plan.exclude.binary_search(&i).is_err();
        let part = |i: u32| plan.sequence.binary_search_by_key(&i, |p| p.0).map_or(0.0, |at| plan.sequence[at].1);
        let mut candidates: Vec<Scored> =
            top.iter().map(|t| Scored { index: t.index, score: t.score + part(t.index) }).collect();
        let mut listed: Vec<u32> = top.iter().map(|t| t.index).collect();
        listed.sort_unstable();
        let reached: Vec<u32> =
            plan.sequence.iter().map(|p| p.0).filter(|&i| allowed(i) && listed.binary_search(&i).is_err()).collect();
        let scores = self.score_blend_items(blend, &reached);
        candidates.extend(reached.iter().zip(&scores).map(|(&i, &f)| Scored { index: i, score: f + part(i) }));
        // By item index, so ties at the cut go to the lower index as on the CPU.
        candidates.sort_unstable_by_key(|c| c.index);
        let values: Vec<f32> = candidates.iter().map(|c| c.score).collect();
        top_k(&values, plan.pool, |_| true).into_iter().map(|s| candidates[s.index as usize]).collect()
    }

    /// The `k` best items the person has not already rated, with reasons (ranked on the CPU).
    pub fn recommend(&self, s: &Scoring, req: &Request) -> Result<Vec<Recommendation>> {
        let plan = self.plan(s, req)?;
        let top = match &plan.blend {
            Some(blend) => {
                let mut scores = vec![0f32; self.len()];
                self.score_blend(blend, &mut scores);
                plan.sequence.iter().for_each(|&(j, r)| scores[j as usize] += r);
                top_k(&scores, plan.pool, |i| plan.exclude.binary_search(&i).is_err())
            }
            None => top_k(&self.popularity, plan.pool, |i| plan.exclude.binary_search(&i).is_err()),
        };
        Ok(self.finish(req, &plan, top))
    }

    /// "More like this": the `k` items most like `item`, scored as for a person whose one signal
    /// is having liked it (its collaborative fold-in and its text, the history part of the blend,
    /// text weighed by [`Scoring::similar_text_weight`], plus the sequential rules' part when the
    /// catalogue has rules, weighed by [`Sequence::similar_weight`]: what people liked next after
    /// it), so the neighbours are what the people who chose it chose, and for an item nobody
    /// chose yet, what its text predicts they would. `item` and `exclude` are never returned.
    pub fn similar(&self, s: &Scoring, item: u32, k: usize, exclude: &[u32]) -> Result<Vec<Recommendation>> {
        self.check_indices("item", &[item])?;
        self.check_indices("exclude", exclude)?;
        let mut scores = vec![0f32; self.len()];
        self.similarity(s, item, &mut scores)?;
        let mut skip: Vec<u32> = exclude.iter().copied().chain([item]).collect();
        skip.sort_unstable();
        let top = top_k(&scores, k, |i| skip.binary_search(&i).is_err());
        Ok(top
            .into_iter()
            .map(|t| Recommendation { index: t.index, score: t.score, reason: Reason::SimilarTo { item } })
            .collect())
    }

    /// Every item's similarity to `item` into `out` (what [`Catalog::similar`] ranks by).
    pub fn similarity(&self, s: &Scoring, item: u32, out: &mut [f32]) -> Result<()> {
        let s = &Scoring {
            text_weight: s.similar_text_weight.unwrap_or(s.text_weight),
            sequence: s.sequence.map(|q| Sequence { weight: q.similar_weight.unwrap_or(q.weight), ..q }),
            ..*s
        };
        let user = self.user_vector(s, &[item], &[], None)?;
        self.score(s, &user, out);
        for (j, part) in self.sequence_part(s, &[item]) {
            out[j as usize] += part;
        }
        Ok(())
    }

    /// Everything a ranking backend needs for `req`: the user vector (`None` when there is nothing
    /// to personalise on, so popularity ranks), the sorted items to skip, and how many to fetch.
    pub fn plan(&self, s: &Scoring, req: &Request) -> Result<Plan> {
        self.check_indices("likes", &req.likes)?;
        self.check_indices("dislikes", &req.dislikes)?;
        if !(0.0..=1.0).contains(&req.diversity) {
            return Err(NookError::request(format!("diversity must be in [0, 1], got {}", req.diversity)));
        }
        if let Some(w) = req.query_weight.filter(|w| !(0.0..=MAX_QUERY_WEIGHT).contains(w)) {
            return Err(NookError::request(format!("query weight must be in [0, {MAX_QUERY_WEIGHT}], got {w}")));
        }
        let s = &req.scoring(s);
        let mut exclude: Vec<u32> = req.likes.iter().chain(&req.dislikes).copied().collect();
        exclude.sort_unstable();
        exclude.dedup();
        let personal = !req.likes.is_empty() || !req.dislikes.is_empty() || req.query.is_some();
        let user =
            if personal { Some(self.user_vector(s, &req.likes, &req.dislikes, req.query.as_deref())?) } else { None };
        let sequence = self.sequence_part(s, &req.likes);
        let s = &self.words_against_both_parts(s, req, &sequence);
        let blend = user.as_ref().map(|u| self.blend(s, u));
        let pool = if req.diversity > 0.0 { (req.k * 3).max(MMR_POOL) } else { req.k };
        Ok(Plan { user, blend, exclude, pool, sequence })
    }

    /// With a query and an order part, the likes lift their best items twice: through the history
    /// (by about 1 on the calibrated scale) and through their order (by up to the part's largest
    /// value `m`, often several times its weight: a table's row is peaked). The query's weight
    /// means "how much my words count against my likes", so it counts against both together:
    /// `query_weight · (1 + m)`, ranking as the likes' two parts shrunk back to the history's
    /// scale. Without this a typed mood lost to a strong order part (a person who had just liked
    /// Star Wars got Return of the Jedi first whatever they typed). Without a query, or when the
    /// order part reaches nothing, nothing changes.
    fn words_against_both_parts(&self, s: &Scoring, req: &Request, sequence: &[(u32, f32)]) -> Scoring {
        let lift = sequence.iter().map(|&(_, v)| v).fold(0f32, f32::max);
        match req.query.is_some() && lift > 0.0 {
            true => Scoring { query_weight: s.query_weight * (1.0 + lift), ..*s },
            false => *s,
        }
    }

    /// The order of likes' part of the score for `likes` (see [`crate::sequence`]): empty without
    /// rules in the catalogue or a sequence weight in `s`.
    pub fn sequence_part(&self, s: &Scoring, likes: &[u32]) -> Vec<(u32, f32)> {
        match (&self.rules, &s.sequence) {
            (Some(rules), Some(seq)) => rules.part(seq, likes),
            _ => Vec::new(),
        }
    }

    /// Turns the backend's best `plan.pool` items into the final list: MMR when diversity is asked
    /// for, and a reason for each.
    pub fn finish(&self, req: &Request, plan: &Plan, top: Vec<Scored>) -> Vec<Recommendation> {
        let top = if req.diversity > 0.0 { self.mmr(top, req.k, req.diversity) } else { top };
        top.into_iter()
            .map(|t| Recommendation {
                index: t.index,
                score: t.score,
                reason: self.reason(plan.user.as_ref().zip(plan.blend.as_ref()), &req.likes, t.index),
            })
            .collect()
    }

    fn reason(&self, user: Option<(&UserVector, &Blend)>, likes: &[u32], item: u32) -> Reason {
        let Some((user, blend)) = user else { return Reason::Popular };
        if let Some(q) = &user.query {
            // Both parts on the calibrated scale the ranking used.
            let (text, cf) = (self.text_row(item), self.cf_row(item));
            let expanded = if blend.query_cf.is_empty() { 0.0 } else { dot(&blend.query_cf, &cf) };
            let from_query = blend.query_scale * dot(q, &text[self.layout.query_offset..]) + expanded;
            let p = self.layout.profile_dims;
            let from_likes = dot(&blend.cf, &cf) - expanded + dot(&blend.text[..p], &text[..p]);
            if from_query >= from_likes || likes.is_empty() {
                return Reason::MatchesYourSearch;
            }
        }
        let similarity =
            |i: u32| cosine(&self.text_row(i), &self.text_row(item)) + cosine(&self.cf_row(i), &self.cf_row(item));
        likes
            .iter()
            .copied()
            .map(|i| (i, similarity(i)))
            .fold(None, |best: Option<(u32, f32)>, (i, sim)| match best {
                Some((_, b)) if b >= sim => best,
                _ => Some((i, sim)),
            })
            .map_or(Reason::Popular, |(i, _)| Reason::BecauseYouLiked { item: i })
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let denom = (dot(a, a) * dot(b, b)).sqrt();
    if denom > 0.0 {
        dot(a, b) / denom
    } else {
        0.0
    }
}
