//! AdamW (Loshchilov & Hutter) with decoupled weight decay, its state kept in plain tensors so a
//! checkpoint can save and restore it exactly.

use candle_core::{Result, Tensor, Var};

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

    /// One update of every parameter with its gradient (parameters without one are left alone).
    pub fn step(&mut self, params: &[Var], grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.step += 1;
        let t = self.step as i32;
        let (c1, c2) = (1.0 - self.beta1.powi(t), 1.0 - self.beta2.powi(t));
        for ((param, grad), (m, v)) in params.iter().zip(grads).zip(self.moments.iter_mut()) {
            let Some(g) = grad else { continue };
            *m = ((&*m * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            *v = ((&*v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let m_hat = (&*m / c1)?;
            let v_hat = (&*v / c2)?;
            let update = (m_hat / (v_hat.sqrt()? + self.eps)?)?;
            let decayed = (param.as_tensor() * (1.0 - lr * self.weight_decay))?;
            param.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Scales gradients so their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_grad_norm(grads: &mut [Option<Tensor>], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for g in grads.iter().flatten() {
        total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = total.sqrt();
    if norm > max_norm && norm > 0.0 {
        let scale = max_norm / norm;
        for g in grads.iter_mut().flatten() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
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
            opt.step(std::slice::from_ref(&x), &g, 0.05).unwrap();
        }
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let mut g = vec![Some(Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap()), None];
        let before = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((before - 5.0).abs() < 1e-6);
        let v: Vec<f32> = g[0].as_ref().unwrap().to_vec1().unwrap();
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }
}
