//! Quantised storage of matrices in safetensors: int8 per row (absmax, one f32 scale per row), f16
//! or f32. The trainer encodes with [`encode_matrix`]; the loader reads any of them back with
//! [`decode_matrix`], refusing wrong dtypes and shapes.

use crate::error::{NookError, Result};
use safetensors::tensor::Dtype;
use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

/// How a bundle stores its matrices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quant {
    F32,
    F16,
    Int8,
}

impl std::str::FromStr for Quant {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Quant::F32),
            "f16" => Ok(Quant::F16),
            "int8" => Ok(Quant::Int8),
            other => Err(format!("unknown quantisation {other:?} (expected int8, f16 or f32)")),
        }
    }
}

/// Suffix of the per-row scale tensor stored beside an int8 matrix.
pub const SCALE_SUFFIX: &str = ".scale";

/// Int8 rows: `values[r][c] ≈ q[r][c] * scales[r]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Rows {
    pub q: Vec<i8>,
    pub scales: Vec<f32>,
    pub cols: usize,
}

impl Int8Rows {
    /// Absmax quantisation of each row of a row-major matrix with `cols` columns.
    pub fn quantize(values: &[f32], cols: usize) -> Self {
        let mut q = Vec::with_capacity(values.len());
        let mut scales = Vec::with_capacity(values.len() / cols.max(1));
        for row in values.chunks_exact(cols) {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            q.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        }
        Self { q, scales, cols }
    }

    pub fn rows(&self) -> usize {
        self.scales.len()
    }

    pub fn row(&self, r: usize) -> &[i8] {
        &self.q[r * self.cols..(r + 1) * self.cols]
    }

    /// One row as f32.
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let s = self.scales[r];
        self.row(r).iter().map(|&v| v as f32 * s).collect()
    }

    pub fn dequantize(&self) -> Vec<f32> {
        (0..self.rows()).flat_map(|r| self.dequantize_row(r)).collect()
    }
}

/// A tensor ready to serialise: name, dtype, shape and little-endian bytes.
pub struct Encoded {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// Encodes a row-major `rows x cols` f32 matrix (a vector when `cols` is `None`) under `quant`.
/// Vectors are never quantised below f32: they are small and often scales or biases.
pub fn encode_matrix(name: &str, values: &[f32], rows: usize, cols: Option<usize>, quant: Quant) -> Vec<Encoded> {
    let Some(cols) = cols else { return vec![encode_f32(name, &[rows], values)] };
    match quant {
        Quant::F32 => vec![encode_f32(name, &[rows, cols], values)],
        Quant::F16 => vec![Encoded {
            name: name.to_string(),
            dtype: Dtype::F16,
            shape: vec![rows, cols],
            bytes: values.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect(),
        }],
        Quant::Int8 => {
            let q = Int8Rows::quantize(values, cols);
            vec![
                Encoded {
                    name: name.to_string(),
                    dtype: Dtype::I8,
                    shape: vec![rows, cols],
                    bytes: q.q.iter().map(|&v| v as u8).collect(),
                },
                encode_f32(&format!("{name}{SCALE_SUFFIX}"), &[rows], &q.scales),
            ]
        }
    }
}

/// An f32 tensor of any shape (row-major `values`).
pub fn encode_f32(name: &str, shape: &[usize], values: &[f32]) -> Encoded {
    Encoded {
        name: name.to_string(),
        dtype: Dtype::F32,
        shape: shape.to_vec(),
        bytes: values.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// Serialises encoded tensors as one safetensors file.
pub fn serialize(tensors: &[Encoded]) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|t| {
            safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|v| (t.name.clone(), v))
                .map_err(|e| NookError::data(format!("{}: {e}", t.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, &None).map_err(|e| NookError::data(format!("serialising: {e}")))
}

/// A matrix read back: f32 values, or int8 rows kept as they are.
#[derive(Clone, Debug, PartialEq)]
pub enum Matrix {
    F32(Vec<f32>),
    Int8(Int8Rows),
}

impl Matrix {
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Matrix::F32(v) => v.clone(),
            Matrix::Int8(q) => q.dequantize(),
        }
    }

    /// Number of rows if rows have `cols` columns, or `None` when the storage does not fit.
    pub fn rows(&self, cols: usize) -> Option<usize> {
        match self {
            Matrix::F32(v) => (cols > 0 && v.len() % cols == 0).then(|| v.len() / cols),
            Matrix::Int8(q) => (q.cols == cols && q.q.len() == q.scales.len() * cols).then(|| q.rows()),
        }
    }

    /// Row `r` as f32.
    pub fn row(&self, r: usize, cols: usize) -> std::borrow::Cow<'_, [f32]> {
        match self {
            Matrix::F32(v) => std::borrow::Cow::Borrowed(&v[r * cols..(r + 1) * cols]),
            Matrix::Int8(q) => std::borrow::Cow::Owned(q.dequantize_row(r)),
        }
    }

    /// Bytes the storage takes.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len() * 4,
            Matrix::Int8(q) => q.q.len() + q.scales.len() * 4,
        }
    }
}

