//! `nook`: train and evaluate recommenders whose ranking runs privately in the browser.

use nook_trainer::commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_large_buffers();
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
