//! What the item-item models (`ease`, `rp3b`) share: a person is scored from their history
//! alone, so one scorer pairs such a model with the histories it scores.

use super::Scorer;

/// Scores every item for a person from their training items.
pub trait ScoresHistory: Sync {
    fn name(&self) -> &'static str;
    fn score_history(&self, history: &[u32], out: &mut [f32]);
}

impl<T: ScoresHistory> ScoresHistory for &T {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn score_history(&self, history: &[u32], out: &mut [f32]) {
        (**self).score_history(history, out)
    }
}

/// A model with the histories (one per user) it scores: owned while choosing settings, borrowed
/// in [`super::Fitted::scorer`].
pub struct WithHistory<M, H> {
    pub model: M,
    pub history: H,
}

impl<M: ScoresHistory, H: AsRef<[Vec<u32>]> + Sync> Scorer for WithHistory<M, H> {
    fn name(&self) -> &str {
        self.model.name()
    }
    fn score(&self, user: u32, out: &mut [f32]) {
        self.model.score_history(&self.history.as_ref()[user as usize], out);
    }
}
