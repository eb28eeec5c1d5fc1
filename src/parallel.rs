//! Splitting a matmul's rows over threads.
//!
//! Why: decoding streams every weight once per token, and on the machines we
//! measured one core cannot pull memory as fast as two (this VM: 11 GB/s with
//! one core, 21 GB/s with two). Each output row of a matmul is computed by the
//! same kernel whichever thread runs it, so the numbers are bit-identical to
//! the single-threaded engine; only the wall time changes.
//!
//! Shape: one global pool. The calling thread (the page's main thread) is
//! part 0; `helpers` more threads (Web Workers in the threaded wasm build,
//! `std::thread`s natively) wait in [`helper_loop`] and each take one part of
//! every job. A job is published by bumping `epoch`; the caller runs its own
//! part, then spins until every helper has finished (the browser's main
//! thread may not block, and a matmul takes microseconds). Helpers spin for
//! a while between jobs so the next matmul finds them awake, then sleep.
//!
//! Small matrices run inline: below [`MIN_PARALLEL`] weights a matmul costs
//! less than handing it over.

use std::cell::UnsafeCell;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering::*};

/// Matmuls with fewer weights than this run on the calling thread alone, by
/// default. (A hand-over costs a few hundred ns; 64K fp32 weights stream in
/// ~6 us.) [`set_min_parallel`] changes it: tests use 0 to split even
/// stories260K's small matrices.
pub const MIN_PARALLEL: usize = 1 << 16;
static MIN_WEIGHTS: AtomicUsize = AtomicUsize::new(MIN_PARALLEL);

/// Split matmuls with at least `weights` weights (and run smaller ones inline).
pub fn set_min_parallel(weights: usize) {
    MIN_WEIGHTS.store(weights, Relaxed);
}

/// The most helpers the pool takes (the page asks for fewer; more than a few
/// cannot help a memory-bound loop).
pub const MAX_HELPERS: usize = 15;

/// How many times a helper polls for the next job before it sleeps (~1 ms).
const SPINS_BEFORE_SLEEP: u32 = 1 << 18;

/// One part of a job: `f(part, parts)`. The reference is only valid while
/// the caller of [`run`] waits, which it does until every part is done.
type Job = &'static (dyn Fn(usize, usize) + Sync);

struct Pool {
    joined: AtomicUsize,  // helpers inside helper_loop
    helpers: AtomicUsize, // helpers that take parts (0 = run everything inline)
    // (jobs published << 8) | parts of the current job: one word, so a helper
    // learns from one load whether the new job has a part for it
    epoch: AtomicU32,
    pending: AtomicUsize, // helpers still working on the current job
    sleepers: AtomicU32,  // helpers waiting for `epoch` to move
    busy: AtomicBool,     // a job is in flight (jobs do not nest)
    job: UnsafeCell<Option<Job>>,
}

// Safety: `job` is written only by the thread that owns `busy`, before the
// Release bump of `epoch`, and read only by helpers that have a part in that
// job, after their Acquire load of the new epoch and before they decrement
// `pending`; the writer waits for `pending == 0` before it writes again.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool {
    joined: AtomicUsize::new(0),
    helpers: AtomicUsize::new(0),
    epoch: AtomicU32::new(0),
    pending: AtomicUsize::new(0),
    sleepers: AtomicU32::new(0),
    busy: AtomicBool::new(false),
    job: UnsafeCell::new(None),
};

/// Threads that work on each large matmul, the caller included.
pub fn threads() -> usize {
    POOL.helpers.load(Acquire) + 1
}

/// Helpers that have entered [`helper_loop`] so far.
pub fn joined() -> usize {
    POOL.joined.load(Acquire)
}

/// Start handing parts to the first `helpers` joined helpers (0 turns
/// threading off). Call it from the thread that runs the model, once the
/// helpers have joined; it is refused while fewer have.
pub fn enable(helpers: usize) -> Result<usize, String> {
    let joined = joined();
    if helpers > joined {
        return Err(format!("{helpers} helper threads asked for, but only {joined} have started"));
    }
    POOL.helpers.store(helpers.min(MAX_HELPERS), Release);
    Ok(threads())
}

/// A helper thread's life: take part `index` (1-based) of every job, forever.
/// Helpers must be started with distinct indices 1, 2, ...
pub fn helper_loop(index: usize) -> ! {
    let mut seen = POOL.epoch.load(Acquire);
    POOL.joined.fetch_add(1, AcqRel);
    loop {
        let mut spins = 0u32;
        loop {
            let now = POOL.epoch.load(Acquire);
            if now != seen {
                seen = now;
                break;
            }
            if spins < SPINS_BEFORE_SLEEP {
                spins += 1;
                if spins % 1024 == 0 {
                    give_way();
                }
                std::hint::spin_loop();
            } else {
                POOL.sleepers.fetch_add(1, SeqCst);
                sleep_while(&POOL.epoch, seen);
                POOL.sleepers.fetch_sub(1, SeqCst);
            }
        }
        let parts = (seen & 0xff) as usize;
        if index < parts {
            // Safety: see `impl Sync for Pool`: this helper has a part, so
            // the job stays set until it decrements `pending`.
            if let Some(f) = unsafe { *POOL.job.get() } {
                f(index, parts);
            }
            POOL.pending.fetch_sub(1, AcqRel);
        }
    }
}

