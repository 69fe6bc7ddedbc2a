//! Where the int8 encoder's independent pieces of work run: natively on rayon's pool; in the
//! browser's threaded build on a *team* that lives for one query; in the single-thread browser
//! builds in order on the calling thread. Every piece computes the same sums in the same order
//! wherever it runs, so all builds give the same bits.
//!
//! Why a team in the browser: a query is ~30 products one after another (five per layer), each
//! split over the threads. rayon's idle workers go to sleep within microseconds, and waking a
//! browser worker (`Atomics.notify`) costs ~100 µs, so with rayon every product paid a wake: at
//! 128 tokens on two cores, a fifth of the query. A team's helpers are started once per query
//! (as rayon tasks) and spin between its products until the query ends.

/// The smallest piece of work (multiply-adds) worth splitting over threads: a native thread
/// hand-off costs a few microseconds; in the browser a team's helper is already spinning, but the
/// query's start wakes a worker (~100 µs).
pub(crate) const PARALLEL_MIN: usize = if cfg!(target_arch = "wasm32") { 1 << 22 } else { 1 << 20 };

/// Runs `f(i)` for every `i < tasks`, results in order of `i`. `parallel`: whether the work is
/// big enough to be worth other threads (the caller's call).
pub(crate) fn map<R: Send + Sync>(tasks: usize, parallel: bool, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    if parallel {
        use rayon::prelude::*;
        return (0..tasks).into_par_iter().map(f).collect();
    }
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    if parallel {
        if let Some(results) = team::map(tasks, &f) {
            return results;
        }
        use rayon::prelude::*;
        return (0..tasks).into_par_iter().map(f).collect();
    }
    let _ = parallel;
    (0..tasks).map(f).collect()
}

/// Runs `f(first_row, rows)` over `x` in runs of whole rows (`row` values each): in the browser's
/// threaded build over the query's team when `parallel` (a row's result never depends on another
/// row, so the split changes no bit); elsewhere once, on all of `x`.
pub(crate) fn rows_mut(x: &mut [f32], row: usize, parallel: bool, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    if parallel && row > 0 {
        // About 16 runs: enough for a team of 4 to share evenly, few enough to stay cheap.
        let per = (x.len() / row).div_ceil(16).max(1);
        let runs: Vec<std::sync::Mutex<&mut [f32]>> = x.chunks_mut(per * row).map(std::sync::Mutex::new).collect();
        map(runs.len(), true, |i| {
            let mut run = runs[i].lock().unwrap_or_else(|e| e.into_inner());
            f(i * per, &mut run)
        });
        return;
    }
    let _ = (row, parallel);
    f(0, x)
}

/// Runs one query: in the threaded build, on rayon's pool with a team of every pool thread (the
/// caller, the package's worker, sleeps meanwhile instead of competing for a core); elsewhere
/// simply `body()`. `parallel`: whether any of the query's work will be split.
pub(crate) fn query<R: Send>(parallel: bool, body: impl FnOnce() -> R + Send) -> R {
    #[cfg(all(target_arch = "wasm32", feature = "threads"))]
    if parallel {
        return team::run(body);
    }
    let _ = parallel;
    body()
}

#[cfg(all(target_arch = "wasm32", feature = "threads"))]
mod team {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    /// The work a team is on: `tasks` calls of `f`. The lifetime is erased; [`Team::map`] does not
    /// return before every call that could see it has ended.
    #[derive(Clone, Copy)]
    struct Job {
        f: *const (dyn Fn(usize) + Sync + 'static),
        tasks: u32,
        epoch: u32,
    }

    // SAFETY: `f` points to a `Sync` closure, used only while `Team::map` keeps it alive.
    unsafe impl Send for Job {}

    struct Team {
        /// The latest job's epoch, which helpers watch.
        epoch: AtomicU64,
        job: Mutex<Option<Job>>,
        /// `epoch << 32 | next task`: a task is claimed only for the epoch it belongs to, so a
        /// helper late from one job can never run a task of the next with the old closure.
        next: AtomicU64,
        done: AtomicUsize,
        stop: AtomicBool,
    }

    thread_local! {
        /// The team of the query running on this thread, if any.
        static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
    }

    pub(super) fn run<R: Send>(body: impl FnOnce() -> R + Send) -> R {
        let team = Team {
            epoch: AtomicU64::new(0),
            job: Mutex::new(None),
            next: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        };
        rayon::scope(|s| {
            for _ in 1..rayon::current_num_threads() {
                s.spawn(|_| team.help());
            }
            CURRENT.with(|c| c.set(&team));
            let out = body();
            CURRENT.with(|c| c.set(std::ptr::null()));
            team.stop.store(true, Ordering::Release);
            out
        })
    }

    pub(super) fn map<R: Send + Sync>(tasks: usize, f: &(dyn Fn(usize) -> R + Sync)) -> Option<Vec<R>> {
        // Taken for the job's length: a `map` nested in one of its tasks falls back to rayon
        // instead of publishing a second job over the first.
        let team = CURRENT.with(|c| c.replace(std::ptr::null()));
        if team.is_null() {
            return None;
        }
        // SAFETY: CURRENT is set only while `run`'s team is alive on this thread's stack.
        let team_ref = unsafe { &*team };
        let slots: Vec<OnceLock<R>> = (0..tasks).map(|_| OnceLock::new()).collect();
        let fill = |i: usize| {
            let _ = slots[i].set(f(i));
        };
        team_ref.map(tasks, &fill);
        CURRENT.with(|c| c.set(team));
        Some(slots.into_iter().map(|s| s.into_inner().expect("every task ran")).collect())
    }

    impl Team {
        fn map(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
            let tasks = u32::try_from(tasks).expect("fewer than 2^32 tasks");
            let epoch = (self.epoch.load(Ordering::Relaxed) + 1) as u32;
            // SAFETY: only the lifetime is erased; this function returns only once `done` says
            // every claimed task has ended, and no task of this epoch can be claimed after that.
            let f: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(f) };
            self.done.store(0, Ordering::Relaxed);
            *self.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(Job { f, tasks, epoch });
            self.next.store((epoch as u64) << 32, Ordering::Release);
            self.epoch.store(epoch as u64, Ordering::Release);
            self.work(Job { f, tasks, epoch });
            while self.done.load(Ordering::Acquire) < tasks as usize {
                std::hint::spin_loop();
            }
        }

        /// Claims and runs tasks of `job` until none is left.
        fn work(&self, job: Job) {
            loop {
                let v = self.next.load(Ordering::Acquire);
                if (v >> 32) as u32 != job.epoch || (v as u32) >= job.tasks {
                    return;
                }
                if self.next.compare_exchange_weak(v, v + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                    // SAFETY: the claim succeeded for this job's epoch, so `map` is still waiting
                    // for this task and its closure is alive.
                    unsafe { (*job.f)(v as u32 as usize) };
                    self.done.fetch_add(1, Ordering::Release);
                }
            }
        }

        /// A helper: spins until a job appears, helps with it, until the query ends.
        fn help(&self) {
            let mut seen = 0u64;
            while !self.stop.load(Ordering::Acquire) {
                let epoch = self.epoch.load(Ordering::Acquire);
                if epoch == seen {
                    std::hint::spin_loop();
                    continue;
                }
                seen = epoch;
                let job = *self.job.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(job) = job {
                    self.work(job);
                }
            }
        }
    }
}
