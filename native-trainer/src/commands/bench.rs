//! `nook bench`: timings on this machine, printed for benchmark scripts to set beside other
//! tools' numbers measured in the same run.

use super::args::parse_device;
use crate::bench::{self, Kernel};
use crate::export;
use crate::textvec::{EncoderSource, DEFAULT_ENCODER};
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Time the encoder, fine-tuning and ranking on this machine (see bench/).
#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

/// Which encoder engine `nook bench encoder` times.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    F32,
    Int8,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::F32 => "f32",
            Engine::Int8 => "int8",
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// Sentences per second embedding texts (one per line) truncated to each token count.
    Encoder {
        #[arg(long)]
        texts: PathBuf,
        #[arg(long, default_value = DEFAULT_ENCODER)]
        encoder: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "32,128", value_parser = super::args::count(3, 512))]
        tokens: Vec<usize>,
        #[arg(long, default_value_t = 64, value_parser = super::args::count(1, 4096))]
        batch: usize,
        #[arg(long, default_value_t = 3, value_parser = super::args::count(1, 1000))]
        repeats: usize,
        /// `cpu`, or `cuda` / `cuda:N` (a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Engines to time: `f32` (candle; what the trainer uses) and `int8` (what an int8
        /// bundle embeds queries with, natively and in the browser).
        #[arg(long, value_delimiter = ',', default_value = "f32,int8")]
        engine: Vec<Engine>,
    },
    /// Top-10 ranking latency over synthetic item tables (f32 vs int8, scalar vs SIMD), beside
    /// the memory-bandwidth limit measured on this machine, then what a `fused-sr` bundle's
    /// sequential rules add per request. Prints tables.
    Rank {
        #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000", value_parser = super::args::count(1, 50_000_000))]
        items: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "64,128", value_parser = super::args::count(1, 4096))]
        dims: Vec<usize>,
        #[arg(long, default_value_t = 15, value_parser = super::args::count(1, 100_000))]
        queries: usize,
    },
    /// Write a synthetic bundle for scale tests: the items of a real bundle repeated up to
    /// `--items` (new ids `s0`, `s1`, ...), same encoder, weights and quantisation.
    ScaleBundle {
        /// The bundle whose items are repeated.
        #[arg(long)]
        from: PathBuf,
        #[arg(long, default_value_t = 1_000_000, value_parser = super::args::count(1, 50_000_000))]
        items: usize,
        /// Query columns wider than this are reduced by PCA (a catalogue this large cannot
        /// afford the full encoder width per item).
        #[arg(long, default_value_t = 64, value_parser = super::args::count(1, 4096))]
        query_dims: usize,
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
        #[arg(long, default_value_t = 32, value_parser = super::args::count(3, 512))]
        tokens: usize,
        #[arg(long, default_value_t = 32, value_parser = super::args::count(2, 4096))]
        pairs: usize,
        /// Top blocks trained, one run per value (7 = every layer and the embeddings).
        #[arg(long, value_delimiter = ',', default_value = "2,7", value_parser = super::args::count(1, 64))]
        layers: Vec<usize>,
        #[arg(long, default_value_t = 3, value_parser = super::args::count(1, 1000))]
        repeats: usize,
        /// `cpu`, or `cuda` / `cuda:N` (a build with `--features cuda`).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Then time a whole fine-tuning run with the default settings (150 steps of 32 pairs x
        /// 64 tokens, top 2 blocks) on this data set's training pairs: unlike the steps above,
        /// which repeat one batch, it draws texts as `nook train` does, so popular items recur
        /// and their frozen blocks' output is reused.
        #[arg(long, value_name = "DATA_DIR")]
        run: Option<PathBuf>,
    },
}

