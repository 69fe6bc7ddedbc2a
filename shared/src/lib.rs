//! nook-core: the code both the native trainer and the browser client compile.
//!
//! Everything here is computation over bytes and slices: no filesystem, threads or clocks, so it
//! builds for `wasm32-unknown-unknown` and ranks identically on both sides. Floating-point
//! reductions use a fixed accumulation order (see [`linalg`]), so results are bit-identical
//! whatever SIMD width the compiler picks.
//!
//! Layers, bottom up: [`quant`] (tensor storage) → [`catalog`] (the items and their one codec) →
//! [`score`], [`topk`], [`foldin`] (kernels) → [`recommend`] (the scoring path) → [`bundle`]
//! (what the browser loads) and [`gpu`] (the same ranking on WebGPU / Vulkan).

pub mod blend;
pub mod bundle;
pub mod catalog;
pub mod encoder;
pub mod error;
pub mod foldin;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod linalg;
mod mmr;
pub mod quant;
pub mod recommend;
pub mod score;
pub mod sequence;
pub mod stats;
pub mod synthetic;
pub mod topk;

pub use bundle::{Bundle, Manifest};
pub use catalog::{Catalog, ItemMeta, Projection, TextLayout};
pub use error::{NookError, Result};
pub use foldin::{fold_in, gramian, gramian_finish, gramian_partial, solve_row_cg, RowSolver};
pub use recommend::{Expansion, Reason, Recommendation, Request, Scoring, MAX_QUERY_WEIGHT};
pub use score::{score_items, score_items_many};
pub use topk::{top_k, Scored};
