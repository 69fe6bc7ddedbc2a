//! `nook export`: a trained hybrid model → a verified browser bundle (see `nook_core::bundle`),
//! written atomically (temporary directory + rename).

use crate::atomic;
use crate::eval::results::EvalReport;
use crate::models::family::TextFamily;
use crate::models::fused_seq::{self, FusedSeq};
use crate::models::hybrid::{FINETUNED, FROZEN};
use crate::store::{self, ENCODER_FILES};
use anyhow::{Context, Result};
use nook_core::bundle::{sha256_hex, EncoderInfo, FileEntry, Manifest, MetricSnapshot, FORMAT, VERSION};
use nook_core::catalog::codec;
use nook_core::quant::{self, encode_matrix, Quant};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Metrics copied into the manifest (all models, warm and cold).
const SNAPSHOT_METRICS: [&str; 4] = ["ndcg@10", "recall@10", "recall@20", "auc"];

/// Which trained model a bundle carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The best the model directory has: `fused-sr`, else `fused-ft`, else `hybrid`.
    Auto,
    /// ALS + frozen encoder.
    Hybrid,
    /// ALS + fine-tuned encoder, fused.
    FusedFt,
    /// `fused-ft` plus sequential rules: the order of a person's likes counts (the rules add
    /// ~4 MB for 10k items).
    FusedSr,
}

pub fn export(model_dir: &Path, out: &Path, variant: Variant, quant: Quant) -> Result<Manifest> {
    let info = store::load_info(model_dir)?;
    let variant = match variant {
        // Rules that validation gave no weight would add megabytes and change nothing.
        Variant::Auto
            if info.models.iter().any(|m| m == fused_seq::ID) && fused_seq::chosen_weight(model_dir)? > 0.0 =>
        {
            Variant::FusedSr
        }
        Variant::Auto if model_dir.join(FINETUNED.name).is_dir() => Variant::FusedFt,
        Variant::Auto => Variant::Hybrid,
        chosen => chosen,
    };
    let spec = if variant == Variant::Hybrid { FROZEN } else { FINETUNED };
    let family = Arc::new(TextFamily::load(model_dir, spec, info.n_items)?);
    let (model, catalog, scoring) = match variant {
        Variant::FusedSr => {
            let fused = FusedSeq::load(model_dir, family.clone(), info.n_items).with_context(|| {
                format!("{}: no trained fused-sr (train it, or export another --variant)", model_dir.display())
            })?;
            let (catalog, scoring) = fused.catalog_and_scoring()?;
            (fused_seq::ID, catalog, scoring)
        }
        _ => (spec.name, family.hybrid.catalog.clone(), family.hybrid.scoring),
    };
    // The browser embeds typed queries only (item vectors are precomputed): it needs the encoder
    // the catalogue's query columns came from.
    let encoder_dir = &family.query_encoder;
    let mut encoder = Vec::new();
    for name in ENCODER_FILES {
        let path = encoder_dir.join(name);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = if name == "model.safetensors" { encode_encoder(&path, &bytes, quant)? } else { bytes };
        encoder.push((name.to_string(), bytes));
    }
    let meta = BundleMeta {
        dataset: info.dataset.clone(),
        model: model.to_string(),
        scoring,
        encoder: EncoderInfo {
            max_tokens: info.encoder_max_tokens.unwrap_or(nook_core::encoder::DEFAULT_MAX_TOKENS),
            pooling: crate::textvec::read_pooling(encoder_dir)?,
            prompts: crate::textvec::read_prompts(encoder_dir)?,
        },
        metrics: read_metrics(&model_dir.join("eval.json")),
        text_fields: info.text_fields.clone(),
    };
    write_bundle(out, &catalog, quant, encoder, meta)
}

/// What a bundle's manifest says besides its tables and files.
pub struct BundleMeta {
    pub dataset: String,
    pub model: String,
    pub scoring: nook_core::Scoring,
    /// The encoder's token limit, pooling and prompts.
    pub encoder: EncoderInfo,
    pub metrics: Vec<MetricSnapshot>,
    pub text_fields: Vec<String>,
}

/// Writes a bundle (atomically) from a catalogue, the encoder's files (already encoded, by name
/// under `encoder/`) and the manifest's other fields.
pub fn write_bundle(
    out: &Path,
    c: &nook_core::Catalog,
    quant: Quant,
    encoder: Vec<(String, Vec<u8>)>,
    meta: BundleMeta,
) -> Result<Manifest> {
    let tables = codec::encode(c, quant);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("items.json".into(), serde_json::to_vec(&c.items)?),
        ("items.safetensors".into(), quant::serialize(&tables)?),
    ];
    files.extend(encoder.into_iter().map(|(name, bytes)| (format!("encoder/{name}"), bytes)));
    let mut manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        id: String::new(),
        dataset: meta.dataset,
        created_by: format!("nook {}", env!("CARGO_PKG_VERSION")),
        n_items: c.len(),
        cf_dim: c.cf_dim,
        text_dim: c.text_dim,
        scoring: meta.scoring,
        quant,
        model: meta.model,
        encoder: meta.encoder,
        text_fields: meta.text_fields,
        metrics: meta.metrics,
        files: files
            .iter()
            .map(|(name, bytes)| (name.clone(), FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 }))
            .collect::<BTreeMap<_, _>>(),
    };
    let manifest_bytes = manifest.to_bytes()?;
    atomic::write_dir(out, |tmp| {
        std::fs::create_dir(tmp.join("encoder"))?;
        for (name, bytes) in &files {
            std::fs::write(tmp.join(name), bytes)?;
        }
        // The manifest goes last: a bundle directory with a manifest is complete.
        std::fs::write(tmp.join("manifest.json"), &manifest_bytes)?;
        Ok(())
    })?;
    Ok(manifest)
}

