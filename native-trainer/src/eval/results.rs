//! Evaluating a trained [`ModelSet`] on the held-out sets, and the machine-readable report
//! (`nook eval --json`) with its plain-text table.

use super::metrics;
use super::query::{ModelQueryResult, QueryBench, QueryReport, Rankings};
use super::similar::{self, SimilarReport};
use super::{evaluate, EvalSet, EvalSize, MetricRow, Target};
use crate::data::{Dataset, TextField};
use crate::models::Scorer;
use crate::split::{Split, SplitConfig};
use crate::training::embed_queries;
use crate::training::{ModelConfig, ModelSet};
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;

/// The machine-readable evaluation report (`nook eval --json`). Other tools read it: keep its shape.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalReport {
    pub dataset: String,
    pub protocol: SplitConfig,
    pub seed: u64,
    pub ks: Vec<usize>,
    pub splits: BTreeMap<String, EvalSize>,
    pub models: ModelConfig,
    pub fit_seconds: BTreeMap<String, f64>,
    /// Peak resident memory of the trainer (MB) after each stage.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_rss_mb: BTreeMap<String, f64>,
    pub results: Vec<MetricRow>,
    /// The query benchmark (runs that hold a query field out of the item text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<QueryReport>,
    /// The item-to-item ("more like this") benchmark, when text models were evaluated on warm items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similar: Option<SimilarReport>,
    /// Rows read, and those skipped under `--skip-bad-rows` by reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_rows: Option<crate::data::SkippedRows>,
}

/// Evaluates every model of `set`, then `extra` scorers, on `targets`.
pub fn evaluate_all(
    dataset: &str,
    split: &Split,
    set: &ModelSet,
    extra: &[&dyn Scorer],
    cfg: &ModelConfig,
    ks: &[usize],
    targets: &[Target],
) -> EvalReport {
    // The models were fitted on the final split; the validation part (empty after a refit) only
    // chose settings.
    let split = &split.final_fit();
    let train = split.train_matrix();
    let history = split.train_sequences();
    let mut scorers: Vec<Box<dyn Scorer + '_>> = set.models.iter().map(|(_, m)| m.scorer(&history)).collect();
    scorers.extend(extra.iter().map(|&s| Box::new(s) as Box<dyn Scorer>));
    let mut splits = BTreeMap::new();
    let mut results = Vec::new();
    let mut similar = None;
    for &target in targets {
        let eval_set = EvalSet::new(split, &train, target);
        splits.insert(target.name().to_string(), eval_set.size());
        if eval_set.users.is_empty() {
            tracing::warn!("{} split has no users to evaluate", target.name());
            continue;
        }
        for model in &scorers {
            results.extend(evaluate(model.as_ref(), &eval_set, ks));
        }
        if target == Target::Warm && set.models.iter().any(|(_, m)| m.text().is_some()) {
            let models: Vec<&dyn crate::models::Fitted> = set.models.iter().map(|(_, m)| m.as_ref()).collect();
            similar = Some(similar::evaluate(&eval_set, &history, &models));
        }
    }
    EvalReport {
        dataset: dataset.to_string(),
        protocol: split.config.clone(),
        seed: split.config.seed,
        ks: ks.to_vec(),
        splits,
        models: cfg.clone(),
        fit_seconds: set.fit_seconds.clone(),
        peak_rss_mb: set.peak_rss_mb.clone(),
        results,
        queries: None,
        similar,
        data_rows: None,
    }
}

/// The query benchmark on the test part for every text model of `set`, each at its own query
/// weight; queries embedded by each model's query encoder (truncated at `max_tokens`).
pub fn evaluate_queries(
    data: &Dataset,
    split: &Split,
    set: &ModelSet,
    field: TextField,
    max_tokens: usize,
) -> Result<QueryReport> {
    let split = &split.final_fit();
    let train = split.train_matrix();
    let eval_set = EvalSet::new(split, &train, Target::Warm);
    let bench = QueryBench::new(data, &eval_set, &split.test, field, split.config.seed);
    let history = split.train_sequences();
    let mut embedded: HashMap<String, Vec<Vec<f32>>> = HashMap::new();
    let mut models = BTreeMap::new();
    for t in set.models.iter().filter_map(|(_, m)| m.text()) {
        let key = t.query_encoder.key();
        if !embedded.contains_key(&key) {
            let encoder = t.query_encoder.load(max_tokens)?;
            embedded.insert(key.clone(), embed_queries(&encoder, &bench.queries)?);
        }
        let w = t.scoring.query_weight;
        let m = bench.evaluate(&eval_set, &history, t.catalog, &t.scoring, &embedded[&key], &[w]);
        let test = Rankings { history: m.history, query: m.query, blend: m.blends[0] };
        models.insert(
            t.name.to_string(),
            ModelQueryResult { query_weight: w, test, validation: t.query_validation.to_vec() },
        );
    }
    Ok(QueryReport { field: Some(field), queries: bench.queries.len(), pairs: bench.pairs.len(), models })
}

impl QueryReport {
    /// One line per model and ranking: recall and NDCG on the query's targets, NDCG on all the
    /// person's test positives.
    pub fn table(&self) -> String {
        let mut out = format!(
            "query benchmark: {:?} held out of the item text, {} queries, {} (person, query) test cases\n",
            self.field, self.queries, self.pairs
        );
        out.push_str(&format!(
            "{:<12} {:<9} {:>7} {:>10} {:>10} {:>14}\n",
            "model", "ranking", "weight", "recall@10", "ndcg@10", "ndcg@10-all"
        ));
        for (model, r) in &self.models {
            for (name, s) in [("history", r.test.history), ("query", r.test.query), ("blend", r.test.blend)] {
                let weight = if name == "blend" { format!("{}", r.query_weight) } else { "-".into() };
                out.push_str(&format!(
                    "{model:<12} {name:<9} {weight:>7} {:>10.4} {:>10.4} {:>14.4}\n",
                    s.recall10, s.ndcg10, s.ndcg10_all
                ));
            }
        }
        out
    }
}

impl EvalReport {
    /// A value by (model, split, metric).
    pub fn get(&self, model: &str, split: &str, metric: &str) -> Option<f64> {
        self.results.iter().find(|r| r.model == model && r.split == split && r.metric == metric).map(|r| r.value)
    }

    /// A plain-text table: one line per (model, split), the main metrics at every K as columns.
    pub fn table(&self) -> String {
        self.table_for(&self.ks)
    }

    /// Like [`EvalReport::table`], for the cut-offs `ks` only.
    pub fn table_for(&self, ks: &[usize]) -> String {
        let cols = metrics::columns(ks);
        let mut out = format!("{:<14} {:<6}", "model", "split");
        cols.iter().for_each(|c| out.push_str(&format!(" {c:>12}")));
        out.push('\n');
        let mut keys: Vec<(String, String)> = Vec::new();
        for r in &self.results {
            let key = (r.model.clone(), r.split.clone());
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        // Warm, then cold, then valid; models keep their evaluation order within each.
        let rank = |split: &str| ["warm", "cold", "valid"].iter().position(|s| *s == split);
        keys.sort_by_key(|k| rank(&k.1));
        for (model, split) in keys {
            out.push_str(&format!("{model:<14} {split:<6}"));
            for c in &cols {
                match self.get(&model, &split, c) {
                    Some(v) => out.push_str(&format!(" {v:>12.4}")),
                    None => out.push_str(&format!(" {:>12}", "-")),
                }
            }
            out.push('\n');
        }
        out
    }
}
