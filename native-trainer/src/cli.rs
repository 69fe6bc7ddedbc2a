//! Command-line interface.

use crate::demo;
use anyhow::{Context, Result};
use candle_core::Device;
use clap::{Args, Parser, Subcommand};
use nook_core::bundle::IdRequest;
use nook_trainer::data::{self, Dataset, Format, Source};
use nook_trainer::eval::Target;
use nook_trainer::finetune::FinetuneConfig;
use nook_trainer::models::hybrid::{user_vectors, HybridScorer};
use nook_trainer::models::{AlsConfig, BprConfig, Scorer};
use nook_trainer::pipeline::{evaluate_all, ModelConfig, ModelKind, ModelSet, TrainInputs};
use nook_trainer::split::{Protocol, Split, SplitConfig};
use nook_trainer::textvec::{EncoderSource, DEFAULT_ENCODER};
use nook_trainer::{atomic, bench, export, external, report, serve, spark, splitio, store};
use std::path::PathBuf;

/// Where `scripts/setup-assets.sh` puts MovieLens 100k; the default `--data`.
const DEFAULT_DATA: &str = "assets/data/ml-100k";

#[derive(Parser)]
#[command(
    name = "nook",
    version,
    about = "Train recommenders whose ranking runs privately in the browser",
    long_about = "nook learns from interaction logs and item text, evaluates honestly against baselines, \
and exports what its WebAssembly client needs to recommend on-device.\n\n\
Typical use:\n  nook demo                                  fetch, train, export, build and serve the page\n  \
nook eval --data DIR --json out/eval.json   every model against the baselines\n  \
nook train --data DIR --out out/model       train and save (with an evaluation)\n  \
nook export --model out/model --out out/bundle\n  \
nook recommend --bundle out/bundle --like 1 --query \"space opera\"\n  \
nook serve --bundle out/bundle\n  \
nook split --data DIR --out out/split       the exact split as CSV for other tools"
)]
pub struct Cli {
    /// Log filter (tracing syntax): error, warn, info, debug, or e.g. `nook_trainer=debug`.
    #[arg(long, global = true, default_value = "info", env = "NOOK_LOG")]
    pub log: String,
    /// Worker threads (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Split the data and write the parts as CSV, so other tools use exactly the same split:
    /// train, valid, test, cold, and fit.csv (what the final models are fitted on).
    Split {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        split: SplitArgs,
        /// Output directory (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Train models on the training part of the split, evaluate them, and save them.
    Train {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        split: SplitArgs,
        #[command(flatten)]
        models: ModelArgs,
        #[command(flatten)]
        encoder: EncoderArgs,
        /// Model directory to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// Skip the evaluation (whose metrics the exported bundle carries).
        #[arg(long)]
        no_eval: bool,
        /// Use ALS factors fitted elsewhere instead of fitting ALS here: a saved Spark MLlib ALS
        /// model (DIR/userFactors, DIR/itemFactors as Parquet) or `nook export-factors` output.
        /// Fit them on the training part (`nook split`) for an honest evaluation. The text models
        /// fuse with them; `--regularization` is the λ the browser folds users in with.
        #[arg(long, value_name = "DIR")]
        als_from: Option<PathBuf>,
    },
    /// Import collaborative factors fitted elsewhere (Spark MLlib ALS, saved as Parquet) as a
    /// model directory holding `als`, for `nook eval --model` (see also `nook train --als-from`).
    ImportFactors {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        split: SplitArgs,
        /// The saved Spark ALS model: DIR/userFactors/ and DIR/itemFactors/ with Parquet part files
        /// (columns `id`: int or string, `features`: array<float>).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Model directory to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a model's factors in Spark MLlib's ALS layout (userFactors/, itemFactors/ as Parquet),
    /// e.g. to warm-start or compare with a cluster job.
    ExportFactors {
        /// Model directory written by `nook train` or `nook import-factors`.
        #[arg(long)]
        model: PathBuf,
        /// Which factors: als or bpr.
        #[arg(long, default_value = "als")]
        factors: String,
        /// Output directory (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a browser bundle from a trained model directory (atomically).
    Export {
        /// Model directory written by `nook train` (with the hybrid model).
        #[arg(long)]
        model: PathBuf,
        /// Bundle directory to write.
        #[arg(long)]
        out: PathBuf,
        /// Which model the bundle carries.
        #[arg(long, value_enum, default_value = "auto")]
        variant: export::Variant,
        /// Storage of the encoder matrices and item tables: int8 (per-row absmax), f16 or f32.
        #[arg(long, default_value = "int8")]
        quant: nook_core::quant::Quant,
    },
    /// Recommend from a bundle, with the same code the browser runs.
    Recommend {
        /// Bundle directory written by `nook export`.
        #[arg(long)]
        bundle: PathBuf,
        /// An item id the person likes (repeatable).
        #[arg(long = "like", value_name = "ID")]
        likes: Vec<String>,
        /// An item id the person dislikes (repeatable).
        #[arg(long = "dislike", value_name = "ID")]
        dislikes: Vec<String>,
        /// Free text: what the person is in the mood for.
        #[arg(long)]
        query: Option<String>,
        /// How many results.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// 0 ranks by relevance alone; up to 1 favours variety (MMR).
        #[arg(long, default_value_t = 0.0)]
        diversity: f32,
        /// Print JSON (`[{id, title, score, reason, ...}]`) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the page, the wasm client and a bundle on loopback.
    Serve {
        /// Bundle directory to serve under /bundle/.
        #[arg(long)]
        bundle: PathBuf,
        /// The page (with the wasm build in pkg/).
        #[arg(long, default_value = "www")]
        www: PathBuf,
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Allow any origin to fetch (for tests that load the bundle from another port).
        #[arg(long)]
        cors: bool,
    },
    /// Time the encoder on this machine (prints JSON lines; see bench/encoder_vs_torch.sh).
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// The whole path on MovieLens 100k: fetch assets, train, export, build the wasm client and serve
    /// the page. Re-runs skip finished steps.
    Demo {
        /// Working directory for the model and bundle.
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Prepare everything but do not serve.
        #[arg(long)]
        no_serve: bool,
    },
    /// Evaluate models on the warm test split and the cold-item split.
    Eval {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        split: SplitArgs,
        #[command(flatten)]
        models: ModelArgs,
        #[command(flatten)]
        encoder: EncoderArgs,
        /// Evaluate the models saved here by `nook train` instead of training afresh.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Also evaluate factors trained elsewhere: NAME=DIR with DIR/user_factors.csv and
        /// DIR/item_factors.csv (`id,f0,f1,...`, no header), or a saved Spark ALS model
        /// (DIR/userFactors/, DIR/itemFactors/ as Parquet). Repeatable.
        #[arg(long = "factors-from", value_name = "NAME=DIR")]
        external: Vec<String>,
        /// Cut-offs for the @K metrics.
        #[arg(long, value_delimiter = ',', default_value = "10,20")]
        k: Vec<usize>,
        /// Also evaluate an exported bundle (its catalog and weights, through the browser's code)
        /// as model `bundle`; it must come from the same data.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// Which held-out sets to evaluate on.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "warm,cold")]
        on: Vec<Target>,
        /// Write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write report.md and PNG plots (loss, Recall/NDCG by K, warm vs cold) into this directory.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// Sentences per second embedding texts (one per line) truncated to each token count.
    Encoder {
        #[arg(long)]
        texts: PathBuf,
        #[arg(long, default_value = DEFAULT_ENCODER)]
        encoder: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "32,128")]
        tokens: Vec<usize>,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// `cpu`, or `cuda` / `cuda:N` (a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Top-10 ranking latency over synthetic item tables (f32 vs int8, scalar vs SIMD), beside
    /// the memory-bandwidth limit measured on this machine. Prints a table.
    Rank {
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
        items: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "64,128")]
        dims: Vec<usize>,
        #[arg(long, default_value_t = 15)]
        queries: usize,
    },
    /// Write a synthetic bundle for scale tests: the items of a real bundle repeated up to
    /// `--items` (new ids `s0`, `s1`, ...), same encoder, weights and quantisation.
    ScaleBundle {
        /// The bundle whose items are repeated.
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value_t = 1_000_000)]
        items: usize,
        /// Bundle directory to write (atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Seconds per fine-tuning step (pairs x 2 texts, InfoNCE, backward, AdamW).
    Finetune {
        #[arg(long)]
        texts: PathBuf,
        #[arg(long, default_value = DEFAULT_ENCODER)]
        encoder: PathBuf,
        #[arg(long, default_value_t = 32)]
        tokens: usize,
        #[arg(long, default_value_t = 32)]
        pairs: usize,
        /// Top blocks trained, one run per value (7 = every layer and the embeddings).
        #[arg(long, value_delimiter = ',', default_value = "2,7")]
        layers: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// `cpu`, or `cuda` / `cuda:N` (a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
}

#[derive(Args, Clone)]
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
    /// Skip malformed rows (and report how many) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Args, Clone)]
pub struct SplitArgs {
    /// How each user's positives are split.
    #[arg(long, value_enum, default_value = "temporal")]
    pub protocol: Protocol,
    /// Train, valid and test fractions for the temporal protocol.
    #[arg(long, value_delimiter = ',', default_value = "0.8,0.1,0.1")]
    pub ratios: Vec<f64>,
    /// Fraction of items held out with all their interactions (the cold-item split).
    #[arg(long, default_value_t = 0.1)]
    pub cold_fraction: f64,
    /// Ratings at or above this are positives (data without ratings is all positive).
    #[arg(long, default_value_t = 3.5)]
    pub min_rating: f32,
    /// Seed for every random choice (split, initialisation, sampling).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fit the final models on the training part alone. By default, settings are chosen on the
    /// validation part and the final models are then refitted on train + validation, so the test
    /// measures models that know each person's history up to the test period.
    #[arg(long)]
    pub no_refit: bool,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Models to train/evaluate.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "pop,als,bpr,random,content,hybrid,content-ft,fused-ft"
    )]
    pub models: Vec<ModelKind>,
    /// Latent factors (ALS and BPR).
    #[arg(long, default_value_t = 64)]
    pub factors: usize,
    /// ALS iterations.
    #[arg(long, default_value_t = 15)]
    pub iterations: usize,
    /// ALS regularisation λ.
    #[arg(long, default_value_t = AlsConfig::default().regularization)]
    pub regularization: f32,
    /// ALS confidence weight: an interaction counts `1 + alpha * r`.
    #[arg(long, default_value_t = AlsConfig::default().alpha)]
    pub alpha: f32,
    /// ALS conjugate-gradient steps per row update.
    #[arg(long, default_value_t = 3)]
    pub cg_steps: usize,
    /// BPR epochs.
    #[arg(long, default_value_t = BprConfig::default().epochs)]
    pub bpr_epochs: usize,
    /// BPR learning rate.
    #[arg(long, default_value_t = BprConfig::default().learning_rate)]
    pub bpr_lr: f32,
    /// BPR regularisation.
    #[arg(long, default_value_t = BprConfig::default().regularization)]
    pub bpr_reg: f32,
    /// Fine-tuning steps (content-ft, fused-ft).
    #[arg(long, default_value_t = FinetuneConfig::default().steps)]
    pub ft_steps: usize,
    /// Fine-tuning pairs per step.
    #[arg(long, default_value_t = FinetuneConfig::default().batch)]
    pub ft_batch: usize,
    /// Fine-tuning peak learning rate (AdamW, linear warm-up and decay).
    #[arg(long, default_value_t = FinetuneConfig::default().learning_rate)]
    pub ft_lr: f64,
    /// How many top encoder layers fine-tune (the rest, and the embeddings, stay frozen).
    #[arg(long, default_value_t = FinetuneConfig::default().train_layers)]
    pub ft_layers: usize,
    /// Tokens per text while fine-tuning.
    #[arg(long, default_value_t = FinetuneConfig::default().max_tokens)]
    pub ft_max_tokens: usize,
    /// A training pair is an item and one of the next N items the same person consumed.
    #[arg(long, default_value_t = FinetuneConfig::default().window)]
    pub ft_window: usize,
    /// InfoNCE temperature.
    #[arg(long, default_value_t = FinetuneConfig::default().temperature)]
    pub ft_temperature: f64,
    /// Save a fine-tuning checkpoint every N steps (see --resume).
    #[arg(long, default_value_t = FinetuneConfig::default().checkpoint_every)]
    pub ft_checkpoint_every: usize,
}