/// Re-encodes encoder weights: matrices under `quant`, vectors as f32, integer buffers dropped
/// (the encoder computes positions itself).
fn encode_encoder(path: &Path, bytes: &[u8], quant: Quant) -> Result<Vec<u8>> {
    let st = SafeTensors::deserialize(bytes).with_context(|| format!("{}: not safetensors", path.display()))?;
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let view = st.tensor(&name)?;
        if !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            continue;
        }
        let shape = view.shape().to_vec();
        let values = quant::decode_matrix(&st, &path.display().to_string(), &name, &shape)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .to_f32();
        match shape.as_slice() {
            [rows, cols] => out.extend(encode_matrix(&name, &values, *rows, Some(*cols), quant)),
            [len] => out.extend(encode_matrix(&name, &values, *len, None, Quant::F32)),
            other => anyhow::bail!("{}: {name} has unsupported shape {other:?}", path.display()),
        }
    }
    Ok(quant::serialize(&out)?)
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

/// A synthetic bundle of `n_items` for scale tests: the items of `from` repeated (ids `s0`,
/// `s1`, ..., titles "Item N"), with its encoder, weights (not its sequential rules) and
/// quantisation. Query columns wider than `query_dims` are reduced by PCA (fitted on `from`'s
/// items), as the trainer reduces them for a catalogue this large.
pub fn scale_bundle(from: &Path, n_items: usize, query_dims: usize, out: &Path) -> Result<Manifest> {
    let b = load_bundle(from)?;
    let c = &b.catalog;
    let m = c.len();
    anyhow::ensure!(
        m > 0 && n_items > 0 && query_dims > 0,
        "need items to repeat, a positive --items and --query-dims"
    );
    let repeat = |t: &[f32], d: usize| -> Vec<f32> {
        (0..n_items).flat_map(|i| t[(i % m) * d..(i % m + 1) * d].iter().copied()).collect()
    };
    let items = (0..n_items)
        .map(|i| nook_core::ItemMeta { id: format!("s{i}"), title: format!("Item {i}"), year: None, genres: vec![] })
        .collect();
    let popularity = (0..n_items).map(|i| c.popularity[i % m]).collect();
    let text = c.text.to_f32();
    let (p, o) = (c.layout.profile_dims, c.layout.query_offset);
    let own_query_columns = c.layout != nook_core::TextLayout::shared(c.text_dim) && c.projection.is_none();
    let columns = |r: std::ops::Range<usize>| -> Vec<f32> {
        text.chunks_exact(c.text_dim).flat_map(|row| row[r.clone()].iter().copied()).collect()
    };
    let new = |text: Vec<f32>, text_dim: usize| {
        nook_core::Catalog::new(
            items,
            repeat(&c.cf.to_f32(), c.cf_dim),
            c.cf_dim,
            c.cf_gram.clone(),
            text,
            text_dim,
            popularity,
        )
    };
    let catalog = if own_query_columns && c.query_cols() > query_dims {
        let query = columns(o..c.text_dim);
        let projection = crate::models::pca::fit(&query, c.query_cols(), query_dims);
        let reduced = projection.apply_rows(&query);
        new(repeat(&columns(0..p), p), p)?.with_query_columns(
            &repeat(&reduced, query_dims),
            query_dims,
            Some(projection),
        )?
    } else {
        let catalog = new(repeat(&text, c.text_dim), c.text_dim)?;
        match &c.projection {
            Some(p) => catalog.with_projection(p.clone())?,
            None => catalog,
        }
        .with_layout(c.layout)?
    };
    let mut encoder = Vec::new();
    for name in ENCODER_FILES {
        let path = from.join("encoder").join(name);
        encoder.push((name.to_string(), std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?));
    }
    let meta = BundleMeta {
        dataset: format!("{} x{} (synthetic)", b.manifest.dataset, n_items.div_ceil(m)),
        model: b.manifest.model.clone(),
        // The scaled catalogue has no sequential rules (a million items' would be ~600 MB): it
        // measures the tables, the encoder and the ranking.
        scoring: nook_core::Scoring { sequence: None, ..b.manifest.scoring },
        encoder: b.manifest.encoder.clone(),
        metrics: Vec::new(),
        text_fields: b.manifest.text_fields.clone(),
    };
    write_bundle(out, &catalog, b.manifest.quant, encoder, meta)
}
