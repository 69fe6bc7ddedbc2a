//! The catalogue's one on-disk form: named tensors in a safetensors file, read back with every
//! shape, dtype and value checked. The bundle's `items.safetensors` and the trainer's
//! `MODEL_DIR/<family>/catalog.safetensors` are both this layout.
//!
//! ```text
//! cf               [n, cf_dim]        collaborative factors (f32, f16 or int8 rows + cf.scale)
//! text             [n, text_dim]      text embeddings       (f32, f16 or int8 rows + text.scale)
//! cf_gram          [cf_dim, cf_dim]   YᵀY + λI for fold-in  (f32)
//! popularity       [n]                                      (f32)
//! text_projection  [text_dim, in_dim] optional: the reduction queries go through (f32)
//! text_mean        [in_dim]           optional, with text_projection (f32)
//! text_layout      [2]                optional: profile columns, first query column (f32
//!                                     integers); absent = profile and query share every column
//! rules_next       [n, k]             optional: each item's sequential rules' targets (u16 below
//!                                     65,535 items, else u32; all ones = an empty slot)
//! rules_weight     [n, k]             with rules_next: their weights (f32, or f16 under f16 and
//!                                     int8 storage)
//! ```
//!
//! Writers may add tensors of their own beside these (the model directory keeps the unreduced
//! `content_text`); readers ignore what they do not know.

use super::{Catalog, ItemMeta, Projection, TextLayout};
use crate::error::{NookError, Result};
use crate::quant::{decode_f32, decode_matrix, encode_matrix, Encoded, Quant};
use crate::sequence::Rules;
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;

/// The catalogue's tensors, matrices stored under `quant` (the gram matrix, popularity and the
/// projection always as f32: they are small and fold-in needs them exact).
pub fn encode(c: &Catalog, quant: Quant) -> Vec<Encoded> {
    let n = c.len();
    let mut t = Vec::new();
    t.extend(encode_matrix("cf", &c.cf.to_f32(), n, Some(c.cf_dim), quant));
    t.extend(encode_matrix("text", &c.text.to_f32(), n, Some(c.text_dim), quant));
    t.extend(encode_matrix("cf_gram", &c.cf_gram, c.cf_dim, Some(c.cf_dim), Quant::F32));
    t.extend(encode_matrix("popularity", &c.popularity, n, None, Quant::F32));
    if c.layout != TextLayout::shared(c.text_dim) {
        let layout = [c.layout.profile_dims as f32, c.layout.query_offset as f32];
        t.extend(encode_matrix("text_layout", &layout, 2, None, Quant::F32));
    }
    if let Some(rules) = &c.rules {
        t.extend(encode_rules(rules, quant));
    }
    if let Some(p) = &c.projection {
        t.extend(encode_matrix("text_projection", &p.components, p.out_dim, Some(p.in_dim), Quant::F32));
        t.extend(encode_matrix("text_mean", &p.mean, p.in_dim, None, Quant::F32));
    }
    t
}

/// The widths a reader expects, when it knows them (a bundle's manifest states them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub cf_dim: usize,
    pub text_dim: usize,
}

/// Reads a catalogue of `items` (one row per item, in order) from `st`; `file` names the file in
/// errors. With `expect`, the tables must have exactly those widths.
pub fn decode(st: &SafeTensors<'_>, file: &str, items: Vec<ItemMeta>, expect: Option<Dims>) -> Result<Catalog> {
    let n = items.len();
    // A manifest's widths are what the tables must have; without one, the tables say.
    let dims = match expect {
        Some(dims) => dims,
        None => Dims { cf_dim: width(st, file, "cf")?, text_dim: width(st, file, "text")? },
    };
    let Dims { cf_dim, text_dim } = dims;
    let cf = decode_matrix(st, file, "cf", &[n, cf_dim])?;
    let text = decode_matrix(st, file, "text", &[n, text_dim])?;
    let cf_gram = decode_f32(st, file, "cf_gram", &[cf_dim, cf_dim])?;
    let popularity = decode_f32(st, file, "popularity", &[n])?;
    let mut catalog = Catalog::from_matrices(items, cf, cf_dim, cf_gram, text, text_dim, popularity)?;
    let has = |name: &str| st.names().iter().any(|n| *n == name);
    if has("text_layout") {
        let v = decode_f32(st, file, "text_layout", &[2])?;
        let whole = |x: f32| (x >= 0.0 && x.fract() == 0.0 && x <= text_dim as f32).then_some(x as usize);
        let (Some(profile_dims), Some(query_offset)) = (whole(v[0]), whole(v[1])) else {
            return Err(NookError::data(format!("{file}: text_layout holds {v:?}, not two column counts")));
        };
        catalog = catalog.with_layout(TextLayout { profile_dims, query_offset }).map_err(|e| prefix(file, e))?;
    }
    if has("rules_next") {
        catalog = catalog.with_rules(decode_rules(st, file, n)?).map_err(|e| prefix(file, e))?;
    }
    if !has("text_mean") {
        return Ok(catalog);
    }
    let out_dim = catalog.query_cols();
    let in_dim = st.tensor("text_mean").ok().and_then(|t| t.shape().first().copied()).unwrap_or(0);
    let mean = decode_f32(st, file, "text_mean", &[in_dim])?;
    let components = decode_f32(st, file, "text_projection", &[out_dim, in_dim])?;
    catalog.with_projection(Projection::new(mean, components, out_dim)?)
}

