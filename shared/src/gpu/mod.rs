//! Ranking on the GPU with wgpu: WebGPU in the browser, Vulkan (e.g. Mesa's lavapipe) natively.
//!
//! [`GpuRanker`] uploads a catalogue's item tables once, split into shards that each fit the
//! device's storage-buffer binding limit (128 MiB by default), and answers top-K queries with two
//! kernels per shard (`rank.wgsl`): scoring, then a per-workgroup sort that keeps the best `k`.
//! The candidates are merged on the CPU with nook-core's own [`top_k`], so ties break the same way.
//! For int8 tables every dot product is an exact integer sum scaled exactly as
//! [`crate::score::score_int8`] does, so the GPU and CPU paths return the same ids and scores.

use crate::quant::Matrix;
use crate::recommend::{Catalog, Scoring, UserVector};
use crate::topk::{top_k, Scored};
use std::sync::Arc;
use wgpu::util::DeviceExt;

const SHADER: &str = include_str!("rank.wgsl");
/// Scores each selection workgroup sorts (must match `CHUNK` in rank.wgsl).
const CHUNK: usize = 2048;
const WORKGROUP: u32 = 256;
/// The largest `k` the GPU path serves; larger requests use the CPU.
pub const MAX_K: usize = 256;

/// Why the GPU path is unavailable or failed; callers fall back to the CPU.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    #[error("could not open the GPU device: {0}")]
    Device(String),
    #[error("GPU ranking failed: {0}")]
    Failed(String),
    #[error("the GPU path does not serve this request: {0}")]
    Unsupported(String),
}

/// Element type of the uploaded tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    Int8,
    F32,
}

struct Shard {
    first_item: usize,
    n_items: usize,
    bind_group: wgpu::BindGroup,
    params: wgpu::Buffer,
    excluded: wgpu::Buffer,
    candidates: wgpu::Buffer,
    groups: usize,
}

/// A catalogue's item tables on a GPU, ready to rank.
pub struct GpuRanker {
    device: wgpu::Device,
    queue: wgpu::Queue,
    score: wgpu::ComputePipeline,
    select: wgpu::ComputePipeline,
    shards: Vec<Shard>,
    query: wgpu::Buffer,
    storage: Storage,
    cf_dim: usize,
    text_dim: usize,
    n_items: usize,
    /// The adapter's name, for showing which backend ranks.
    pub adapter_name: String,
}

/// `u32` words holding a row of `dim` values.
fn words(storage: Storage, dim: usize) -> usize {
    match storage {
        Storage::Int8 => dim / 4,
        Storage::F32 => dim,
    }
}

fn row_words(m: &Matrix, storage: Storage, dim: usize, rows: std::ops::Range<usize>) -> Vec<u32> {
    match (m, storage) {
        (Matrix::Int8(q), Storage::Int8) => q.q[rows.start * dim..rows.end * dim]
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
            .collect(),
        (Matrix::F32(v), Storage::F32) => v[rows.start * dim..rows.end * dim].iter().map(|x| x.to_bits()).collect(),
        _ => unreachable!("storage is chosen from the tables"),
    }
}

fn scales(m: &Matrix, rows: std::ops::Range<usize>) -> Vec<f32> {
    match m {
        Matrix::Int8(q) => q.scales[rows].to_vec(),
        Matrix::F32(_) => vec![1.0; rows.len()],
    }
}

impl GpuRanker {
    /// Opens a GPU device and uploads `catalog`'s tables (both int8 with dimensions divisible by
    /// 4, or both f32).
    pub async fn new(catalog: &Catalog) -> Result<Self, GpuError> {
        Self::with_shard_items(catalog, usize::MAX).await
    }

