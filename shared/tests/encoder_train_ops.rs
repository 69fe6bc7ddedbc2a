//! The fused training kernels (LayerNorm with residual, masked softmax, GELU with bias, linear
//! layer, multi-head attention) against the same maths composed from candle's generic differentiable ops: values,
//! gradients of every input, finite differences, the same results on any thread count, and a
//! whole BERT trained through them (`Mode::Training`) against `Mode::Composed`.

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarBuilder;
use nook_core::encoder::train_ops::{
    add_layer_norm, add_layer_norm_backward, add_layer_norm_keeping_moments, attention, bias_gelu, bias_gelu_backward,
    linear, masked_softmax,
};
use nook_core::encoder::{block_prefix, masked_mean_pool, Bert, BertConfig, Mode, Pooling};
use std::collections::HashMap;

fn random(shape: &[usize], seed: u64, scale: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = nook_core::synthetic::values(n, seed).into_iter().map(|u| u * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Largest difference relative to the larger of the two vectors' largest magnitudes.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().chain(b).fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
}

/// `Σ weights · y` in f64 (so the finite differences see the kernel's rounding, not the sum's).
fn weighted_sum(y: &Tensor, weights: &[f32]) -> f64 {
    values(y).iter().zip(weights).map(|(&y, &w)| y as f64 * w as f64).sum()
}

fn composed_layer_norm(a: &Tensor, r: &Tensor, params: &Tensor, eps: f64) -> Tensor {
    let (gamma, beta, shift) = (params.get(0).unwrap(), params.get(1).unwrap(), params.get(2).unwrap());
    let x = (a + r).unwrap().broadcast_add(&shift).unwrap();
    let mean = x.mean_keepdim(D::Minus1).unwrap();
    let centred = x.broadcast_sub(&mean).unwrap();
    let var = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
    let normed = centred.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
    normed.broadcast_mul(&gamma).unwrap().broadcast_add(&beta).unwrap()
}

fn composed_softmax(scores: &Tensor, scale: f64, bias: &Tensor) -> Tensor {
    candle_nn::ops::softmax(&(scores * scale).unwrap().broadcast_add(bias).unwrap(), D::Minus1).unwrap()
}

fn composed_gelu(x: &Tensor, bias: &Tensor) -> Tensor {
    x.broadcast_add(bias).unwrap().gelu_erf().unwrap()
}

/// Runs `op` and its composed reference on the same Vars: values, then the gradient of a fixed
/// weighted sum of the output with respect to every input that has one.
fn check_against_composed(
    inputs: &[Tensor],
    differentiable: &[bool],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composed: impl Fn(&[Tensor]) -> Tensor,
    what: &str,
) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (y, y_ref) = (fused(&ts), composed(&ts));
    let diff = rel_diff(&values(&y), &values(&y_ref));
    assert!(diff < 2e-6, "{what}: values differ by {diff}");
    let w = random(y.dims(), 99, 1.0);
    let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = (&y_ref * &w).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, v) in vars.iter().enumerate() {
        let (got, want) = (g.get(v.as_tensor()), g_ref.get(v.as_tensor()));
        if !differentiable[i] {
            assert!(got.is_none(), "{what}: input {i} must get no gradient");
            continue;
        }
        let (got, want) = (values(got.expect("fused gradient")), values(want.expect("reference gradient")));
        let diff = rel_diff(&got, &want);
        assert!(diff < 1e-4, "{what}: gradient of input {i} differs by {diff}");
    }
}

