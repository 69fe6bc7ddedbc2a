//! `fused-sr`: `fused-ft` with the order of a person's likes: its calibrated score plus a
//! sequence model's part, `weight · r(j) / lead_r` (nook-core's [`nook_core::sequence`]: the
//! part's best lifted as far as the history's best at weight 1). The part is one of two tables of
//! the same form, chosen on validation: the counted sequential rules ([`super::seq_rules`], `sr`)
//! or the learned transitions ([`super::slit`], `slit`). The weight is chosen on the validation
//! split against the catalogue `fused-ft` chose its own settings with. Weight 0 is `fused-ft`
//! exactly; `fused-sr` − `fused-ft` is what the order of likes adds. The browser bundle carries the
//! table and scores it with the same code (`nook export --variant fused-sr`, the default when
//! trained with a weight above 0).

use super::family::TextFamily;
use super::hybrid::{user_vectors, HybridScorer, FINETUNED};
use super::select::{self, Choice};
use super::seq_rules::SeqRules;
use super::slit::Slit;
use super::{Fitted, ModelEntry, Scorer};
use crate::eval::{similar, EvalSet, Target};
use crate::split::Split;
use crate::store::read_json;
use anyhow::{Context, Result};
use nook_core::sequence::{Rules, Sequence};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

pub const ID: &str = "fused-sr";
/// The part's weights tried on validation (0: `fused-ft` alone; 1: the part's best rise as far as
/// the history's best).
const WEIGHTS: [f32; 8] = [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5];

pub const MODEL: ModelEntry = ModelEntry {
    id: ID,
    about: "fused-ft plus the order of likes (sr's rules or slit's learned transitions, chosen on validation), calibrated to its lead as the history's is (its weight chosen on validation)",
    default: true,
    needs_text: true,
    fit: |t| {
        let family = t.finetuned_family()?;
        let parts = [Order::Rules(t.seq_rules()?), Order::Learned(t.slit()?)];
        let (order, choice) = t.timed("fused-sr-selection", |t| choose_order(t.split(), &family, parts))?;
        Ok(Arc::new(FusedSeq { family, order, choice }))
    },
    load: |l| Ok(Arc::new(FusedSeq::load(l.dir, l.family(FINETUNED)?, l.info.n_items)?)),
};

/// The sequence part `fused-sr` adds to `fused-ft`: a table of the same form either way, so the
/// bundle and the browser score both with the same code.
#[derive(Clone)]
pub enum Order {
    /// `sr`: what people liked soon after an item, counted.
    Rules(Arc<SeqRules>),
    /// `slit`: the same, learnt as one regression.
    Learned(Arc<Slit>),
}

impl Order {
    pub fn id(&self) -> &'static str {
        match self {
            Order::Rules(_) => super::seq_rules::ID,
            Order::Learned(_) => super::slit::ID,
        }
    }

    pub fn table(&self) -> &Rules {
        match self {
            Order::Rules(r) => &r.next,
            Order::Learned(s) => &s.next,
        }
    }

    pub fn sequence(&self, weight: f32) -> Sequence {
        match self {
            Order::Rules(r) => r.sequence(weight),
            Order::Learned(s) => s.sequence(weight),
        }
    }

    /// The same setting fitted on `history` (the training part, for validation).
    fn refit(&self, history: &[Vec<u32>], n_items: usize) -> Result<Order> {
        Ok(match self {
            Order::Rules(r) => Order::Rules(Arc::new(SeqRules::fit(history, n_items, r.choice.best))),
            Order::Learned(s) => Order::Learned(Arc::new(Slit::fit(history, n_items, s.choice.best)?)),
        })
    }

    fn setting(&self) -> String {
        match self {
            Order::Rules(r) => format!("{:?}", r.choice.best),
            Order::Learned(s) => format!("{:?}", s.choice.best),
        }
    }

    fn load(dir: &Path, id: &str, n_items: usize) -> Result<Order> {
        Ok(match id {
            super::seq_rules::ID => Order::Rules(Arc::new(SeqRules::load(dir, n_items)?)),
            super::slit::ID => Order::Learned(Arc::new(Slit::load(dir, n_items)?)),
            other => anyhow::bail!("{}: unknown sequence part {other:?}", dir.join("fused-sr.json").display()),
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        match self {
            Order::Rules(r) => r.save(dir),
            Order::Learned(s) => s.save(dir),
        }
    }
}

/// Chooses the sequence part and its weights on validation ([`choose_weights`] for each): the
/// part whose best weight scores higher, the first of equals.
fn choose_order(split: &Split, family: &TextFamily, parts: [Order; 2]) -> Result<(Order, Choices)> {
    let mut best: Option<(f64, Order, Choices)> = None;
    let mut tried = Vec::new();
    for part in parts {
        let choices = choose_weights(split, family, &part)?;
        let score = choices.weight.tried.iter().map(|t| t.1).fold(f64::NEG_INFINITY, f64::max);
        tried.push((part.id().to_string(), score));
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, part, choices));
        }
    }
    let (_, part, choices) = best.expect("two parts");
    tracing::info!("{ID}: sequence part {} (validation NDCG@10 by part: {tried:?})", part.id());
    Ok((part, Choices { order_validation: tried, ..choices }))
}

