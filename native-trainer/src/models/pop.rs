//! Most-popular baseline: an item's score is its number of training positives.

use super::{Fitted, ModelEntry, Scorer};
use crate::matrix::Csr;
use crate::store::{read_tensors, write_tensors};
use anyhow::Result;
use nook_core::quant::encode_f32;
use std::path::Path;
use std::sync::Arc;

pub const MODEL: ModelEntry = ModelEntry {
    id: "pop",
    about: "most popular items first (training positives)",
    default: true,
    needs_text: false,
    fit: |t| Ok(Arc::new(t.timed("pop", |t| Popularity::fit(t.final_train())))),
    load: |l| {
        let counts = read_tensors(&l.dir.join("pop.safetensors"), |t| t.f32("counts", &[l.info.n_items]))?;
        Ok(Arc::new(Popularity { counts }))
    },
};

#[derive(Clone, Debug)]
pub struct Popularity {
    pub counts: Vec<f32>,
}

impl Popularity {
    pub fn fit(user_items: &Csr) -> Self {
        let mut counts = vec![0f32; user_items.cols];
        user_items.indices.iter().for_each(|&i| counts[i as usize] += 1.0);
        Self { counts }
    }
}

impl Scorer for Popularity {
    fn name(&self) -> &str {
        "pop"
    }
    fn score(&self, _user: u32, out: &mut [f32]) {
        out.copy_from_slice(&self.counts);
    }
}

impl Fitted for Popularity {
    fn scorer<'a>(&'a self, _history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(self)
    }
    fn save(&self, dir: &Path) -> Result<()> {
        write_tensors(&dir.join("pop.safetensors"), &[encode_f32("counts", &[self.counts.len()], &self.counts)])
    }
}