/// Central differences of `Σ w · op(inputs)` at a few entries of every differentiable input.
fn check_finite_differences(inputs: &[Tensor], differentiable: &[bool], op: impl Fn(&[Tensor]) -> Tensor, what: &str) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let y = op(&ts);
    let w = values(&random(y.dims(), 7, 1.0));
    let wt = Tensor::from_vec(w.clone(), y.dims(), &Device::Cpu).unwrap();
    let grads = (&y * &wt).unwrap().sum_all().unwrap().backward().unwrap();
    let eps = 1e-2f32;
    for (i, var) in vars.iter().enumerate().filter(|(i, _)| differentiable[*i]) {
        let analytic = values(grads.get(var.as_tensor()).unwrap());
        let original = values(var.as_tensor());
        for k in [0, original.len() / 3, original.len() - 1] {
            let at = |delta: f32| {
                let mut v = original.clone();
                v[k] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap()).unwrap();
                weighted_sum(&op(&ts), &w)
            };
            let numeric = ((at(eps) - at(-eps)) / (2.0 * eps as f64)) as f32;
            var.set(&Tensor::from_vec(original.clone(), var.shape(), &Device::Cpu).unwrap()).unwrap();
            let tolerance = 2e-3 + 1e-2 * analytic[k].abs().max(numeric.abs());
            assert!(
                (analytic[k] - numeric).abs() < tolerance,
                "{what}: input {i}[{k}]: analytic {}, numeric {numeric}",
                analytic[k]
            );
        }
    }
}

