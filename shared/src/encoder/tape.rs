//! The trained blocks' forward and backward passes run by hand, outside candle's autograd graph.
//!
//! Why: candle's backward pass gives every input of every op a gradient accumulator of its own (a
//! zeroed tensor the op's gradient is then added to: two allocations and two passes over memory
//! per input), frees the activations only at the end, and walks a graph of some 15 ops per block.
//! For fine-tuning's two trained blocks that bookkeeping was 0.038 s of a 0.178 s backward pass on
//! 2 cores (the products 0.109 s) and did not shrink with threads. Here the forward pass runs the
//! same fused kernels of [`super::train_ops`] on detached tensors (no graph), keeps the tensors
//! their backward passes read, and the backward pass calls those kernels' backward halves in
//! turn, each gradient written once.
//!
//! The gradients are the graph's to the bit: every kernel is the same, and where a tensor feeds
//! several ops its gradient's parts are added in the order candle's backward pass adds them (a
//! block's input: the residual's part, then the value, key and query layers'), which
//! `tests/encoder_train_ops.rs` checks; sums candle makes from a zeroed accumulator start from
//! +0 here too. The graph of the loss is cut where the tape begins (the pooled sum of the last
//! hidden states, for mean pooling), and the embeddings block, when it trains, runs on the tape
//! as well (its tables' gradients summed row by row). Only on x86 CPUs with f32 weights, where
//! the fused linear and attention kernels exist; elsewhere [`TrainedPass`] falls back to the
//! graph.

use super::bert::Bert;
#[cfg(target_arch = "x86_64")]
use super::bert::Layer;
use super::pooling::Pooling;
#[cfg(target_arch = "x86_64")]
use super::train_ops::RowMoments;
use candle_core::{Result, Tensor, Var};
#[cfg(target_arch = "x86_64")]
use std::collections::HashMap;

/// One training pass's sentence embeddings, differentiable, and how to turn a loss computed from
/// them into the trained weights' gradients.
pub struct TrainedPass<'a> {
    /// `[batch, dim]`: what the loss is computed from.
    pub embeddings: Tensor,
    route: Route<'a>,
}

enum Route<'a> {
    /// The embeddings hang off candle's graph, which reaches every trained weight.
    Graph(std::marker::PhantomData<&'a Bert>),
    /// The embeddings hang off `top`, from the last hidden states of `bert`; the tape carries
    /// the rest.
    #[cfg(target_arch = "x86_64")]
    Tape { bert: &'a Bert, top: Top, tape: Tape },
}

/// Where candle's graph of the loss meets the tape.
#[cfg(target_arch = "x86_64")]
enum Top {
    /// The last hidden states `[b, t, h]`.
    States(Var),
    /// Mean pooling's masked sum of the last hidden states over the tokens, `[b, h]`, for the
    /// batch's `mask` `[b, t]` and `states` dims `[b, t, h]`. Its gradient is spread back over
    /// the tokens by hand ([`spread_over_tokens`]): through the graph that took four `[b, t, h]`
    /// tensors made one after another on one thread (an accumulator per node, zeroed, then
    /// added to), 5 ms of a two-block step's 0.15 s backward pass, for the same bits.
    MaskedSum { sum: Var, mask: Tensor, states: (usize, usize, usize) },
}

impl TrainedPass<'_> {
    /// A pass through candle's graph (`embeddings` computed from the trained weights' Vars).
    pub fn graph(embeddings: Tensor) -> Self {
        Self { embeddings, route: Route::Graph(std::marker::PhantomData) }
    }

    /// The gradient of `loss` (a scalar computed from [`TrainedPass::embeddings`]) for each of
    /// `vars` (trained weights named as in Hugging Face's `BertModel`); `None` where it has none.
    pub fn gradients(self, loss: &Tensor, vars: &[(&str, &Var)]) -> Result<Vec<Option<Tensor>>> {
        let grads = loss.backward()?;
        match self.route {
            Route::Graph(_) => Ok(vars.iter().map(|(_, v)| grads.get(v.as_tensor()).cloned()).collect()),
            #[cfg(target_arch = "x86_64")]
            Route::Tape { bert, top, tape } => {
                let grad = match &top {
                    Top::States(top) => grads.get(top.as_tensor()).cloned(),
                    Top::MaskedSum { sum, mask, states } => {
                        grads.get(sum.as_tensor()).map(|g| spread_over_tokens(g, mask, *states)).transpose()?
                    }
                };
                let Some(grad) = grad else {
                    return Ok(vec![None; vars.len()]);
                };
                let mut by_name = bert.backward_taped(tape, &grad)?;
                Ok(vars.iter().map(|(name, _)| by_name.remove(*name)).collect())
            }
        }
    }
}

