//! A helper that dies mid-job (a trap in its Worker, a panic natively) must
//! not hang the caller: its part is computed by the caller, the result is
//! complete, and threading stops. Its own test binary: the pool is global
//! and stays off afterwards.

#![cfg(not(target_arch = "wasm32"))]

use std::sync::atomic::{AtomicBool, Ordering};

use llama2_wasm::parallel;

#[test]
fn a_dead_helper_is_replaced_by_the_caller() {
    assert_eq!(parallel::start_native(2), 3);
    let panicked = AtomicBool::new(false);
    let mut out = vec![0.0f32; 300];
    parallel::for_rows(&mut out, usize::MAX, &|rows, mine| {
        // helper 1's part (rows 100..) panics the first time, on its thread
        if rows.start == 100 && !panicked.swap(true, Ordering::SeqCst) {
            panic!("a part that fails");
        }
        for (o, r) in mine.iter_mut().zip(rows) {
            *o = r as f32;
        }
    });
    assert!(panicked.load(Ordering::SeqCst));
    let want: Vec<f32> = (0..300).map(|r| r as f32).collect();
    assert_eq!(out, want, "the caller computed the dead helper's rows");
    assert_eq!(parallel::threads(), 1, "threading stops after a helper died");
    assert!(parallel::enable(2).unwrap_err().to_string().contains("died"));
    // and later matmuls run on the caller alone
    let mut again = vec![0.0f32; 10];
    parallel::for_rows(&mut again, usize::MAX, &|rows, mine| mine.iter_mut().zip(rows).for_each(|(o, r)| *o = r as f32));
    assert_eq!(again[9], 9.0);
}