// 2 x 70 rows: more than one block of rows (64), with a remainder.
/// An input no gradient flows back to (the first trained block's, from frozen layers) gets none
/// computed, by the linear layer or the residual LayerNorm, and the weights' gradients are the
/// same as when it is tracked.
#[test]
fn an_untracked_input_gets_no_gradient_and_the_weights_the_same() {
    let check = |inputs: Vec<Tensor>, untracked: usize, op: &dyn Fn(&[Tensor]) -> Tensor, what: &str| {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let tracked: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let mut constant = tracked.clone();
        constant[untracked] = inputs[untracked].clone();
        let y = op(&tracked);
        let w = random(y.dims(), 99, 1.0);
        let backward = |y: Tensor| (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let (g_ref, g) = (backward(y), backward(op(&constant)));
        assert!(g_ref.get(&tracked[untracked]).is_some(), "{what}: a tracked input gets a gradient");
        assert!(g.get(&constant[untracked]).is_none(), "{what}: the untracked input gets none");
        for (i, t) in constant.iter().enumerate().filter(|&(i, _)| i != untracked) {
            let (got, want) = (values(g.get(t).expect("gradient")), values(g_ref.get(t).expect("gradient")));
            assert_eq!(got, want, "{what}: gradient of input {i}");
        }
    };
    check(linear_inputs(), 0, &|t| linear(&t[0], &t[1], Some(&t[2])).unwrap(), "linear");
    check(linear_inputs()[..2].to_vec(), 0, &|t| linear(&t[0], &t[1], None).unwrap(), "linear without bias");
    check(layer_norm_inputs(), 1, &|t| add_layer_norm(&t[0], &t[1], &t[2], 1e-12).unwrap(), "layer norm residual");
}

fn layer_norm_inputs() -> Vec<Tensor> {
    let params =
        Tensor::stack(&[&(random(&[24], 3, 0.2) + 1.0).unwrap(), &random(&[24], 4, 0.3), &random(&[24], 5, 0.5)], 0);
    vec![random(&[2, 70, 24], 1, 2.0), random(&[2, 70, 24], 2, 1.0), params.unwrap()]
}

#[test]
fn layer_norm_with_residual_matches_the_composed_ops() {
    let eps = 1e-12;
    let inputs = layer_norm_inputs();
    let fused = |t: &[Tensor]| add_layer_norm(&t[0], &t[1], &t[2], eps).unwrap();
    let composed = |t: &[Tensor]| composed_layer_norm(&t[0], &t[1], &t[2], eps);
    check_against_composed(&inputs, &[true; 3], fused, composed, "layer norm");
    check_finite_differences(&inputs, &[true; 3], fused, "layer norm");
}

/// LayerNorm with residual one row at a time, as the kernel computed it before it normalised rows
/// in interleaved groups: `(y, dx, d gamma, d beta)` for output gradient `dy`, d gamma and d beta
/// summed over blocks of 64 rows, then the blocks in order.
fn layer_norm_row_by_row(a: &[f32], r: &[f32], p: &[f32], dy: &[f32], h: usize, eps: f32) -> [Vec<f32>; 4] {
    let (gamma, beta, shift) = (&p[..h], &p[h..2 * h], &p[2 * h..]);
    let (mut y, mut dx) = (vec![0f32; a.len()], vec![0f32; a.len()]);
    let mut total = vec![0f32; 2 * h];
    for block in (0..a.len() / h).collect::<Vec<_>>().chunks(64) {
        let mut part = vec![0f32; 2 * h];
        for &row in block {
            let at = row * h..(row + 1) * h;
            let x: Vec<f32> =
                a[at.clone()].iter().zip(&r[at.clone()]).zip(shift).map(|((a, r), s)| a + r + s).collect();
            let n = h as f32;
            let mean = x.iter().sum::<f32>() / n;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let rstd = 1.0 / (var + eps).sqrt();
            let xhat: Vec<f32> = x.iter().map(|v| (v - mean) * rstd).collect();
            for (j, v) in x.iter().enumerate() {
                y[row * h + j] = (v - mean) * rstd * gamma[j] + beta[j];
            }
            let d = &dy[at];
            let (mut mg, mut mgx) = (0f32, 0f32);
            for j in 0..h {
                mg += d[j] * gamma[j];
                mgx += d[j] * gamma[j] * xhat[j];
            }
            let (mg, mgx) = (mg / n, mgx / n);
            for j in 0..h {
                dx[row * h + j] = rstd * (d[j] * gamma[j] - mg - xhat[j] * mgx);
                part[j] += d[j] * xhat[j];
                part[h + j] += d[j];
            }
        }
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    let (dgamma, dbeta) = total.split_at(h);
    [y, dx, dgamma.to_vec(), dbeta.to_vec()]
}

#[test]
fn layer_norm_in_row_groups_gives_the_row_by_row_bits() {
    // 140 rows: blocks of 64, 64 and 12, so whole groups of eight rows and a remainder of four.
    let t = layer_norm_inputs();
    let h = t[0].dim(2).unwrap();
    let dy = random(t[0].dims(), 9, 1.0);
    let eps = 1e-12;
    let want = layer_norm_row_by_row(&values(&t[0]), &values(&t[1]), &values(&t[2]), &values(&dy), h, eps as f32);
    // The backward pass recomputing the row moments, and reading the forward pass's.
    let (kept_y, moments) = add_layer_norm_keeping_moments(&t[0], &t[1], &t[2], eps).unwrap();
    assert_eq!(kept_y.dims(), t[0].dims());
    for (how, y, moments) in
        [("recomputed", add_layer_norm(&t[0], &t[1], &t[2], eps).unwrap(), None), ("kept", kept_y, Some(&moments))]
    {
        let (dx, dparams) = add_layer_norm_backward(&t[0], &t[1], &t[2], eps, &dy, moments).unwrap();
        let got = [values(&y), values(&dx), values(&dparams.get(0).unwrap()), values(&dparams.get(1).unwrap())];
        for (what, (got, want)) in ["y", "dx", "d gamma", "d beta"].iter().zip(got.iter().zip(&want)) {
            let same = got.iter().zip(want).all(|(g, w)| g.to_bits() == w.to_bits());
            let diff = rel_diff(got, want);
            assert!(
                same,
                "{what}, moments {how}: the grouped kernel's bits differ from row by row's (max diff {diff})"
            );
        }
    }
    // Moments of other rows are refused, not read past.
    let (_, other) =
        add_layer_norm_keeping_moments(&t[0].narrow(1, 0, 10).unwrap(), &t[1].narrow(1, 0, 10).unwrap(), &t[2], eps)
            .unwrap();
    assert!(add_layer_norm_backward(&t[0], &t[1], &t[2], eps, &dy, Some(&other)).is_err());
}

fn softmax_inputs() -> Vec<Tensor> {
    // [2 batches, 3 heads, 23 queries, 37 keys]: 138 rows, blocks that straddle batches; the
    // second batch's last 9 keys are padding.
    let (b, s) = (2, 37);
    let mask: Vec<f32> = (0..b * s).map(|i| if i >= b * s - 9 { -1e4 } else { 0.0 }).collect();
    vec![random(&[b, 3, 23, s], 11, 8.0), Tensor::from_vec(mask, (b, 1, 1, s), &Device::Cpu).unwrap()]
}

#[test]
fn masked_softmax_matches_the_composed_ops() {
    let scale = 0.125;
    let inputs = softmax_inputs();
    let fused = |t: &[Tensor]| masked_softmax(&t[0], scale, &t[1]).unwrap();
    let composed = |t: &[Tensor]| composed_softmax(&t[0], scale, &t[1]);
    check_against_composed(&inputs, &[true, false], fused, composed, "softmax");
    check_finite_differences(&inputs, &[true, false], fused, "softmax");
    let probs = values(&fused(&inputs));
    let padded = &probs[probs.len() - 9..];
    assert!(padded.iter().all(|&p| p == 0.0), "padding gets no weight (and no subnormal float)");
}

fn gelu_inputs() -> Vec<Tensor> {
    vec![random(&[130, 48], 21, 4.0), random(&[48], 22, 1.0)]
}

#[test]
fn gelu_with_bias_matches_the_composed_ops() {
    let inputs = gelu_inputs();
    let fused = |t: &[Tensor]| bias_gelu(&t[0], &t[1]).unwrap();
    let composed = |t: &[Tensor]| composed_gelu(&t[0], &t[1]);
    check_against_composed(&inputs, &[true, true], fused, composed, "gelu");
    check_finite_differences(&inputs, &[true, true], fused, "gelu");
}

#[test]
fn gelu_kernels_give_the_bits_of_one_value_at_a_time() {
    // The kernels run 16 or 8 lanes wide where the CPU has AVX-512 or AVX2; this test's own
    // loops are compiled for the x86-64 baseline: the same operations, so the same bits.
    use nook_core::encoder::bert::{erf_f32, exp_f32};
    let (x, bias, g) = (random(&[37, 53], 21, 4.0), random(&[53], 22, 1.0), random(&[37, 53], 23, 1.0));
    let (xs, bs, gs) = (values(&x), values(&bias), values(&g));
    let u = |i: usize| xs[i] + bs[i % 53];
    let want: Vec<f32> =
        (0..xs.len()).map(|i| 0.5 * u(i) * (1.0 + erf_f32(u(i) * std::f32::consts::FRAC_1_SQRT_2))).collect();
    let want_dx: Vec<f32> = (0..xs.len())
        .map(|i| {
            let (u, inv_sqrt_2pi) = (u(i), 0.398_942_3f32);
            let cdf = 0.5 * (1.0 + erf_f32(u * std::f32::consts::FRAC_1_SQRT_2));
            gs[i] * (cdf + u * inv_sqrt_2pi * exp_f32(-0.5 * u * u))
        })
        .collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&values(&bias_gelu(&x, &bias).unwrap())), bits(&want), "gelu");
    let (dx, _) = bias_gelu_backward(&x, &bias, &g).unwrap();
    assert_eq!(bits(&values(&dx)), bits(&want_dx), "gelu's gradient");
}

