//! How a sentence vector is made from the encoder's token states, as the model's
//! sentence-transformers files say (`1_Pooling/config.json`): all-MiniLM-L6-v2 averages the real
//! tokens, the BGE family takes the `[CLS]` token. Either is then L2-normalised.

use crate::error::{NookError, Result};
use candle_core::{IndexOp, Tensor};
use serde::{Deserialize, Serialize};

/// The pooling of a model: `mean` unless its sentence-transformers config says otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over the real tokens (padding excluded).
    #[default]
    Mean,
    /// The first token's state (`[CLS]`).
    Cls,
}

/// Where a sentence-transformers model directory keeps its pooling.
pub const POOLING_FILE: &str = "1_Pooling/config.json";

#[derive(Deserialize)]
struct SentenceTransformersPooling {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

impl Pooling {
    /// Reads a sentence-transformers `1_Pooling/config.json`; refuses modes nook does not run
    /// (max, sqrt-length, weighted mean, last token, or several at once).
    pub fn from_sentence_transformers(bytes: &[u8]) -> Result<Self> {
        let c: SentenceTransformersPooling =
            serde_json::from_slice(bytes).map_err(|e| NookError::encoder(format!("{POOLING_FILE}: {e}")))?;
        let unsupported = [
            (c.pooling_mode_max_tokens, "max"),
            (c.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len"),
            (c.pooling_mode_weightedmean_tokens, "weightedmean"),
            (c.pooling_mode_lasttoken, "lasttoken"),
        ];
        if let Some((_, name)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(NookError::encoder(format!(
                "{POOLING_FILE}: pooling mode `{name}` is not supported (nook pools by mean or [CLS])"
            )));
        }
        match (c.pooling_mode_cls_token, c.pooling_mode_mean_tokens) {
            (true, false) => Ok(Pooling::Cls),
            (false, true) => Ok(Pooling::Mean),
            (true, true) => Err(NookError::encoder(format!(
                "{POOLING_FILE}: both cls and mean pooling are on (concatenated poolings are not supported)"
            ))),
            (false, false) => Err(NookError::encoder(format!("{POOLING_FILE}: no pooling mode is on"))),
        }
    }

    /// A sentence-transformers `1_Pooling/config.json` for this pooling, for directories nook
    /// writes (a fine-tuned encoder keeps its base model's pooling).
    pub fn sentence_transformers_config(self, dim: usize) -> String {
        let (cls, mean) = (self == Pooling::Cls, self == Pooling::Mean);
        serde_json::json!({
            "word_embedding_dimension": dim,
            "pooling_mode_cls_token": cls,
            "pooling_mode_mean_tokens": mean,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
        })
        .to_string()
    }

    pub fn is_mean(&self) -> bool {
        *self == Pooling::Mean
    }

    /// Sentence vectors `[b, h]` from token states `hidden` `[b, t, h]` (`mask` `[b, t]`).
    pub fn pool(self, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            Pooling::Mean => Ok(super::masked_mean_pool(hidden, mask)?),
            Pooling::Cls => {
                let cls = hidden.i((.., 0, ..))?.contiguous()?;
                let norm = cls.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::INFINITY)?;
                Ok(cls.broadcast_div(&norm)?)
            }
        }
    }

    /// One sentence's vector from its token states, row-major `t x h` (the int8 engine's form).
    pub fn pool_rows(self, x: &[f32], h: usize) -> Vec<f32> {
        let mut v = match self {
            Pooling::Mean => {
                let t = x.len() / h;
                let mut mean = vec![0f32; h];
                for row in x.chunks_exact(h) {
                    mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
                }
                mean.iter_mut().for_each(|m| *m /= t as f32);
                mean
            }
            Pooling::Cls => x[..h].to_vec(),
        };
        let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|a| *a /= norm);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentence_transformers_pooling_configs() {
        let minilm = br#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false}"#;
        assert_eq!(Pooling::from_sentence_transformers(minilm).unwrap(), Pooling::Mean);
        let bge =
            br#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#;
        assert_eq!(Pooling::from_sentence_transformers(bge).unwrap(), Pooling::Cls);
        let max = br#"{"pooling_mode_max_tokens": true}"#;
        assert!(Pooling::from_sentence_transformers(max).unwrap_err().to_string().contains("`max`"));
        assert!(Pooling::from_sentence_transformers(b"{}").unwrap_err().to_string().contains("no pooling"));
        assert!(Pooling::from_sentence_transformers(b"[").is_err());
        for p in [Pooling::Mean, Pooling::Cls] {
            assert_eq!(Pooling::from_sentence_transformers(p.sentence_transformers_config(8).as_bytes()).unwrap(), p);
        }
    }

    #[test]
    fn tensor_and_row_pooling_agree() {
        let (t, h) = (3, 4);
        let x: Vec<f32> = (0..t * h).map(|i| (i as f32 * 0.7).sin()).collect();
        let hidden = Tensor::from_vec(x.clone(), (1, t, h), &candle_core::Device::Cpu).unwrap();
        let mask = Tensor::ones((1, t), candle_core::DType::U32, &candle_core::Device::Cpu).unwrap();
        for p in [Pooling::Mean, Pooling::Cls] {
            let a: Vec<f32> = p.pool(&hidden, &mask).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let b = p.pool_rows(&x, h);
            assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "{p:?}: {a:?} vs {b:?}");
        }
        assert_eq!(Pooling::Cls.pool_rows(&x, h), {
            let n = x[..h].iter().map(|a| a * a).sum::<f32>().sqrt();
            x[..h].iter().map(|a| a / n).collect::<Vec<_>>()
        });
    }
}
