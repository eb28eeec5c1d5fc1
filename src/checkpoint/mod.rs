//! Model: the config header and the weights, read from bytes in memory.
//!
//! run.c memory-maps the checkpoint and points its weight pointers into it.
//! A browser hands us bytes instead (from `fetch` or a dropped file), with no
//! alignment promise, so every tensor is *copied* into its own `Vec<f32>`.
//! The whole header is validated, and the byte length checked against it,
//! before anything is allocated.
//!
//! Formats (llama2.c's `export.py`):
//! - legacy "v0": 7 × i32 header, then the tensors in run.c's order; a
//!   negative `vocab_size` means a separate classifier follows at the end.
//! - export version 1: magic "ak42", version 1, 7 × i32, a shared-classifier
//!   byte, zero padding to 256 bytes; tensors in a different order (norms first).
//! - export version 2 (Q8_0): as version 1 plus an i32 group size after the
//!   shared-classifier byte; the rmsnorm weights stay fp32 (first), every
//!   matrix is stored per layer as int8 values followed by one fp32 scale per
//!   group (runq.c's order). An fp32 file can also be quantized on load with
//!   export.py's Q8_0 rule ([`Checkpoint::quantize`]).
//!
//! The files: `model.rs` the types (run.c's `Config` and
//! `TransformerWeights`, with shapes), `header.rs` parses and validates the
//! header, `layout.rs` says where each tensor lies and how big it is (in
//! `size.rs`'s checked arithmetic), `memory.rs` holds the memory limit and
//! the pre-flight ([`check`]), `builder.rs` streams the bytes into the
//! tensors, `quantize.rs` is export.py's Q8_0 rule.

mod builder;
mod header;
mod layout;
mod memory;
mod model;
mod quantize;
mod size;

pub use crate::sniff::{identify_wrong_file, MAGIC};
pub use builder::{ByteSource, CheckpointBuilder};
pub use header::{looks_like_checkpoint, parse_header};
pub use layout::{expected_file_size, param_count, weight_bytes};
pub use model::{Checkpoint, Config, Header, Matrix, StateBuffer, Weights};
pub use memory::{
    check, check_kv_cache, check_memory, memory_limit, memory_needed, run_state_bytes, set_memory_limit, KV_FLOOR,
    KV_PER_WEIGHT,
};
pub use quantize::{default_group_size, quantize_q80};
