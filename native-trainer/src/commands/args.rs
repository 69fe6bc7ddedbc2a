//! Argument groups shared by several commands. Each group's `Default` is what its flags default
//! to (a test checks the two agree), so commands can also be driven with typed values
//! (`nook demo` runs `train` and `export` that way).

use crate::data::{self, Dataset, Format, Source, TextField};
use crate::finetune::FinetuneConfig;
use crate::models::{self, AlsConfig, BprConfig, ModelEntry};
use crate::split::{Protocol, Split, SplitConfig};
use crate::textvec::{EncoderSource, TextEngine, DEFAULT_ENCODER};
use crate::training::{ModelConfig, TrainInputs};
use anyhow::{Context, Result};
use candle_core::Device;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::Args;
use std::path::PathBuf;
use std::sync::LazyLock;

/// Where `scripts/setup-assets.sh` puts MovieLens 100k; the default `--data`.
pub const DEFAULT_DATA: &str = "assets/data/ml-100k";

/// Everything `train` and `eval` read: data, split, models and encoder.
#[derive(Args, Clone, Debug, Default, PartialEq)]
pub struct TrainingArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub models: ModelArgs,
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// The query benchmark: an item-text field (`tags`: user tags, `genres`: genre names) held out
    /// of what the encoder sees and typed as queries instead, so matching them takes
    /// understanding, not copying. The run then reports how queries steer (Recall@10 / NDCG@10
    /// of history, query and blend) and chooses how much a query counts on its validation part.
    /// `none` (default) keeps every field in the text, for the best bundle; the query weight and
    /// expansion then keep the values this benchmark chose on movielens-small.
    #[arg(long, value_enum, default_value = "none")]
    pub query_field: QueryFieldArg,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryFieldArg {
    Tags,
    Genres,
    #[default]
    None,
}

#[derive(Args, Clone, Debug, PartialEq)]
pub struct DataArgs {
    /// Data directory (MovieLens latest or 100k, or RecBole atomic files) [default: assets/data/ml-100k].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Input layout.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: Format,
    /// Generic layout: interactions CSV with header `user,item[,rating][,timestamp]`.
    #[arg(long)]
    pub interactions: Option<PathBuf>,
    /// Generic layout: items CSV with header `item,text[,title]`.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// Skip malformed rows (and report how many, by reason, in eval.json and the report)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// With --skip-bad-rows: refuse the data when more rows than this are malformed, as a count
    /// (100) or a share of the rows read (5%).
    #[arg(long, default_value_t = data::BadRowLimit::default(), value_name = "N|P%")]
    pub max_bad_rows: data::BadRowLimit,
}

impl Default for DataArgs {
    fn default() -> Self {
        Self {
            data: None,
            format: Format::Auto,
            interactions: None,
            items: None,
            skip_bad_rows: false,
            max_bad_rows: data::BadRowLimit::default(),
        }
    }
}

#[derive(Args, Clone, Debug, PartialEq)]
pub struct SplitArgs {
    /// How each user's positives are split.
    #[arg(long, value_enum, default_value = "temporal")]
    pub protocol: Protocol,
    /// Train, valid and test fractions for the temporal protocol.
    #[arg(long, value_delimiter = ',', default_value = "0.8,0.1,0.1", value_parser = fraction(0.0, 1.0))]
    pub ratios: Vec<f64>,
    /// Fraction of items held out with all their interactions (the cold-item split).
    #[arg(long, default_value_t = SplitConfig::default().cold_fraction, value_parser = fraction(0.0, 0.9))]
    pub cold_fraction: f64,
    /// Ratings at or above this are positives (data without ratings is all positive).
    #[arg(long, default_value_t = SplitConfig::default().min_rating, value_parser = finite(-1e6, 1e6))]
    pub min_rating: f32,
    /// Seed for every random choice (split, initialisation, sampling).
    #[arg(long, default_value_t = SplitConfig::default().seed)]
    pub seed: u64,
    /// Fit the final models on the training part alone. By default, settings are chosen on the
    /// validation part and the final models are then refitted on train + validation, so the test
    /// measures models that know each person's history up to the test period.
    #[arg(long)]
    pub no_refit: bool,
}

