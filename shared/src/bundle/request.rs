//! Requests by item id, as the browser and `nook recommend` send them, and results as shown to a
//! person.

use super::Bundle;
use crate::error::{NookError, Result};
use crate::recommend::{Reason, Recommendation, Request};

fn check_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(NookError::request(format!("k must be between 1 and {MAX_K}, got {k}")));
    }
    Ok(())
}
use serde::{Deserialize, Serialize};

/// Most results one request may ask for.
pub const MAX_K: usize = 1000;
/// Longest query accepted, in bytes (the encoder truncates to its token limit anyway).
pub const MAX_QUERY_BYTES: usize = 4096;

/// A recommendation request by item id, as the browser and `nook recommend` send it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IdRequest {
    #[serde(default)]
    pub likes: Vec<String>,
    #[serde(default)]
    pub dislikes: Vec<String>,
    #[serde(default)]
    pub query: Option<String>,
    pub k: usize,
    /// 0 (default) ranks by relevance alone; up to 1 favours variety.
    #[serde(default)]
    pub diversity: f32,
    /// How much the query counts, overriding the bundle's weight (see `Scoring::query_weight`).
    #[serde(default)]
    pub query_weight: Option<f32>,
}

/// Ids a request named that the bundle's catalogue does not hold. They are skipped, never fatal:
/// a person's stored history outlives catalogue updates (an item withdrawn, a retrained bundle),
/// and a later bundle may bring the items back, so the page keeps them and says how many count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub likes: Vec<String>,
    pub dislikes: Vec<String>,
}

impl Skipped {
    pub fn is_empty(&self) -> bool {
        self.likes.is_empty() && self.dislikes.is_empty()
    }
}

/// What a request by ids gets back: the ranked items and the ids that were skipped.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    pub items: Vec<RecommendedItem>,
    #[serde(default)]
    pub skipped: Skipped,
}

/// One result as shown to a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendedItem {
    pub id: String,
    pub title: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
    pub score: f32,
    /// Human-readable reason: "because you liked Toy Story", "matches your search", "similar to
    /// Toy Story", "popular".
    pub reason: String,
    /// `liked`, `search`, `similar` or `popular`.
    pub reason_kind: String,
    /// The item behind a `liked` or `similar` reason.
    pub because: Option<String>,
}

impl Bundle {
    /// Embeds a query with the bundle's encoder, after its query prompt.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(NookError::request(format!("query is {} bytes; the limit is {MAX_QUERY_BYTES}", text.len())));
        }
        self.encoder.embed_query(text)
    }

    /// Ranks the catalogue for a request by ids on the CPU: the path shared by native and browser.
    pub fn recommend(&self, req: &IdRequest) -> Result<Recommendations> {
        let (request, skipped) = self.resolve(req)?;
        let recs = self.catalog.recommend(&self.manifest.scoring, &request)?;
        Ok(Recommendations { items: self.to_items(recs), skipped })
    }

    /// Checks a request by ids and resolves it to item indices (embedding the query). Ids the
    /// catalogue does not hold are left out and listed in the [`Skipped`] returned beside it.
    pub fn resolve(&self, req: &IdRequest) -> Result<(Request, Skipped)> {
        check_k(req.k)?;
        let c = &self.catalog;
        let resolve = |ids: &[String], unknown: &mut Vec<String>| {
            let mut known = Vec::with_capacity(ids.len());
            for id in ids {
                match c.get(id) {
                    Some(i) => known.push(i),
                    None => unknown.push(id.clone()),
                }
            }
            known
        };
        let mut skipped = Skipped::default();
        let likes = resolve(&req.likes, &mut skipped.likes);
        let dislikes = resolve(&req.dislikes, &mut skipped.dislikes);
        let query = match req.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => Some(self.embed(q)?),
            None => None,
        };
        let request =
            Request { likes, dislikes, query, k: req.k, diversity: req.diversity, query_weight: req.query_weight };
        Ok((request, skipped))
    }

    /// "More like this": the `k` items most like the item `id` (never the item itself, nor
    /// `exclude`, ids the catalogue lacks being ignored there), with reasons. Unlike a person's
    /// history, the subject must be in the catalogue: an unknown `id` is an error.
    pub fn similar(&self, id: &str, k: usize, exclude: &[String]) -> Result<Vec<RecommendedItem>> {
        check_k(k)?;
        let item = self.catalog.index_of(id)?;
        let exclude: Vec<u32> = exclude.iter().filter_map(|e| self.catalog.get(e)).collect();
        let recs = self.catalog.similar(&self.manifest.scoring, item, k, &exclude)?;
        Ok(self.to_items(recs))
    }

    /// Ranked results as shown to a person.
    pub fn to_items(&self, recs: Vec<Recommendation>) -> Vec<RecommendedItem> {
        let c = &self.catalog;
        recs.into_iter()
            .map(|r| {
                let item = &c.items[r.index as usize];
                let (reason, reason_kind, because) = match r.reason {
                    Reason::BecauseYouLiked { item: liked } => {
                        let liked = &c.items[liked as usize];
                        (format!("because you liked {}", liked.title), "liked", Some(liked.id.clone()))
                    }
                    Reason::SimilarTo { item: subject } => {
                        let subject = &c.items[subject as usize];
                        (format!("similar to {}", subject.title), "similar", Some(subject.id.clone()))
                    }
                    Reason::MatchesYourSearch => ("matches your search".to_string(), "search", None),
                    Reason::Popular => ("popular".to_string(), "popular", None),
                };
                RecommendedItem {
                    id: item.id.clone(),
                    title: item.title.clone(),
                    year: item.year,
                    genres: item.genres.clone(),
                    score: r.score,
                    reason,
                    reason_kind: reason_kind.to_string(),
                    because,
                }
            })
            .collect()
    }
}