fn linear_inputs() -> Vec<Tensor> {
    // [2, 70, 24] rows into 40 outputs: more than one block of rows for the bias's column sums.
    vec![random(&[2, 70, 24], 31, 2.0), random(&[40, 24], 32, 0.5), random(&[40], 33, 1.0)]
}

fn composed_linear(x: &Tensor, w: &Tensor) -> Tensor {
    x.reshape((140, 24)).unwrap().matmul(&w.t().unwrap()).unwrap().reshape((2, 70, 40)).unwrap()
}

#[test]
fn linear_layer_matches_the_composed_ops() {
    let inputs = linear_inputs();
    let fused = |t: &[Tensor]| linear(&t[0], &t[1], Some(&t[2])).unwrap();
    let composed = |t: &[Tensor]| composed_linear(&t[0], &t[1]).broadcast_add(&t[2]).unwrap();
    check_against_composed(&inputs, &[true; 3], fused, composed, "linear");
    check_finite_differences(&inputs, &[true; 3], fused, "linear");
    let no_bias = &inputs[..2];
    let fused = |t: &[Tensor]| linear(&t[0], &t[1], None).unwrap();
    let composed = |t: &[Tensor]| composed_linear(&t[0], &t[1]);
    check_against_composed(no_bias, &[true; 2], fused, composed, "linear without bias");
}