impl Bert {
    /// The fine-tuning pass of the blocks from position `from` (at least 1) on over `x`, the
    /// hidden states the frozen blocks before it produced for a batch masked by `mask`, pooled by
    /// `pooling`: on the tape where it runs, else through candle's graph
    /// ([`Bert::forward_trained`]). The same embeddings and gradients either way; `x` is taken
    /// as a constant (no gradient flows into it: [`Bert::train_pass_all`] trains every block).
    pub fn train_pass(&self, x: &Tensor, mask: &Tensor, from: usize, pooling: Pooling) -> Result<TrainedPass<'_>> {
        #[cfg(target_arch = "x86_64")]
        if tape_runs(x, from) {
            return TrainedPass::taped(self, x, None, mask, from, pooling);
        }
        let hidden = self.forward_trained(x, mask, from)?;
        Ok(TrainedPass::graph(pooling.pool(&hidden, mask).map_err(candle_core::Error::wrap)?))
    }

    /// The fine-tuning pass with every block trained, the embeddings block's included, over
    /// token ids `ids` masked by `mask`: on the tape where it runs, else through candle's graph
    /// (as [`Bert::forward_from`] from position 0).
    pub fn train_pass_all(&self, ids: &Tensor, mask: &Tensor, pooling: Pooling) -> Result<TrainedPass<'_>> {
        #[cfg(target_arch = "x86_64")]
        if tape_runs(self.embeddings.word.embeddings(), 1) && ids.device().is_cpu() {
            let (x, embeddings) = self.embed_taped(ids)?;
            return TrainedPass::taped(self, &x, Some(embeddings), mask, 1, pooling);
        }
        let (embedded, _) = self.embed(ids, mask, super::Mode::Training)?;
        let hidden = self.forward_trained(&embedded, mask, 1)?;
        Ok(TrainedPass::graph(pooling.pool(&hidden, mask).map_err(candle_core::Error::wrap)?))
    }
}

/// What one trained layer's backward pass reads: its input and the activations between its ops.
#[cfg(target_arch = "x86_64")]
struct LayerTape {
    x: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    ctx: Tensor,
    /// The attention output's product (before its bias, which the LayerNorm adds).
    proj: Tensor,
    attn_params: Tensor,
    /// The row moments of the two LayerNorms' inputs, from the forward pass.
    attn_moments: RowMoments,
    attn: Tensor,
    /// The intermediate product before its bias and GELU, and after.
    inner: Tensor,
    act: Tensor,
    out: Tensor,
    out_params: Tensor,
    out_moments: RowMoments,
}

/// The trained layers' activations, first layer first.
#[cfg(target_arch = "x86_64")]
pub(super) struct Tape {
    /// Block position of the first trained layer (at least 1).
    from: usize,
    /// The attention mask every layer adds.
    bias: Tensor,
    layers: Vec<LayerTape>,
    /// The embeddings block's, when it trains: the first layer's input gradient is then
    /// computed and carried into it.
    embeddings: Option<EmbeddingsTape>,
}

/// What the embeddings block's backward pass reads: the token ids, row-major, and the
/// LayerNorm's inputs and parameters ([`Bert::embedding_rows`]).
#[cfg(target_arch = "x86_64")]
pub(super) struct EmbeddingsTape {
    ids: Vec<u32>,
    words: Tensor,
    types: Tensor,
    params: Tensor,
    moments: RowMoments,
}

/// Whether a pass from block `from` over `hidden` can run on the tape.
#[cfg(target_arch = "x86_64")]
pub(super) fn tape_runs(hidden: &Tensor, from: usize) -> bool {
    from >= 1 && hidden.device().is_cpu() && hidden.dtype() == candle_core::DType::F32
}

#[cfg(target_arch = "x86_64")]
impl<'a> TrainedPass<'a> {
    /// The blocks from position `from` (at least 1) on over hidden states `x` on the tape,
    /// pooled; `embeddings`: the embeddings block's tape when it produced `x` and trains.
    fn taped(
        bert: &'a Bert,
        x: &Tensor,
        embeddings: Option<EmbeddingsTape>,
        mask: &Tensor,
        from: usize,
        pooling: Pooling,
    ) -> Result<Self> {
        let (states, mut tape) = bert.forward_taped(x, mask, from)?;
        tape.embeddings = embeddings;
        let (embeddings, top) = match pooling {
            // The same ops as `Pooling::Mean`'s, cut where the tape takes over.
            Pooling::Mean => {
                let (sum, counts) = super::bert::masked_sum(&states, mask)?;
                let sum = Var::from_tensor(&sum)?;
                let embeddings = super::bert::normalised_mean(sum.as_tensor(), &counts)?;
                (embeddings, Top::MaskedSum { sum, mask: mask.clone(), states: states.dims3()? })
            }
            Pooling::Cls => {
                let top = Var::from_tensor(&states)?;
                let embeddings = pooling.pool(top.as_tensor(), mask).map_err(candle_core::Error::wrap)?;
                (embeddings, Top::States(top))
            }
        };
        Ok(Self { embeddings, route: Route::Tape { bert, top, tape } })
    }
}