/// Reads `name` with shape `shape` stored as f32, f16 or int8 (+ scales); `file` names the file in
/// errors. Refuses other dtypes, wrong shapes and non-finite values.
pub fn decode_matrix(st: &SafeTensors<'_>, file: &str, name: &str, shape: &[usize]) -> Result<Matrix> {
    let view = st.tensor(name).map_err(|_| NookError::data(format!("{file} has no tensor {name:?}")))?;
    if view.shape() != shape {
        return Err(NookError::data(format!("{file}: {name} has shape {:?}, expected {shape:?}", view.shape())));
    }
    let data = view.data();
    let values = match view.dtype() {
        Dtype::F32 => Matrix::F32(data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F16 => {
            Matrix::F32(data.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect())
        }
        Dtype::I8 if shape.len() == 2 => {
            let scale_name = format!("{name}{SCALE_SUFFIX}");
            let scales = match decode_matrix(st, file, &scale_name, &shape[..1])? {
                Matrix::F32(s) => s,
                Matrix::Int8(_) => unreachable!("vectors are never int8"),
            };
            if scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(NookError::data(format!("{file}: {scale_name} holds a non-positive or non-finite scale")));
            }
            return Ok(Matrix::Int8(Int8Rows { q: data.iter().map(|&b| b as i8).collect(), scales, cols: shape[1] }));
        }
        other => {
            return Err(NookError::data(format!("{file}: {name} is {other:?}, expected F32, F16 or I8 (2-D)")));
        }
    };
    if let Matrix::F32(v) = &values {
        if v.iter().any(|x| !x.is_finite()) {
            return Err(NookError::data(format!("{file}: {name} holds NaN or infinite values")));
        }
    }
    Ok(values)
}

/// Reads `name` as f32 values (stored as f32 or f16) of exactly `shape`, refusing int8 storage,
/// NaN and infinities.
pub fn decode_f32(st: &SafeTensors<'_>, file: &str, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    match decode_matrix(st, file, name, shape)? {
        Matrix::F32(v) => Ok(v),
        Matrix::Int8(_) => Err(NookError::data(format!("{file}: {name} must be F32 or F16, not I8"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_rows_round_trip_within_half_a_step() {
        let values: Vec<f32> = (0..64).map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.173).collect();
        let q = Int8Rows::quantize(&values, 16);
        let back = q.dequantize();
        for (r, chunk) in values.chunks(16).enumerate() {
            for (c, v) in chunk.iter().enumerate() {
                assert!((back[r * 16 + c] - v).abs() <= q.scales[r] * 0.5 + 1e-7);
            }
        }
        assert_eq!(Int8Rows::quantize(&[0.0; 4], 4).dequantize(), vec![0.0; 4]);
    }

    #[test]
    fn every_quantisation_decodes_to_its_shape() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 3.0).collect();
        for quant in [Quant::F32, Quant::F16, Quant::Int8] {
            let bytes = serialize(&encode_matrix("m", &values, 3, Some(4), quant)).unwrap();
            let st = SafeTensors::deserialize(&bytes).unwrap();
            let back = decode_matrix(&st, "t", "m", &[3, 4]).unwrap().to_f32();
            for (a, b) in back.iter().zip(&values) {
                assert!((a - b).abs() < 0.02, "{quant:?}: {a} vs {b}");
            }
            assert!(decode_matrix(&st, "t", "m", &[4, 3]).unwrap_err().to_string().contains("has shape [3, 4]"));
        }
    }
}
