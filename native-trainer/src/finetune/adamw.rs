//! AdamW (Loshchilov & Hutter) with decoupled weight decay, its state kept in plain tensors so a
//! checkpoint can save and restore it exactly.

use candle_core::{CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Storage, Tensor, Var};
use rayon::prelude::*;

pub struct AdamW {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken so far.
    pub step: usize,
    /// First and second moments, one pair per parameter.
    pub moments: Vec<(Tensor, Tensor)>,
}

impl AdamW {
    pub fn new(params: &[Var], weight_decay: f64) -> Result<Self> {
        let moments = params
            .iter()
            .map(|p| Ok((p.as_tensor().zeros_like()?, p.as_tensor().zeros_like()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, step: 0, moments })
    }

    /// One update of every parameter with its gradient times `grad_scale` (the clipping factor
    /// of [`clip_factor`]); parameters without a gradient are left alone. On the CPU the moments
    /// and weights are updated in place in three passes; elsewhere with tensor ops.
    pub fn step(&mut self, params: &[Var], grads: &[Option<Tensor>], lr: f64, grad_scale: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for ((param, grad), (m, v)) in params.iter().zip(grads).zip(self.moments.iter_mut()) {
            let Some(g) = grad else { continue };
            let w = param.as_tensor();
            if w.device().is_cpu() && w.dtype() == DType::F32 {
                let g = g.contiguous()?;
                m.inplace_op2(&g, &Moment { decay: self.beta1 as f32, scale: grad_scale as f32, square: false })?;
                v.inplace_op2(&g, &Moment { decay: self.beta2 as f32, scale: grad_scale as f32, square: true })?;
                let update = Update {
                    lr: lr as f32,
                    keep: (1.0 - lr * self.weight_decay) as f32,
                    c1: c1 as f32,
                    c2: c2 as f32,
                    eps: self.eps as f32,
                };
                w.inplace_op3(m, v, &update)?;
                continue;
            }
            let g = (g * grad_scale)?;
            *m = ((&*m * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            *v = ((&*v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&*m / c1)?;
            let v_hat = (&*v / c2)?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            let decayed = (w * (1.0 - lr * self.weight_decay))?;
            param.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

fn slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| candle_core::Error::msg("AdamW: non-contiguous"))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

fn slice_mut<'a>(storage: &'a mut CpuStorage, layout: &Layout) -> Result<&'a mut [f32]> {
    let (start, end) = layout.contiguous_offsets().ok_or_else(|| candle_core::Error::msg("AdamW: non-contiguous"))?;
    match storage {
        CpuStorage::F32(v) => Ok(&mut v[start..end]),
        _ => Err(candle_core::Error::msg("AdamW: f32 only")),
    }
}

/// Elements per parallel task of the in-place updates.
const CHUNK: usize = 1 << 16;

/// A moment in place: `m = decay · m + (1 - decay) · (scale · g)` (squared for the second).
struct Moment {
    decay: f32,
    scale: f32,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<()> {
        let (m, g) = (slice_mut(s1, l1)?, slice(s2, l2)?);
        let (decay, rest, scale) = (self.decay, 1.0 - self.decay, self.scale);
        m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
            if self.square {
                m.iter_mut().zip(g).for_each(|(m, g)| *m = decay * *m + rest * (scale * g) * (scale * g));
            } else {
                m.iter_mut().zip(g).for_each(|(m, g)| *m = decay * *m + rest * scale * g);
            }
        });
        Ok(())
    }
}

/// The weight in place: `w = keep · w - lr · m̂ / (√v̂ + eps)`.
struct Update {
    lr: f32,
    keep: f32,
    c1: f32,
    c2: f32,
    eps: f32,
}

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "adamw-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (w, m, v) = (slice_mut(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        w.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK)).zip(v.par_chunks(CHUNK)).for_each(|((w, m), v)| {
            for ((w, m), v) in w.iter_mut().zip(m).zip(v) {
                *w = self.keep * *w - self.lr * (m / self.c1) / ((v / self.c2).sqrt() + self.eps);
            }
        });
        Ok(())
    }
}

/// The global L2 norm of `grads` and the factor that scales them to at most `max_norm` (1 when
/// they are within it), for [`AdamW::step`]. CPU f32 gradients are summed in f64 by fixed
/// chunks in order: the same on any thread count.
pub fn clip_factor(grads: &[Option<Tensor>], max_norm: f64) -> Result<(f64, f64)> {
    let mut total = 0f64;
    for g in grads.iter().flatten() {
        total += if g.device().is_cpu() && g.dtype() == DType::F32 {
            let g = g.contiguous()?;
            let (storage, layout) = g.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else { unreachable!("checked: a CPU tensor") };
            let parts: Vec<f64> = slice(cpu, layout)?
                .par_chunks(CHUNK)
                .map(|c| c.iter().map(|&x| x as f64 * x as f64).sum::<f64>())
                .collect();
            parts.iter().sum::<f64>()
        } else {
            g.sqr()?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?
        };
    }
    let norm = total.sqrt();
    let factor = if norm > max_norm && norm > 0.0 { max_norm / norm } else { 1.0 };
    Ok((norm, factor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic() {
        let x = Var::new(&[3.0f32, -2.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(std::slice::from_ref(&x), 0.0).unwrap();
        for _ in 0..500 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let g = vec![grads.get(x.as_tensor()).cloned()];
            opt.step(std::slice::from_ref(&x), &g, 0.05, 1.0).unwrap();
        }
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let g = vec![Some(Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap()), None];
        let (norm, factor) = clip_factor(&g, 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6 && (factor - 0.2).abs() < 1e-9);
        assert_eq!(clip_factor(&g, 10.0).unwrap().1, 1.0);
        let g64 = vec![Some(Tensor::new(&[3.0f64, 4.0], &Device::Cpu).unwrap())];
        assert!((clip_factor(&g64, 1.0).unwrap().0 - 5.0).abs() < 1e-9);
    }

    /// The in-place CPU update against the tensor-op one (what runs on a GPU), in f32 and f64.
    #[test]
    fn in_place_update_matches_the_tensor_ops() {
        let n = 3 * CHUNK + 17;
        let w0: Vec<f32> = nook_core::synthetic::values(n, 1);
        let grads: Vec<Vec<f32>> = (0..3).map(|s| nook_core::synthetic::values(n, s + 2)).collect();
        let run = |dtype: DType| -> Vec<f32> {
            let w =
                Var::from_tensor(&Tensor::new(w0.as_slice(), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()).unwrap();
            let mut opt = AdamW::new(std::slice::from_ref(&w), 0.01).unwrap();
            for g in &grads {
                let g = Tensor::new(g.as_slice(), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
                opt.step(std::slice::from_ref(&w), &[Some(g)], 1e-3, 0.5).unwrap();
            }
            w.as_tensor().to_dtype(DType::F32).unwrap().to_vec1().unwrap()
        };
        let (fast, reference) = (run(DType::F32), run(DType::F64));
        let worst = fast.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-6, "in-place AdamW differs from the tensor ops by {worst}");
        assert!(fast.iter().zip(&w0).any(|(a, b)| a != b), "the weights moved");
    }
}
