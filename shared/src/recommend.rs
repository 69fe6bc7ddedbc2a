//! Hybrid recommendation: collaborative fold-in + text profile + optional query, one scoring path
//! for the trainer's evaluation, `nook recommend` and the browser.
//!
//! For a person with liked items `L` (and disliked `D`) and an optional query embedding `q`:
//!
//! ```text
//! u_cf   = fold-in of L (confidence c⁺) and D (negative preference, confidence c⁻)   [ALS user step]
//! u_text = normalise(mean of text vectors of L)
//! score(j) = cf_weight · u_cf·cf_j + text_weight · u_text·text_j + query_weight · q·text_j
//! ```
//!
//! Items without interactions carry a collaborative part predicted from their text by the trainer,
//! so they are ranked like any other item.

use crate::error::{NookError, Result};
use crate::foldin::{fold_in, RowSolver};
use crate::linalg::{axpy, dot};
use crate::quant::Matrix;
use crate::topk::{top_k, Scored};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// Display metadata of one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ItemMeta {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub genres: Vec<String>,
}

/// How the parts of a score are weighted; chosen by the trainer on the validation split.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    pub cf_weight: f32,
    pub text_weight: f32,
    pub query_weight: f32,
    /// Confidence of a like in the fold-in (`1 + alpha` of the ALS model).
    pub like_confidence: f32,
    /// Confidence of a dislike (a negative preference) in the fold-in.
    pub dislike_confidence: f32,
    /// Recent likes count more: a like `h` likes ago weighs `0.5^(h / half_life)` in the fold-in
    /// confidence and the text profile. 0 turns this off.
    #[serde(default)]
    pub recency_half_life: f32,
}

impl Scoring {
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

/// Every item's vectors and metadata.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub items: Vec<ItemMeta>,
    /// Collaborative factors, `n x cf_dim` (f32 or int8 rows).
    pub cf: Matrix,
    pub cf_dim: usize,
    /// `YᵀY + λI` of the collaborative factors (`cf_dim x cf_dim`), for fold-in.
    pub cf_gram: Vec<f32>,
    /// Unit-length text embeddings, `n x text_dim` (f32 or int8 rows).
    pub text: Matrix,
    pub text_dim: usize,
    /// Training popularity, used when a person has given nothing to go on.
    pub popularity: Vec<f32>,
    /// When the text vectors were reduced (e.g. by PCA), the map a query embedding goes through.
    pub projection: Option<Projection>,
    index: HashMap<String, u32>,
}

/// A linear reduction of embeddings: `z = C (x − mean)`, `C` row-major `out_dim x in_dim`.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub mean: Vec<f32>,
    pub components: Vec<f32>,
    pub in_dim: usize,
    pub out_dim: usize,
}

impl Projection {
    pub fn new(mean: Vec<f32>, components: Vec<f32>, out_dim: usize) -> Result<Self> {
        let in_dim = mean.len();
        if in_dim == 0 || out_dim == 0 || components.len() != in_dim * out_dim {
            return Err(NookError::bundle(format!(
                "projection has {} values, expected {out_dim} x {in_dim}",
                components.len()
            )));
        }
        Ok(Self { mean, components, in_dim, out_dim })
    }

    /// Projects one embedding.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        let centred: Vec<f32> = x.iter().zip(&self.mean).map(|(a, m)| a - m).collect();
        self.components.chunks_exact(self.in_dim).map(|row| dot(row, &centred)).collect()
    }

    /// Projects row-major `n x in_dim` embeddings.
    pub fn apply_rows(&self, rows: &[f32]) -> Vec<f32> {
        rows.chunks_exact(self.in_dim).flat_map(|r| self.apply(r)).collect()
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
}

/// What [`Catalog::plan`] hands a ranking backend.
#[derive(Clone, Debug)]
pub struct Plan {
    pub user: Option<UserVector>,
    /// Items never to return (rated already), sorted.
    pub exclude: Vec<u32>,
    /// How many of the best items the backend should return.
    pub pool: usize,
}

