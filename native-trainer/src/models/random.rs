//! Uniformly random scores, fixed by seed: the floor every model must beat.

use super::{Fitted, ModelEntry, Scorer};
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;

pub const MODEL: ModelEntry = ModelEntry {
    id: "random",
    about: "seeded random scores: the floor",
    default: true,
    needs_text: false,
    fit: |t| Ok(Arc::new(RandomScores { seed: t.split().config.seed })),
    load: |l| Ok(Arc::new(RandomScores { seed: l.info.split.seed })),
};

#[derive(Clone, Debug)]
pub struct RandomScores {
    pub seed: u64,
}

impl Scorer for RandomScores {
    fn name(&self) -> &str {
        "random"
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        let mut rng = crate::rng::Rng::new(self.seed ^ (user as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        out.iter_mut().for_each(|o| *o = rng.f32());
    }
}

impl Fitted for RandomScores {
    fn scorer<'a>(&'a self, _history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        Box::new(self)
    }
    /// Nothing to save: the seed is the split's, recorded in `model.json`.
    fn save(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
}
