//! `nook export`: a trained hybrid model → a verified browser bundle (see `nook_core::bundle`),
//! written atomically (temporary directory + rename).

use crate::atomic;
use crate::models::hybrid::{FINETUNED, FROZEN};
use crate::pipeline::EvalReport;
use crate::store::{self, ENCODER_FILES};
use crate::tensors;
use anyhow::{Context, Result};
use nook_core::bundle::{sha256_hex, EncoderInfo, FileEntry, Manifest, MetricSnapshot, FORMAT, VERSION};
use std::collections::BTreeMap;
use std::path::Path;

/// Metrics copied into the manifest (all models, warm and cold).
const SNAPSHOT_METRICS: [&str; 4] = ["ndcg@10", "recall@10", "recall@20", "auc"];

/// Which trained model a bundle carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// `fused-ft` when the model directory has it, else `hybrid`.
    Auto,
    /// ALS + frozen encoder.
    Hybrid,
    /// ALS + fine-tuned encoder, fused.
    FusedFt,
}

pub fn export(model_dir: &Path, out: &Path, variant: Variant) -> Result<Manifest> {
    let spec = match variant {
        Variant::Hybrid => FROZEN,
        Variant::FusedFt => FINETUNED,
        Variant::Auto if model_dir.join(FINETUNED.name).is_dir() => FINETUNED,
        Variant::Auto => FROZEN,
    };
    let saved = store::load_family(model_dir, spec)?;
    let c = &saved.hybrid.catalog;
    let mut tensors: Vec<(&str, Vec<usize>, &[f32])> = vec![
        ("cf", vec![c.len(), c.cf_dim], &c.cf),
        ("cf_gram", vec![c.cf_dim, c.cf_dim], &c.cf_gram),
        ("text", vec![c.len(), c.text_dim], &c.text),
        ("popularity", vec![c.len()], &c.popularity),
    ];
    if let Some(p) = &c.projection {
        tensors.push(("text_projection", vec![p.out_dim, p.in_dim], &p.components));
        tensors.push(("text_mean", vec![p.in_dim], &p.mean));
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("items.json".into(), serde_json::to_vec(&c.items)?),
        ("items.safetensors".into(), tensors::to_bytes(&tensors)?),
    ];
    for name in ENCODER_FILES {
        let path = saved.encoder_dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.push((format!("encoder/{name}"), bytes));
    }
    let metrics = read_metrics(&model_dir.join("eval.json"));
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        dataset: saved.info.dataset.clone(),
        created_by: format!("nook {}", env!("CARGO_PKG_VERSION")),
        n_items: c.len(),
        cf_dim: c.cf_dim,
        text_dim: c.text_dim,
        scoring: saved.hybrid.scoring,
        model: spec.name.to_string(),
        encoder: EncoderInfo {
            max_tokens: saved.info.encoder_max_tokens.unwrap_or(nook_core::encoder::DEFAULT_MAX_TOKENS),
        },
        metrics,
        files: files
            .iter()
            .map(|(name, bytes)| (name.clone(), FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 }))
            .collect::<BTreeMap<_, _>>(),
    };
    atomic::write_dir(out, |tmp| {
        std::fs::create_dir(tmp.join("encoder"))?;
        for (name, bytes) in &files {
            std::fs::write(tmp.join(name), bytes)?;
        }
        // The manifest goes last: a bundle directory with a manifest is complete.
        std::fs::write(tmp.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
        Ok(())
    })?;
    Ok(manifest)
}

fn read_metrics(path: &Path) -> Vec<MetricSnapshot> {
    let Ok(bytes) = std::fs::read(path) else { return Vec::new() };
    let Ok(report) = serde_json::from_slice::<EvalReport>(&bytes) else {
        tracing::warn!("{}: unreadable; the bundle carries no metrics", path.display());
        return Vec::new();
    };
    report
        .results
        .into_iter()
        .filter(|r| SNAPSHOT_METRICS.contains(&r.metric.as_str()))
        .map(|r| MetricSnapshot { model: r.model, split: r.split, metric: r.metric, value: r.value })
        .collect()
}

/// Reads a bundle directory from disk and loads it through nook-core, exactly as the browser does
/// with fetched bytes.
pub fn load_bundle(dir: &Path) -> Result<nook_core::Bundle> {
    let manifest_path = dir.join("manifest.json");
    let manifest = Manifest::parse(
        &std::fs::read(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .with_context(|| format!("{}", dir.display()))?;
    let mut files = std::collections::HashMap::new();
    for name in manifest.files.keys() {
        let path = dir.join(name);
        files.insert(name.clone(), std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?);
    }
    nook_core::Bundle::load(manifest, files).with_context(|| format!("loading bundle {}", dir.display()))
}