/// The rules' tables: targets as the narrowest unsigned integer that holds every item and the
/// padding, weights as f32 (f16 when the catalogue's tables are stored smaller).
fn encode_rules(rules: &Rules, quant: Quant) -> Vec<Encoded> {
    let (n, k) = (rules.n_items(), rules.k());
    let (dtype, bytes): (Dtype, Vec<u8>) = if n < u16::MAX as usize {
        let narrow = |j: u32| if j == Rules::PAD { u16::MAX } else { j as u16 };
        (Dtype::U16, rules.index().iter().flat_map(|&j| narrow(j).to_le_bytes()).collect())
    } else {
        (Dtype::U32, rules.index().iter().flat_map(|&j| j.to_le_bytes()).collect())
    };
    let next = Encoded { name: "rules_next".into(), dtype, shape: vec![n, k], bytes };
    let weights = if quant == Quant::F32 { Quant::F32 } else { Quant::F16 };
    let mut t = vec![next];
    t.extend(encode_matrix("rules_weight", rules.weights(), n, Some(k), weights));
    t
}

fn decode_rules(st: &SafeTensors<'_>, file: &str, n: usize) -> Result<Rules> {
    let view = st.tensor("rules_next").map_err(|e| NookError::data(format!("{file}: rules_next: {e}")))?;
    let k = match view.shape() {
        [rows, k] if *rows == n && *k > 0 => *k,
        other => return Err(NookError::data(format!("{file}: rules_next has shape {other:?}, expected [{n}, rules]"))),
    };
    let data = view.data();
    let index: Vec<u32> = match view.dtype() {
        Dtype::U16 => data
            .chunks_exact(2)
            .map(|c| match u16::from_le_bytes([c[0], c[1]]) {
                u16::MAX => Rules::PAD,
                j => j as u32,
            })
            .collect(),
        Dtype::U32 => data.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        other => return Err(NookError::data(format!("{file}: rules_next is {other:?}, expected U16 or U32"))),
    };
    let weights = decode_f32(st, file, "rules_weight", &[n, k])?;
    Rules::new(n, k, index, weights).map_err(|e| prefix(file, e))
}

fn prefix(file: &str, e: NookError) -> NookError {
    NookError::data(format!("{file}: {e}"))
}

