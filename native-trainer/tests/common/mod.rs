//! Shared helpers for the trainer's integration tests.
#![allow(dead_code)]

#[allow(unused_imports)] // each test file uses some of them
pub use nook_test_support::{encoder_dir, ml100k, movielens_small};
use nook_trainer::data::{self, DataError, Dataset, Format, Interaction, Source};
use nook_trainer::split::Split;
use nook_trainer::textvec::EncoderSource;
use nook_trainer::training::TrainInputs;
use std::path::Path;

/// Writes `files` (name, bytes) into a fresh temporary directory.
pub fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).expect("write fixture");
    }
    dir
}

pub fn load_dir(dir: &Path, skip_bad_rows: bool) -> Result<Dataset, DataError> {
    data::load(&Source { data: Some(dir.to_owned()), skip_bad_rows, ..Source::default() })
}

pub fn load_generic(interactions: &Path, items: Option<&Path>) -> Result<Dataset, DataError> {
    data::load(&Source {
        interactions: Some(interactions.to_owned()),
        items: items.map(Path::to_owned),
        format: Some(Format::Generic),
        ..Source::default()
    })
}

/// The error message of a load that must fail.
pub fn load_error(dir: &Path) -> String {
    match load_dir(dir, false) {
        Ok(d) => panic!("expected an error, loaded {} interactions", d.interactions.len()),
        Err(e) => e.to_string(),
    }
}

/// `data` cut to its first `n` users and the items they interacted with (indices renumbered in
/// order): the same kind of data, small enough for a test that fits whole model families.
pub fn first_users(data: &Dataset, n: u32) -> Dataset {
    let kept: Vec<_> = data.interactions.iter().filter(|i| i.user < n).copied().collect();
    let mut new_index = vec![u32::MAX; data.items.len()];
    for i in &kept {
        new_index[i.item as usize] = 0;
    }
    let mut items = Vec::new();
    for (old, slot) in new_index.iter_mut().enumerate() {
        if *slot == 0 {
            *slot = items.len() as u32;
            items.push(data.items[old].clone());
        }
    }
    let interactions = kept.into_iter().map(|i| Interaction { item: new_index[i.item as usize], ..i }).collect();
    let users = data.users.iter().take(n as usize).cloned().collect();
    let (name, format, skipped) = (data.name.clone(), data.format, data.skipped.clone());
    Dataset { name, format, items, users, interactions, skipped }
}

/// Training inputs on the CPU with the fetched encoder (32 tokens), its cache and checkpoints
/// under `dir`, fitting from scratch.
pub fn train_inputs<'a>(data: &'a Dataset, split: &'a Split, dir: &Path) -> TrainInputs<'a> {
    TrainInputs {
        data,
        split,
        encoder: Some(EncoderSource { dir: encoder_dir(), max_tokens: 32 }),
        text_engine: Default::default(),
        cache_dir: dir.join("cache"),
        device: candle_core::Device::Cpu,
        checkpoint_dir: dir.join("checkpoints"),
        resume: false,
        prefit_als: None,
    }
}

/// A small MovieLens-latest layout.
pub const MOVIES: &str = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,\"Matrix, The (1999)\",Action|Sci-Fi\n3,Heat (1995),Crime\n";
pub const RATINGS: &str = "userId,movieId,rating,timestamp\n1,1,4.0,100\n1,2,5.0,200\n2,2,3.0,150\n2,3,4.5,160\n";
