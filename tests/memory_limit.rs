//! Running out of memory is an error, never an abort: this test binary's
//! allocator refuses to go past a cap (as a browser tab's 4 GiB does), and
//! every allocation that depends on the input must turn that into an Err.
//! One test only: the cap is global to the process.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use common::data;
use llama2_wasm::{checkpoint, Checkpoint, Llama, Tokenizer};

/// The system allocator with a ceiling on live bytes.
struct Capped;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static CAP: AtomicUsize = AtomicUsize::new(usize::MAX);

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if LIVE.fetch_add(layout.size(), SeqCst) + layout.size() > CAP.load(SeqCst) {
            LIVE.fetch_sub(layout.size(), SeqCst);
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), SeqCst);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;

/// Allow `extra` more bytes than are live now.
fn cap_at(extra: usize) {
    CAP.store(LIVE.load(SeqCst) + extra, SeqCst);
}

fn uncap() {
    CAP.store(usize::MAX, SeqCst);
}

#[test]
fn allocation_failures_are_errors() {
    let fp32 = data("stories260K.bin");
    let tok = data("tok512.bin");

    // quantize-on-load with no room for the int8 copy (the page's 4.1 GB case, scaled down)
    let c = Checkpoint::from_bytes(&fp32).unwrap();
    cap_at(10_000);
    let err = c.quantize().unwrap_err().to_string();
    uncap();
    assert!(err.contains("int8 copy"), "{err}");

    // loading the weights themselves
    cap_at(100_000);
    let err = Checkpoint::from_bytes(&fp32).unwrap_err().to_string();
    uncap();
    assert!(err.contains("the weights") && err.contains("more than"), "{err}");

    // a tokenizer whose tables do not fit
    cap_at(20_000);
    let err = Tokenizer::from_bytes(&tok).unwrap_err().to_string();
    uncap();
    assert!(err.contains("tokenizer's tables"), "{err}");

    // the run state, and the token history of a whole sequence (allocated at
    // load: the model that aborted when its history doubled at token 8192)
    let (c, t) = (Checkpoint::from_bytes(&fp32).unwrap(), Tokenizer::from_bytes(&tok).unwrap());
    cap_at(50_000);
    let err = Llama::new(c, t, false).unwrap_err().to_string();
    uncap();
    assert!(err.contains("more than"), "{err}");

    // once loaded, a whole generation to seq_len allocates only its text
    let mut llama = Llama::from_bytes(&fp32, &tok).unwrap();
    let before = LIVE.load(SeqCst);
    cap_at(64 << 10);
    llama.generate("", llama2_wasm::SamplerParams::new(1.0, 0.9, 3).unwrap(), 0).unwrap();
    uncap();
    assert!(llama.tokens().len() > 300, "{} tokens", llama.tokens().len()); // seed 3 stops at BOS after 370
    assert!(LIVE.load(SeqCst) < before + (64 << 10));

    // the pre-flight: a limit below what the model needs for its whole life
    let head = &fp32[..256];
    let needed = checkpoint::memory_needed(&checkpoint::parse_header(head).unwrap()).unwrap();
    checkpoint::set_memory_limit(needed);
    let err = Checkpoint::from_bytes(&fp32).unwrap_err().to_string();
    checkpoint::set_memory_limit(needed + 1);
    assert!(Checkpoint::from_bytes(&fp32).is_ok());
    checkpoint::set_memory_limit(0);
    assert!(err.contains("would need"), "{err}");
}
