//! Splitting a matmul's rows over threads.
//!
//! Why: decoding streams every weight once per token, and on the machines we
//! measured one core cannot pull memory as fast as two (this VM: 11 GB/s with
//! one core, 21 GB/s with two). Each output row of a matmul is computed by the
//! same kernel whichever thread runs it, so the numbers are bit-identical to
//! the single-threaded engine; only the wall time changes.
//!
//! The threads are those of `pool` (src/parallel/pool.rs: one global pool,
//! the calling thread plus helpers, and the only `unsafe` outside the
//! kernels); this file cuts a matmul into their parts, in safe code.
//! Small matrices run inline: below [`MIN_PARALLEL`] weights a matmul costs
//! less than handing it over.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

mod pool;

#[cfg(not(target_arch = "wasm32"))]
pub use pool::start_native;
pub use pool::{enable, helper_failed, helper_loop, helper_parts, joined, run, threads, MAX_HELPERS};

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
    let parts = threads();
    if weights < MIN_WEIGHTS.load(Relaxed) || parts == 1 {
        return kernel(0..d, out);
    }
    // `out` cut up front into each part's rows (split_at_mut: disjoint by
    // construction); a part locks its own piece, so the lock is never
    // contended and costs two atomic operations
    let mut rest = out;
    let pieces: [Piece; MAX_HELPERS + 1] = std::array::from_fn(|part| {
        let len = if part < parts { part_rows(d, part, parts, 4).len() } else { 0 };
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        Piece(Mutex::new(mine))
    });
    run(&|part, n| {
        // n == parts, or 1 when `run` ran everything here (a job was in flight)
        for p in (part..parts).step_by(n) {
            // a helper that panicked mid-part leaves its piece poisoned; the
            // caller redoes the whole part, so the poison carries no meaning
            let mut piece = pieces[p].0.lock().unwrap_or_else(PoisonError::into_inner);
            kernel(part_rows(d, p, parts, 4), &mut piece);
        }
    });
}

/// One part's rows of `out`, on a cache line of its own: the threads' locks
/// would otherwise take turns on one line (measured: ~0.2 us per matmul).
#[repr(align(64))]
struct Piece<'a>(Mutex<&'a mut [f32]>);
