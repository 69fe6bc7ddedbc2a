//! The training path of the BERT encoder really trains: every weight gets a gradient, and the
//! gradients match finite differences (candle's fused LayerNorm/softmax have no backward pass,
//! so a model built on them would silently learn nothing).

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use nook_core::encoder::{masked_mean_pool, Bert, BertConfig, Mode};
use std::collections::HashMap;

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 40,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 16,
        hidden_act: "gelu".into(),
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
    }
}

/// Every weight of a tiny BERT as a Var (f64, seeded pseudo-random values).
fn tiny_weights(cfg: &BertConfig) -> Vec<(String, Var)> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("embeddings.word_embeddings.weight".into(), vec![cfg.vocab_size, h]),
        ("embeddings.position_embeddings.weight".into(), vec![cfg.max_position_embeddings, h]),
        ("embeddings.token_type_embeddings.weight".into(), vec![cfg.type_vocab_size, h]),
        ("embeddings.LayerNorm.weight".into(), vec![h]),
        ("embeddings.LayerNorm.bias".into(), vec![h]),
    ];
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}.");
        for (name, shape) in [
            ("attention.self.query.weight", vec![h, h]),
            ("attention.self.query.bias", vec![h]),
            ("attention.self.key.weight", vec![h, h]),
            ("attention.self.key.bias", vec![h]),
            ("attention.self.value.weight", vec![h, h]),
            ("attention.self.value.bias", vec![h]),
            ("attention.output.dense.weight", vec![h, h]),
            ("attention.output.dense.bias", vec![h]),
            ("attention.output.LayerNorm.weight", vec![h]),
            ("attention.output.LayerNorm.bias", vec![h]),
            ("intermediate.dense.weight", vec![i, h]),
            ("intermediate.dense.bias", vec![i]),
            ("output.dense.weight", vec![h, i]),
            ("output.dense.bias", vec![h]),
            ("output.LayerNorm.weight", vec![h]),
            ("output.LayerNorm.bias", vec![h]),
        ] {
            shapes.push((format!("{p}{name}"), shape));
        }
    }
    shapes
        .into_iter()
        .enumerate()
        .map(|(seed, (name, shape))| {
            let n: usize = shape.iter().product();
            let values: Vec<f64> = nook_core::synthetic::values(n, seed as u64 + 1)
                .into_iter()
                .map(|u| if name.ends_with("LayerNorm.weight") { 1.0 + 0.2 * u as f64 } else { 0.6 * u as f64 })
                .collect();
            let var = Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu).unwrap()).unwrap();
            (name, var)
        })
        .collect()
}

fn model(cfg: &BertConfig, weights: &[(String, Var)]) -> Bert {
    let map: HashMap<String, Tensor> = weights.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    Bert::load(VarBuilder::from_tensors(map, DType::F64, &Device::Cpu), cfg).unwrap()
}

/// A contrastive-style scalar: pooled embeddings of two padded sequences, dotted with fixed targets.
fn loss(bert: &Bert, mode: Mode) -> Tensor {
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 0], [1, 7, 3, 11, 2]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0], [1, 1, 1, 1, 1]], &Device::Cpu).unwrap();
    let pooled = masked_mean_pool(&bert.forward(&ids, &mask, mode).unwrap(), &mask).unwrap();
    let target = Tensor::new(
        &[[0.3f64, -0.2, 0.5, 0.1, -0.4, 0.2, 0.0, 0.6], [-0.1, 0.4, 0.2, -0.3, 0.5, 0.1, -0.2, 0.3]],
        &Device::Cpu,
    )
    .unwrap();
    (pooled * target).unwrap().sum_all().unwrap().sqr().unwrap()
}

#[test]
fn every_weight_gets_a_gradient_in_training_mode() {
    let cfg = tiny_config();
    let weights = tiny_weights(&cfg);
    let bert = model(&cfg, &weights);
    let grads = loss(&bert, Mode::Training).backward().unwrap();
    for (name, var) in &weights {
        let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{name} got no gradient"));
        let norm: f64 = g.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap().sqrt();
        if name.ends_with("attention.self.key.bias") {
            // Adding a constant to every key shifts all of a query's scores equally, which softmax
            // ignores: this gradient is zero in exact arithmetic.
            assert!(norm < 1e-12, "{name}: {norm}");
            continue;
        }
        // Unused vocabulary/position rows have zero gradient, but every tensor as a whole moves.
        assert!(norm > 1e-9, "{name} has a vanishing gradient ({norm})");
    }
}

#[test]
fn gradients_match_finite_differences() {
    let cfg = tiny_config();
    let weights = tiny_weights(&cfg);
    let bert = model(&cfg, &weights);
    let grads = loss(&bert, Mode::Training).backward().unwrap();
    let eps = 1e-5;
    let mut checked = 0;
    for (name, var) in &weights {
        let grad: Vec<f64> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let original: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // Check the entry with the largest gradient in each tensor.
        let (k, &analytic) = grad.iter().enumerate().max_by(|a, b| a.1.abs().total_cmp(&b.1.abs())).unwrap();
        let eval_at = |delta: f64| -> f64 {
            let mut w = original.clone();
            w[k] += delta;
            var.set(&Tensor::from_vec(w, var.shape(), &Device::Cpu).unwrap()).unwrap();
            loss(&bert, Mode::Training).to_scalar::<f64>().unwrap()
        };
        let numeric = (eval_at(eps) - eval_at(-eps)) / (2.0 * eps);
        var.set(&Tensor::from_vec(original, var.shape(), &Device::Cpu).unwrap()).unwrap();
        let scale = analytic.abs().max(numeric.abs());
        if scale < 1e-9 {
            // Both agree the loss does not depend on this tensor (the key bias, see above).
            checked += 1;
            continue;
        }
        assert!((analytic - numeric).abs() / scale < 1e-4, "{name}[{k}]: analytic {analytic}, numeric {numeric}");
        checked += 1;
    }
    assert_eq!(checked, weights.len());
}

#[test]
fn inference_kernels_give_the_same_values_as_the_composed_graph() {
    let cfg = tiny_config();
    let weights: Vec<(String, Var)> = tiny_weights(&cfg)
        .into_iter()
        .map(|(n, v)| (n, Var::from_tensor(&v.as_tensor().to_dtype(DType::F32).unwrap()).unwrap()))
        .collect();
    let map: HashMap<String, Tensor> = weights.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let bert = Bert::load(VarBuilder::from_tensors(map, DType::F32, &Device::Cpu), &cfg).unwrap();
    let ids = Tensor::new(&[[1u32, 5, 9, 2, 0]], &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 0]], &Device::Cpu).unwrap();
    let fast: Vec<f32> = bert.forward(&ids, &mask, Mode::Inference).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let slow: Vec<f32> = bert.forward(&ids, &mask, Mode::Composed).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let diff = fast.iter().zip(&slow).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-4, "{diff}");
}
