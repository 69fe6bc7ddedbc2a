//! The catalogue: every item's display metadata and vectors (collaborative factors, text
//! embeddings, popularity), with the id index and title search. [`codec`] is its one on-disk
//! form, shared by the bundle and the trainer's model directory.
//!
//! The text table's columns serve two purposes ([`TextLayout`]): the *profile* columns hold the
//! vectors a person's likes are averaged over (fine-tuned on the interactions for `fused-ft`),
//! the *query* columns the vectors a typed query is matched against (the frozen encoder's, whose
//! space still means what words mean). They may be the same columns (`hybrid`) or side by side.

pub mod codec;

use crate::error::{NookError, Result};
use crate::linalg::dot;
use crate::quant::Matrix;
use crate::sequence::Rules;
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
    /// Which text columns are matched against likes and which against a query.
    pub layout: TextLayout,
    /// When the query columns were reduced (e.g. by PCA), the map a query embedding goes through.
    pub projection: Option<Projection>,
    /// Each item's sequential rules, for models that use the order of likes
    /// ([`crate::sequence`]).
    pub rules: Option<Rules>,
    index: HashMap<String, u32>,
}

/// The text table's columns: `[0, profile_dims)` are the profile columns, `[query_offset,
/// text_dim)` the query columns (`query_offset ≤ profile_dims`; equal when the two sit side by
/// side, 0 when they are the same columns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextLayout {
    pub profile_dims: usize,
    pub query_offset: usize,
}

impl TextLayout {
    /// Profile and query share every column.
    pub fn shared(text_dim: usize) -> Self {
        Self { profile_dims: text_dim, query_offset: 0 }
    }

    /// Checks the layout against a table `text_dim` wide.
    pub fn check(&self, text_dim: usize) -> Result<()> {
        let ok = self.profile_dims > 0
            && self.profile_dims <= text_dim
            && self.query_offset <= self.profile_dims
            && self.query_offset < text_dim;
        match ok {
            true => Ok(()),
            false => Err(NookError::data(format!(
                "text layout (profile {} columns, query from column {}) does not fit {text_dim} columns",
                self.profile_dims, self.query_offset
            ))),
        }
    }
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
            // Wider int8 rows could overflow the exact i32 accumulation of `score_int8`.
            if matches!(m, Matrix::Int8(_)) && dim > crate::score::MAX_INT8_COLS {
                return Err(NookError::bundle(format!(
                    "{what}: int8 rows of {dim} values, wider than the {} int8 scoring allows",
                    crate::score::MAX_INT8_COLS
                )));
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
        let layout = TextLayout::shared(text_dim);
        Ok(Self {
            items,
            cf,
            cf_dim,
            cf_gram,
            text,
            text_dim,
            popularity,
            layout,
            projection: None,
            rules: None,
            index,
        })
    }

    /// Puts query columns beside the text table's (which become the profile columns): `query`
    /// is row-major `n x query_dim`, `projection` the map a query embedding goes through to reach
    /// them. Built by the trainer from f32 tables.
    pub fn with_query_columns(self, query: &[f32], query_dim: usize, projection: Option<Projection>) -> Result<Self> {
        let Matrix::F32(text) = &self.text else {
            return Err(NookError::data("query columns join f32 text tables only"));
        };
        if self.layout != TextLayout::shared(self.text_dim) || self.projection.is_some() {
            return Err(NookError::data("the catalogue already has query columns"));
        }
        if query_dim == 0 || query.len() != self.len() * query_dim {
            return Err(NookError::data(format!("query columns: {} values for {} items", query.len(), self.len())));
        }
        let width = self.text_dim + query_dim;
        let joined: Vec<f32> = text
            .chunks_exact(self.text_dim)
            .zip(query.chunks_exact(query_dim))
            .flat_map(|(t, q)| t.iter().chain(q).copied())
            .collect();
        let layout = TextLayout { profile_dims: self.text_dim, query_offset: self.text_dim };
        let catalog = Self { text: Matrix::F32(joined), text_dim: width, layout, ..self };
        match projection {
            Some(p) => catalog.with_projection(p),
            None => Ok(catalog),
        }
    }

    /// Gives the catalogue sequential rules (one row per item).
    pub fn with_rules(mut self, rules: Rules) -> Result<Self> {
        if rules.n_items() != self.len() {
            return Err(NookError::data(format!(
                "rules for {} items, the catalogue has {}",
                rules.n_items(),
                self.len()
            )));
        }
        self.rules = Some(rules);
        Ok(self)
    }

    /// Declares which text columns are profile and which query columns.
    pub fn with_layout(mut self, layout: TextLayout) -> Result<Self> {
        layout.check(self.text_dim)?;
        self.layout = layout;
        Ok(self)
    }

    /// Number of query columns.
    pub fn query_cols(&self) -> usize {
        self.text_dim - self.layout.query_offset
    }

    /// Declares that the query columns were reduced by `projection` (queries go through it).
    pub fn with_projection(mut self, projection: Projection) -> Result<Self> {
        if projection.out_dim != self.query_cols() {
            return Err(NookError::bundle(format!(
                "projection gives {} dims, the query columns are {}",
                projection.out_dim,
                self.query_cols()
            )));
        }
        self.projection = Some(projection);
        Ok(self)
    }

    /// Dimension of the embeddings queries arrive in (before any projection).
    pub fn query_dim(&self) -> usize {
        self.projection.as_ref().map_or(self.query_cols(), |p| p.in_dim)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The index of an item id.
    pub fn index_of(&self, id: &str) -> Result<u32> {
        self.get(id).ok_or_else(|| NookError::UnknownItem(id.to_string()))
    }

    /// The index of an item id, if the catalogue holds it.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub(crate) fn cf_row(&self, i: u32) -> Cow<'_, [f32]> {
        self.cf.row(i as usize, self.cf_dim)
    }

    pub(crate) fn text_row(&self, i: u32) -> Cow<'_, [f32]> {
        self.text.row(i as usize, self.text_dim)
    }

    pub(crate) fn check_indices(&self, what: &str, items: &[u32]) -> Result<()> {
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
}
