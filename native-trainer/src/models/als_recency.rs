//! `als-recency`: the fused models without their text. ALS item factors, each person folded in
//! from their likes by nook-core (the browser's code) with the recency weighting the fused
//! models use, its half-life chosen on validation. `fused-ft` minus this row is what the text
//! adds; this row minus `als` is what fold-in with recency adds.
//!
//! Items without training positives get no factors (zero), so on cold items this model ranks
//! like random: the ablation has no text to place them with.

use super::hybrid::{base_scoring, user_vectors, HybridScorer, HALF_LIVES};
use super::select::{self, Choice};
use super::{AlsConfig, Factors, Fitted, ModelEntry, Scorer};
use crate::split::Split;
use crate::store::{read_json, read_tensors, write_tensors};
use anyhow::Result;
use nook_core::catalog::codec;
use nook_core::quant::Quant;
use nook_core::{gramian, Catalog, ItemMeta, Scoring};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

const ID: &str = "als-recency";

pub const MODEL: ModelEntry = ModelEntry {
    id: ID,
    about: "ALS folded in from likes with a recency weight (chosen on validation): the fused models' no-text ablation",
    default: true,
    needs_text: false,
    fit: |t| {
        let cfg = t.cfg().als.clone();
        let items = t.item_meta();
        let selection = t.selection_als();
        let choice = t.timed("als-recency-selection", |t| {
            let catalog = build(t.split(), &selection, &cfg, items.clone())?;
            anyhow::Ok(select::on_validation(t.split(), ID, &HALF_LIVES, |_, history, h| {
                let scoring = scoring(&cfg, h);
                let users = Cow::Owned(user_vectors(&catalog, &scoring, history));
                HybridScorer { name: ID, catalog: &catalog, scoring, users }
            }))
        })?;
        let als = t.final_als();
        let final_split = t.split().final_fit();
        let catalog = build(&final_split, &als, &cfg, items)?;
        Ok(Arc::new(AlsRecency { catalog, scoring: scoring(&cfg, choice.best), choice }))
    },
    load: |l| {
        let info: Info = read_json(&l.dir.join(ID).join("info.json"))?;
        let items: Vec<ItemMeta> = read_json(&l.dir.join("items.json"))?;
        let path = l.dir.join(ID).join("catalog.safetensors");
        let catalog = read_tensors(&path, |t| Ok(codec::decode(t.st(), &path.display().to_string(), items, None)?))?;
        Ok(Arc::new(AlsRecency { catalog, scoring: info.scoring, choice: info.choice }))
    },
};

#[derive(Serialize, Deserialize)]
struct Info {
    scoring: Scoring,
    choice: Choice<f32>,
}

pub struct AlsRecency {
    catalog: Catalog,
    scoring: Scoring,
    choice: Choice<f32>,
}

fn scoring(cfg: &AlsConfig, half_life: f32) -> Scoring {
    Scoring { recency_half_life: half_life, ..base_scoring(cfg) }
}

/// ALS item factors (zero for items without training positives) and a one-column zero text
/// part: nook-core's catalogue needs one, and a text weight of 0 never reads it.
fn build(split: &Split, als: &Factors, cfg: &AlsConfig, items: Vec<ItemMeta>) -> Result<Catalog> {
    let dim = als.dim;
    let trained = split.train_items();
    let mut cf = als.items.clone();
    for (i, row) in cf.chunks_exact_mut(dim).enumerate() {
        if !trained[i] && !als.item_known.as_ref().is_some_and(|k| k[i]) {
            row.fill(0.0);
        }
    }
    let mut popularity = vec![0f32; split.n_items];
    split.train.iter().for_each(|i| popularity[i.item as usize] += 1.0);
    let n = split.n_items;
    Ok(Catalog::new(items, cf, dim, gramian(&als.items, dim, cfg.regularization), vec![0.0; n], 1, popularity)?)
}

impl Fitted for AlsRecency {
    fn scorer<'a>(&'a self, history: &'a [Vec<u32>]) -> Box<dyn Scorer + 'a> {
        let users = Cow::Owned(user_vectors(&self.catalog, &self.scoring, history));
        Box::new(HybridScorer { name: ID, catalog: &self.catalog, scoring: self.scoring, users })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        if !dir.join("items.json").exists() {
            std::fs::write(dir.join("items.json"), serde_json::to_vec(&self.catalog.items)?)?;
        }
        std::fs::create_dir(dir.join(ID))?;
        write_tensors(&dir.join(ID).join("catalog.safetensors"), &codec::encode(&self.catalog, Quant::F32))?;
        let info = Info { scoring: self.scoring, choice: self.choice.clone() };
        std::fs::write(dir.join(ID).join("info.json"), serde_json::to_vec_pretty(&info)?)?;
        Ok(())
    }

    fn notes(&self) -> Option<String> {
        Some(format!("- `{ID}`: {}\n", self.choice.describe("recency half-life (likes)")))
    }
}
