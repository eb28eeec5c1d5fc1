//! The threaded build's glue. The threaded build (www/pkg-threads: shared
//! memory, built by build.sh with nightly Rust) runs each large matmul on
//! the page's thread plus helper Web Workers; see `parallel` and
//! www/engine.js. The single-threaded build has the same functions, so the
//! page needs no second code path.

use wasm_bindgen::prelude::*;

use super::args::index_from_js;


/// Whether this build was compiled with shared memory and can take helpers.
#[wasm_bindgen(js_name = threadsSupported)]
pub fn threads_supported() -> bool {
    cfg!(target_feature = "atomics")
}

/// Threads that share each large matmul now (1 = this thread alone).
#[wasm_bindgen]
pub fn threads() -> usize {
    crate::parallel::threads()
}

/// Helpers that have entered their loop (www/engine.js waits for all).
#[wasm_bindgen(js_name = threadsJoined)]
pub fn threads_joined() -> usize {
    crate::parallel::joined()
}

/// Hand parts of each large matmul to the first `helpers` helpers (0 = off).
#[wasm_bindgen(js_name = enableThreads)]
pub fn enable_threads(helpers: &JsValue) -> Result<usize, JsError> {
    let helpers = index_from_js(helpers, "helpers")?;
    Ok(crate::parallel::enable(helpers)?)
}

/// Split matmuls of at least `weights` weights (default 65,536; tests use 0
/// so that even stories260K's small matrices go through the helpers).
#[wasm_bindgen(js_name = setMinParallel)]
pub fn set_min_parallel(weights: &JsValue) -> Result<(), JsError> {
    crate::parallel::set_min_parallel(index_from_js(weights, "weights")?);
    Ok(())
}

/// A helper Worker's whole life: take part `index` (1, 2, ...) of every
/// matmul. Never returns in the threaded build unless the index is out of
/// range or taken (an error); an error in the single-threaded build.
#[wasm_bindgen(js_name = threadHelper)]
pub fn thread_helper(index: &JsValue) -> Result<(), JsError> {
    let index = index_from_js(index, "helper index")?;
    if !threads_supported() {
        return Err(JsError::new("this wasm build has no threads (use www/pkg-threads)"));
    }
    Err(crate::parallel::helper_loop(index).into())
}

/// A helper Worker caught a trap inside `threadHelper`: its parts are
/// computed by the page's thread from now on (threading stops, nothing hangs).
#[wasm_bindgen(js_name = threadHelperFailed)]
pub fn thread_helper_failed(index: &JsValue) -> Result<(), JsError> {
    crate::parallel::helper_failed(index_from_js(index, "helper index")?);
    Ok(())
}

/// Parts of matmuls computed by helpers so far (tests: the threads did work).
#[wasm_bindgen(js_name = helperParts)]
pub fn helper_parts() -> f64 {
    crate::parallel::helper_parts() as f64
}