#[cfg(target_arch = "x86_64")]
impl Bert {
    /// The blocks from position `from` (at least 1) on over `x`, the hidden states the blocks
    /// before it produced, as [`Bert::forward_trained`] computes them (the same bits), with no
    /// graph: the last hidden states and the tape their backward pass reads.
    fn forward_taped(&self, x: &Tensor, mask: &Tensor, from: usize) -> Result<(Tensor, Tape)> {
        if from == 0 || from > self.layers.len() + 1 {
            candle_core::bail!("trained blocks start at position {from}, outside 1..={}", self.layers.len() + 1);
        }
        let bias = super::bert::attention_bias(mask, x)?;
        let mut x = x.detach();
        let mut layers = Vec::new();
        for layer in &self.layers[from - 1..] {
            let (tape, out) = self.layer_taped(layer, x, &bias)?;
            x = out;
            layers.push(tape);
        }
        Ok((x, Tape { from, bias, layers, embeddings: None }))
    }

    /// The embeddings block's forward pass for token ids `ids`, as [`Bert::embed`] computes it
    /// for training (the same bits), with no graph: its output and the tape its backward pass
    /// reads.
    fn embed_taped(&self, ids: &Tensor) -> Result<(Tensor, EmbeddingsTape)> {
        let (words, types) = self.embedding_rows(ids)?;
        let (words, types) = (words.detach(), types.detach());
        let norm = &self.embeddings.norm;
        let params = norm.params(&norm.bias.zeros_like()?)?.detach();
        let (x, moments) = super::train_ops::add_layer_norm_keeping_moments(&words, &types, &params, norm.eps)?;
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        Ok((x, EmbeddingsTape { ids, words, types, params, moments }))
    }

    /// One layer's forward pass on detached weights: its tape and its output.
    fn layer_taped(&self, l: &Layer, x: Tensor, bias: &Tensor) -> Result<(LayerTape, Tensor)> {
        use super::train_ops::{add_layer_norm_keeping_moments as add_layer_norm, attention, bias_gelu, linear};
        let w = |lin: &candle_nn::Linear| lin.weight().detach();
        let b = |lin: &candle_nn::Linear| super::bert::linear_bias(lin).map(Tensor::detach);
        let dense = |lin: &candle_nn::Linear| linear(&x, &w(lin), Some(&b(lin)?));
        let (q, k, v) = (dense(&l.query)?, dense(&l.key)?, dense(&l.value)?);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let ctx = attention(&q, &k, &v, bias, self.heads, scale)?;
        let proj = linear(&ctx, &w(&l.attn_out), None)?;
        let attn_params = l.attn_norm.params(&b(&l.attn_out)?)?.detach();
        let (attn, attn_moments) = add_layer_norm(&proj, &x, &attn_params, l.attn_norm.eps)?;
        let inner = linear(&attn, &w(&l.intermediate), None)?;
        let act = bias_gelu(&inner, &b(&l.intermediate)?)?;
        let out = linear(&act, &w(&l.output), None)?;
        let out_params = l.out_norm.params(&b(&l.output)?)?.detach();
        let (y, out_moments) = add_layer_norm(&out, &attn, &out_params, l.out_norm.eps)?;
        let tape = LayerTape {
            x,
            q,
            k,
            v,
            ctx,
            proj,
            attn_params,
            attn_moments,
            attn,
            inner,
            act,
            out,
            out_params,
            out_moments,
        };
        Ok((tape, y))
    }

    /// The trained blocks' weights' gradients, by their Hugging Face names, for the last hidden
    /// states' gradient `grad`.
    fn backward_taped(&self, tape: Tape, grad: &Tensor) -> Result<HashMap<String, Tensor>> {
        let Tape { from, bias, layers, embeddings } = tape;
        let mut grads = HashMap::new();
        let mut grad = Some(grad.clone());
        for (i, t) in layers.into_iter().enumerate().rev() {
            let layer = &self.layers[from - 1 + i];
            let prefix = super::bert::block_prefix(from + i);
            // An input from frozen blocks needs no gradient.
            let input_grad = i > 0 || embeddings.is_some();
            let Some(g) = grad else { break };
            grad = self.layer_backward(layer, t, &bias, &g, input_grad, &mut Named { prefix, grads: &mut grads })?;
        }
        if let (Some(e), Some(dx)) = (embeddings, grad) {
            self.embeddings_backward(e, &dx, &mut Named { prefix: super::bert::block_prefix(0), grads: &mut grads })?;
        }
        Ok(grads)
    }

