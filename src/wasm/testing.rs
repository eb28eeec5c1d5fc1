//! Test-only hooks for the page's tests: a trap on purpose, and a lower
//! memory limit.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use wasm_bindgen::prelude::*;

use super::args::{string_arg, whole_from_js};
use crate::checkpoint;
use crate::error::Error;


/// Test-only: where `__crashForTest` makes the engine trap (0 = nowhere).
static CRASH_AT: AtomicU32 = AtomicU32::new(0);
pub(super) const CRASH_STEP: u32 = 1;
pub(super) const CRASH_PUSH: u32 = 2;

/// Trap here if a test armed a crash at this point (one atomic load).
#[inline(always)]
pub(super) fn crash_point(at: u32) {
    if CRASH_AT.load(Relaxed) == at && CRASH_AT.compare_exchange(at, 0, Relaxed, Relaxed).is_ok() {
        console_error_panic_hook::set_once();
        core::arch::wasm32::unreachable();
    }
}

/// TEST ONLY (the page's tests of what happens when the engine dies): make
/// this wasm instance trap, as a Rust panic would. `"now"` traps in this
/// call; `"step"` arms the next `Model.step()` and `"push"` the next
/// `ModelLoader.push()` to trap while their object is borrowed (the state
/// in which every later call says "recursive use of an object"). Anything
/// else is an error.
#[wasm_bindgen(js_name = __crashForTest)]
pub fn crash_for_test(when: &JsValue) -> Result<(), JsError> {
    match string_arg(when, "when")?.as_str() {
        "now" => {
            console_error_panic_hook::set_once();
            core::arch::wasm32::unreachable()
        }
        "step" => CRASH_AT.store(CRASH_STEP, Relaxed),
        "push" => CRASH_AT.store(CRASH_PUSH, Relaxed),
        other => return Err(Error::Argument(format!("__crashForTest takes \"now\", \"step\" or \"push\", not {other:?}")).into()),
    }
    Ok(())
}

/// TEST ONLY: lower the memory a model may take in this instance
/// (`checkpoint::memory_limit`), so the page's "free the old model first"
/// path can be tested with small models. 0 restores the default.
#[wasm_bindgen(js_name = __setMemoryLimitForTest)]
pub fn set_memory_limit_for_test(bytes: &JsValue) -> Result<(), JsError> {
    let bytes = whole_from_js(bytes, "bytes")?;
    checkpoint::set_memory_limit(bytes.min(u64::MAX as f64) as u64);
    Ok(())
}