/// The per-table query vectors of a score: `cf_weight · u_cf` and `text_weight · profile +
/// query_weight · query`.
pub fn query_vectors(s: &Scoring, user: &UserVector, cf_dim: usize, text_dim: usize) -> (Vec<f32>, Vec<f32>) {
    let mut cf_user = user.cf.clone();
    cf_user.resize(cf_dim, 0.0);
    cf_user.iter_mut().for_each(|v| *v *= s.cf_weight);
    let mut text_user = vec![0f32; text_dim];
    axpy(s.text_weight, &user.profile, &mut text_user);
    if let Some(q) = &user.query {
        axpy(s.query_weight, q, &mut text_user);
    }
    (cf_user, text_user)
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
    /// Checks shapes and builds the id index (f32 tables).
    pub fn new(
        items: Vec<ItemMeta>,
        cf: Vec<f32>,
        cf_dim: usize,
        cf_gram: Vec<f32>,
        text: Vec<f32>,
        text_dim: usize,
        popularity: Vec<f32>,
    ) -> Result<Self> {
        Self::from_matrices(items, Matrix::F32(cf), cf_dim, cf_gram, Matrix::F32(text), text_dim, popularity)
    }

    /// Checks shapes and builds the id index, for tables in any storage.
    pub fn from_matrices(
        items: Vec<ItemMeta>,
        cf: Matrix,
        cf_dim: usize,
        cf_gram: Vec<f32>,
        text: Matrix,
        text_dim: usize,
        popularity: Vec<f32>,
    ) -> Result<Self> {
        let n = items.len();
        if cf_dim == 0 || text_dim == 0 {
            return Err(NookError::bundle("zero-width item vectors"));
        }
        for (what, m, dim) in [("cf", &cf, cf_dim), ("text", &text, text_dim)] {
            if m.rows(dim) != Some(n) {
                return Err(NookError::bundle(format!("{what} does not hold {n} rows of {dim} values")));
            }
        }
        if cf_gram.len() != cf_dim * cf_dim {
            return Err(NookError::bundle(format!(
                "cf_gram has {} values, expected {}",
                cf_gram.len(),
                cf_dim * cf_dim
            )));
        }
        if popularity.len() != n {
            return Err(NookError::bundle(format!("popularity has {} values, expected {n}", popularity.len())));
        }
        let mut index = HashMap::with_capacity(n);
        for (i, item) in items.iter().enumerate() {
            if index.insert(item.id.clone(), i as u32).is_some() {
                return Err(NookError::bundle(format!("item id {:?} appears twice", item.id)));
            }
        }
        Ok(Self { items, cf, cf_dim, cf_gram, text, text_dim, popularity, projection: None, index })
    }

    /// Declares that the text vectors were reduced by `projection` (queries go through it too).
    pub fn with_projection(mut self, projection: Projection) -> Result<Self> {
        if projection.out_dim != self.text_dim {
            return Err(NookError::bundle(format!(
                "projection gives {} dims, the text vectors have {}",
                projection.out_dim, self.text_dim
            )));
        }
        self.projection = Some(projection);
        Ok(self)
    }

    /// Dimension of the embeddings queries arrive in (before any projection).
    pub fn query_dim(&self) -> usize {
        self.projection.as_ref().map_or(self.text_dim, |p| p.in_dim)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The index of an item id.
    pub fn index_of(&self, id: &str) -> Result<u32> {
        self.index.get(id).copied().ok_or_else(|| NookError::request(format!("unknown item id {id:?}")))
    }

    fn cf_row(&self, i: u32) -> Cow<'_, [f32]> {
        self.cf.row(i as usize, self.cf_dim)
    }

    fn text_row(&self, i: u32) -> Cow<'_, [f32]> {
        self.text.row(i as usize, self.text_dim)
    }

    fn check_indices(&self, what: &str, items: &[u32]) -> Result<()> {
        match items.iter().find(|&&i| i as usize >= self.len()) {
            Some(bad) => Err(NookError::request(format!("{what}: item index {bad} out of range (0..{})", self.len()))),
            None => Ok(()),
        }
    }

    /// Items whose title contains `text` (case-insensitive), best first: titles starting with it,
    /// then titles with a word starting with it, then the rest; more popular first within each.
    pub fn search_titles(&self, text: &str, limit: usize) -> Vec<u32> {
        let needle = text.trim().to_lowercase();
        if needle.is_empty() || limit == 0 {
            return Vec::new();
        }
        let mut hits: Vec<(u8, u32)> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let title = item.title.to_lowercase();
            let Some(at) = title.find(&needle) else { continue };
            let rank = if at == 0 {
                0
            } else if title.split(|c: char| !c.is_alphanumeric()).any(|w| w.starts_with(&needle)) {
                1
            } else {
                2
            };
            hits.push((rank, i as u32));
        }
        hits.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(self.popularity[b.1 as usize].total_cmp(&self.popularity[a.1 as usize]))
                .then(a.1.cmp(&b.1))
        });
        hits.into_iter().take(limit).map(|h| h.1).collect()
    }

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
        let mut profile = vec![0f32; self.text_dim];
        for (&i, &w) in likes.iter().zip(&weights) {
            axpy(w, &self.text_row(i), &mut profile);
        }
        let norm = dot(&profile, &profile).sqrt();
        if norm > 0.0 {
            profile.iter_mut().for_each(|v| *v /= norm);
        }
        Ok(UserVector { cf, profile, query })
    }

    /// Scores every item for `user` into `out`.
    pub fn score(&self, s: &Scoring, user: &UserVector, out: &mut [f32]) {
        let (cf_user, text_user) = query_vectors(s, user, self.cf_dim, self.text_dim);
        self.cf.score(self.cf_dim, &cf_user, out);
        let mut text_scores = vec![0f32; out.len()];
        self.text.score(self.text_dim, &text_user, &mut text_scores);
        out.iter_mut().zip(&text_scores).for_each(|(o, t)| *o += t);
    }

    /// The `k` best items the person has not already rated, with reasons (ranked on the CPU).
    pub fn recommend(&self, s: &Scoring, req: &Request) -> Result<Vec<Recommendation>> {
        let plan = self.plan(s, req)?;
        let top = match &plan.user {
            Some(user) => {
                let mut scores = vec![0f32; self.len()];
                self.score(s, user, &mut scores);
                top_k(&scores, plan.pool, |i| plan.exclude.binary_search(&i).is_err())
            }
            None => top_k(&self.popularity, plan.pool, |i| plan.exclude.binary_search(&i).is_err()),
        };
        Ok(self.finish(s, req, &plan, top))
    }

    /// Everything a ranking backend needs for `req`: the user vector (`None` when there is nothing
    /// to personalise on, so popularity ranks), the sorted items to skip, and how many to fetch.
    pub fn plan(&self, s: &Scoring, req: &Request) -> Result<Plan> {
        self.check_indices("likes", &req.likes)?;
        self.check_indices("dislikes", &req.dislikes)?;
        if !(0.0..=1.0).contains(&req.diversity) {
            return Err(NookError::request(format!("diversity must be in [0, 1], got {}", req.diversity)));
        }
        let mut exclude: Vec<u32> = req.likes.iter().chain(&req.dislikes).copied().collect();
        exclude.sort_unstable();
        exclude.dedup();
        let personal = !req.likes.is_empty() || !req.dislikes.is_empty() || req.query.is_some();
        let user =
            if personal { Some(self.user_vector(s, &req.likes, &req.dislikes, req.query.as_deref())?) } else { None };
        let pool = if req.diversity > 0.0 { (req.k * 3).max(MMR_POOL) } else { req.k };
        Ok(Plan { user, exclude, pool })
    }

    /// Turns the backend's best `plan.pool` items into the final list: MMR when diversity is asked
    /// for, and a reason for each.
    pub fn finish(&self, s: &Scoring, req: &Request, plan: &Plan, top: Vec<Scored>) -> Vec<Recommendation> {
        let top = if req.diversity > 0.0 { self.mmr(top, req.k, req.diversity) } else { top };
        top.into_iter()
            .map(|t| Recommendation {
                index: t.index,
                score: t.score,
                reason: self.reason(s, plan.user.as_ref(), &req.likes, t.index),
            })
            .collect()
    }

    /// Maximal marginal relevance (Carbonell & Goldstein 1998): repeatedly take the candidate with
    /// the best `(1 − d)·relevance − d·(highest similarity to those already taken)`, relevance
    /// rescaled to [0, 1] over the pool. Results keep their original scores.
    fn mmr(&self, pool: Vec<Scored>, k: usize, diversity: f32) -> Vec<Scored> {
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

    fn reason(&self, s: &Scoring, user: Option<&UserVector>, likes: &[u32], item: u32) -> Reason {
        let Some(user) = user else { return Reason::Popular };
        if let Some(q) = &user.query {
            let from_query = s.query_weight * dot(q, &self.text_row(item));
            let from_likes = s.cf_weight * dot(&user.cf, &self.cf_row(item))
                + s.text_weight * dot(&user.profile, &self.text_row(item));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Four items: 0 and 1 alike (cf and text), 2 and 3 alike.
    fn catalog() -> Catalog {
        let items = (0..4)
            .map(|i| ItemMeta { id: format!("m{i}"), title: format!("Movie {i}"), year: None, genres: vec![] })
            .collect();
        let cf = vec![1.0, 0.0, 0.9, 0.1, 0.0, 1.0, 0.1, 0.9];
        let gram = crate::foldin::gramian(&cf, 2, 0.1);
        let text = vec![1.0, 0.0, 0.98, 0.199, 0.0, 1.0, 0.199, 0.98];
        Catalog::new(items, cf, 2, gram, text, 2, vec![5.0, 1.0, 3.0, 2.0]).unwrap()
    }

    fn scoring() -> Scoring {
        Scoring {
            cf_weight: 1.0,
            text_weight: 0.5,
            query_weight: 1.0,
            like_confidence: 2.0,
            dislike_confidence: 2.0,
            recency_half_life: 0.0,
        }
    }

    #[test]
    fn likes_pull_in_similar_items_with_a_reason() {
        let c = catalog();
        let recs = c.recommend(&scoring(), &Request { likes: vec![0], k: 2, ..Request::default() }).unwrap();
        assert_eq!(recs[0].index, 1);
        assert_eq!(recs[0].reason, Reason::BecauseYouLiked { item: 0 });
        assert!(recs.iter().all(|r| r.index != 0), "liked items are not recommended");
    }

    #[test]
    fn a_query_alone_ranks_by_text_and_says_so() {
        let c = catalog();
        let req = Request { query: Some(vec![0.0, 1.0]), k: 1, ..Request::default() };
        let recs = c.recommend(&scoring(), &req).unwrap();
        assert_eq!((recs[0].index, &recs[0].reason), (2, &Reason::MatchesYourSearch));
    }

    #[test]
    fn nothing_to_go_on_means_popular() {
        let recs = catalog().recommend(&scoring(), &Request { k: 2, ..Request::default() }).unwrap();
        assert_eq!(recs.iter().map(|r| r.index).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(recs[0].reason, Reason::Popular);
    }

    #[test]
    fn title_search_ranks_prefix_then_word_then_substring() {
        let mut c = catalog();
        for (item, title) in c.items.iter_mut().zip(["Star Wars", "Lone Star", "Starship Troopers", "Dark Star"]) {
            item.title = title.into();
        }
        assert_eq!(c.search_titles("star", 10), vec![0, 2, 3, 1]);
        assert_eq!(c.search_titles("  STAR w", 10), vec![0]);
        assert!(c.search_titles("", 10).is_empty());
        assert_eq!(c.search_titles("ar", 2).len(), 2);
    }

    #[test]
    fn projected_catalogs_project_queries() {
        let c = catalog();
        // Swap the two text dimensions: a query along x now matches items strong in y.
        let p = Projection::new(vec![0.0, 0.0], vec![0.0, 1.0, 1.0, 0.0], 2).unwrap();
        let c = c.with_projection(p).unwrap();
        let req = Request { query: Some(vec![1.0, 0.0]), k: 1, ..Request::default() };
        assert_eq!(c.recommend(&scoring(), &req).unwrap()[0].index, 2);
        assert!(Projection::new(vec![0.0; 3], vec![0.0; 5], 2).is_err());
    }

    #[test]
    fn recent_likes_weigh_more() {
        let s = Scoring { recency_half_life: 1.0, ..scoring() };
        assert_eq!(s.like_weights(3), vec![0.25, 0.5, 1.0]);
        assert_eq!(scoring().like_weights(2), vec![1.0, 1.0]);
        let c = catalog();
        // Liked 0 long ago and 2 just now: recency favours 2's neighbour 3 over 0's neighbour 1.
        let margin = |s: &Scoring| {
            let mut out = vec![0f32; 4];
            c.score(s, &c.user_vector(s, &[0, 2], &[], None).unwrap(), &mut out);
            out[3] - out[1]
        };
        assert!(margin(&s) > margin(&scoring()), "{} vs {}", margin(&s), margin(&scoring()));
    }

    #[test]
    fn diversity_spreads_the_list_across_neighbourhoods() {
        let c = catalog();
        let s = scoring();
        // Liking nothing but a query between the two groups: relevance alone may take both items
        // of one group first; full diversity alternates groups.
        let base = Request { query: Some(vec![0.8, 0.6]), k: 2, ..Request::default() };
        let plain = c.recommend(&s, &base).unwrap();
        let diverse = c.recommend(&s, &Request { diversity: 0.9, ..base.clone() }).unwrap();
        let group = |i: u32| i / 2;
        assert_eq!(group(plain[0].index), group(plain[1].index), "{plain:?}");
        assert_ne!(group(diverse[0].index), group(diverse[1].index), "{diverse:?}");
        assert_eq!(diverse[0].index, plain[0].index, "the most relevant item still leads");
        let bad = c.recommend(&s, &Request { diversity: 1.5, ..base });
        assert!(bad.is_err());
    }

    #[test]
    fn bad_requests_are_errors() {
        let c = catalog();
        assert!(c.recommend(&scoring(), &Request { likes: vec![9], k: 1, ..Request::default() }).is_err());
        assert!(c.recommend(&scoring(), &Request { query: Some(vec![1.0]), k: 1, ..Request::default() }).is_err());
        assert!(c.index_of("nope").is_err());
        assert_eq!(c.index_of("m3").unwrap(), 3);
    }

    #[test]
    fn dislikes_pull_their_score_towards_zero_and_are_excluded() {
        let c = catalog();
        let s = scoring();
        // In implicit ALS a dislike is a confident zero: it lowers the disliked item's predicted
        // preference (here raised by liking its neighbour 3).
        let liked = c.user_vector(&s, &[0, 3], &[], None).unwrap();
        let both = c.user_vector(&s, &[0, 3], &[2], None).unwrap();
        let (mut a, mut b) = (vec![0f32; 4], vec![0f32; 4]);
        c.score(&s, &liked, &mut a);
        c.score(&s, &both, &mut b);
        assert!(b[2] < a[2], "disliking 2 lowers its score: {} -> {}", a[2], b[2]);
        let recs = c.recommend(&s, &Request { likes: vec![0], dislikes: vec![2], k: 4, ..Request::default() }).unwrap();
        assert!(recs.iter().all(|r| r.index != 2 && r.index != 0));
        assert_eq!(recs.len(), 2);
    }
}