/// The part's weights, on the validation split: `fused-ft` as validation measured it (the
/// catalogue before the refit) plus the part with its chosen setting fitted on the training part.
/// First its weight in recommendations, then, at that weight, in "more like this" (the
/// item-to-item benchmark's validation part: one item as the only like).
fn choose_weights(split: &Split, family: &TextFamily, part: &Order) -> Result<Choices> {
    let catalog = family.selection.as_ref().context("fused-sr: fused-ft's validation catalogue is not at hand")?;
    let scoring = family.hybrid.scoring;
    // The histories `on_validation` scores with: people are folded in once, not per weight.
    let history = split.train_sequences();
    let train_part = part.refit(&history, split.n_items)?;
    let users = user_vectors(catalog, &scoring, &history);
    let weight = select::on_validation(split, &format!("{ID} ({})", part.id()), &WEIGHTS, |_, _, weight| Blend {
        fused: HybridScorer { name: FINETUNED.name, catalog, scoring, users: Cow::Borrowed(&users) },
        rules: train_part.table(),
        sequence: train_part.sequence(weight),
        history: &history,
    });
    let with_rules = catalog.clone().with_rules(train_part.table().clone())?;
    let sequence = train_part.sequence(weight.best);
    let scorings: Vec<nook_core::Scoring> = WEIGHTS
        .iter()
        .map(|&w| nook_core::Scoring { sequence: Some(Sequence { similar_weight: Some(w), ..sequence }), ..scoring })
        .collect();
    let train = split.train_matrix();
    let set = EvalSet::new(split, &train, Target::Valid);
    let order = part.id().to_string();
    if set.users.is_empty() {
        return Ok(Choices { weight, similar: None, order, order_validation: Vec::new() });
    }
    let tried: Vec<(f32, f64)> =
        WEIGHTS.iter().copied().zip(similar::ndcg_by_scoring(&set, &history, &with_rules, &scorings)).collect();
    // The first of equals: the smaller weight.
    let best = tried.iter().fold(tried[0], |b, t| if t.1 > b.1 { *t } else { b }).0;
    let similar = Choice { best, tried };
    tracing::info!("{ID}: \"more like this\" {}", similar.describe("sequence part's weight"));
    Ok(Choices { weight, similar: Some(similar), order, order_validation: Vec::new() })
}

/// What `fused-sr.json` holds: the part's weight and its weight in "more like this" (absent in
/// model directories from before it was chosen, and without a validation part: the first), and
/// which part (absent before there were two: the rules).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Choices {
    #[serde(flatten)]
    weight: Choice<f32>,
    #[serde(default)]
    similar: Option<Choice<f32>>,
    #[serde(default = "rules_id")]
    order: String,
    /// Each part's best validation NDCG@10.
    #[serde(default)]
    order_validation: Vec<(String, f64)>,
}

fn rules_id() -> String {
    super::seq_rules::ID.to_string()
}

