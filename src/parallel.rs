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
    joined: AtomicU32,    // bit i: helper i is inside helper_loop (each index once)
    helpers: AtomicUsize, // helpers that take parts (0 = run everything inline)
    // (jobs published << 8) | parts of the current job: one word, so a helper
    // learns from one load whether the new job has a part for it
    epoch: AtomicU32,
    done: AtomicU32,      // bit i: helper i has finished its part of the current job
    failed: AtomicU32,    // bit i: helper i died (a trap in its Worker, a panic natively)
    sleepers: AtomicU32,  // helpers waiting for `epoch` to move
    busy: AtomicBool,     // a job is in flight (jobs do not nest)
    job: UnsafeCell<Option<Job>>,
}

// Safety: `job` is written only by the thread that owns `busy`, before the
// Release store of a new `epoch`, and read only by helpers that have a part
// in that job (distinct indices: `joined` refuses a second claim), after
// their Acquire load of the new epoch and before they set their `done` bit;
// the writer waits for every part (done, or redone for a dead helper) before
// it clears or replaces the job.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool {
    joined: AtomicU32::new(0),
    helpers: AtomicUsize::new(0),
    epoch: AtomicU32::new(0),
    done: AtomicU32::new(0),
    failed: AtomicU32::new(0),
    sleepers: AtomicU32::new(0),
    busy: AtomicBool::new(false),
    job: UnsafeCell::new(None),
};

/// Parts computed by helpers so far (tests check that threads did the work).
static HELPER_PARTS: AtomicUsize = AtomicUsize::new(0);

/// Bits 1..=helpers.
fn helper_bits(helpers: usize) -> u32 {
    ((1u32 << (helpers + 1)) - 1) & !1
}

/// Threads that work on each large matmul, the caller included.
pub fn threads() -> usize {
    POOL.helpers.load(Acquire) + 1
}

/// Helpers that have entered [`helper_loop`] so far.
pub fn joined() -> usize {
    POOL.joined.load(Acquire).count_ones() as usize
}

/// Parts of jobs that helpers have computed since the start.
pub fn helper_parts() -> usize {
    HELPER_PARTS.load(Relaxed)
}

/// Start handing parts to helpers 1..=`helpers` (0 turns threading off).
/// Call it from the thread that runs the model, once those helpers have
/// joined; it is refused while any of them has not, or after one died.
pub fn enable(helpers: usize) -> Result<usize, String> {
    if helpers > MAX_HELPERS {
        return Err(format!("{helpers} helper threads asked for; at most {MAX_HELPERS}"));
    }
    let want = helper_bits(helpers);
    if POOL.failed.load(Acquire) & want != 0 {
        return Err("a helper thread has died; threads stay off".into());
    }
    if POOL.joined.load(Acquire) & want != want {
        return Err(format!("{helpers} helper threads asked for, but only {} have started", joined()));
    }
    POOL.helpers.store(helpers, Release);
    Ok(threads())
}

/// Helper `index` died outside the pool's view (its Worker caught a trap):
/// the caller of [`run`] computes its part instead, and threading stops.
pub fn helper_failed(index: usize) {
    if (1..=MAX_HELPERS).contains(&index) {
        POOL.failed.fetch_or(1 << index, AcqRel);
    }
}

/// A helper thread's life: take part `index` (1..=MAX_HELPERS) of every job.
/// Returns only to refuse an index that is out of range or already taken,
/// or after its part panicked (natively; the caller then redoes it).
pub fn helper_loop(index: usize) -> String {
    if !(1..=MAX_HELPERS).contains(&index) {
        return format!("helper index {index} must be 1 to {MAX_HELPERS}");
    }
    let bit = 1u32 << index;
    let mut seen = POOL.epoch.load(Acquire);
    if POOL.joined.fetch_or(bit, AcqRel) & bit != 0 {
        return format!("helper index {index} is already taken");
    }
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
            // the job stays set until its `done` bit is set.
            if let Some(f) = unsafe { *POOL.job.get() } {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index, parts)));
                if ran.is_err() {
                    POOL.failed.fetch_or(bit, AcqRel);
                    return format!("helper {index} panicked");
                }
            }
            HELPER_PARTS.fetch_add(1, Relaxed);
            POOL.done.fetch_or(bit, Release);
        }
    }
}

/// Run `f(part, parts)` for every part, `parts` = [`threads`]; part 0 on this
/// thread. Falls back to `f(0, 1)` when threading is off or a job is already
/// in flight (a nested call, or another thread natively).
pub fn run(f: &(dyn Fn(usize, usize) + Sync)) {
    let helpers = POOL.helpers.load(Acquire);
    if helpers == 0 || POOL.busy.swap(true, Acquire) {
        return f(0, 1);
    }
    let parts = helpers + 1;
    // Safety: the 'static is a lie told only for the time this function
    // waits: `Finish` (also when f panics natively) waits for every part
    // before it clears the job.
    let job: Job = unsafe { std::mem::transmute::<&(dyn Fn(usize, usize) + Sync), Job>(f) };
    unsafe { *POOL.job.get() = Some(job) };
    POOL.done.store(0, Relaxed);
    let next = (POOL.epoch.load(Relaxed) & !0xff).wrapping_add(0x100) | parts as u32;
    POOL.epoch.store(next, SeqCst);
    if POOL.sleepers.load(SeqCst) > 0 {
        wake_all(&POOL.epoch);
    }
    let finish = Finish { f, parts };
    f(0, parts);
    drop(finish);
}

/// The end of a job: wait until every helper's part is done, computing the
/// part of any helper that died here instead (then threading stops), and
/// release the job.
struct Finish<'a> {
    f: &'a (dyn Fn(usize, usize) + Sync),
    parts: usize,
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let all = helper_bits(self.parts - 1);
        let mut redone = 0u32;
        let mut spins = 0u32;
        loop {
            let finished = POOL.done.load(Acquire) | redone;
            if finished & all == all {
                break;
            }
            let dead = POOL.failed.load(Acquire) & all & !finished;
            if dead != 0 {
                POOL.helpers.store(0, Release); // no more jobs for a pool with a dead helper
                for i in (1..self.parts).filter(|i| dead & (1 << i) != 0) {
                    (self.f)(i, self.parts);
                    redone |= 1 << i;
                }
                continue;
            }
            spins = spins.wrapping_add(1);
            if spins % 1024 == 0 {
                give_way(); // natively, more threads than cores: let a helper run
            }
            std::hint::spin_loop();
        }
        // Safety: every part is finished; no helper reads the job any more.
        unsafe { *POOL.job.get() = None };
        POOL.busy.store(false, Release);
    }
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