impl Default for SplitArgs {
    fn default() -> Self {
        let d = SplitConfig::default();
        Self {
            protocol: d.protocol,
            ratios: d.ratios.to_vec(),
            cold_fraction: d.cold_fraction,
            min_rating: d.min_rating,
            seed: d.seed,
            no_refit: !d.refit,
        }
    }
}

/// A whole number in `lo..=hi` (e.g. `--factors 0` is refused here, not by a panic in training).
pub fn count(lo: u64, hi: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(lo..=hi)
}

fn float_in<T: std::str::FromStr + Into<f64> + Copy>(
    s: &str,
    lo: f64,
    hi: f64,
    open_lo: bool,
) -> std::result::Result<T, String> {
    let v: T = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    let x: f64 = v.into();
    let above = if open_lo { x > lo } else { x >= lo };
    if !x.is_finite() || !above || x > hi {
        let low = if open_lo { "(" } else { "[" };
        return Err(format!("{s} is outside {low}{lo}, {hi}]"));
    }
    Ok(v)
}

/// A finite f32 in `lo..=hi` (NaN and infinities refused).
pub fn finite(lo: f64, hi: f64) -> impl TypedValueParser<Value = f32> {
    move |s: &str| float_in::<f32>(s, lo, hi, false)
}

/// A finite f32 above 0, at most `hi`.
pub fn positive(hi: f64) -> impl TypedValueParser<Value = f32> {
    move |s: &str| float_in::<f32>(s, 0.0, hi, true)
}

/// A finite f64 above 0, at most `hi`.
pub fn positive64(hi: f64) -> impl TypedValueParser<Value = f64> {
    move |s: &str| float_in::<f64>(s, 0.0, hi, true)
}

/// A finite f64 in `lo..=hi`.
pub fn fraction(lo: f64, hi: f64) -> impl TypedValueParser<Value = f64> {
    move |s: &str| float_in::<f64>(s, lo, hi, false)
}

/// `--models` values: the registry's ids, each with its one-line description.
fn model_ids() -> impl TypedValueParser<Value = String> {
    PossibleValuesParser::new(models::REGISTRY.iter().map(|e| PossibleValue::new(e.id).help(e.about)))
}

/// The registry's default models, comma-separated.
static DEFAULT_MODELS: LazyLock<String> =
    LazyLock::new(|| models::REGISTRY.iter().filter(|e| e.default).map(|e| e.id).collect::<Vec<_>>().join(","));