/// The sequence part's weight validation chose for the `fused-sr` saved in `dir`.
pub fn chosen_weight(dir: &Path) -> Result<f32> {
    Ok(read_json::<Choices>(&dir.join("fused-sr.json"))?.weight.best)
}

pub struct FusedSeq {
    family: Arc<TextFamily>,
    order: Order,
    choice: Choices,
}

impl FusedSeq {
    /// Reads the model from a model directory, beside its `fused-ft` family.
    pub fn load(dir: &Path, family: Arc<TextFamily>, n_items: usize) -> Result<Self> {
        let choice: Choices = read_json(&dir.join("fused-sr.json"))?;
        let order = Order::load(dir, &choice.order, n_items)?;
        Ok(Self { family, order, choice })
    }

    /// What the bundle carries: `fused-ft`'s catalogue with the part's table, and its scoring
    /// with the part's weight.
    pub fn catalog_and_scoring(&self) -> Result<(nook_core::Catalog, nook_core::Scoring)> {
        let h = &self.family.hybrid;
        let catalog = h.catalog.clone().with_rules(self.order.table().clone())?;
        let sequence = Sequence {
            similar_weight: self.choice.similar.as_ref().map(|c| c.best),
            ..self.order.sequence(self.choice.weight.best)
        };
        Ok((catalog, nook_core::Scoring { sequence: Some(sequence), ..h.scoring }))
    }
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
        Box::new(Blend {
            fused,
            rules: self.order.table(),
            sequence: self.order.sequence(self.choice.weight.best),
            history,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.family.save(dir)?;
        self.order.save(dir)?;
        std::fs::write(dir.join("fused-sr.json"), serde_json::to_vec_pretty(&self.choice)?)?;
        Ok(())
    }

    fn similar_ranker(&self) -> Option<(&'static str, nook_core::Catalog, nook_core::Scoring)> {
        let (catalog, scoring) = self.catalog_and_scoring().expect("the rules were fitted for this catalogue");
        Some((ID, catalog, scoring))
    }

    fn notes(&self) -> Option<String> {
        let similar = match &self.choice.similar {
            Some(c) => c.describe("in \"more like this\""),
            None => "the same in \"more like this\"".into(),
        };
        let parts: Vec<String> = self.choice.order_validation.iter().map(|(id, v)| format!("`{id}` {v:.4}")).collect();
        let chosen = match parts.is_empty() {
            true => String::new(),
            false => format!(", chosen on validation NDCG@10 ({})", parts.join(", ")),
        };
        Some(format!(
            "- `fused-sr`: sequence part `{}` ({}){chosen}; {}; {similar}\n",
            self.order.id(),
            self.order.setting(),
            self.choice.weight.describe("its weight"),
        ))
    }
}

/// `fused` plus the rules' calibrated part for each person's history (oldest first): what
/// [`nook_core::Catalog::recommend`] computes for a catalogue with rules.
pub struct Blend<'a, F> {
    pub fused: F,
    pub rules: &'a Rules,
    pub sequence: Sequence,
    pub history: &'a [Vec<u32>],
}

impl<F: Scorer> Scorer for Blend<'_, F> {
    fn name(&self) -> &str {
        ID
    }

    fn score(&self, user: u32, out: &mut [f32]) {
        self.fused.score(user, out);
        self.add_rules(user, out);
    }
    fn score_many(&self, users: &[u32], out: &mut [f32]) {
        self.fused.score_many(users, out);
        let n = out.len() / users.len().max(1);
        users.iter().zip(out.chunks_exact_mut(n.max(1))).for_each(|(&u, o)| self.add_rules(u, o));
    }
}