    /// The embeddings block's backward pass for its output's gradient `grad`: the LayerNorm's
    /// kernel, then each table's rows summed from +0 in the order candle's graph sums them (a
    /// word's over its tokens in batch order, a position's over the batch, type 0's over every
    /// token). Through candle's graph this built a zeroed 30,522 × 384 word gradient, then a
    /// copy of it to add the rows to (`index_add`), and a dozen `[b, t, h]` tensors on one
    /// thread: 33–63 ms of a 7-block step.
    fn embeddings_backward(&self, t: EmbeddingsTape, grad: &Tensor, out: &mut Named) -> Result<()> {
        let e = &self.embeddings;
        // candle's graph hands the LayerNorm `0 + grad` (its accumulator), -0 turned to +0.
        let grad = plus_zero(grad)?;
        let (d, dparams) = super::train_ops::add_layer_norm_backward(
            &t.words,
            &t.types,
            &t.params,
            e.norm.eps,
            &grad,
            Some(&t.moments),
        )?;
        let (b, tokens, h) = d.dims3()?;
        let d = d.flatten_all()?.to_vec1::<f32>()?;
        let rows = |i: usize| &d[i * h..(i + 1) * h];
        let table = |emb: &candle_nn::Embedding, fill: &dyn Fn(&mut [f32])| -> Result<Tensor> {
            let w = emb.embeddings();
            let mut g = vec![0f32; w.elem_count()];
            fill(&mut g);
            Tensor::from_vec(g, w.shape(), w.device())
        };
        let add = |acc: &mut [f32], row: &[f32]| acc.iter_mut().zip(row).for_each(|(a, v)| *a += v);
        let word = table(&e.word, &|g| {
            for (i, &id) in t.ids.iter().enumerate() {
                add(&mut g[id as usize * h..(id as usize + 1) * h], rows(i));
            }
        })?;
        let position = table(&e.position, &|g| {
            for bi in 0..b {
                for j in 0..tokens {
                    add(&mut g[j * h..(j + 1) * h], rows(bi * tokens + j));
                }
            }
        })?;
        let token_type = table(&e.token_type, &|g| (0..b * tokens).for_each(|i| add(&mut g[..h], rows(i))))?;
        out.put("word_embeddings.weight", word);
        out.put("position_embeddings.weight", position);
        out.put("token_type_embeddings.weight", token_type);
        out.put("LayerNorm.weight", plus_zero(&dparams.get(0)?)?);
        out.put("LayerNorm.bias", plus_zero(&dparams.get(1)?)?);
        Ok(())
    }

    /// One layer's backward pass: its weights' gradients through `put`, its input's gradient
    /// returned (with `input_grad`).
    fn layer_backward(
        &self,
        l: &Layer,
        t: LayerTape,
        bias: &Tensor,
        grad: &Tensor,
        input_grad: bool,
        out: &mut Named,
    ) -> Result<Option<Tensor>> {
        use super::train_ops::{add_layer_norm_backward, attention_backward, bias_gelu_backward, linear_backward};
        // Feed-forward half: LayerNorm(out + attn), out = gelu(attn · Wiᵀ + bi) · Woᵀ.
        let (d_out, d) =
            add_layer_norm_backward(&t.out, &t.attn, &t.out_params, l.out_norm.eps, grad, Some(&t.out_moments))?;
        out.norm("output.LayerNorm", "output.dense", d)?;
        let (d_act, dw, _) = linear_backward(&t.act, l.output.weight(), &d_out, false, true)?;
        let d_act = asked(d_act, "output layer's input")?;
        out.put("output.dense.weight", dw);
        drop((t.act, t.out));
        let (d_inner, db) = bias_gelu_backward(&t.inner, &super::bert::linear_bias(&l.intermediate)?.detach(), &d_act)?;
        out.put("intermediate.dense.bias", db);
        drop((d_act, t.inner));
        let (d_attn, dw, _) = linear_backward(&t.attn, l.intermediate.weight(), &d_inner, false, true)?;
        out.put("intermediate.dense.weight", dw);
        // attn feeds the residual and the intermediate layer: two parts (their order does not
        // change a sum of two).
        let d_attn = (asked(d_attn, "intermediate layer's input")? + &d_out)?;
        drop((d_inner, d_out, t.attn));

        // Attention half: LayerNorm(ctx · Woᵀ + x).
        let (d_proj, d) =
            add_layer_norm_backward(&t.proj, &t.x, &t.attn_params, l.attn_norm.eps, &d_attn, Some(&t.attn_moments))?;
        out.norm("attention.output.LayerNorm", "attention.output.dense", d)?;
        let (d_ctx, dw, _) = linear_backward(&t.ctx, l.attn_out.weight(), &d_proj, false, true)?;
        out.put("attention.output.dense.weight", dw);
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let d_ctx = asked(d_ctx, "attention output layer's input")?;
        let (dq, dk, dv) = attention_backward((&t.q, &t.k, &t.v), bias, self.heads, scale, &d_ctx)?;
        let mut dx = input_grad.then(|| d_proj.clone());
        // candle's order for x's parts: the residual's, then value, key, query.
        for (name, lin, d) in [("value", &l.value, dv), ("key", &l.key, dk), ("query", &l.query, dq)] {
            let (dxi, dw, db) = linear_backward(&t.x, lin.weight(), &d, true, input_grad)?;
            out.put(&format!("attention.self.{name}.weight"), dw);
            out.put(&format!("attention.self.{name}.bias"), asked(db, "bias")?);
            if let (Some(sum), Some(part)) = (dx.as_mut(), dxi) {
                *sum = (&*sum + part)?;
            }
        }
        Ok(dx)
    }
}

