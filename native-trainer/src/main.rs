//! `nook`: train and evaluate recommenders whose ranking runs privately in the browser.

use nook_trainer::commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_large_buffers();
    elementwise_on_the_calling_thread();
    let args = commands::Cli::parse();
    commands::init_logging(&args.log);
    nook_trainer::atomic::set_force(args.force);
    if let Some(threads) = args.threads {
        if let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(threads.into()).build_global() {
            tracing::warn!("could not set {threads} threads: {e}");
        }
    }
    match commands::run(args.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The encoder allocates and frees tens of megabytes per layer (activations of a batch). By
/// default glibc serves blocks above its mmap threshold (32 MiB at most) with fresh mappings and
/// returns freed memory at the top of the heap to the kernel (trim threshold 128 kB), so the next
/// batch faults the same pages in again one by one: at 128 tokens that halved embedding
/// throughput. Serving every block from the heap and trimming only past 1 GiB keeps those pages
/// for reuse; the peak is unchanged, memory is just handed back later.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_large_buffers() {
    // SAFETY: mallopt only changes allocator tuning; it runs before any other thread exists.
    let applied =
        unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1 };
    // Logging is not set up yet; a refusal only costs speed, so it is not worth stopping for.
    debug_assert!(applied, "glibc refused the malloc settings");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_large_buffers() {}

/// candle runs element-wise ops on a pool of its own (`CANDLE_NUM_THREADS`, default one per core)
/// whose workers spin for a while after each op, beside the rayon threads its matrix products
/// use: on two cores the spinning takes the cores the products need. With the pool at one
/// thread (no workers; the calling thread does the element-wise work) a fine-tuning step took
/// 0.76 s instead of 0.79-0.89 s (7 blocks) and 0.36 s instead of 0.37-0.41 s (2 blocks); the
/// results are the same bits, as element-wise ops do not depend on how they are split. A value
/// the user set is kept.
fn elementwise_on_the_calling_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Runs before any thread exists (candle reads it when its pool first starts).
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}
