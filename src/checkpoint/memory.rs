//! How much memory a model may take, and the pre-flight that compares a
//! header's needs with it before a large file is read at all.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::header::parse_header;
use super::layout::{expected_file_size, weight_bytes};
use super::model::{Config, Header};
use super::size::Size;
use crate::error::{thousands, Error, Result};

/// Most memory a model may need for its whole life (weights, KV cache,
/// activations, token history, sampler): see [`memory_limit`].
static MEMORY_LIMIT: AtomicU64 = AtomicU64::new(0);

/// The memory a model may take: in wasm32, 4 GiB less 256 MiB left for the
/// page's own allocations (text, the inspector, the next file's header);
/// natively, the machine's physical memory (Linux: /proc/meminfo's
/// MemTotal), else 64 GiB. Tests and embedders lower it with [`set_memory_limit`].
pub fn memory_limit() -> u64 {
    match MEMORY_LIMIT.load(Relaxed) {
        0 => {
            let limit = default_memory_limit();
            MEMORY_LIMIT.store(limit, Relaxed);
            limit
        }
        limit => limit,
    }
}

/// Set the limit [`memory_limit`] returns (0 restores the default).
pub fn set_memory_limit(bytes: u64) {
    MEMORY_LIMIT.store(bytes, Relaxed);
}

fn default_memory_limit() -> u64 {
    if usize::BITS == 32 {
        return (1 << 32) - (256 << 20);
    }
    physical_memory().unwrap_or(1 << 36)
}

/// Total physical memory in bytes, where the platform says.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The one place the memory limit is compared: `what` would take `bytes`.
pub fn check_memory(what: &'static str, bytes: u64) -> Result<()> {
    if bytes >= memory_limit() {
        return Err(Error::TooLarge { what, bytes });
    }
    Ok(())
}

/// The KV cache may be at most this many times the weights (or
/// [`KV_FLOOR`], whichever is more): real exports are far below it
/// (stories110M: 0.17x, stories260K: 0.6x, Llama 2 7B at 4096: 0.16x); a
/// header whose seq_len asks for more is damaged or crafted (a 1 MB model
/// with a 3-million-token context would take 4 GB before its first token).
pub const KV_PER_WEIGHT: u64 = 8;
/// The KV cache any model may have regardless of its weights: 256 MiB.
pub const KV_FLOOR: u64 = 256 << 20;

/// Everything that can be checked from the first 256 bytes and the file's
/// length: a valid header, the exact length it implies, and memory that fits.
/// The page calls this before reading a large file at all.
pub fn check(head: &[u8], file_len: u64) -> Result<Header> {
    let header = parse_header(head)?;
    let expected = expected_file_size(&header)?;
    if file_len != expected {
        return Err(Error::CheckpointSize { actual: file_len, expected });
    }
    check_kv_cache(&header)?;
    check_memory("this model (weights, KV cache and activations)", memory_needed(&header)?)?;
    Ok(header)
}

/// The KV cache's ceiling relative to the weights (see [`KV_PER_WEIGHT`]).
pub fn check_kv_cache(h: &Header) -> Result<()> {
    let c = &h.config;
    // key_cache and value_cache: (layer, seq_len, kv_dim) f32 each
    let kv = (Size::of(c.n_layers) * c.seq_len * c.kv_dim() * (2 * 4)).get()?;
    let weights = weight_bytes(h)?;
    let ceiling = weights.saturating_mul(KV_PER_WEIGHT).max(KV_FLOOR);
    if kv > ceiling {
        return Err(Error::Checkpoint(format!(
            "seq_len {} needs a KV cache of {} bytes, more than {KV_PER_WEIGHT} times the weights ({} bytes) \
             and more than {} bytes: the header is damaged, or the context is far longer than this model's size supports",
            thousands(c.seq_len as u64),
            thousands(kv),
            thousands(weights),
            thousands(KV_FLOOR)
        )));
    }
    Ok(())
}

/// Bytes the run state needs (the KV cache dominates): its buffers
/// ([`Config::run_state_buffers`]), 4 bytes a value.
pub fn run_state_bytes(c: &Config) -> Result<u64> {
    c.run_state_buffers()?.iter().map(|&(_, n)| Size::of(n) * 4).sum::<Size>().get()
}

/// Bytes a loaded model occupies for its whole life: weights, run state,
/// and the generation's own buffers (token history and what followed each
/// position, up to seq_len: a token id, and an `Outcome` of 16 bytes; the
/// sampler's (vocab_size,) sort buffer).
pub fn memory_needed(h: &Header) -> Result<u64> {
    let c = &h.config;
    let history = Size::of(c.seq_len + 1) * (4 + 16);
    let sampler = Size::of(c.vocab_size) * 8;
    (Size::of(weight_bytes(h)?) + Size::of(run_state_bytes(c)?) + history + sampler).get()
}
