//! nook's native trainer: loads interaction logs and item text, splits them honestly, trains
//! matrix-factorisation models and evaluates them against baselines.

pub mod atomic;
pub mod batch;
pub mod bench;
pub mod commands;
pub mod data;
pub mod dense;
pub mod eval;
pub mod export;
pub mod external;
pub mod finetune;
pub mod matrix;
pub mod memory;
pub mod models;
pub mod progress;
pub mod report;
pub mod rng;
pub mod serve;
pub mod spark;
pub mod split;
pub mod splitio;
pub mod store;
pub mod textvec;
pub mod training;