/// The second dimension of a 2-D table.
fn width(st: &SafeTensors<'_>, file: &str, name: &str) -> Result<usize> {
    let view = st.tensor(name).map_err(|_| NookError::data(format!("{file} has no tensor {name:?}")))?;
    match view.shape() {
        [_, cols] => Ok(*cols),
        other => Err(NookError::data(format!("{file}: {name} has shape {other:?}, expected [items, dims]"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::serialize;

    fn catalog() -> Catalog {
        let items: Vec<ItemMeta> = (0..3)
            .map(|i| ItemMeta { id: format!("i{i}"), title: format!("Item {i}"), year: None, genres: vec![] })
            .collect();
        let cf = vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0];
        let gram = crate::foldin::gramian(&cf, 2, 0.1);
        let text = vec![0.6, 0.8, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let projection =
            Projection::new(vec![0.1; 4], vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], 3);
        Catalog::new(items, cf, 2, gram, text, 3, vec![3.0, 2.0, 1.0])
            .unwrap()
            .with_projection(projection.unwrap())
            .unwrap()
    }

    #[test]
    fn every_quantisation_round_trips() {
        let c = catalog();
        for quant in [Quant::F32, Quant::F16, Quant::Int8] {
            let bytes = serialize(&encode(&c, quant)).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let back = decode(&st, "t", c.items.clone(), Some(Dims { cf_dim: 2, text_dim: 3 })).unwrap();
            assert_eq!((back.cf_dim, back.text_dim, back.len()), (2, 3, 3));
            assert_eq!(back.projection, c.projection);
            assert_eq!(back.cf_gram, c.cf_gram);
            for (a, b) in back.text.to_f32().iter().zip(c.text.to_f32()) {
                assert!((a - b).abs() < 0.01, "{quant:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn query_columns_and_their_layout_round_trip() {
        let items: Vec<ItemMeta> = catalog().items.clone();
        let cf = vec![1.0, 0.0, 0.5, 0.5, 0.0, 1.0];
        let gram = crate::foldin::gramian(&cf, 2, 0.1);
        let base = Catalog::new(items.clone(), cf, 2, gram, vec![0.1; 6], 2, vec![1.0; 3]).unwrap();
        let query = vec![0.5; 9];
        let projection = Projection::new(vec![0.0; 4], vec![0.25; 12], 3).unwrap();
        let c = base.with_query_columns(&query, 3, Some(projection)).unwrap();
        assert_eq!((c.text_dim, c.layout, c.query_dim()), (5, TextLayout { profile_dims: 2, query_offset: 2 }, 4));
        let bytes = serialize(&encode(&c, Quant::Int8)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let back = decode(&st, "t", items, None).unwrap();
        assert_eq!((back.layout, back.projection), (c.layout, c.projection));
    }

    #[test]
    fn wrong_widths_rows_and_values_are_refused() {
        let c = catalog();
        let bytes = serialize(&encode(&c, Quant::F32)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let err = decode(&st, "t", c.items.clone(), Some(Dims { cf_dim: 4, text_dim: 3 })).unwrap_err();
        assert!(err.to_string().contains("cf has shape [3, 2], expected [3, 4]"), "{err}");
        let err = decode(&st, "t", c.items[..2].to_vec(), None).unwrap_err();
        assert!(err.to_string().contains("cf has shape [3, 2], expected [2, 2]"), "{err}");

        let mut bad = c.clone();
        bad.popularity[1] = f32::NAN;
        let bytes = serialize(&encode(&bad, Quant::F32)).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert!(decode(&st, "t", c.items.clone(), None).unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn rules_round_trip_in_both_index_widths_and_out_of_range_targets_are_refused() {
        for n in [300, 70_000] {
            let rules = crate::synthetic::rules(n, 3, 1);
            let c = crate::synthetic::catalog(n, 4, 4, false, 2).with_rules(rules.clone()).unwrap();
            for quant in [Quant::F32, Quant::Int8] {
                let bytes = serialize(&encode(&c, quant)).unwrap();
                let st = SafeTensors::deserialize(&bytes).unwrap();
                let width = st.tensor("rules_next").unwrap().dtype();
                assert_eq!(width, if n < 65_535 { Dtype::U16 } else { Dtype::U32 });
                let back = decode(&st, "t", c.items.clone(), None).unwrap().rules.unwrap();
                assert_eq!(back.index(), rules.index(), "{n} items, {quant:?}");
                let tolerance = if quant == Quant::F32 { 0.0 } else { 1e-3 };
                for (a, b) in back.weights().iter().zip(rules.weights()) {
                    assert!((a - b).abs() <= tolerance, "{a} vs {b}");
                }
            }
        }
        // A target past the catalogue (a tampered table) is refused with the file's name.
        let c = crate::synthetic::catalog(300, 4, 4, false, 2);
        let mut tables = encode(&c, Quant::F32);
        let mut next: Vec<u8> = vec![0; 300 * 2 * 2];
        next[..2].copy_from_slice(&400u16.to_le_bytes());
        tables.push(Encoded { name: "rules_next".into(), dtype: Dtype::U16, shape: vec![300, 2], bytes: next });
        tables.extend(encode_matrix("rules_weight", &[1.0; 600], 300, Some(2), Quant::F32));
        let bytes = serialize(&tables).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let err = decode(&st, "items.safetensors", c.items.clone(), None).unwrap_err().to_string();
        assert!(err.contains("items.safetensors") && err.contains("index 400 out of range"), "{err}");
    }
}