    /// Like [`GpuRanker::new`] with at most `max_items` items per shard (rounded to whole
    /// selection chunks): tests use it to exercise tables split across buffers.
    pub async fn with_shard_items(catalog: &Catalog, max_items: usize) -> Result<Self, GpuError> {
        let storage = match (&catalog.cf, &catalog.text) {
            (Matrix::Int8(_), Matrix::Int8(_)) if catalog.cf_dim % 4 == 0 && catalog.text_dim % 4 == 0 => Storage::Int8,
            (Matrix::F32(_), Matrix::F32(_)) => Storage::F32,
            _ => {
                return Err(GpuError::Unsupported("tables must be both int8 (dims divisible by 4) or both f32".into()))
            }
        };
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let adapter_name = adapter.get_info().name;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("nook"),
                required_features: wgpu::Features::empty(),
                required_limits: wgpu::Limits {
                    max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                    max_buffer_size: limits.max_buffer_size,
                    ..wgpu::Limits::default()
                },
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        // Validation errors arrive asynchronously on the web: catch them rather than rank with
        // an invalid pipeline.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("rank.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER.into()),
        });
        // One explicit layout for both kernels, so one bind group per shard serves both.
        let storage_entry = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }];
        entries.extend((1..=5).map(|b| storage_entry(b, true)));
        entries.extend((6..=7).map(|b| storage_entry(b, false)));
        let bind_layout = device
            .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some("rank"), entries: &entries });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("rank"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = |layout: &wgpu::PipelineLayout, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(layout),
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let score = pipeline(
            &layout,
            match storage {
                Storage::Int8 => "score_int8",
                Storage::F32 => "score_f32",
            },
        );
        let select = pipeline(&layout, "select_top");

        let (cf_words, text_words) = (words(storage, catalog.cf_dim), words(storage, catalog.text_dim));
        let row_bytes = 4 * cf_words.max(text_words);
        let limit = (limits.max_storage_buffer_binding_size as usize).min(limits.max_buffer_size as usize);
        // Whole selection chunks per shard, so candidates never straddle shards.
        let per_shard = ((limit / row_bytes).min(max_items) / CHUNK * CHUNK).max(CHUNK);
        let new_buffer = |label: &str, size: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: size.max(16) as u64,
                usage,
                mapped_at_creation: false,
            })
        };
        let query = new_buffer(
            "query",
            4 * (catalog.cf_dim + catalog.text_dim),
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        );
        let n = catalog.len();
        let mut shards = Vec::new();
        let mut first = 0;
        while first < n {
            let rows = first..(first + per_shard).min(n);
            let count = rows.len();
            let init = |label: &str, contents: &[u8]| {
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(label),
                    contents,
                    usage: wgpu::BufferUsages::STORAGE,
                })
            };
            let cf =
                init("cf rows", bytemuck::cast_slice(&row_words(&catalog.cf, storage, catalog.cf_dim, rows.clone())));
            let text = init(
                "text rows",
                bytemuck::cast_slice(&row_words(&catalog.text, storage, catalog.text_dim, rows.clone())),
            );
            let mut both = scales(&catalog.cf, rows.clone());
            both.extend(scales(&catalog.text, rows.clone()));
            let scale_buf = init("scales", bytemuck::cast_slice(&both));
            let params = new_buffer("params", 32, wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST);
            let excluded = new_buffer(
                "excluded",
                4 * count.div_ceil(32),
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            );
            let scores = new_buffer("scores", 4 * count, wgpu::BufferUsages::STORAGE);
            let groups = count.div_ceil(CHUNK);
            let candidates = new_buffer(
                "candidates",
                8 * groups * MAX_K,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            );
            let entries: Vec<wgpu::BindGroupEntry<'_>> =
                [&params, &cf, &text, &scale_buf, &query, &excluded, &scores, &candidates]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
                    .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("shard"),
                layout: &bind_layout,
                entries: &entries,
            });
            shards.push(Shard { first_item: first, n_items: count, bind_group, params, excluded, candidates, groups });
            first += count;
        }
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Device(e.to_string()));
        }
        Ok(Self {
            device,
            queue,
            score,
            select,
            shards,
            query,
            storage,
            cf_dim: catalog.cf_dim,
            text_dim: catalog.text_dim,
            n_items: n,
            adapter_name,
        })
    }

    /// Number of shards the tables were split into.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The best `k` items for `user` under `scoring`, skipping `exclude`: the same result as
    /// scoring with [`Catalog::score`] and taking [`top_k`].
    pub async fn top_k(
        &self,
        scoring: &Scoring,
        user: &UserVector,
        exclude: &[u32],
        k: usize,
    ) -> Result<Vec<Scored>, GpuError> {
        if k == 0 || k > MAX_K {
            return Err(GpuError::Unsupported(format!("k = {k} (the GPU path serves 1..={MAX_K})")));
        }
        let (cf_user, text_user) = crate::recommend::query_vectors(scoring, user, self.cf_dim, self.text_dim);
        let (cf_q, cf_scale) = self.encode_query(&cf_user);
        let (text_q, text_scale) = self.encode_query(&text_user);
        let mut q = cf_q;
        q.extend(text_q);
        self.queue.write_buffer(&self.query, 0, bytemuck::cast_slice(&q));
        let total: usize = self.shards.iter().map(|s| s.groups * k).sum();
        let readback = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (8 * total).max(16) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rank") });
        let mut offset = 0u64;
        for shard in &self.shards {
            let mut mask = vec![0u32; shard.n_items.div_ceil(32)];
            for &i in exclude {
                let i = i as usize;
                if (shard.first_item..shard.first_item + shard.n_items).contains(&i) {
                    let local = i - shard.first_item;
                    mask[local / 32] |= 1 << (local % 32);
                }
            }
            if !mask.is_empty() {
                self.queue.write_buffer(&shard.excluded, 0, bytemuck::cast_slice(&mask));
            }
            let params: [u32; 8] = [
                shard.n_items as u32,
                shard.first_item as u32,
                words(self.storage, self.cf_dim) as u32,
                words(self.storage, self.text_dim) as u32,
                cf_scale.to_bits(),
                text_scale.to_bits(),
                k as u32,
                self.cf_dim as u32,
            ];
            self.queue.write_buffer(&shard.params, 0, bytemuck::cast_slice(&params));
            {
                let mut pass = encoder
                    .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("score"), timestamp_writes: None });
                pass.set_bind_group(0, &shard.bind_group, &[]);
                pass.set_pipeline(&self.score);
                pass.dispatch_workgroups((shard.n_items as u32).div_ceil(WORKGROUP), 1, 1);
                pass.set_pipeline(&self.select);
                pass.dispatch_workgroups(shard.groups as u32, 1, 1);
            }
            let bytes = (8 * shard.groups * k) as u64;
            encoder.copy_buffer_to_buffer(&shard.candidates, 0, &readback, offset, bytes);
            offset += bytes;
        }
        self.queue.submit(Some(encoder.finish()));
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Failed(e.to_string()));
        }
        let words = self.read(&readback).await?;
        // Merge: every shard's best k are among the candidates; nook-core picks the final order.
        let mut scores = Vec::with_capacity(total);
        let mut indices = Vec::with_capacity(total);
        for pair in words.chunks_exact(2) {
            let (score, index) = (f32::from_bits(pair[0]), pair[1]);
            if index != u32::MAX && (index as usize) < self.n_items && score > -3.4e38 {
                scores.push(score);
                indices.push(index);
            }
        }
        let best = top_k(&scores, k, |_| true);
        // Ties among candidates must break by item index, as on the CPU: re-sort with global ids.
        let mut out: Vec<Scored> =
            best.into_iter().map(|s| Scored { index: indices[s.index as usize], score: s.score }).collect();
        out.sort_by(|a, b| {
            b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.index.cmp(&b.index))
        });
        Ok(out)
    }

    /// The query as the kernel reads it: i16-range integers and their scale (int8), or f32 bits.
    fn encode_query(&self, v: &[f32]) -> (Vec<i32>, f32) {
        match self.storage {
            Storage::Int8 => {
                let (q, scale) = crate::score::quantize_query(v);
                (q.into_iter().map(i32::from).collect(), scale)
            }
            Storage::F32 => (v.iter().map(|x| x.to_bits() as i32).collect(), 1.0),
        }
    }

    async fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>, GpuError> {
        let slice = buffer.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Failed(e.to_string()))?;
        rx.await
            .map_err(|_| GpuError::Failed("the device was lost".into()))?
            .map_err(|e| GpuError::Failed(e.to_string()))?;
        let view = slice.get_mapped_range().map_err(|e| GpuError::Failed(e.to_string()))?;
        let words = bytemuck::cast_slice(&view).to_vec();
        drop(view);
        buffer.unmap();
        Ok(words)
    }
}

#[allow(dead_code)]
fn _assert_send(_: Arc<GpuRanker>) {}