#[derive(Args, Clone, Debug, PartialEq)]
pub struct ModelArgs {
    /// Models to train/evaluate.
    #[arg(long, value_delimiter = ',', value_parser = model_ids(), default_value = DEFAULT_MODELS.as_str())]
    pub models: Vec<String>,
    /// Latent factors (ALS and BPR). 200 scores higher on movielens-small's validation split, but a
    /// 1M-item int8 catalogue then needs more than the browser's 1 GiB wasm budget; 64 stays default.
    #[arg(long, default_value_t = AlsConfig::default().factors, value_parser = count(1, 1024))]
    pub factors: usize,
    /// ALS iterations.
    #[arg(long, default_value_t = AlsConfig::default().iterations, value_parser = count(1, 1000))]
    pub iterations: usize,
    /// ALS regularisation λ.
    #[arg(long, default_value_t = AlsConfig::default().regularization, value_parser = positive(1e6))]
    pub regularization: f32,
    /// ALS confidence weight: an interaction counts `1 + alpha * r`.
    #[arg(long, default_value_t = AlsConfig::default().alpha, value_parser = finite(0.0, 1e6))]
    pub alpha: f32,
    /// ALS conjugate-gradient steps per row update.
    #[arg(long, default_value_t = AlsConfig::default().cg_steps, value_parser = count(1, 100))]
    pub cg_steps: usize,
    /// BPR epochs.
    #[arg(long, default_value_t = BprConfig::default().epochs, value_parser = count(1, 100_000))]
    pub bpr_epochs: usize,
    /// BPR learning rate.
    #[arg(long, default_value_t = BprConfig::default().learning_rate, value_parser = positive(10.0))]
    pub bpr_lr: f32,
    /// BPR regularisation.
    #[arg(long, default_value_t = BprConfig::default().regularization, value_parser = finite(0.0, 100.0))]
    pub bpr_reg: f32,
    /// Fine-tuning steps (content-ft, fused-ft).
    #[arg(long, default_value_t = FinetuneConfig::default().steps, value_parser = count(1, 10_000_000))]
    pub ft_steps: usize,
    /// Fine-tuning pairs per step.
    #[arg(long, default_value_t = FinetuneConfig::default().batch, value_parser = count(2, 4096))]
    pub ft_batch: usize,
    /// Fine-tuning peak learning rate (AdamW, linear warm-up and decay).
    #[arg(long, default_value_t = FinetuneConfig::default().learning_rate, value_parser = positive64(1.0))]
    pub ft_lr: f64,
    /// How many top encoder layers fine-tune (the rest, and the embeddings, stay frozen).
    #[arg(long, default_value_t = FinetuneConfig::default().train_layers, value_parser = count(1, 64))]
    pub ft_layers: usize,
    /// Tokens per text while fine-tuning.
    #[arg(long, default_value_t = FinetuneConfig::default().max_tokens, value_parser = count(3, 512))]
    pub ft_max_tokens: usize,
    /// A training pair is an item and one of the next N items the same person consumed.
    #[arg(long, default_value_t = FinetuneConfig::default().window, value_parser = count(1, 100_000))]
    pub ft_window: usize,
    /// InfoNCE temperature.
    #[arg(long, default_value_t = FinetuneConfig::default().temperature, value_parser = positive64(10.0))]
    pub ft_temperature: f64,
    /// Hard negatives while fine-tuning: each anchor also contrasts with one of its N nearest
    /// items by the frozen encoder's text that nobody consumed close to it (0: in-batch only).
    /// A list (e.g. `0,100`) fine-tunes once per value and keeps the one whose fused model
    /// validates best (each its own checkpoint under --checkpoint-dir).
    #[arg(long, value_delimiter = ',', default_value = "0", value_parser = count(0, 10_000))]
    pub ft_hard_negatives: Vec<usize>,
    /// Save a fine-tuning checkpoint every N steps (see --resume).
    #[arg(long, default_value_t = FinetuneConfig::default().checkpoint_every, value_parser = count(1, 10_000_000))]
    pub ft_checkpoint_every: usize,
}

impl Default for ModelArgs {
    fn default() -> Self {
        let (als, bpr, ft) = (AlsConfig::default(), BprConfig::default(), FinetuneConfig::default());
        Self {
            models: DEFAULT_MODELS.split(',').map(String::from).collect(),
            factors: als.factors,
            iterations: als.iterations,
            regularization: als.regularization,
            alpha: als.alpha,
            cg_steps: als.cg_steps,
            bpr_epochs: bpr.epochs,
            bpr_lr: bpr.learning_rate,
            bpr_reg: bpr.regularization,
            ft_steps: ft.steps,
            ft_batch: ft.batch,
            ft_lr: ft.learning_rate,
            ft_layers: ft.train_layers,
            ft_max_tokens: ft.max_tokens,
            ft_window: ft.window,
            ft_temperature: ft.temperature,
            ft_hard_negatives: vec![ft.hard_negatives],
            ft_checkpoint_every: ft.checkpoint_every,
        }
    }
}

#[derive(Args, Clone, Debug, PartialEq)]
pub struct EncoderArgs {
    /// Text encoder: a local Hugging Face BERT directory (config.json, tokenizer.json,
    /// model.safetensors). Its sentence-transformers files, where present, set the pooling
    /// (`1_Pooling/config.json`: mean or [CLS]) and the prompts put before item texts and typed
    /// queries (`config_sentence_transformers.json`, e.g. e5's `query: ` / `passage: `).
    #[arg(long, default_value = DEFAULT_ENCODER)]
    pub encoder: PathBuf,
    /// Longest item text, in tokens.
    #[arg(long, default_value_t = nook_core::encoder::DEFAULT_MAX_TOKENS, value_parser = count(3, 512))]
    pub max_tokens: usize,
    /// Where item text vectors are cached between runs.
    #[arg(long, default_value = "out/cache")]
    pub cache_dir: PathBuf,
    /// Where fine-tuning writes checkpoints.
    #[arg(long, default_value = "out/checkpoints")]
    pub checkpoint_dir: PathBuf,
    /// Continue an interrupted fine-tuning from its checkpoint (same settings and data).
    #[arg(long)]
    pub resume: bool,
    /// Device for the encoder and fine-tuning: `cpu`, or `cuda` / `cuda:N` (needs a build with
    /// `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Engine for embedding item texts: `f32` (candle), or `int8` (the engine int8 bundles embed
    /// queries with: 2-3x faster on CPU, movielens-small's NDCG@10 within about 1% of f32; see the
    /// README). Fine-tuning always trains f32 weights.
    #[arg(long, value_enum, default_value_t = TextEngine::F32)]
    pub text_engine: TextEngine,
}