/// A linear layer's output and gradients, bit for bit, on a pool of `threads` threads.
#[cfg(not(target_arch = "wasm32"))]
fn linear_bits_on(threads: usize) -> Vec<Vec<f32>> {
    // 3 × 150 = 450 rows (up to 7 bands of 64) into 200 outputs (the weight's gradient: up to 3
    // bands), so 2, 3 and 5 threads cut every product differently.
    let inputs = [random(&[3, 150, 40], 34, 2.0), random(&[200, 40], 35, 0.5), random(&[200], 36, 1.0)];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let y = linear(vars[0].as_tensor(), vars[1].as_tensor(), Some(vars[2].as_tensor())).unwrap();
        let g = (&y * random(y.dims(), 37, 1.0)).unwrap().sum_all().unwrap().backward().unwrap();
        let mut out = vec![values(&y)];
        out.extend(vars.iter().map(|v| values(g.get(v.as_tensor()).unwrap())));
        out
    })
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn row_bands_give_the_same_bits() {
    // Each thread multiplies its own band of rows; an element's sum must not depend on the band.
    let one = linear_bits_on(1);
    for threads in [2, 3, 5] {
        assert!(linear_bits_on(threads) == one, "the linear layer's bits changed on {threads} threads");
    }
}

fn attention_inputs() -> Vec<Tensor> {
    // 2 batches of 23 tokens, hidden 24 in 3 heads of 8; the second batch's last 5 tokens padding.
    let (b, t) = (2, 23);
    let mask: Vec<f32> = (0..b * t).map(|i| if i >= b * t - 5 { -1e4 } else { 0.0 }).collect();
    vec![
        random(&[b, t, 24], 41, 3.0),
        random(&[b, t, 24], 42, 3.0),
        random(&[b, t, 24], 43, 2.0),
        Tensor::from_vec(mask, (b, 1, 1, t), &Device::Cpu).unwrap(),
    ]
}

fn composed_attention(t: &[Tensor], heads: usize, scale: f64) -> Tensor {
    let (b, n, h) = t[0].dims3().unwrap();
    let split =
        |y: &Tensor| y.reshape((b, n, heads, h / heads)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
    let (q, k, v) = (split(&t[0]), split(&t[1]), split(&t[2]));
    let probs = composed_softmax(&q.matmul(&k.t().unwrap()).unwrap(), scale, &t[3]);
    probs.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b, n, h)).unwrap()
}

#[test]
fn attention_matches_the_composed_ops() {
    let inputs = attention_inputs();
    let fused = |t: &[Tensor]| attention(&t[0], &t[1], &t[2], &t[3], 3, 0.35).unwrap();
    let composed = |t: &[Tensor]| composed_attention(t, 3, 0.35);
    check_against_composed(&inputs, &[true, true, true, false], fused, composed, "attention");
    check_finite_differences(&inputs, &[true, true, true, false], fused, "attention");
}

#[cfg(not(target_arch = "wasm32"))]
type Op = dyn Fn(&[Tensor]) -> Tensor;

/// Gradients of all five kernels, bit for bit, on a pool of `threads` threads.
#[cfg(not(target_arch = "wasm32"))]
fn gradients_on(threads: usize) -> Vec<Vec<f32>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut out = Vec::new();
        let cases: [(Vec<Tensor>, &Op); 5] = [
            (layer_norm_inputs(), &|t| add_layer_norm(&t[0], &t[1], &t[2], 1e-12).unwrap()),
            (softmax_inputs(), &|t| masked_softmax(&t[0], 0.125, &t[1]).unwrap()),
            (gelu_inputs(), &|t| bias_gelu(&t[0], &t[1]).unwrap()),
            (linear_inputs(), &|t| linear(&t[0], &t[1], Some(&t[2])).unwrap()),
            (attention_inputs(), &|t| attention(&t[0], &t[1], &t[2], &t[3], 3, 0.35).unwrap()),
        ];
        for (inputs, op) in cases {
            let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
            let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
            let y = op(&ts);
            let g = (&y * random(y.dims(), 5, 1.0)).unwrap().sum_all().unwrap().backward().unwrap();
            out.extend(vars.iter().filter_map(|v| g.get(v.as_tensor()).map(values)));
        }
        out
    })
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn gradients_are_the_same_on_any_thread_count() {
    // Cross-row sums (d gamma, d beta, d bias; gemm's own sums for the weights) add fixed blocks in a fixed order: a resumed
    // fine-tuning run must reproduce an uninterrupted one exactly, whatever the machine.
    assert_eq!(gradients_on(1), gradients_on(3));
}

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 40,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        hidden_act: "gelu".into(),
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
    }
}

