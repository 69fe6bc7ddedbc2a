//! The item tables on the device, cut into shards that each fit one storage-buffer binding.

use super::{Storage, CHUNK, MAX_K};
use crate::catalog::Catalog;
use crate::quant::Matrix;
use std::ops::Range;
use wgpu::util::DeviceExt;

/// One shard: a contiguous range of items, its tables and the buffers one ranking pass writes.
pub struct Shard {
    pub first_item: usize,
    pub n_items: usize,
    pub bind_group: wgpu::BindGroup,
    pub params: wgpu::Buffer,
    pub excluded: wgpu::Buffer,
    pub candidates: wgpu::Buffer,
    /// Selection workgroups (each keeps the best `k` of `CHUNK` scores).
    pub groups: usize,
}

/// `u32` words holding a row of `dim` values.
pub fn words(storage: Storage, dim: usize) -> usize {
    match storage {
        Storage::Int8 => dim / 4,
        Storage::F32 => dim,
    }
}

/// Items per shard: as many whole selection chunks as one binding (and `max_items`) allows, so
/// candidates never straddle shards.
pub fn items_per_shard(catalog: &Catalog, storage: Storage, limits: &wgpu::Limits, max_items: usize) -> usize {
    let row_bytes = 4 * words(storage, catalog.cf_dim).max(words(storage, catalog.text_dim));
    let limit = (limits.max_storage_buffer_binding_size as usize).min(limits.max_buffer_size as usize);
    ((limit / row_bytes).min(max_items) / CHUNK * CHUNK).max(CHUNK)
}

pub fn new_buffer(device: &wgpu::Device, label: &str, size: usize, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(16) as u64,
        usage,
        mapped_at_creation: false,
    })
}

/// Uploads the items in `rows` and allocates the shard's working buffers; `query` is the buffer
/// every shard reads the user's vectors from.
pub fn upload(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    catalog: &Catalog,
    storage: Storage,
    rows: Range<usize>,
    query: &wgpu::Buffer,
) -> Shard {
    let init = |label: &str, contents: &[u8]| {
        device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        })
    };
    let cf = init("cf rows", bytemuck::cast_slice(&row_words(&catalog.cf, storage, catalog.cf_dim, rows.clone())));
    let text =
        init("text rows", bytemuck::cast_slice(&row_words(&catalog.text, storage, catalog.text_dim, rows.clone())));
    let mut both = scales(&catalog.cf, rows.clone());
    both.extend(scales(&catalog.text, rows.clone()));
    let scale_buf = init("scales", bytemuck::cast_slice(&both));
    let count = rows.len();
    let uniform = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
    let params = new_buffer(device, "params", 32, uniform);
    let writable = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
    let excluded = new_buffer(device, "excluded", 4 * count.div_ceil(32), writable);
    let scores = new_buffer(device, "scores", 4 * count, wgpu::BufferUsages::STORAGE);
    let groups = count.div_ceil(CHUNK);
    let readable = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let candidates = new_buffer(device, "candidates", 8 * groups * MAX_K, readable);
    let entries: Vec<wgpu::BindGroupEntry<'_>> =
        [&params, &cf, &text, &scale_buf, query, &excluded, &scores, &candidates]
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
    let bind_group =
        device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some("shard"), layout, entries: &entries });
    Shard { first_item: rows.start, n_items: count, bind_group, params, excluded, candidates, groups }
}

impl Shard {
    /// The shard's exclusion bitmask for `exclude` (global item indices).
    pub fn mask(&self, exclude: &[u32]) -> Vec<u32> {
        let mut mask = vec![0u32; self.n_items.div_ceil(32)];
        let range = self.first_item..self.first_item + self.n_items;
        for local in exclude.iter().map(|&i| i as usize).filter(|i| range.contains(i)).map(|i| i - self.first_item) {
            mask[local / 32] |= 1 << (local % 32);
        }
        mask
    }
}

fn row_words(m: &Matrix, storage: Storage, dim: usize, rows: Range<usize>) -> Vec<u32> {
    match (m, storage) {
        (Matrix::Int8(q), Storage::Int8) => q.q[rows.start * dim..rows.end * dim]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
            .collect(),
        (Matrix::F32(v), Storage::F32) => v[rows.start * dim..rows.end * dim].iter().map(|x| x.to_bits()).collect(),
        _ => unreachable!("storage is chosen from the tables"),
    }
}

fn scales(m: &Matrix, rows: Range<usize>) -> Vec<f32> {
    match m {
        Matrix::Int8(q) => q.scales[rows].to_vec(),
        Matrix::F32(_) => vec![1.0; rows.len()],
    }
}
