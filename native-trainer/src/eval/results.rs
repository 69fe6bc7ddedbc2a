//! Evaluating a trained [`ModelSet`] on the held-out sets, and the machine-readable report
//! (`nook eval --json`) with its plain-text table.

use super::bootstrap::{self, Difference};
use super::metrics;
use super::query::{ModelQueryResult, QueryBench, QueryReport, Rankings};
use super::similar::{self, SimilarReport};
use super::{evaluate_with_users, EvalSet, EvalSize, MetricRow, Target};
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
    /// Each model against `ease` and against its ablation, with 95% paired-bootstrap intervals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
    /// Rows read, and those skipped under `--skip-bad-rows` by reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_rows: Option<crate::data::SkippedRows>,
    /// The text encoder the text models embedded with (absent when none was trained here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderUsed>,
}

/// Which encoder produced a run's text vectors, and how it read the texts: enough to tell two
/// runs' encoders apart (the fingerprint covers the model files and these settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderUsed {
    pub dir: String,
    pub fingerprint: String,
    pub max_tokens: usize,
    pub pooling: nook_core::encoder::Pooling,
    #[serde(default, skip_serializing_if = "nook_core::encoder::Prompts::is_empty")]
    pub prompts: nook_core::encoder::Prompts,
}

impl EncoderUsed {
    pub fn of(source: &crate::textvec::EncoderSource) -> Result<Self> {
        Ok(Self {
            dir: source.dir.display().to_string(),
            fingerprint: source.fingerprint()?,
            max_tokens: source.max_tokens,
            pooling: source.pooling()?,
            prompts: source.prompts()?,
        })
    }

    /// One line for the report: where the encoder came from and how it read the texts.
    pub fn describe(&self) -> String {
        let pooling = if self.pooling.is_mean() { "mean pooling" } else { "[CLS] pooling" };
        let prompts = match (&self.prompts.query, &self.prompts.document) {
            (q, d) if q.is_empty() && d.is_empty() => "no prompts".to_string(),
            (q, d) => format!("prompts: query {q:?}, item text {d:?}"),
        };
        format!(
            "Text encoder: `{}` ({pooling}, {prompts}, up to {} tokens; fingerprint {}).",
            self.dir,
            self.max_tokens,
            &self.fingerprint[..12.min(self.fingerprint.len())]
        )
    }
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
    let mut differences = Vec::new();
    for &target in targets {
        let eval_set = EvalSet::new(split, &train, target);
        splits.insert(target.name().to_string(), eval_set.size());
        if eval_set.users.is_empty() {
            tracing::warn!("{} split has no users to evaluate", target.name());
            continue;
        }
        let mut per_user = BTreeMap::new();
        for model in &scorers {
            let (rows, values) = evaluate_with_users(model.as_ref(), &eval_set, ks);
            results.extend(rows);
            per_user.insert(model.name().to_string(), values);
        }
        differences.extend(compare(&per_user, target.name(), split.config.seed));
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
        differences,
        data_rows: None,
        encoder: None,
    }
}

/// The paired-bootstrap differences of [`bootstrap::comparisons`] on one split.
fn compare(per_user: &BTreeMap<String, bootstrap::PerUser>, split: &str, seed: u64) -> Vec<Difference> {
    let models: Vec<String> = per_user.keys().cloned().collect();
    let mut out = Vec::new();
    for (model, baseline) in bootstrap::comparisons(&models, split) {
        for metric in bootstrap::compared_metrics(split) {
            let (Some(a), Some(b)) = (per_user[&model].get(*metric), per_user[&baseline].get(*metric)) else {
                continue;
            };
            let mean = |v: &[f64]| {
                let v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            };
            if let Some((difference, low, high)) = bootstrap::paired(a, b, bootstrap::RESAMPLES, seed) {
                out.push(Difference {
                    model: model.clone(),
                    baseline: baseline.clone(),
                    split: split.to_string(),
                    metric: metric.to_string(),
                    model_value: mean(a),
                    baseline_value: mean(b),
                    difference,
                    low,
                    high,
                    users: a.iter().zip(b).filter(|(x, y)| !x.is_nan() && !y.is_nan()).count(),
                    resamples: bootstrap::RESAMPLES,
                });
            }
        }
    }
    out
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
    /// One line per comparison: both values, the difference, its 95% interval and the ratio.
    pub fn differences_table(&self) -> String {
        if self.differences.is_empty() {
            return String::new();
        }
        let mut out = format!(
            "paired bootstrap over users ({} resamples), 95% intervals; * = interval excludes 0\n",
            self.differences[0].resamples
        );
        out.push_str(&format!(
            "{:<12} {:<12} {:<5} {:<10} {:>8} {:>8} {:>9} {:>21} {:>7}\n",
            "model", "vs", "split", "metric", "model", "vs", "diff", "95% interval", "ratio"
        ));
        for d in &self.differences {
            out.push_str(&format!(
                "{:<12} {:<12} {:<5} {:<10} {:>8.4} {:>8.4} {:>+9.4} [{:>+8.4}, {:>+8.4}]{} {:>7.3}\n",
                d.model,
                d.baseline,
                d.split,
                d.metric,
                d.model_value,
                d.baseline_value,
                d.difference,
                d.low,
                d.high,
                if d.significant() { "*" } else { " " },
                d.model_value / d.baseline_value,
            ));
        }
        out
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use nook_core::encoder::{Pooling, Prompts};

    #[test]
    fn the_report_line_says_how_the_encoder_read() {
        let mut used = EncoderUsed {
            dir: "assets/models/e5-small".into(),
            fingerprint: "0123456789abcdef".repeat(4),
            max_tokens: 256,
            pooling: Pooling::Mean,
            prompts: Prompts { query: "query: ".into(), document: "passage: ".into() },
        };
        assert_eq!(
            used.describe(),
            "Text encoder: `assets/models/e5-small` (mean pooling, prompts: query \"query: \", item text \
             \"passage: \", up to 256 tokens; fingerprint 0123456789ab)."
        );
        used.prompts = Prompts::default();
        used.pooling = Pooling::Cls;
        assert!(used.describe().contains("([CLS] pooling, no prompts, up to 256 tokens"), "{}", used.describe());
    }
}