/// A tiny BERT with every weight seeded, those `trained` picks by name variables (the rest plain
/// tensors, as fine-tuning's frozen blocks): the model, and its variables by name.
fn seeded_bert(cfg: &BertConfig, trained: impl Fn(&str) -> bool) -> (Bert, Vec<String>, Vec<Var>) {
    let mut names = Vec::new();
    let mut map = HashMap::new();
    // Every weight, seeded, through the VarBuilder's own shapes: load once to learn them.
    let shapes = {
        let vm = candle_nn::VarMap::new();
        Bert::load(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), cfg).unwrap();
        let data = vm.data().lock().unwrap();
        let mut s: Vec<(String, Vec<usize>)> = data.iter().map(|(n, v)| (n.clone(), v.dims().to_vec())).collect();
        s.sort();
        s
    };
    let mut vars = Vec::new();
    for (seed, (name, shape)) in shapes.iter().enumerate() {
        let t = if name.ends_with("LayerNorm.weight") {
            (random(shape, seed as u64 + 1, 0.2) + 1.0).unwrap()
        } else {
            random(shape, seed as u64 + 1, 0.6)
        };
        if !trained(name) {
            map.insert(name.clone(), t);
            continue;
        }
        let var = Var::from_tensor(&t).unwrap();
        map.insert(name.clone(), var.as_tensor().clone());
        names.push(name.clone());
        vars.push(var);
    }
    (Bert::load(VarBuilder::from_tensors(map, DType::F32, &Device::Cpu), cfg).unwrap(), names, vars)
}

#[test]
fn a_bert_trained_through_the_fused_kernels_matches_the_composed_graph() {
    let cfg = tiny_config();
    let (bert, names, vars) = seeded_bert(&cfg, |_| true);
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 0, 0], [1, 7, 3, 11, 13, 2]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let run = |mode: Mode| {
        let hidden = bert.forward(&ids, &mask, mode).unwrap();
        let pooled = masked_mean_pool(&hidden, &mask).unwrap();
        let loss = (&pooled * random(pooled.dims(), 77, 1.0)).unwrap().sum_all().unwrap().sqr().unwrap();
        (values(&hidden), loss.backward().unwrap())
    };
    let (fused, g_fused) = run(Mode::Training);
    let (composed, g_composed) = run(Mode::Composed);
    let diff = rel_diff(&fused, &composed);
    assert!(diff < 1e-5, "hidden states differ by {diff}");
    for (name, var) in names.iter().zip(&vars) {
        let got = values(g_fused.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient (fused)")));
        let want = values(g_composed.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient")));
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        if scale < 1e-6 {
            continue; // the key bias: softmax ignores it (see encoder_training.rs)
        }
        let diff = rel_diff(&got, &want);
        assert!(diff < 1e-3, "{name}: gradients differ by {diff}");
    }
}

/// Fine-tuning reuses the frozen blocks' output of a text drawn again (`finetune::FrozenCache`):
/// computed in another batch of the same width, with padded rows left zero, the trained blocks
/// must give the same states and gradients, to the bit, as the pass that runs every block.
#[test]
fn frozen_states_computed_apart_give_the_same_pass_and_gradients() {
    let cfg = tiny_config();
    let (bert, names, vars) = seeded_bert(&cfg, |name| name.starts_with("encoder.layer.1."));
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 0, 0], [1, 7, 3, 11, 13, 2]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let weights = random(&[2, cfg.hidden_size], 77, 1.0);
    let loss_of = |hidden: &Tensor| {
        let pooled = masked_mean_pool(hidden, &mask).unwrap();
        (&pooled * &weights).unwrap().sum_all().unwrap().sqr().unwrap()
    };
    // Position 2: the embeddings and layer 0 frozen, layer 1 trained.
    let whole = bert.forward_from(&ids, &mask, 2).unwrap();
    let g_whole = loss_of(&whole).backward().unwrap();

    // Each text's frozen rows from a batch of its own (padded to the same width, with another
    // text beside it), its padding rows zeroed.
    let (width, hidden) = (6, cfg.hidden_size);
    let apart: Vec<f32> = [(0usize, 4usize), (1, 6)]
        .iter()
        .flat_map(|&(row, len)| {
            let other = Tensor::new(&[[1u32, 2, 0, 0, 0, 0]], &Device::Cpu).unwrap();
            let other_mask = Tensor::new(&[[1u32, 1, 0, 0, 0, 0]], &Device::Cpu).unwrap();
            let own_ids = Tensor::cat(&[&ids.narrow(0, row, 1).unwrap(), &other], 0).unwrap();
            let own_mask = Tensor::cat(&[&mask.narrow(0, row, 1).unwrap(), &other_mask], 0).unwrap();
            let states = values(&bert.frozen_hidden(&own_ids, &own_mask, 2).unwrap().get(0).unwrap());
            let mut rows = states[..len * hidden].to_vec();
            rows.resize(width * hidden, 0.0);
            rows
        })
        .collect();
    let frozen = Tensor::from_vec(apart, (2, width, hidden), &Device::Cpu).unwrap();
    let reused = bert.forward_trained(&frozen, &mask, 2).unwrap();
    let g_reused = loss_of(&reused).backward().unwrap();

    let real =
        |t: &Tensor| values(&t.broadcast_mul(&mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap()).unwrap());
    assert_eq!(real(&whole), real(&reused), "the real tokens' states differ");
    for (name, var) in names.iter().zip(&vars) {
        let a = g_whole.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient"));
        let b = g_reused.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient (reused)"));
        assert_eq!(values(a), values(b), "{name}: gradients differ");
    }
}

