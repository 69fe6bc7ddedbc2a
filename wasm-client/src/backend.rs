//! Choosing between the CPU (wasm SIMD) and WebGPU ranking backends, and falling back.

use crate::now_ms;
use nook_core::bundle::{IdRequest, RecommendedItem};
use nook_core::gpu::GpuRanker;
use nook_core::{Bundle, NookError};
use std::cell::RefCell;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Cpu,
    Gpu,
}

pub struct Inner {
    pub bundle: Bundle,
    gpu: RefCell<Option<Rc<GpuRanker>>>,
    active: RefCell<Backend>,
    /// Why the GPU is not in use, for the page to show.
    note: RefCell<String>,
}

/// Requests timed per backend when choosing automatically.
const CALIBRATION_RUNS: usize = 5;

impl Inner {
    pub fn new(bundle: Bundle) -> Self {
        Self { bundle, gpu: RefCell::new(None), active: RefCell::new(Backend::Cpu), note: RefCell::new(String::new()) }
    }

    pub fn describe(&self) -> String {
        match (*self.active.borrow(), self.gpu.borrow().as_ref()) {
            (Backend::Gpu, Some(g)) => format!("WebGPU ({})", g.adapter_name),
            _ => {
                let note = self.note.borrow();
                if note.is_empty() {
                    "CPU, wasm SIMD".into()
                } else {
                    format!("CPU, wasm SIMD; {note}")
                }
            }
        }
    }

    /// Sets up the backend `prefer` asks for and returns its description.
    pub async fn choose(&self, prefer: &str) -> String {
        if prefer == "cpu" {
            *self.active.borrow_mut() = Backend::Cpu;
            return self.describe();
        }
        match GpuRanker::new(&self.bundle.catalog).await {
            Ok(g) => *self.gpu.borrow_mut() = Some(Rc::new(g)),
            Err(e) => {
                *self.note.borrow_mut() = format!("WebGPU unavailable: {e}");
                *self.active.borrow_mut() = Backend::Cpu;
                return self.describe();
            }
        }
        *self.active.borrow_mut() = Backend::Gpu;
        if prefer == "auto" {
            let (cpu, gpu) = self.calibrate().await;
            if gpu >= cpu {
                *self.active.borrow_mut() = Backend::Cpu;
                *self.note.borrow_mut() = format!("faster than WebGPU here ({cpu:.1} vs {gpu:.1} ms per request)");
            }
        }
        self.describe()
    }

    /// Median milliseconds per request on the CPU and the GPU, on requests like real ones.
    async fn calibrate(&self) -> (f64, f64) {
        let popular: Vec<String> = nook_core::top_k(&self.bundle.catalog.popularity, 3, |_| true)
            .into_iter()
            .map(|s| self.bundle.catalog.items[s.index as usize].id.clone())
            .collect();
        let req = IdRequest { likes: popular, k: 10, ..Default::default() };
        let mut cpu = Vec::new();
        let mut gpu = Vec::new();
        for _ in 0..CALIBRATION_RUNS {
            let t = now_ms();
            let _ = self.bundle.recommend(&req);
            cpu.push(now_ms() - t);
            let t = now_ms();
            if self.recommend_gpu(&req).await.is_err() {
                return (0.0, f64::INFINITY);
            }
            gpu.push(now_ms() - t);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        (median(cpu), median(gpu))
    }

    async fn recommend_gpu(&self, req: &IdRequest) -> Result<Vec<RecommendedItem>, String> {
        let gpu = self.gpu.borrow().clone().ok_or("no GPU ranker")?;
        let b = &self.bundle;
        let request = b.to_request(req).map_err(|e| e.to_string())?;
        let s = &b.manifest.scoring;
        let plan = b.catalog.plan(s, &request).map_err(|e| e.to_string())?;
        let Some(user) = plan.user.as_ref() else {
            // Nothing to personalise on: popularity, which the CPU ranks instantly.
            return b.recommend(req).map_err(|e| e.to_string());
        };
        if plan.pool > nook_core::gpu::MAX_K {
            return b.recommend(req).map_err(|e| e.to_string());
        }
        let top = gpu.top_k(s, user, &plan.exclude, plan.pool).await.map_err(|e| e.to_string())?;
        Ok(b.to_items(b.catalog.finish(s, &request, &plan, top)))
    }

    /// Ranks on the active backend; a GPU failure is answered on the CPU and disables the GPU.
    pub async fn recommend(&self, req: &IdRequest) -> Result<Vec<RecommendedItem>, NookError> {
        if *self.active.borrow() == Backend::Gpu {
            match self.recommend_gpu(req).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    // A wrong request is the caller's error, not the GPU's.
                    self.bundle.to_request(req)?;
                    *self.active.borrow_mut() = Backend::Cpu;
                    *self.gpu.borrow_mut() = None;
                    *self.note.borrow_mut() = format!("WebGPU failed ({e}); switched to the CPU");
                }
            }
        }
        self.bundle.recommend(req)
    }
}
