//! Choosing between the CPU (wasm SIMD) and WebGPU ranking backends, and falling back.

use crate::now_ms;
use nook_core::bundle::{IdRequest, Recommendations};
use nook_core::gpu::{GpuError, GpuRanker};
use nook_core::stats::median;
use nook_core::{Bundle, NookError, Request};
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
                let cpu = if cfg!(feature = "relaxed-simd") { "CPU, wasm relaxed SIMD" } else { "CPU, wasm SIMD" };
                let note = self.note.borrow();
                if note.is_empty() {
                    cpu.into()
                } else {
                    format!("{cpu}; {note}")
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
        let c = &self.bundle.catalog;
        let popular: Vec<u32> = nook_core::top_k(&c.popularity, 3, |_| true).into_iter().map(|s| s.index).collect();
        let req = Request { likes: popular, k: 10, ..Request::default() };
        let s = &self.bundle.manifest.scoring;
        let Some(gpu) = self.gpu.borrow().clone() else { return (0.0, f64::INFINITY) };
        let (mut cpu_ms, mut gpu_ms) = (Vec::new(), Vec::new());
        for _ in 0..CALIBRATION_RUNS {
            let t = now_ms();
            let _ = c.recommend(s, &req);
            cpu_ms.push(now_ms() - t);
            let t = now_ms();
            if gpu.recommend(c, s, &req).await.is_err() {
                return (0.0, f64::INFINITY);
            }
            gpu_ms.push(now_ms() - t);
        }
        (median(&cpu_ms), median(&gpu_ms))
    }

    /// Ranks on the active backend; a GPU failure is answered on the CPU and disables the GPU.
    /// A wrong request (unknown id, bad `k`) is the caller's error on either backend.
    pub async fn recommend(&self, req: &IdRequest) -> Result<Recommendations, NookError> {
        let b = &self.bundle;
        let (request, skipped) = b.resolve(req)?;
        let gpu = self.gpu.borrow().clone().filter(|_| *self.active.borrow() == Backend::Gpu);
        if let Some(gpu) = gpu {
            match gpu.recommend(&b.catalog, &b.manifest.scoring, &request).await {
                Ok(recs) => return Ok(Recommendations { items: b.to_items(recs), skipped }),
                Err(GpuError::Request(e)) => return Err(e),
                Err(e) => {
                    *self.active.borrow_mut() = Backend::Cpu;
                    *self.gpu.borrow_mut() = None;
                    *self.note.borrow_mut() = format!("WebGPU failed ({e}); switched to the CPU");
                }
            }
        }
        Ok(Recommendations { items: b.to_items(b.catalog.recommend(&b.manifest.scoring, &request)?), skipped })
    }

    /// Drops the GPU device and its buffers; ranking continues on the CPU.
    pub fn release_gpu(&self) {
        *self.gpu.borrow_mut() = None;
        *self.active.borrow_mut() = Backend::Cpu;
    }
}