/// Fine-tuning's trained layers run on a tape outside candle's graph (`encoder::tape`): the same
/// embeddings and, to the bit, the same gradient for every trained weight as the graph, with one
/// trained layer, with two (where the lower layer's input gradient sums four parts), and with the
/// embeddings block trained too (its tables' gradients summed by hand; the ids repeat, so a
/// word's rows are summed in an order the test checks).
#[test]
fn the_tape_gives_the_graphs_gradients_to_the_bit() {
    let cfg = tiny_config();
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 0, 0], [1, 7, 3, 11, 13, 2], [1, 4, 2, 0, 0, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], &Device::Cpu).unwrap();
    let weights = random(&[3, cfg.hidden_size], 91, 1.0);
    let loss_of = |pooled: &Tensor| (pooled * &weights).unwrap().sum_all().unwrap().sqr().unwrap();
    for from in [0, 1, 2] {
        let (bert, names, vars) = seeded_bert(&cfg, |name| (from..=2).any(|p| name.starts_with(&block_prefix(p))));
        assert!(!names.is_empty());
        let (graph, pass) = if from == 0 {
            let graph = bert.forward_from(&ids, &mask, 0).unwrap();
            (graph, bert.train_pass_all(&ids, &mask, Pooling::Mean).unwrap())
        } else {
            let frozen = bert.frozen_hidden(&ids, &mask, from).unwrap();
            (
                bert.forward_trained(&frozen, &mask, from).unwrap(),
                bert.train_pass(&frozen, &mask, from, Pooling::Mean).unwrap(),
            )
        };
        let graph = masked_mean_pool(&graph, &mask).unwrap();
        let g_graph = loss_of(&graph).backward().unwrap();
        assert_eq!(values(&pass.embeddings), values(&graph), "from {from}: embeddings differ");
        let loss = loss_of(&pass.embeddings);
        let named: Vec<(&str, &Var)> = names.iter().map(String::as_str).zip(&vars).collect();
        let g_tape = pass.gradients(&loss, &named).unwrap();
        for ((name, var), got) in names.iter().zip(&vars).zip(g_tape) {
            let want = g_graph.get(var.as_tensor()).unwrap_or_else(|| panic!("{name}: no gradient (graph)"));
            let got = got.unwrap_or_else(|| panic!("from {from}, {name}: no gradient (tape)"));
            assert_eq!(got.dims(), want.dims(), "{name}");
            let (got, want) = (values(&got), values(want));
            assert!(want.iter().any(|&v| v != 0.0), "{name}: a zero gradient proves nothing");
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "from {from}, {name}: gradients differ by {}", rel_diff(&got, &want));
        }
    }
}