pub fn run(args: &BenchArgs) -> Result<()> {
    match &args.what {
        BenchWhat::Encoder { texts, encoder, tokens, batch, repeats, device, engine } => {
            let texts = bench::read_texts(texts)?;
            let dev = parse_device(device)?;
            let source = EncoderSource { dir: encoder.clone(), max_tokens: 512 };
            let cpu = bench::cpu_model();
            for &e in engine {
                for &t in tokens {
                    let int8 = e == Engine::Int8;
                    let rate = bench::encoder_throughput(&source, &texts, t, *batch, *repeats, &dev, int8)?;
                    let line = serde_json::json!({"bench": "encoder", "engine": e.name(), "device": device,
                        "cpu": cpu, "tokens": t, "batch": batch, "texts": texts.len(), "sentences_per_s": rate});
                    println!("{line}");
                }
            }
        }
        BenchWhat::ScaleBundle { from, items, query_dims, out } => {
            let m = export::scale_bundle(from, *items, *query_dims, out)?;
            let bytes: u64 = m.files.values().map(|f| f.bytes).sum();
            println!("wrote bundle {} ({} items, {:.1} MB)", out.display(), m.n_items, bytes as f64 / 1e6);
        }
        BenchWhat::Rank { items, dims, queries } => rank_table(items, dims, *queries),
        BenchWhat::Finetune { texts, encoder, tokens, pairs, layers, repeats, device, run } => {
            let texts = bench::read_texts(texts)?;
            let dev = parse_device(device)?;
            let source = EncoderSource { dir: encoder.clone(), max_tokens: 512 };
            for &l in layers {
                let t = bench::finetune_step_seconds(&source, &texts, *tokens, *pairs, l, *repeats, &dev)?;
                let line = serde_json::json!({"bench": "finetune", "device": device, "tokens": tokens, "pairs": pairs,
                    "trained_blocks": l, "seconds_per_step": t.step, "forward_s": t.forward, "backward_s": t.backward,
                    "optimizer_s": t.optimizer});
                println!("{line}");
            }
            if let Some(data) = run {
                let r = bench::finetune_run(&source, data, &dev)?;
                let line = serde_json::json!({"bench": "finetune-run", "device": device, "data": data,
                    "steps": r.config.steps, "tokens": r.config.max_tokens, "pairs": r.config.batch,
                    "trained_blocks": r.config.train_layers, "seconds_per_step": r.seconds_per_step,
                    "texts": r.texts, "reused": r.reused});
                println!("{line}");
            }
        }
    }
    Ok(())
}

fn rank_table(items: &[usize], dims: &[usize], queries: usize) {
    let bandwidth = bench::copy_bandwidth();
    println!(
        "memory copy speed: {:.2} GB/s (one 256 MiB copy_from_slice; the limit below is bytes touched / this)",
        bandwidth / 1e9
    );
    println!(
        "{:>9} {:>4} {:>5} {:>7} {:>11} {:>11} {:>9}",
        "items", "dim", "store", "kernel", "median ms", "limit ms", "of limit"
    );
    for &n in items {
        for &d in dims {
            for int8 in [false, true] {
                for kernel in [Kernel::Scalar, Kernel::Simd] {
                    let t = bench::rank_latency(n, d, int8, kernel, queries);
                    let limit = t.bytes_touched as f64 / bandwidth * 1e3;
                    println!(
                        "{n:>9} {d:>4} {:>5} {:>7} {:>11.3} {:>11.3} {:>8.0}%",
                        if int8 { "int8" } else { "f32" },
                        if kernel == Kernel::Simd { "simd" } else { "scalar" },
                        t.median_ms,
                        limit,
                        100.0 * limit / t.median_ms
                    );
                }
            }
        }
    }
    println!("sequential rules' part per request (fused-sr bundles: 100 rules per item, 100 newest likes), one thread");
    println!("{:>9} {:>6} {:>11}", "items", "likes", "median ms");
    for &n in items {
        for likes in [10, 100] {
            println!("{n:>9} {likes:>6} {:>11.3}", bench::rules_latency(n, 100, likes, queries));
        }
    }
}