/// Run `f(part, parts)` for every part, `parts` = [`threads`]; part 0 on this
/// thread. Falls back to `f(0, 1)` when threading is off or a job is already
/// in flight (a nested call).
pub fn run(f: &(dyn Fn(usize, usize) + Sync)) {
    let helpers = POOL.helpers.load(Acquire);
    if helpers == 0 || POOL.busy.swap(true, Acquire) {
        return f(0, 1);
    }
    // Safety: the 'static is a lie told only for the time this function
    // waits: no helper touches the job after `pending` reaches zero.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), Job>(f) };
    unsafe { *POOL.job.get() = Some(job) };
    POOL.pending.store(helpers, Release);
    let next = (POOL.epoch.load(Relaxed) & !0xff).wrapping_add(0x100) | (helpers as u32 + 1);
    POOL.epoch.store(next, SeqCst);
    if POOL.sleepers.load(SeqCst) > 0 {
        wake_all(&POOL.epoch);
    }
    f(0, helpers + 1);
    let mut spins = 0u32;
    while POOL.pending.load(Acquire) != 0 {
        spins = spins.wrapping_add(1);
        if spins % 1024 == 0 {
            give_way(); // natively, more threads than cores: let a helper run
        }
        std::hint::spin_loop();
    }
    unsafe { *POOL.job.get() = None };
    POOL.busy.store(false, Release);
}

/// The rows of part `part` when `rows` rows are split into `parts` parts:
/// contiguous, sizes differing by at most one, multiples of `align` except
/// the last (kernels work on rows in pairs/fours).
pub fn part_rows(rows: usize, part: usize, parts: usize, align: usize) -> Range<usize> {
    let blocks = rows.div_ceil(align);
    let (each, extra) = (blocks / parts, blocks % parts);
    let start = part * each + part.min(extra);
    let end = start + each + usize::from(part < extra);
    (start * align).min(rows)..(end * align).min(rows)
}

/// `out (d,) = kernel over rows`: split `out` into one contiguous block of
/// rows per thread and call `kernel(rows, out[rows])` on each, in parallel
/// when the matrix has at least [`set_min_parallel`]'s number of weights.
pub fn for_rows(out: &mut [f32], weights: usize, kernel: &(dyn Fn(Range<usize>, &mut [f32]) + Sync)) {
    let d = out.len();
    if weights < MIN_WEIGHTS.load(Relaxed) || threads() == 1 {
        return kernel(0..d, out);
    }
    let base = SendPtr(out.as_mut_ptr());
    run(&|part, parts| {
        let rows = part_rows(d, part, parts, 4);
        // Safety: `part_rows` gives disjoint ranges inside 0..d for distinct
        // parts, so each thread gets its own piece of `out`, which outlives
        // `run` (it waits for every part).
        let mine = unsafe { std::slice::from_raw_parts_mut(base.at(rows.start), rows.len()) };
        kernel(rows, mine)
    });
}

/// A raw pointer that may cross threads (the disjointness argument is made
/// where it is dereferenced).
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn at(self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }
}

// ---------------------------------------------------------------- waiting
// wasm with shared memory: the futex instructions (a worker may block; the
// page's main thread never waits here, it only spins in `run`).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn sleep_while(word: &AtomicU32, value: u32) {
    // Safety: `word` is a valid, aligned i32 in shared linear memory.
    unsafe { core::arch::wasm32::memory_atomic_wait32(word.as_ptr() as *mut i32, value as i32, -1) };
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn wake_all(word: &AtomicU32) {
    // Safety: as above.
    unsafe { core::arch::wasm32::memory_atomic_notify(word.as_ptr() as *mut i32, u32::MAX) };
}

// Native (tests, CLI): no futex in std, so a short nap and a re-check.
#[cfg(not(target_arch = "wasm32"))]
fn sleep_while(word: &AtomicU32, value: u32) {
    if word.load(Acquire) == value {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn wake_all(_: &AtomicU32) {}

#[cfg(not(target_arch = "wasm32"))]
fn give_way() {
    std::thread::yield_now();
}

// wasm: a worker has no yield, and the page's thread must not block.
#[cfg(target_arch = "wasm32")]
fn give_way() {}

// wasm without threads: helper_loop is never started.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
fn sleep_while(_: &AtomicU32, _: u32) {}

#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
fn wake_all(_: &AtomicU32) {}

/// Native: start `helpers` std threads running [`helper_loop`] and enable
/// them (for tests and the CLI's `-t`). Threads already started are kept.
#[cfg(not(target_arch = "wasm32"))]
pub fn start_native(helpers: usize) -> usize {
    static STARTED: std::sync::Mutex<usize> = std::sync::Mutex::new(0);
    let helpers = helpers.min(MAX_HELPERS);
    let mut started = STARTED.lock().unwrap_or_else(|e| e.into_inner());
    while *started < helpers {
        *started += 1;
        let index = *started;
        std::thread::spawn(move || helper_loop(index));
    }
    while joined() < *started {
        std::thread::yield_now();
    }
    POOL.helpers.store(helpers, Release);
    threads()
}
