//! Requests by item id, as the browser and `nook recommend` send them, and results as shown to a
//! person.

use super::Bundle;
use crate::error::{NookError, Result};
use crate::recommend::{Reason, Recommendation, Request};
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

/// One result as shown to a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecommendedItem {
    pub id: String,
    pub title: String,
    pub year: Option<i32>,
    pub genres: Vec<String>,
    pub score: f32,
    /// Human-readable reason: "because you liked Toy Story", "matches your search", "popular".
    pub reason: String,
    /// `liked`, `search` or `popular`.
    pub reason_kind: String,
    /// The liked item behind a `liked` reason.
    pub because: Option<String>,
}

impl Bundle {
    /// Embeds a query with the bundle's encoder.
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(NookError::request(format!("query is {} bytes; the limit is {MAX_QUERY_BYTES}", text.len())));
        }
        self.encoder.embed(&[text])
    }

    /// Ranks the catalogue for a request by ids on the CPU: the path shared by native and browser.
    pub fn recommend(&self, req: &IdRequest) -> Result<Vec<RecommendedItem>> {
        let request = self.to_request(req)?;
        let recs = self.catalog.recommend(&self.manifest.scoring, &request)?;
        Ok(self.to_items(recs))
    }

    /// Checks a request by ids and resolves it to item indices (embedding the query).
    pub fn to_request(&self, req: &IdRequest) -> Result<Request> {
        if req.k == 0 || req.k > MAX_K {
            return Err(NookError::request(format!("k must be between 1 and {MAX_K}, got {}", req.k)));
        }
        let c = &self.catalog;
        let to_indices = |ids: &[String]| ids.iter().map(|id| c.index_of(id)).collect::<Result<Vec<u32>>>();
        let query = match req.query.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) => Some(self.embed(q)?),
            None => None,
        };
        Ok(Request {
            likes: to_indices(&req.likes)?,
            dislikes: to_indices(&req.dislikes)?,
            query,
            k: req.k,
            diversity: req.diversity,
            query_weight: req.query_weight,
        })
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