impl Default for EncoderArgs {
    fn default() -> Self {
        Self {
            encoder: DEFAULT_ENCODER.into(),
            max_tokens: nook_core::encoder::DEFAULT_MAX_TOKENS,
            cache_dir: "out/cache".into(),
            checkpoint_dir: "out/checkpoints".into(),
            resume: false,
            device: "cpu".into(),
            text_engine: TextEngine::F32,
        }
    }
}

impl TrainingArgs {
    /// Loads the data and splits it as asked.
    pub fn load(&self) -> Result<(Dataset, Split)> {
        let data = self.data.load()?;
        let split = self.split.split(&data)?;
        Ok((data, split))
    }

    /// The requested models, in registry order.
    pub fn entries(&self) -> Vec<&'static ModelEntry> {
        models::REGISTRY.iter().copied().filter(|e| self.models.models.iter().any(|m| m == e.id)).collect()
    }

    /// The models' settings; refuses a query benchmark on a field no item of `data` has.
    pub fn model_config(&self, data: &Dataset) -> Result<ModelConfig> {
        let query_field = match self.query_field {
            QueryFieldArg::Tags => Some(TextField::Tags),
            QueryFieldArg::Genres => Some(TextField::Genres),
            QueryFieldArg::None => None,
        };
        if let Some(field) = query_field {
            let present = data.items.iter().any(|i| !data::field_values(i, field).is_empty());
            anyhow::ensure!(present, "--query-field {field:?}: no item of {} has any", data.name);
        }
        Ok(ModelConfig { query_field, ..self.models.config(self.split.seed) })
    }

    /// What training reads besides the split; the encoder only when a text model is asked for.
    pub fn inputs<'a>(&self, data: &'a Dataset, split: &'a Split) -> Result<TrainInputs<'a>> {
        let encoder = match self.entries().iter().any(|e| e.needs_text) {
            true => {
                let source = self.encoder.source();
                source.check()?;
                Some(source)
            }
            false => None,
        };
        Ok(TrainInputs {
            data,
            split,
            encoder,
            text_engine: self.encoder.text_engine,
            cache_dir: self.encoder.cache_dir.clone(),
            device: parse_device(&self.encoder.device)?,
            checkpoint_dir: self.encoder.checkpoint_dir.clone(),
            resume: self.encoder.resume,
            prefit_als: None,
        })
    }
}

impl EncoderArgs {
    pub fn source(&self) -> EncoderSource {
        EncoderSource { dir: self.encoder.clone(), max_tokens: self.max_tokens }
    }
}

/// `cpu`, `cuda` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal: usize = match s.strip_prefix("cuda:") {
                Some(n) => n.parse().with_context(|| format!("--device {s}: expected cuda:N"))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                anyhow::bail!("--device {s}: this nook was built without CUDA (rebuild with `--features cuda`)");
            }
            Ok(Device::new_cuda(ordinal).with_context(|| format!("opening CUDA device {ordinal}"))?)
        }
        other => anyhow::bail!("--device {other:?}: expected cpu, cuda or cuda:N"),
    }
}

impl DataArgs {
    /// The paths this run reads data from, for refusing an `--out` that would replace them.
    pub fn inputs(&self) -> Vec<PathBuf> {
        let data = match (&self.data, &self.interactions) {
            (None, None) => Some(PathBuf::from(DEFAULT_DATA)),
            (d, _) => d.clone(),
        };
        data.into_iter().chain(self.interactions.clone()).chain(self.items.clone()).collect()
    }

