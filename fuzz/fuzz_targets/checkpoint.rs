//! Any bytes as a checkpoint, all formats: whole, and streamed in uneven
//! chunks through the builder (as the page does). Errors are fine; panics,
//! hangs and huge allocations are not.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llama2_wasm::checkpoint::{self, Checkpoint, CheckpointBuilder};

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(256)];
    let _ = checkpoint::identify_wrong_file(head);
    let _ = checkpoint::looks_like_checkpoint(head);
    if let Ok(c) = Checkpoint::from_bytes(data) {
        let _ = c.quantize();
    }
    if let Ok(mut b) = CheckpointBuilder::new(head, data.len() as u64) {
        let step = 1 + data.first().copied().unwrap_or(0) as usize;
        for chunk in data.chunks(step) {
            if b.push(chunk).is_err() {
                return;
            }
        }
        let _ = b.finish();
    }
});
