//! The bodies of nook's fuzz targets (`fuzz/fuzz_targets/*.rs` call these), shared with the
//! corpus replay test so CI runs every saved input through exactly the same code.
//! Each must return normally for any input: errors are fine, panics are bugs.

use nook_core::bundle::{IdRequest, Manifest};
use nook_core::{Catalog, ItemMeta, Scoring};
use std::sync::OnceLock;

/// Interactions CSV rows (generic layout) through the trainer's loader.
pub fn csv_rows(data: &[u8]) {
    let dir = std::env::temp_dir().join(format!("nook-fuzz-csv-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("inter.csv");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let source = nook_trainer::data::Source {
        interactions: Some(path),
        format: Some(nook_trainer::data::Format::Generic),
        skip_bad_rows: data.first().is_some_and(|b| b & 1 == 1),
        ..Default::default()
    };
    let _ = nook_trainer::data::load(&source);
}

/// A manifest (first part) and an items table (second part, after the first 0xFF byte) through
/// the bundle loader's parsing and checks.
pub fn bundle_load(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0xFF).unwrap_or(data.len());
    let (manifest, tensors) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let Ok(m) = Manifest::parse(manifest) else { return };
    if m.n_items > 100_000 {
        return; // item metadata below is built per item; the loader itself refuses absurd sizes
    }
    let items = (0..m.n_items)
        .map(|i| ItemMeta { id: i.to_string(), title: String::new(), year: None, genres: vec![] })
        .collect();
    let _ = nook_core::bundle::read_catalog(&m, items, tensors);
    let _ = nook_core::bundle::verify_file(&m, "items.json", tensors);
}

fn tokenizer() -> Option<&'static tokenizers::Tokenizer> {
    static T: OnceLock<Option<tokenizers::Tokenizer>> = OnceLock::new();
    T.get_or_init(|| {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/models/all-MiniLM-L6-v2/tokenizer.json");
        tokenizers::Tokenizer::from_file(path).ok()
    })
    .as_ref()
}

/// Whether the tokenizer asset is present (the replay test insists on it: without it `tokenize`
/// would check nothing).
pub fn tokenizer_loaded() -> bool {
    tokenizer().is_some()
}

/// Arbitrary bytes (made UTF-8 the way the browser's TextDecoder does) through the tokenizer the
/// encoder uses.
pub fn tokenize(data: &[u8]) {
    if let Some(t) = tokenizer() {
        let text = String::from_utf8_lossy(data);
        let _ = t.encode(text.as_ref(), true);
    }
}

fn catalog() -> &'static Catalog {
    static C: OnceLock<Catalog> = OnceLock::new();
    C.get_or_init(|| nook_core::synthetic::catalog(50, 4, 8, false, 3))
}

/// A recommendation request as JSON (what the browser sends) through id resolution and ranking.
pub fn recommend(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<IdRequest>(data) else { return };
    let c = catalog();
    let s = Scoring {
        cf_weight: 1.0,
        text_weight: 0.5,
        query_weight: 1.0,
        like_confidence: 2.0,
        dislike_confidence: 2.0,
        recency_half_life: 10.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
    };
    let Ok(likes) = req.likes.iter().map(|id| c.index_of(id)).collect::<Result<Vec<_>, _>>() else { return };
    let Ok(dislikes) = req.dislikes.iter().map(|id| c.index_of(id)).collect::<Result<Vec<_>, _>>() else { return };
    if req.k == 0 || req.k > nook_core::bundle::MAX_K {
        return; // Bundle::to_request refuses these
    }
    let query = req.query.map(|q| (0..8).map(|i| ((q.len() + i) % 5) as f32 * 0.1).collect());
    let _ = c.recommend(
        &s,
        &nook_core::Request {
            likes,
            dislikes,
            query,
            k: req.k,
            diversity: req.diversity,
            query_weight: req.query_weight,
        },
    );
}
