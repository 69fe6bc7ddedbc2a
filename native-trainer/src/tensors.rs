//! f32 tensors in safetensors files.

use anyhow::{bail, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::path::Path;

/// Serialises named row-major f32 tensors.
pub fn to_bytes(tensors: &[(&str, Vec<usize>, &[f32])]) -> Result<Vec<u8>> {
    let raw: Vec<Vec<u8>> = tensors.iter().map(|(_, _, d)| d.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&raw)
        .map(|((name, shape, _), bytes)| Ok((name.to_string(), TensorView::new(Dtype::F32, shape.clone(), bytes)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(safetensors::serialize(views, &None)?)
}

/// Reads one f32 tensor, checking its shape.
pub fn read_f32(file: &Path, st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
    let view = st.tensor(name).with_context(|| format!("{}: no tensor `{name}`", file.display()))?;
    if view.dtype() != Dtype::F32 {
        bail!("{}: tensor `{name}` is {:?}, expected F32", file.display(), view.dtype());
    }
    if view.shape() != shape {
        bail!("{}: tensor `{name}` has shape {:?}, expected {shape:?}", file.display(), view.shape());
    }
    Ok(view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}