/// The gradient of the last hidden states `[b, t, h]` from that of their masked sum over the
/// tokens `grad` `[b, h]`: what candle's backward pass of `Σ_t states · mask` makes of it, to the
/// bit — `0 + (0 + g) · m` (its zeroed accumulators turn a -0 into +0) — in one parallel pass.
#[cfg(target_arch = "x86_64")]
fn spread_over_tokens(grad: &Tensor, mask: &Tensor, (b, t, h): (usize, usize, usize)) -> Result<Tensor> {
    use rayon::prelude::*;
    let g = grad.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
    let m = mask.to_dtype(candle_core::DType::F32)?.to_vec2::<f32>()?;
    if g.len() != b || m.len() != b || m.iter().any(|r| r.len() != t) || g.iter().any(|r| r.len() != h) {
        candle_core::bail!(
            "tape: pooled gradient {:?}, mask {:?} for states {:?}",
            grad.dims(),
            mask.dims(),
            (b, t, h)
        );
    }
    let mut out = vec![0f32; b * t * h];
    out.par_chunks_mut(t * h).zip(&g).zip(&m).for_each(|((rows, g), m)| {
        for (row, &m) in rows.chunks_mut(h).zip(m) {
            row.iter_mut().zip(g).for_each(|(d, &g)| *d = 0.0 + (0.0 + g) * m);
        }
    });
    Tensor::from_vec(out, (b, t, h), grad.device())
}

/// The gradients of one layer's weights, by name under the layer's prefix.
#[cfg(target_arch = "x86_64")]
struct Named<'a> {
    prefix: String,
    grads: &'a mut HashMap<String, Tensor>,
}

#[cfg(target_arch = "x86_64")]
impl Named<'_> {
    fn put(&mut self, name: &str, grad: Tensor) {
        self.grads.insert(format!("{}{name}", self.prefix), grad);
    }

    /// A LayerNorm's `[3, h]` parameter gradient: gamma, beta, and the bias of the linear layer
    /// before it (which the kernel adds).
    fn norm(&mut self, norm: &str, dense: &str, d: Tensor) -> Result<()> {
        self.put(&format!("{norm}.weight"), d.get(0)?);
        self.put(&format!("{norm}.bias"), d.get(1)?);
        self.put(&format!("{dense}.bias"), d.get(2)?);
        Ok(())
    }
}

/// `0 + x` element-wise: what adding `x` to one of candle's zeroed gradient accumulators gives
/// (-0 becomes +0, all else stays).
#[cfg(target_arch = "x86_64")]
fn plus_zero(x: &Tensor) -> Result<Tensor> {
    let v: Vec<f32> = x.flatten_all()?.to_vec1::<f32>()?.into_iter().map(|v| 0.0 + v).collect();
    Tensor::from_vec(v, x.shape(), x.device())
}

/// A gradient the backward kernel was asked for.
#[cfg(target_arch = "x86_64")]
fn asked(grad: Option<Tensor>, what: &str) -> Result<Tensor> {
    grad.ok_or_else(|| candle_core::Error::msg(format!("tape: no gradient for the {what}")))
}
