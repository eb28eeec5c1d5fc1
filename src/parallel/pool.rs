//! The thread pool: the only `unsafe` outside the kernels, three blocks.
//!
//! One global pool. The calling thread (the page's main thread) is part 0;
//! `helpers` more threads (Web Workers in the threaded wasm build,
//! `std::thread`s natively) wait in [`helper_loop`] and each take one part of
//! every job. A job is published by bumping `epoch`; the caller runs its own
//! part, then spins until every helper has finished (the browser's main
//! thread may not block, and a matmul takes microseconds). Helpers spin for
//! a while between jobs so the next matmul finds them awake, then sleep.
//!
//! How a job borrowed from the caller's stack reaches threads that outlive
//! it: [`run`] publishes a pointer to its `&dyn Fn` (type-erased to `*mut ()`
//! so that it fits one atomic word) and neither returns nor unwinds before
//! every helper's part is done ([`Finish`]); a helper turns the pointer back
//! into a reference only for the part it was given. That is the guarantee
//! `std::thread::scope` gives, kept by `run` instead of by joining threads:
//! Web Workers are long-lived, they cannot be started per matmul.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};

use crate::error::{Error, Result};

/// The most helpers the pool takes (the page asks for fewer; more than a few
/// cannot help a memory-bound loop).
pub const MAX_HELPERS: usize = 15;

/// How many times a helper polls for the next job before it sleeps (~1 ms).
const SPINS_BEFORE_SLEEP: u32 = 1 << 18;

/// A job: part `part` of `parts` is `job(part, parts)`.
type Job<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// All atomics, so the global needs no `unsafe impl Sync`.
struct Pool {
    joined: AtomicU32,    // bit i: helper i is inside helper_loop (each index once)
    helpers: AtomicUsize, // helpers that take parts (0 = run everything inline)
    // (jobs published << 8) | parts of the current job: one word, so a helper
    // learns from one load whether the new job has a part for it
    epoch: AtomicU32,
    done: AtomicU32,     // bit i: helper i has finished its part of the current job
    failed: AtomicU32,   // bit i: helper i died (a trap in its Worker, a panic natively)
    sleepers: AtomicU32, // helpers waiting for `epoch` to move
    busy: AtomicBool,    // a job is in flight (jobs do not nest)
    job: AtomicPtr<()>,  // the current job: a `*const Job` into `run`'s frame; null between jobs
}

static POOL: Pool = Pool {
    joined: AtomicU32::new(0),
    helpers: AtomicUsize::new(0),
    epoch: AtomicU32::new(0),
    done: AtomicU32::new(0),
    failed: AtomicU32::new(0),
    sleepers: AtomicU32::new(0),
    busy: AtomicBool::new(false),
    job: AtomicPtr::new(ptr::null_mut()),
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
pub fn enable(helpers: usize) -> Result<usize> {
    if helpers > MAX_HELPERS {
        return Err(Error::TooManyHelpers { asked: helpers, max: MAX_HELPERS });
    }
    let want = helper_bits(helpers);
    if POOL.failed.load(Acquire) & want != 0 {
        return Err(Error::HelperDied);
    }
    if POOL.joined.load(Acquire) & want != want {
        return Err(Error::HelpersNotStarted { asked: helpers, started: joined() });
    }
    POOL.helpers.store(helpers, Release);
    Ok(threads())
}

/// Helper `index` died outside the pool's view (its Worker caught a trap):
/// the caller of [`run`] computes its part instead, and threading stops.
/// Only for a helper that has stopped: www/thread-helper.js calls it on the
/// helper's own Worker after `threadHelper` threw.
pub fn helper_failed(index: usize) {
    if (1..=MAX_HELPERS).contains(&index) {
        POOL.failed.fetch_or(1 << index, AcqRel);
    }
}

/// A helper thread's life: take part `index` (1..=MAX_HELPERS) of every job.
/// Returns only to refuse an index that is out of range or already taken,
/// or after its part panicked (natively; the caller then redoes it).
pub fn helper_loop(index: usize) -> Error {
    if !(1..=MAX_HELPERS).contains(&index) {
        return Error::HelperIndex { index, max: MAX_HELPERS };
    }
    let bit = 1u32 << index;
    let mut seen = POOL.epoch.load(Acquire);
    if POOL.joined.fetch_or(bit, AcqRel) & bit != 0 {
        return Error::HelperTaken(index);
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
            let job = POOL.job.load(Relaxed).cast_const().cast::<Job>();
            if !job.is_null() {
                // SAFETY: `job` was stored by the `run` that published `seen`,
                // before its Release store of `epoch` (our Acquire load above),
                // and points to the `Job` in that `run`'s frame. That job has
                // a part for this helper, so `run` neither returns nor unwinds
                // (`Finish`) before our `done` bit is set below, or our
                // `failed` bit, which is set only once this helper has left
                // `f` for good (the panic below; `helper_failed` after a trap).
                // Until then the `Job` and all it borrows are alive and
                // unchanged (`busy` keeps other jobs out); it is `Sync`, so
                // other threads may call it at the same time.
                let f: Job = unsafe { *job };
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(index, parts)));
                if ran.is_err() {
                    POOL.failed.fetch_or(bit, AcqRel);
                    return Error::HelperPanicked(index);
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
    let job: Job = f;
    // helpers read `job` after their Acquire load of the new epoch below
    POOL.job.store(ptr::from_ref(&job).cast_mut().cast(), Relaxed);
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

/// The end of a job, also when part 0 panics natively: wait until every
/// helper's part is done, computing the part of any helper that died here
/// instead (then threading stops), and withdraw the job.
struct Finish<'a> {
    f: Job<'a>,
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
        POOL.job.store(ptr::null_mut(), Relaxed);
        POOL.busy.store(false, Release);
    }
}

// ---------------------------------------------------------------- waiting
// wasm with shared memory: the futex instructions (a worker may block; the
// page's main thread never waits here, it only spins in `run`).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn sleep_while(word: &AtomicU32, value: u32) {
    // SAFETY: `word` is a live, aligned 4-byte atomic in shared linear
    // memory (the `static POOL`), which is what the instruction requires.
    unsafe { core::arch::wasm32::memory_atomic_wait32(word.as_ptr() as *mut i32, value as i32, -1) };
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn wake_all(word: &AtomicU32) {
    // SAFETY: as in `sleep_while`.
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
/// them (for tests and the CLI's `-j`). Threads already started are kept.
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