#[derive(Args, Clone)]
pub struct EncoderArgs {
    /// Text encoder: a local Hugging Face BERT directory (config.json, tokenizer.json, model.safetensors).
    #[arg(long, default_value = DEFAULT_ENCODER)]
    pub encoder: PathBuf,
    /// Longest item text, in tokens.
    #[arg(long, default_value_t = nook_core::encoder::DEFAULT_MAX_TOKENS)]
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
}

impl EncoderArgs {
    fn source(&self) -> EncoderSource {
        EncoderSource { dir: self.encoder.clone(), max_tokens: self.max_tokens }
    }

    fn device(&self) -> Result<Device> {
        parse_device(&self.device)
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
    fn load(&self) -> Result<Dataset> {
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
        };
        Ok(data::load(&source)?)
    }
}

impl SplitArgs {
    fn config(&self) -> Result<SplitConfig> {
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
}

impl ModelArgs {
    fn config(&self, seed: u64) -> ModelConfig {
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
                checkpoint_every: self.ft_checkpoint_every,
                seed,
                ..FinetuneConfig::default()
            },
        }
    }

    fn kinds(&self) -> Vec<ModelKind> {
        let mut kinds = self.models.clone();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

fn split(data: &Dataset, args: &SplitArgs) -> Result<Split> {
    let split = Split::new(data, &args.config()?)?;
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

/// The asked-for cut-offs plus those the report's curves need.
fn with_curve_ks(k: &[usize]) -> Vec<usize> {
    let mut all: Vec<usize> = k.iter().copied().chain(report::CURVE_KS).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Fine-tuning losses saved in a model directory, if any.
fn read_losses(model_dir: &std::path::Path) -> Option<Vec<f32>> {
    let bytes = std::fs::read(model_dir.join("finetune.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["losses"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).map(|x| x as f32).collect())
}

fn train_inputs<'a>(
    data: &'a Dataset,
    split: &'a Split,
    kinds: &[ModelKind],
    enc: &EncoderArgs,
) -> Result<TrainInputs<'a>> {
    let encoder = if kinds.iter().any(|k| k.needs_text()) {
        let source = enc.source();
        source.check()?;
        Some(source)
    } else {
        None
    };
    Ok(TrainInputs {
        data,
        split,
        encoder,
        cache_dir: enc.cache_dir.clone(),
        device: enc.device()?,
        checkpoint_dir: enc.checkpoint_dir.clone(),
        resume: enc.resume,
        prefit_als: None,
    })
}

/// Reads Spark ALS factors (or `nook export-factors` output) for `data`, saying what matched.
fn import_als(dir: &std::path::Path, data: &Dataset) -> Result<nook_trainer::models::Factors> {
    let (factors, s) = spark::load_factors("als", dir, data)?;
    tracing::info!(
        "imported {} dims: {} users ({} not in the data, {} without a row), {} items ({} not in the data, {} without a row)",
        s.dim,
        s.users_matched,
        s.users_unknown,
        s.users_missing,
        s.items_matched,
        s.items_unknown,
        s.items_missing
    );
    if s.users_unknown + s.items_unknown > 0 {
        tracing::warn!(
            "skipped {} user and {} item rows whose ids the data set lacks",
            s.users_unknown,
            s.items_unknown
        );
    }
    Ok(factors)
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Split { data, split: split_args, out } => {
            let data = data.load()?;
            let split = split(&data, &split_args)?;
            splitio::write(&out, &data, &split)?;
            println!("wrote split to {}", out.display());
        }
        Command::Train { data, split: split_args, models, encoder, out, no_eval, als_from } => {
            let data = data.load()?;
            let split = split(&data, &split_args)?;
            let cfg = models.config(split_args.seed);
            let mut inputs = train_inputs(&data, &split, &models.kinds(), &encoder)?;
            if let Some(dir) = &als_from {
                inputs.prefit_als = Some(import_als(dir, &data)?);
            }
            let set = ModelSet::train(&inputs, &models.kinds(), &cfg)?;
            let targets = [Target::Warm, Target::Cold];
            let report = (!no_eval)
                .then(|| evaluate_all(&data.name, &split, &set, &[], &cfg, &with_curve_ks(&[10, 20]), &targets));
            if let Some(report) = &report {
                print!("{}", report.table_for(&[10, 20]));
            }
            store::save(&out, &data, &split.config, &cfg, &set, inputs.encoder.as_ref(), report.as_ref())?;
            if let Some(r) = &report {
                let losses = set.finetuned.as_ref().map(|f| f.losses.as_slice());
                report::write(&out.join("report"), r, losses, &set.validation_notes())?;
                println!("wrote {}", out.join("report/report.md").display());
            }
            println!("wrote {} model(s) to {}", set.kinds().len(), out.display());
            if let Some(bytes) = nook_trainer::memory::peak_rss_bytes() {
                println!("peak memory (resident): {:.0} MB", bytes as f64 / 1e6);
            }
        }
        Command::Eval {
            data,
            split: split_args,
            models,
            encoder,
            model,
            external,
            bundle,
            k,
            on,
            json,
            report: report_dir,
        } => {
            anyhow::ensure!(!k.is_empty() && k.iter().all(|&k| k > 0), "--k needs positive cut-offs");
            anyhow::ensure!(
                !on.contains(&Target::Valid) || split_args.no_refit,
                "--on valid needs --no-refit: refitted models have seen the validation part"
            );
            let data = data.load()?;
            let split = split(&data, &split_args)?;
            let cfg = models.config(split_args.seed);
            let set = match &model {
                Some(dir) => store::load(dir, &data, &split.config)?,
                None => {
                    ModelSet::train(&train_inputs(&data, &split, &models.kinds(), &encoder)?, &models.kinds(), &cfg)?
                }
            };
            let imported = external
                .iter()
                .map(|spec| {
                    let (name, dir) =
                        spec.split_once('=').with_context(|| format!("--factors-from wants NAME=DIR, got {spec:?}"))?;
                    external::load_factors(name, dir.as_ref(), &data)
                })
                .collect::<Result<Vec<_>>>()?;
            let loaded = bundle.as_deref().map(export::load_bundle).transpose()?;
            if let Some(b) = &loaded {
                let ids: Vec<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
                let bundle_ids: Vec<&str> = b.catalog.items.iter().map(|i| i.id.as_str()).collect();
                anyhow::ensure!(ids == bundle_ids, "the bundle's items are not this data set's items");
            }
            let sequences = split.final_fit().train_sequences();
            let bundle_users =
                loaded.as_ref().map(|b| user_vectors(&b.catalog, &b.manifest.scoring, &sequences)).unwrap_or_default();
            let bundle_scorer = loaded.as_ref().map(|b| HybridScorer {
                name: "bundle",
                catalog: &b.catalog,
                scoring: b.manifest.scoring,
                users: &bundle_users,
            });
            let mut extra: Vec<&dyn Scorer> = imported.iter().map(|f| f as &dyn Scorer).collect();
            if let Some(s) = &bundle_scorer {
                extra.push(s);
            }
            let all_k = if report_dir.is_some() { with_curve_ks(&k) } else { k.clone() };
            let report = evaluate_all(&data.name, &split, &set, &extra, &cfg, &all_k, &on);
            if let Some(dir) = &report_dir {
                let losses = match &model {
                    Some(m) => read_losses(m),
                    None => set.finetuned.as_ref().map(|f| f.losses.clone()),
                };
                report::write(dir, &report, losses.as_deref(), &set.validation_notes())?;
                println!("wrote {}", dir.join("report.md").display());
            }
            print!("{}", report.table_for(&k));
            for (model, secs) in &report.fit_seconds {
                println!("fit {model}: {secs:.3}s");
            }
            if let Some(path) = json {
                atomic::write_file(&path, &serde_json::to_vec_pretty(&report)?)?;
                println!("wrote {}", path.display());
            }
        }
        Command::ImportFactors { data, split: split_args, from, out } => {
            let data = data.load()?;
            let split = split(&data, &split_args)?;
            let als = import_als(&from, &data)?;
            let mut cfg = ModelConfig::default();
            cfg.als.factors = als.dim;
            let set = ModelSet { als: Some(als), ..ModelSet::default() };
            store::save(&out, &data, &split.config, &cfg, &set, None, None)?;
            println!("wrote {} (model als, imported from {})", out.display(), from.display());
        }
        Command::ExportFactors { model, factors, out } => {
            anyhow::ensure!(factors == "als" || factors == "bpr", "--factors is als or bpr, not {factors:?}");
            let (f, users, items) = store::load_factors_with_ids(&model, &factors)?;
            spark::save_factors(&out, &f, &users, &items)?;
            println!("wrote {} users and {} items ({} dims) to {}", users.len(), items.len(), f.dim, out.display());
        }
        Command::Export { model, out, variant, quant } => {
            let manifest = export::export(&model, &out, variant, quant)?;
            let bytes: u64 = manifest.files.values().map(|f| f.bytes).sum();
            println!("wrote bundle {} ({} items, {:.1} MB)", out.display(), manifest.n_items, bytes as f64 / 1e6);
        }
        Command::Recommend { bundle, likes, dislikes, query, k, diversity, json } => {
            let bundle = export::load_bundle(&bundle)?;
            let recs = bundle.recommend(&IdRequest { likes, dislikes, query, k, diversity })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&recs)?);
            } else {
                for (rank, r) in recs.iter().enumerate() {
                    let year = r.year.map(|y| format!(" ({y})")).unwrap_or_default();
                    println!("{:>3}. {:<8} {:>7.4}  {}{year} — {}", rank + 1, r.id, r.score, r.title, r.reason);
                }
            }
        }
        Command::Serve { bundle, www, port, cors } => {
            serve::serve(serve::ServeConfig { www, bundle, port, cors }, |url| println!("serving on {url}"))?;
        }
        Command::Demo { out, port, no_serve } => demo::run(&out, port, no_serve)?,
        Command::Bench { what } => match what {
            BenchWhat::Encoder { texts, encoder, tokens, batch, repeats, device } => {
                let texts = bench::read_texts(&texts)?;
                let dev = parse_device(&device)?;
                let source = EncoderSource { dir: encoder, max_tokens: 512 };
                for t in tokens {
                    let rate = bench::encoder_throughput(&source, &texts, t, batch, repeats, &dev)?;
                    println!(
                        "{}",
                        serde_json::json!({"bench": "encoder", "device": device, "tokens": t, "batch": batch, "texts": texts.len(), "sentences_per_s": rate})
                    );
                }
            }
            BenchWhat::ScaleBundle { from, items, out } => {
                let m = export::scale_bundle(&from, items, &out)?;
                let bytes: u64 = m.files.values().map(|f| f.bytes).sum();
                println!("wrote bundle {} ({} items, {:.1} MB)", out.display(), m.n_items, bytes as f64 / 1e6);
            }
            BenchWhat::Rank { items, dims, queries } => {
                let bandwidth = bench::copy_bandwidth();
                println!("memory copy speed: {:.2} GB/s (one 256 MiB copy_from_slice; the limit below is bytes touched / this)", bandwidth / 1e9);
                println!(
                    "{:>9} {:>4} {:>5} {:>7} {:>11} {:>11} {:>9}",
                    "items", "dim", "store", "kernel", "median ms", "limit ms", "of limit"
                );
                for &n in &items {
                    for &d in &dims {
                        for int8 in [false, true] {
                            for kernel in [bench::Kernel::Scalar, bench::Kernel::Simd] {
                                let t = bench::rank_latency(n, d, int8, kernel, queries);
                                let limit = t.bytes_touched as f64 / bandwidth * 1e3;
                                println!(
                                    "{n:>9} {d:>4} {:>5} {:>7} {:>11.3} {:>11.3} {:>8.0}%",
                                    if int8 { "int8" } else { "f32" },
                                    if kernel == bench::Kernel::Simd { "simd" } else { "scalar" },
                                    t.median_ms,
                                    limit,
                                    100.0 * limit / t.median_ms
                                );
                            }
                        }
                    }
                }
            }
            BenchWhat::Finetune { texts, encoder, tokens, pairs, layers, repeats, device } => {
                let texts = bench::read_texts(&texts)?;
                let dev = parse_device(&device)?;
                let source = EncoderSource { dir: encoder, max_tokens: 512 };
                for l in layers {
                    let secs = bench::finetune_step_seconds(&source, &texts, tokens, pairs, l, repeats, &dev)?;
                    println!(
                        "{}",
                        serde_json::json!({"bench": "finetune", "device": device, "tokens": tokens, "pairs": pairs, "trained_blocks": l, "seconds_per_step": secs})
                    );
                }
            }
        },
    }
    Ok(())
}
