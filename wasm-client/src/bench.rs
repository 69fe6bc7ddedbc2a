//! In-browser ranking benchmark (bench/browser_bench.mjs): synthetic item tables ranked by the
//! wasm SIMD path and the WebGPU path, with the raw table exposed so the page can time a plain
//! JavaScript loop over the same numbers.

use nook_core::gpu::GpuRanker;
use nook_core::quant::{Int8Rows, Matrix};
use nook_core::recommend::UserVector;
use nook_core::{Catalog, ItemMeta, Scoring};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// A synthetic catalogue of `n` items with `dim`-dimensional int8 item vectors (no text part).
#[wasm_bindgen]
pub struct RankBench {
    catalog: Rc<Catalog>,
    values: Vec<f32>,
    dim: usize,
    gpu: Rc<RefCell<Option<Rc<GpuRanker>>>>,
}

fn scoring() -> Scoring {
    Scoring {
        cf_weight: 1.0,
        text_weight: 0.0,
        query_weight: 0.0,
        like_confidence: 2.0,
        dislike_confidence: 2.0,
        recency_half_life: 0.0,
        expansion: nook_core::Expansion::OFF,
        similar_text_weight: None,
        sequence: None,
    }
}

#[wasm_bindgen]
impl RankBench {
    #[wasm_bindgen(constructor)]
    pub fn new(n: usize, dim: usize) -> Result<RankBench, JsError> {
        let values = nook_core::synthetic::values(n * dim, 7);
        let items =
            (0..n).map(|i| ItemMeta { id: i.to_string(), title: String::new(), year: None, genres: vec![] }).collect();
        let cf = Matrix::Int8(Int8Rows::quantize(&values, dim));
        // A minimal text table (4 zero dims) so the catalogue is complete; it adds nothing to scores.
        let text = Matrix::Int8(Int8Rows::quantize(&vec![0.0; n * 4], 4));
        let gram = nook_core::gramian(&values[..dim * dim.min(n)], dim, 1.0);
        let catalog = Catalog::from_matrices(items, cf, dim, gram, text, 4, vec![0.0; n])
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(RankBench { catalog: Rc::new(catalog), values, dim, gpu: Rc::default() })
    }

    /// The f32 table (row-major n x dim) for the plain JavaScript baseline.
    pub fn table(&self) -> js_sys::Float32Array {
        js_sys::Float32Array::from(self.values.as_slice())
    }

    fn user(&self, seed: u64) -> UserVector {
        UserVector { cf: nook_core::synthetic::values(self.dim, seed), profile: vec![0.0; 4], query: None }
    }

    /// Median milliseconds per top-10 on the CPU (wasm SIMD) over `queries` random users.
    #[wasm_bindgen(js_name = cpuMs)]
    pub fn cpu_ms(&self, queries: usize) -> f64 {
        let s = scoring();
        let mut scores = vec![0f32; self.catalog.len()];
        let times: Vec<f64> = (0..queries.max(1))
            .map(|q| {
                let user = self.user(100 + q as u64);
                let t = crate::now_ms();
                self.catalog.score(&s, &user, &mut scores);
                std::hint::black_box(nook_core::top_k(&scores, 10, |_| true));
                crate::now_ms() - t
            })
            .collect();
        nook_core::stats::median(&times)
    }

    /// Sets up WebGPU; resolves to the adapter name (rejects without WebGPU).
    #[wasm_bindgen(js_name = initGpu)]
    pub fn init_gpu(&self) -> js_sys::Promise {
        let (catalog, slot) = (self.catalog.clone(), self.gpu.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let ranker = GpuRanker::new(&catalog).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
            let name = ranker.adapter_name.clone();
            *slot.borrow_mut() = Some(Rc::new(ranker));
            Ok(name.into())
        })
    }

    /// Median milliseconds per top-10 on WebGPU over `queries` random users.
    #[wasm_bindgen(js_name = gpuMs)]
    pub fn gpu_ms(&self, queries: usize) -> js_sys::Promise {
        let Some(gpu) = self.gpu.borrow().clone() else { return js_sys::Promise::reject(&"call initGpu first".into()) };
        let s = scoring();
        let blends: Vec<_> = (0..queries.max(1)).map(|q| self.catalog.blend(&s, &self.user(100 + q as u64))).collect();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut times = Vec::new();
            for blend in &blends {
                let t = crate::now_ms();
                gpu.top_k(blend, &[], 10).await.map_err(|e| JsValue::from_str(&e.to_string()))?;
                times.push(crate::now_ms() - t);
            }
            Ok(nook_core::stats::median(&times).into())
        })
    }
}
