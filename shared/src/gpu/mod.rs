//! Ranking on the GPU with wgpu: WebGPU in the browser, Vulkan (e.g. Mesa's lavapipe) natively.
//!
//! [`GpuRanker`] uploads a catalogue's item tables once, split into shards that each fit the
//! device's storage-buffer binding limit (128 MiB by default), and answers top-K queries with two
//! kernels per shard (`rank.wgsl`): scoring, then a per-workgroup sort that keeps the best `k`.
//! The candidates are merged on the CPU with nook-core's own [`top_k`], so ties break the same way.
//! For int8 tables every dot product is an exact integer sum scaled exactly as
//! [`crate::score::score_int8`] does, so the GPU and CPU paths return the same ids and scores.
//!
//! [`GpuRanker::recommend`] is the whole request on this backend, as the browser runs it: the
//! plan and the final list (reasons, diversity) come from [`Catalog`], and what the kernels do not
//! serve (nothing to personalise on, more than [`MAX_K`] candidates) is ranked on the CPU.

mod device;
mod shard;

use crate::blend::Blend;
use crate::catalog::Catalog;
use crate::recommend::{Recommendation, Request, Scoring};
use crate::topk::{top_k, Scored};
use crate::NookError;
use shard::{words, Shard};

/// Scores each selection workgroup sorts (must match `CHUNK` in rank.wgsl).
const CHUNK: usize = 2048;
const WORKGROUP: u32 = 256;
/// The largest `k` the GPU path serves; larger requests use the CPU.
pub const MAX_K: usize = 256;

/// Why the GPU path is unavailable or failed (callers fall back to the CPU), or why the request
/// itself is wrong (the caller's error on any backend).
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
    #[error(transparent)]
    Request(#[from] NookError),
}

/// Element type of the uploaded tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    Int8,
    F32,
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

impl GpuRanker {
    /// Opens a GPU device and uploads `catalog`'s tables (both int8 with dimensions divisible by
    /// 4, or both f32).
    pub async fn new(catalog: &Catalog) -> Result<Self, GpuError> {
        Self::with_shard_items(catalog, usize::MAX).await
    }

    /// Like [`GpuRanker::new`] with at most `max_items` items per shard (rounded to whole
    /// selection chunks): tests use it to exercise tables split across buffers.
    pub async fn with_shard_items(catalog: &Catalog, max_items: usize) -> Result<Self, GpuError> {
        let storage = storage_of(catalog)?;
        let dev = device::open().await?;
        // Validation errors arrive asynchronously on the web: catch them rather than rank with
        // an invalid pipeline.
        let scope = dev.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let p = device::pipelines(&dev.device, storage);
        let query_usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST;
        let query = shard::new_buffer(&dev.device, "query", 4 * (catalog.cf_dim + catalog.text_dim), query_usage);
        let per_shard = shard::items_per_shard(catalog, storage, &dev.limits, max_items);
        let shards = (0..catalog.len())
            .step_by(per_shard)
            .map(|first| {
                let rows = first..(first + per_shard).min(catalog.len());
                shard::upload(&dev.device, &p.bind_layout, catalog, storage, rows, &query)
            })
            .collect();
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Device(e.to_string()));
        }
        Ok(Self {
            device: dev.device,
            queue: dev.queue,
            score: p.score,
            select: p.select,
            shards,
            query,
            storage,
            cf_dim: catalog.cf_dim,
            text_dim: catalog.text_dim,
            n_items: catalog.len(),
            adapter_name: dev.adapter_name,
        })
    }

    /// Number of shards the tables were split into.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The whole request on this backend: the same list as [`Catalog::recommend`] (ids, scores
    /// and reasons). `catalog` must be the one this ranker was built from.
    pub async fn recommend(
        &self,
        catalog: &Catalog,
        scoring: &Scoring,
        req: &Request,
    ) -> Result<Vec<Recommendation>, GpuError> {
        if catalog.len() != self.n_items || (catalog.cf_dim, catalog.text_dim) != (self.cf_dim, self.text_dim) {
            return Err(GpuError::Unsupported("the catalogue is not the one uploaded".into()));
        }
        let plan = catalog.plan(scoring, req)?;
        let top = match &plan.blend {
            // Nothing to personalise on, or more candidates than the kernels keep: the CPU ranks
            // these (popularity is one pass over a vector).
            None => return Ok(catalog.recommend(scoring, req)?),
            Some(_) if plan.pool > MAX_K => return Ok(catalog.recommend(scoring, req)?),
            Some(blend) => catalog.add_sequence(&plan, blend, self.top_k(blend, &plan.exclude, plan.pool).await?),
        };
        Ok(catalog.finish(req, &plan, top))
    }

    /// The best `k` items for the user vectors `blend` ([`Catalog::blend`]), skipping
    /// `exclude`: the same result as [`Catalog::score_blend`] and taking [`top_k`].
    pub async fn top_k(&self, blend: &Blend, exclude: &[u32], k: usize) -> Result<Vec<Scored>, GpuError> {
        if k == 0 || k > MAX_K {
            return Err(GpuError::Unsupported(format!("k = {k} (the GPU path serves 1..={MAX_K})")));
        }
        if blend.cf.len() != self.cf_dim || blend.text.len() != self.text_dim {
            return Err(GpuError::Unsupported("user vectors do not match the uploaded tables".into()));
        }
        let (mut q, cf_scale) = self.encode_query(&blend.cf);
        let (text_q, text_scale) = self.encode_query(&blend.text);
        q.extend(text_q);
        self.queue.write_buffer(&self.query, 0, bytemuck::cast_slice(&q));
        let total: usize = self.shards.iter().map(|s| s.groups * k).sum();
        let readback = shard::new_buffer(
            &self.device,
            "readback",
            8 * total,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut encoder = self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("rank") });
        let mut offset = 0u64;
        for shard in &self.shards {
            let mask = shard.mask(exclude);
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
        Ok(self.merge(&self.read(&readback).await?, k))
    }

    /// Every shard's best `k` are among the candidates (score, index pairs); nook-core picks the
    /// final order, ties by item index as on the CPU.
    fn merge(&self, words: &[u32], k: usize) -> Vec<Scored> {
        let (mut scores, mut indices) = (Vec::new(), Vec::new());
        for pair in words.chunks_exact(2) {
            let (score, index) = (f32::from_bits(pair[0]), pair[1]);
            if index != u32::MAX && (index as usize) < self.n_items && score > -3.4e38 {
                scores.push(score);
                indices.push(index);
            }
        }
        let mut out: Vec<Scored> = top_k(&scores, k, |_| true)
            .into_iter()
            .map(|s| Scored { index: indices[s.index as usize], score: s.score })
            .collect();
        out.sort_by(|a, b| {
            b.score.partial_cmp(&a.score).unwrap_or(std::cmp::Ordering::Equal).then(a.index.cmp(&b.index))
        });
        out
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

/// Int8 tables (dimensions divisible by 4, four values per word) or f32 tables; not a mix.
fn storage_of(catalog: &Catalog) -> Result<Storage, GpuError> {
    use crate::quant::Matrix;
    match (&catalog.cf, &catalog.text) {
        (Matrix::Int8(_), Matrix::Int8(_))
            if catalog.cf_dim.is_multiple_of(4) && catalog.text_dim.is_multiple_of(4) =>
        {
            Ok(Storage::Int8)
        }
        (Matrix::F32(_), Matrix::F32(_)) => Ok(Storage::F32),
        _ => Err(GpuError::Unsupported("tables must be both int8 (dims divisible by 4) or both f32".into())),
    }
}
