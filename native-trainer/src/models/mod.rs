//! Recommendation models, one entry each in [`REGISTRY`].
//!
//! Every model implements [`Fitted`] (score every item for a user, save itself into a model
//! directory) and is described by a [`ModelEntry`]: its id, how to fit it from a [`Trainer`] and
//! how to load it back from a [`Loader`]. The CLI's `--models`, `nook train`'s store, `nook eval`
//! and the model conformance test (`native-trainer/tests/models.rs`) all read this table, so
//! adding a model is one new file with its entry plus one line below.

pub mod als;
pub mod als_recency;
pub mod bpr;
pub mod ease;
pub mod factors;
pub mod family;
pub mod fused_seq;
pub mod hybrid;
pub mod item_item;
pub mod pca;
pub mod pop;
pub mod random;
pub mod ridge;
pub mod rp3b;
pub mod select;
pub mod seq_rules;
pub mod slit;

pub use als::AlsConfig;
pub use bpr::BprConfig;
pub use factors::Factors;
pub use pop::Popularity;
pub use random::RandomScores;

use crate::store::Loader;
use crate::training::Trainer;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

/// Every model nook trains, in the order tables list them.
pub const REGISTRY: &[&ModelEntry] = &[
    &pop::MODEL,
    &als::MODEL,
    &bpr::MODEL,
    &ease::MODEL,
    &rp3b::MODEL,
    &als_recency::MODEL,
    &seq_rules::MODEL,
    &slit::MODEL,
    &random::MODEL,
    &family::CONTENT,
    &family::HYBRID,
    &family::CONTENT_FT,
    &family::FUSED_FT,
    &fused_seq::MODEL,
];

/// One model: what it is called and how it is fitted and loaded.
pub struct ModelEntry {
    /// Short stable id, used by `--models`, in reports and in model directories.
    pub id: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// Trained when `--models` is not given.
    pub default: bool,
    /// Needs item text and the encoder.
    pub needs_text: bool,
    pub fit: fn(&mut Trainer<'_>) -> Result<Arc<dyn Fitted>>,
    pub load: fn(&Loader<'_>) -> Result<Arc<dyn Fitted>>,
}

impl std::fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// The registered model with this id.
pub fn entry(id: &str) -> Option<&'static ModelEntry> {
    REGISTRY.iter().copied().find(|e| e.id == id)
}

/// Something that scores every item for a user.
pub trait Scorer: Sync {
    /// Short stable id used in reports (`pop`, `als`, ...).
    fn name(&self) -> &str;
    /// Writes one score per item into `out` (length = number of items).
    fn score(&self, user: u32, out: &mut [f32]);
    /// [`Scorer::score`] for each of `users`, one row of `out` per user, to the bit. Models that
    /// read a whole item table per user read it once per batch instead.
    fn score_many(&self, users: &[u32], out: &mut [f32]) {
        let n = out.len() / users.len().max(1);
        users.iter().zip(out.chunks_exact_mut(n.max(1))).for_each(|(&u, o)| self.score(u, o));
    }
}

impl<T: Scorer + ?Sized> Scorer for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        (**self).score(user, out)
    }
    fn score_many(&self, users: &[u32], out: &mut [f32]) {
        (**self).score_many(users, out)
    }
}

/// A fitted model.
pub trait Fitted: Send + Sync {
    /// The scorer for users whose history (each user's positives, oldest first, as the browser
    /// lists likes) is `history`: models that fold users in from their likes use it, models
    /// with trained user factors ignore it.
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a>;
    /// Writes the model into a model directory being built (see [`crate::store`]). Models that
    /// share files (a text family's two models) write them once.
    fn save(&self, dir: &Path) -> Result<()>;
    /// What was chosen on the validation split, as a Markdown line for the report.
    fn notes(&self) -> Option<String> {
        None
    }
    /// The fine-tuning loss by step, for models built on a fine-tuned encoder.
    fn losses(&self) -> Option<&[f32]> {
        None
    }
    /// For models that take a typed query: their catalogue, scoring and query encoder.
    fn text(&self) -> Option<TextModel<'_>> {
        None
    }
    /// For models whose "more like this" adds to their text model's (`fused-sr`: what people
    /// liked next after the item): the name, catalogue and scoring `nook similar` ranks with on
    /// their bundle, for the item-to-item benchmark.
    fn similar_ranker(&self) -> Option<(&'static str, nook_core::Catalog, nook_core::Scoring)> {
        None
    }
}

/// What the query benchmark needs of a text model.
pub struct TextModel<'a> {
    pub name: &'static str,
    pub catalog: &'a nook_core::Catalog,
    pub scoring: nook_core::Scoring,
    pub query_encoder: QueryEncoder<'a>,
    /// The validation blend at each weight tried, when the weight was chosen in this run.
    pub query_validation: &'a [(f32, crate::eval::query::QueryScores)],
}

/// The encoder a model's queries go through.
#[derive(Clone, Copy)]
pub enum QueryEncoder<'a> {
    Dir(&'a Path),
    FineTuned(&'a crate::finetune::FineTuned),
}

impl QueryEncoder<'_> {
    pub fn load(&self, max_tokens: usize) -> Result<nook_core::encoder::TextEncoder> {
        let cpu = candle_core::Device::Cpu;
        match self {
            QueryEncoder::Dir(dir) => crate::textvec::EncoderSource { dir: dir.to_path_buf(), max_tokens }.load(&cpu),
            QueryEncoder::FineTuned(ft) => ft.encoder(max_tokens, &cpu),
        }
    }

    /// Identifies the encoder, so each is loaded once.
    pub fn key(&self) -> String {
        match self {
            QueryEncoder::Dir(dir) => dir.display().to_string(),
            QueryEncoder::FineTuned(ft) => ft.fingerprint.clone(),
        }
    }
}