    pub fn load(&self) -> Result<Dataset> {
        let data = match (&self.data, &self.interactions) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(_)) => None,
            (None, None) => {
                let default = PathBuf::from(DEFAULT_DATA);
                anyhow::ensure!(
                    default.is_dir(),
                    "no --data given and the default {DEFAULT_DATA} is missing: run scripts/setup-assets.sh"
                );
                Some(default)
            }
        };
        let source = Source {
            data,
            format: Some(self.format),
            interactions: self.interactions.clone(),
            items: self.items.clone(),
            skip_bad_rows: self.skip_bad_rows,
            max_bad_rows: self.max_bad_rows,
        };
        Ok(data::load(&source)?)
    }
}

impl SplitArgs {
    pub fn config(&self) -> Result<SplitConfig> {
        let ratios: [f64; 3] = self
            .ratios
            .as_slice()
            .try_into()
            .map_err(|_| anyhow::anyhow!("--ratios takes three numbers, e.g. 0.8,0.1,0.1"))?;
        let cfg = SplitConfig {
            protocol: self.protocol,
            ratios,
            cold_fraction: self.cold_fraction,
            min_rating: self.min_rating,
            seed: self.seed,
            refit: !self.no_refit,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Splits `data`, logging the sizes of the parts.
    pub fn split(&self, data: &Dataset) -> Result<Split> {
        let split = Split::new(data, &self.config()?)?;
        tracing::info!(
            "split: {} train, {} valid, {} test, {} cold positives on {} cold items ({} valid/test positives on unseen items dropped)",
            split.train.len(),
            split.valid.len(),
            split.test.len(),
            split.cold.len(),
            split.cold_items.len(),
            split.dropped_unseen
        );
        Ok(split)
    }
}

impl ModelArgs {
    /// `--ft-hard-negatives` as choices for validation: each value once, in the order given;
    /// empty when there is only one.
    fn hard_negatives_choices(&self) -> Vec<usize> {
        let mut choices: Vec<usize> = Vec::new();
        for &n in &self.ft_hard_negatives {
            if !choices.contains(&n) {
                choices.push(n);
            }
        }
        match choices.len() {
            1 => Vec::new(),
            _ => choices,
        }
    }

    pub fn config(&self, seed: u64) -> ModelConfig {
        ModelConfig {
            als: AlsConfig {
                factors: self.factors,
                iterations: self.iterations,
                regularization: self.regularization,
                alpha: self.alpha,
                cg_steps: self.cg_steps,
                seed,
            },
            bpr: BprConfig {
                factors: self.factors,
                epochs: self.bpr_epochs,
                learning_rate: self.bpr_lr,
                regularization: self.bpr_reg,
                seed,
            },
            finetune: FinetuneConfig {
                steps: self.ft_steps,
                batch: self.ft_batch,
                learning_rate: self.ft_lr,
                train_layers: self.ft_layers,
                max_tokens: self.ft_max_tokens,
                window: self.ft_window,
                temperature: self.ft_temperature,
                hard_negatives: self.ft_hard_negatives.first().copied().unwrap_or_default(),
                checkpoint_every: self.ft_checkpoint_every,
                seed,
                ..FinetuneConfig::default()
            },
            hard_negatives_choices: self.hard_negatives_choices(),
            query_field: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Probe {
        #[command(flatten)]
        training: TrainingArgs,
    }

    #[test]
    fn typed_defaults_are_the_flags_defaults() {
        assert_eq!(Probe::parse_from(["nook"]).training, TrainingArgs::default());
    }

    #[test]
    fn several_hard_negative_counts_become_choices_for_validation() {
        let config = |args: &[&str]| Probe::parse_from([&["nook"], args].concat()).training.models.config(7);
        let one = config(&["--ft-hard-negatives", "30"]);
        assert_eq!((one.finetune.hard_negatives, one.hard_negatives_choices), (30, vec![]));
        let many = config(&["--ft-hard-negatives", "100,0,100"]);
        assert_eq!(many.hard_negatives_choices, [100, 0], "each value once, in the order given");
        assert!(Probe::try_parse_from(["nook", "--ft-hard-negatives", "0,x"]).is_err());
    }
}
