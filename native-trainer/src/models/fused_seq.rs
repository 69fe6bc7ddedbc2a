//! `fused-sr`: `fused-ft` with the order of a person's likes. Its scores and the sequential
//! rules' ([`super::seq_rules`]) are each standardised over the catalogue for the person (mean 0,
//! deviation 1: the two scales have nothing in common) and added, the rules' weighing `weight`,
//! chosen on the validation split against the catalogue `fused-ft` chose its own settings with.
//! Weight 0 is `fused-ft` exactly. `fused-sr` − `fused-ft` is what the order of likes adds.
//!
//! Native only for now: the browser bundle carries `fused-ft`'s catalogue, not the rules.

use super::family::TextFamily;
use super::hybrid::{user_vectors, HybridScorer, FINETUNED};
use super::item_item::WithHistory;
use super::select::{self, Choice};
use super::seq_rules::SeqRules;
use super::{Fitted, ModelEntry, Scorer};
use crate::split::Split;
use crate::store::read_json;
use anyhow::{Context, Result};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

pub const ID: &str = "fused-sr";
/// The rules' weights tried on validation (0: `fused-ft` alone).
const WEIGHTS: [f32; 8] = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0];

pub const MODEL: ModelEntry = ModelEntry {
    id: ID,
    about: "fused-ft plus sequential rules, each standardised per person (the rules' weight chosen on validation)",
    default: true,
    needs_text: true,
    fit: |t| {
        let family = t.finetuned_family()?;
        let rules = t.seq_rules()?;
        let choice = t.timed("fused-sr-selection", |t| choose_weight(t.split(), &family, &rules))?;
        Ok(Arc::new(FusedSeq { family, rules, choice }))
    },
    load: |l| {
        let family = l.family(FINETUNED)?;
        let rules = Arc::new(SeqRules::load(l.dir, l.info.n_items)?);
        let choice = read_json(&l.dir.join("fused-sr.json"))?;
        Ok(Arc::new(FusedSeq { family, rules, choice }))
    },
};

/// The rules' weight, on the validation split: `fused-ft` as validation measured it (the
/// catalogue before the refit) plus rules with the chosen setting fitted on the training part.
fn choose_weight(split: &Split, family: &TextFamily, rules: &SeqRules) -> Result<Choice<f32>> {
    let catalog = family.selection.as_ref().context("fused-sr: fused-ft's validation catalogue is not at hand")?;
    let scoring = family.hybrid.scoring;
    // The histories `on_validation` scores with: people are folded in once, not per weight.
    let history = split.train_sequences();
    let train_rules = SeqRules::fit(&history, split.n_items, rules.choice.best);
    let users = user_vectors(catalog, &scoring, &history);
    Ok(select::on_validation(split, ID, &WEIGHTS, |_, _, weight| Blend {
        fused: HybridScorer { name: FINETUNED.name, catalog, scoring, users: Cow::Borrowed(&users) },
        rules: WithHistory { model: &train_rules, history: &history },
        weight,
    }))
}

pub struct FusedSeq {
    family: Arc<TextFamily>,
    rules: Arc<SeqRules>,
    choice: Choice<f32>,
}

impl Fitted for FusedSeq {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        let h = &self.family.hybrid;
        let fused = HybridScorer {
            name: FINETUNED.name,
            catalog: &h.catalog,
            scoring: h.scoring,
            users: Cow::Owned(user_vectors(&h.catalog, &h.scoring, history)),
        };
        Box::new(Blend { fused, rules: WithHistory { model: &*self.rules, history }, weight: self.choice.best })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.family.save(dir)?;
        self.rules.save(dir)?;
        std::fs::write(dir.join("fused-sr.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!("- `fused-sr`: {} ({:?})\n", self.choice.describe("rules' weight"), self.rules.choice.best))
    }
}

/// `fused` plus `weight` × `rules`, each standardised over the catalogue.
pub struct Blend<F, R> {
    pub fused: F,
    pub rules: R,
    pub weight: f32,
}

impl<F: Scorer, R: Scorer> Scorer for Blend<F, R> {
    fn name(&self) -> &str {
        ID
    }

    fn score(&self, user: u32, out: &mut [f32]) {
        self.fused.score(user, out);
        if self.weight == 0.0 {
            return;
        }
        let mut rules = vec![0f32; out.len()];
        self.rules.score(user, &mut rules);
        let (f_mean, f_scale) = standardiser(out);
        let (r_mean, r_scale) = standardiser(&rules);
        let w = self.weight * r_scale;
        out.iter_mut().zip(&rules).for_each(|(o, &r)| *o = (*o - f_mean) * f_scale + w * (r - r_mean));
    }
}

/// Mean and 1 / standard deviation of `v` (scale 0 when every value is the same: such scores
/// order nothing).
fn standardiser(v: &[f32]) -> (f32, f32) {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let scale = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
    (mean as f32, scale as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<f32>);
    impl Scorer for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn score(&self, _: u32, out: &mut [f32]) {
            out.copy_from_slice(&self.0);
        }
    }

    #[test]
    fn weight_zero_is_the_fused_model_and_the_rules_can_reorder_it() {
        let fused = Fixed(vec![3.0, 2.0, 1.0, 0.0]);
        let rules = Fixed(vec![0.0, 0.0, 0.0, 10.0]);
        let mut out = vec![0f32; 4];
        Blend { fused: &fused, rules: &rules, weight: 0.0 }.score(0, &mut out);
        assert_eq!(out, fused.0);
        // Standardised: fused [1.34, 0.45, -0.45, -1.34], rules [-0.58, -0.58, -0.58, 1.73].
        Blend { fused: &fused, rules: &rules, weight: 1.0 }.score(0, &mut out);
        assert_eq!((0..4).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap(), 0, "{out:?}");
        Blend { fused: &fused, rules: &rules, weight: 2.0 }.score(0, &mut out);
        let top = (0..4).max_by(|&a, &b| out[a].total_cmp(&out[b])).unwrap();
        assert_eq!(top, 3, "{out:?}");
        // Rules that say nothing (all equal) leave the fused order.
        Blend { fused: &fused, rules: Fixed(vec![1.0; 4]), weight: 1.0 }.score(0, &mut out);
        assert!(out.windows(2).all(|w| w[0] > w[1]), "{out:?}");
    }
}