impl<F> Blend<'_, F> {
    fn add_rules(&self, user: u32, out: &mut [f32]) {
        for (j, r) in self.rules.part(&self.sequence, &self.history[user as usize]) {
            out[j as usize] += r;
        }
    }
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

    /// A model directory from before "more like this" had its own rules' weight, or before the
    /// sequence part was chosen, still loads: the bundle then weighs the rules there as in
    /// recommendations.
    #[test]
    fn choices_read_with_and_without_the_similar_weight() {
        let old: Choices = serde_json::from_str(r#"{"best": 0.5, "tried": [[0.0, 0.1], [0.5, 0.2]]}"#).unwrap();
        assert_eq!((old.weight.best, old.similar), (0.5, None));
        assert_eq!(old.order, "sr", "before there were two parts, the part was the rules");
        let now = Choices { similar: Some(Choice { best: 0.2, tried: vec![(0.2, 0.09)] }), ..old };
        let back: Choices = serde_json::from_slice(&serde_json::to_vec(&now).unwrap()).unwrap();
        assert_eq!(back.similar.map(|c| c.best), Some(0.2));
        assert_eq!(back.weight.tried, vec![(0.0, 0.1), (0.5, 0.2)]);
    }

    #[test]
    fn weight_zero_is_the_fused_model_and_the_rules_can_reorder_it() {
        let fused = Fixed(vec![3.0, 2.0, 1.0, 0.0]);
        // One rule, 0 → 3: r = [0, 0, 0, 1], lead 0.25 (the 2 leaders average 0.5, the mean 0.25).
        let p = Rules::PAD;
        let rules = Rules::new(4, 1, vec![3, p, p, p], vec![1.0, 0.0, 0.0, 0.0]).unwrap();
        let history = vec![vec![0]];
        let blend = |weight| Blend {
            fused: &fused,
            rules: &rules,
            sequence: Sequence { weight, decay: 0.9, recent: 100, similar_weight: None },
            history: &history,
        };
        let mut out = vec![0f32; 4];
        blend(0.0).score(0, &mut out);
        assert_eq!(out, fused.0);
        blend(0.1).score(0, &mut out);
        assert_eq!(out, vec![3.0, 2.0, 1.0, 0.4], "a small weight leaves the order");
        blend(1.0).score(0, &mut out);
        assert_eq!(out, vec![3.0, 2.0, 1.0, 4.0], "at 1 the rule's item rises above the history's best");
    }

    /// What the trainer evaluates as `fused-sr` is what a bundle ranks with: the same list as
    /// nook-core's `recommend` for a catalogue carrying the rules (the browser's code).
    #[test]
    fn the_evaluated_scores_are_the_bundles_ranking() {
        let n = 500;
        let catalog = nook_core::synthetic::catalog(n, 8, 16, false, 5)
            .with_rules(nook_core::synthetic::rules(n, 10, 6))
            .unwrap();
        let rules = catalog.rules.clone().unwrap();
        let sequence = Sequence { weight: 0.75, decay: 0.9, recent: 100, similar_weight: None };
        let scoring =
            nook_core::Scoring { sequence: Some(sequence), ..super::super::hybrid::base_scoring(&Default::default()) };
        let history: Vec<Vec<u32>> = vec![vec![3, 40, 41, 7], vec![100], (0..60).map(|i| i * 7).collect()];
        let users = user_vectors(&catalog, &scoring, &history);
        let blend = Blend {
            fused: HybridScorer { name: FINETUNED.name, catalog: &catalog, scoring, users: Cow::Borrowed(&users) },
            rules: &rules,
            sequence,
            history: &history,
        };
        for (u, likes) in history.iter().enumerate() {
            let mut scores = vec![0f32; n];
            blend.score(u as u32, &mut scores);
            let evaluated: Vec<u32> =
                nook_core::top_k(&scores, 10, |i| !likes.contains(&i)).into_iter().map(|s| s.index).collect();
            let req = nook_core::Request { likes: likes.clone(), k: 10, ..Default::default() };
            let ranked: Vec<u32> = catalog.recommend(&scoring, &req).unwrap().into_iter().map(|r| r.index).collect();
            assert_eq!(evaluated, ranked, "user {u}");
            let plain = nook_core::Scoring { sequence: None, ..scoring };
            let without: Vec<u32> = catalog.recommend(&plain, &req).unwrap().into_iter().map(|r| r.index).collect();
            assert_ne!(without, ranked, "user {u}: the rules change the list");
        }
    }
}
