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

use crate::error::{thousands, Error, Result};

/// `0x616b3432`, "ak42" in little-endian bytes: the export formats' magic.
pub const MAGIC: u32 = 0x616b_3432;
const LEGACY_HEADER_BYTES: usize = 7 * 4;
const EXPORT_HEADER_BYTES: usize = 256;

/// Most memory a model may need for its whole life (weights, KV cache,
/// activations, token history, sampler): see [`memory_limit`].
static MEMORY_LIMIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The memory a model may take: in wasm32, 4 GiB less 256 MiB left for the
/// page's own allocations (text, the inspector, the next file's header);
/// natively, the machine's physical memory (Linux: /proc/meminfo's
/// MemTotal), else 64 GiB. Tests and embedders lower it with [`set_memory_limit`].
pub fn memory_limit() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
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
    MEMORY_LIMIT.store(bytes, std::sync::atomic::Ordering::Relaxed);
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

/// The KV cache may be at most this many times the weights (or
/// [`KV_FLOOR`], whichever is more): real exports are far below it
/// (stories110M: 0.17x, stories260K: 0.6x, Llama 2 7B at 4096: 0.16x); a
/// header whose seq_len asks for more is damaged or crafted (a 1 MB model
/// with a 3-million-token context would take 4 GB before its first token).
pub const KV_PER_WEIGHT: u64 = 8;
/// The KV cache any model may have regardless of its weights: 256 MiB.
pub const KV_FLOOR: u64 = 256 << 20;

/// The hyperparameters, as in run.c's `Config` (all validated positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub dim: usize,        // transformer dimension
    pub hidden_dim: usize, // for ffn layers
    pub n_layers: usize,   // number of layers
    pub n_heads: usize,    // number of query heads
    pub n_kv_heads: usize, // number of key/value heads (can be < query heads because of multiquery)
    pub vocab_size: usize, // vocabulary size, usually 256 (byte-level)
    pub seq_len: usize,    // max sequence length
}

impl Config {
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }
    /// Width of the key/value vectors: smaller than `dim` with grouped-query attention.
    pub fn kv_dim(&self) -> usize {
        self.dim * self.n_kv_heads / self.n_heads
    }
    /// How many query heads share one key/value head.
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}

/// What the header says about the file, besides the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub config: Config,
    /// 0 for the legacy format, else the export format's version.
    pub version: u32,
    /// The classifier reuses the token embedding table (no `wcls` in the file).
    pub shared_classifier: bool,
    /// Q8_0 group size of an export version 2 file (`None` for fp32 files).
    pub group_size: Option<usize>,
}

/// One weight matrix (all layers, concatenated), fp32 or Q8_0.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    F32(Vec<f32>),
    /// int8 values, and one fp32 scale per group of `group_size` values (a
    /// group never straddles a row): w[i] = q[i] * s[i / group_size].
    Q8 { q: Vec<i8>, s: Vec<f32>, group_size: usize },
}

impl Matrix {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len() * 4,
            Matrix::Q8 { q, s, .. } => q.len() + s.len() * 4,
        }
    }
}

/// The weights, one buffer per tensor as in run.c's `TransformerWeights`.
/// Matrices are row-major in PyTorch's (out, in) layout: `W (d, n)` maps an
/// `n`-vector to a `d`-vector, so each output is one contiguous row.
#[derive(Debug, Clone)]
pub struct Weights {
    pub token_embedding_table: Matrix, // (vocab_size, dim)
    pub rms_att_weight: Vec<f32>,      // (layer, dim) rmsnorm weights
    pub rms_ffn_weight: Vec<f32>,      // (layer, dim)
    pub wq: Matrix,                    // (layer, n_heads * head_size, dim)
    pub wk: Matrix,                    // (layer, kv_dim, dim)
    pub wv: Matrix,                    // (layer, kv_dim, dim)
    pub wo: Matrix,                    // (layer, dim, n_heads * head_size)
    pub w1: Matrix,                    // (layer, hidden_dim, dim)
    pub w2: Matrix,                    // (layer, dim, hidden_dim)
    pub w3: Matrix,                    // (layer, hidden_dim, dim)
    pub rms_final_weight: Vec<f32>,    // (dim,)
    /// (vocab_size, dim) classifier; `None` when shared with the embedding table.
    pub wcls: Option<Matrix>,
    /// Q8_0 group size when the matrices are quantized.
    pub group_size: Option<usize>,
}

impl Weights {
    /// The classifier matrix, wherever it lives.
    pub fn wcls(&self) -> &Matrix {
        self.wcls.as_ref().unwrap_or(&self.token_embedding_table)
    }

    fn matrices_mut(&mut self) -> impl Iterator<Item = &mut Matrix> {
        [&mut self.token_embedding_table, &mut self.wq, &mut self.wk, &mut self.wv, &mut self.wo, &mut self.w1, &mut self.w2, &mut self.w3]
            .into_iter()
            .chain(self.wcls.as_mut())
    }

    /// Bytes held by all the weights.
    pub fn bytes(&self) -> usize {
        let m = [&self.token_embedding_table, &self.wq, &self.wk, &self.wv, &self.wo, &self.w1, &self.w2, &self.w3];
        m.iter().map(|m| m.bytes()).sum::<usize>()
            + self.wcls.as_ref().map_or(0, |m| m.bytes())
            + 4 * (self.rms_att_weight.len() + self.rms_ffn_weight.len() + self.rms_final_weight.len())
    }
}

/// A loaded checkpoint: header plus weights.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub header: Header,
    pub weights: Weights,
}

/// Anything that can hand out ranges of the checkpoint's bytes: a `&[u8]`
/// natively, a JS `Uint8Array` in the browser (copied chunk by chunk, so the
/// file is never duplicated whole inside wasm memory).
pub trait ByteSource {
    fn byte_len(&self) -> u64;
    /// Copy `dst.len()` bytes starting at `offset`. Callers stay in bounds.
    fn read_into(&self, offset: u64, dst: &mut [u8]);
}

impl ByteSource for [u8] {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }
    fn read_into(&self, offset: u64, dst: &mut [u8]) {
        let start = offset as usize;
        dst.copy_from_slice(&self[start..start + dst.len()]);
    }
}

fn i32_at(bytes: &[u8], index: usize) -> i32 {
    let b = &bytes[4 * index..4 * index + 4];
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Files people drop by mistake, recognised by their first bytes: what the
/// file is and what to do instead. `None` when it is none of these.
pub fn identify_wrong_file(head: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(&head[..head.len().min(64)]).trim_start().to_ascii_lowercase();
    if head.starts_with(b"GGUF") {
        Some("this is a GGUF file (llama.cpp's format), not a llama2.c checkpoint; export the model with llama2.c's export.py")
    } else if head.starts_with(b"PK\x03\x04") {
        Some("this is a zip archive, probably a PyTorch .pt/.pth file; convert it with llama2.c's export.py")
    } else if head.len() > 8 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().unwrap_or([0xff; 8])) < 1 << 32 {
        Some("this is a safetensors file (Hugging Face); convert it with llama2.c's export.py")
    } else if text.starts_with("<!doctype") || text.starts_with("<html") || text.starts_with("<?xml") {
        Some("this is an HTML page saved as a file (a failed download?), not a model")
    } else if head.starts_with(b"version https://git-lfs") {
        Some("this is a Git LFS pointer, not the model itself; download the file's real content")
    } else {
        None
    }
}

/// Parse and validate the header from the first bytes of the file
/// (pass at least 256 bytes when the file has them).
pub fn parse_header(head: &[u8]) -> Result<Header> {
    if let Some(what) = identify_wrong_file(head) {
        return Err(Error::Checkpoint(what.into()));
    }
    if head.len() < LEGACY_HEADER_BYTES {
        return Err(Error::Checkpoint(format!(
            "the file is only {} bytes, too short for even a header (28 bytes)",
            head.len()
        )));
    }
    let first = i32_at(head, 0) as u32;
    if first == MAGIC {
        if head.len() < EXPORT_HEADER_BYTES {
            return Err(Error::Checkpoint(format!(
                "the file has the \"ak42\" export magic but is only {} bytes, \
                 shorter than its 256-byte header",
                head.len()
            )));
        }
        let version = i32_at(head, 1);
        if version != 1 && version != 2 {
            return Err(Error::UnsupportedVersion(version));
        }
        let fields: [i32; 7] = std::array::from_fn(|i| i32_at(head, 2 + i));
        let shared = match head[36] {
            0 => false,
            1 => true,
            b => {
                return Err(Error::Checkpoint(format!(
                    "the shared-classifier byte is {b}, expected 0 or 1"
                )))
            }
        };
        let config = validate_config(fields, false)?;
        let group_size = if version == 2 {
            // an i32 right after the shared-classifier byte (unaligned)
            let gs = i32::from_le_bytes([head[37], head[38], head[39], head[40]]);
            Some(validate_group_size(gs, &config)?)
        } else {
            None
        };
        Ok(Header { config, version: version as u32, shared_classifier: shared, group_size })
    } else {
        let fields: [i32; 7] = std::array::from_fn(|i| i32_at(head, i));
        // legacy: a negative vocab_size flags an unshared classifier
        let shared = fields[5] > 0;
        let config = validate_config(fields, true).map_err(|e| {
            // not a legacy header: say so plainly if it is a tokenizer
            if crate::tokenizer::Tokenizer::looks_like(head) {
                Error::Checkpoint("this is a tokenizer (tokenizer.bin), not a checkpoint".into())
            } else {
                e
            }
        })?;
        Ok(Header { config, version: 0, shared_classifier: shared, group_size: None })
    }
}

/// A Q8_0 group must be positive and fit whole rows: it divides `dim` and
/// `hidden_dim` (the two row lengths of every matrix).
fn validate_group_size(gs: i32, c: &Config) -> Result<usize> {
    if gs <= 0 {
        return Err(Error::Checkpoint(format!("the Q8_0 group size is {gs}; it must be positive")));
    }
    let gs = gs as usize;
    for (name, n) in [("dim", c.dim), ("hidden_dim", c.hidden_dim)] {
        if n % gs != 0 {
            return Err(Error::Checkpoint(format!(
                "the Q8_0 group size {gs} does not divide {name} {n}: a group may not straddle a matrix row"
            )));
        }
    }
    Ok(gs)
}

/// The group size for quantizing an fp32 model on load, as export.py picks
/// it: the largest power of two up to 64 that divides `dim` and `hidden_dim`.
pub fn default_group_size(c: &Config) -> usize {
    let mut gs = 64;
    while c.dim % gs != 0 || c.hidden_dim % gs != 0 {
        gs /= 2;
    }
    gs
}

fn validate_config(f: [i32; 7], legacy: bool) -> Result<Config> {
    const NAMES: [&str; 7] =
        ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
    let mut v = [0usize; 7];
    for i in 0..7 {
        let x = if legacy && i == 5 { f[i].unsigned_abs() as i64 } else { f[i] as i64 };
        if x <= 0 {
            return Err(Error::Checkpoint(format!(
                "{} is {} in the header; it must be positive (is this a llama2.c checkpoint?)",
                NAMES[i], f[i]
            )));
        }
        v[i] = x as usize;
    }
    let c = Config {
        dim: v[0],
        hidden_dim: v[1],
        n_layers: v[2],
        n_heads: v[3],
        n_kv_heads: v[4],
        vocab_size: v[5],
        seq_len: v[6],
    };
    if c.dim % c.n_heads != 0 {
        return Err(Error::Checkpoint(format!(
            "dim {} is not divisible by n_heads {}",
            c.dim, c.n_heads
        )));
    }
    if c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0 {
        return Err(Error::Checkpoint(format!(
            "n_heads {} is not a multiple of n_kv_heads {}",
            c.n_heads, c.n_kv_heads
        )));
    }
    if c.vocab_size < 3 {
        return Err(Error::Checkpoint(format!(
            "vocab_size is {}; llama2.c models need at least 3 tokens (<unk>, <s> = 1, </s> = 2)",
            c.vocab_size
        )));
    }
    if c.head_size() % 2 != 0 {
        return Err(Error::Checkpoint(format!(
            "head size {} (dim {} / n_heads {}) is odd; RoPE rotates pairs",
            c.head_size(),
            c.dim,
            c.n_heads
        )));
    }
    Ok(c)
}

/// Number of f32 values of each tensor, in u64 with overflow checks
/// (a header can claim anything; these numbers are compared with the file
/// size before any allocation).
struct Sizes {
    token_embedding_table: u64,
    rms: u64, // rms_att_weight and rms_ffn_weight each
    wq: u64,  // and wo
    wk: u64,  // and wv
    w1: u64,  // and w2, w3
    rms_final: u64,
    freq_cis: u64, // legacy only: freq_cis_real + freq_cis_imag
    wcls: u64,
}

/// The tensors of a file, in the order of `Weights`.
#[derive(Debug, Clone, Copy)]
enum Tensor {
    Embedding,
    RmsAtt,
    RmsFfn,
    Wq,
    Wk,
    Wv,
    Wo,
    W1,
    W2,
    W3,
    RmsFinal,
    FreqCis, // legacy only: the old RoPE tables, skipped
    Wcls,    // only when the classifier is not shared
}
const TENSORS: usize = 13;
/// Each tensor's name as run.c's `TransformerWeights` calls it, by `Tensor as usize`.
const TENSOR_NAMES: [&str; TENSORS] = [
    "token_embedding_table", "rms_att_weight", "rms_ffn_weight", "wq", "wk", "wv", "wo", "w1", "w2", "w3",
    "rms_final_weight", "freq_cis", "wcls",
];

/// run.c's `memory_map_weights` order.
const LEGACY_ORDER: &[Tensor] = {
    use Tensor::*;
    &[Embedding, RmsAtt, Wq, Wk, Wv, Wo, RmsFfn, W1, W2, W3, RmsFinal, FreqCis, Wcls]
};
/// export.py's `version1_export` and `version2_export` order: the norms
/// first, then the matrices (in version 2 each layer's int8 values followed
/// by its scales).
const EXPORT_ORDER: &[Tensor] = {
    use Tensor::*;
    &[RmsAtt, RmsFfn, RmsFinal, Embedding, Wq, Wk, Wv, Wo, W1, W2, W3, Wcls]
};

fn mul(factors: &[usize]) -> Result<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f as u64)).ok_or_else(|| {
        Error::Checkpoint("the header's dimensions overflow when multiplied out".into())
    })
}

fn mul_u64(a: u64, b: u64) -> Result<u64> {
    a.checked_mul(b)
        .ok_or_else(|| Error::Checkpoint("the header's dimensions overflow when multiplied out".into()))
}

fn add(terms: &[u64]) -> Result<u64> {
    terms.iter().try_fold(0u64, |acc, &t| acc.checked_add(t)).ok_or_else(|| {
        Error::Checkpoint("the header's dimensions overflow when added up".into())
    })
}

impl Tensor {
    /// Matrices are quantized in Q8_0 files; the rmsnorm vectors never are.
    fn is_matrix(self) -> bool {
        !matches!(self, Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal | Tensor::FreqCis)
    }

    /// How many per-layer pieces a Q8_0 file stores this matrix in.
    fn pieces(self, c: &Config) -> u64 {
        match self {
            Tensor::Wq | Tensor::Wk | Tensor::Wv | Tensor::Wo | Tensor::W1 | Tensor::W2 | Tensor::W3 => c.n_layers as u64,
            _ => 1,
        }
    }
}

impl Sizes {
    fn of(h: &Header) -> Result<Sizes> {
        let c = &h.config;
        let (l, dim) = (c.n_layers, c.dim);
        Ok(Sizes {
            token_embedding_table: mul(&[c.vocab_size, dim])?,
            rms: mul(&[l, dim])?,
            wq: mul(&[l, dim, c.n_heads, c.head_size()])?,
            wk: mul(&[l, dim, c.n_kv_heads, c.head_size()])?,
            w1: mul(&[l, dim, c.hidden_dim])?,
            rms_final: dim as u64,
            freq_cis: if h.version == 0 { mul(&[c.seq_len, c.head_size()])? } else { 0 },
            wcls: if h.shared_classifier { 0 } else { mul(&[c.vocab_size, dim])? },
        })
    }

    /// Floats of one tensor in the file.
    fn tensor(&self, t: Tensor, shared_classifier: bool) -> u64 {
        match t {
            Tensor::Embedding => self.token_embedding_table,
            Tensor::RmsAtt | Tensor::RmsFfn => self.rms,
            Tensor::Wq | Tensor::Wo => self.wq,
            Tensor::Wk | Tensor::Wv => self.wk,
            Tensor::W1 | Tensor::W2 | Tensor::W3 => self.w1,
            Tensor::RmsFinal => self.rms_final,
            Tensor::FreqCis => self.freq_cis,
            Tensor::Wcls if shared_classifier => 0,
            Tensor::Wcls => self.wcls,
        }
    }

    /// Bytes the kept weights take in this header's format (matrices as int8
    /// plus a 4-byte scale per group in Q8_0, else 4 bytes per value).
    fn kept_bytes(&self, h: &Header) -> Result<u64> {
        let order = if h.version == 0 { LEGACY_ORDER } else { EXPORT_ORDER };
        let mut bytes = 0u64;
        for &t in order.iter().filter(|t| !matches!(t, Tensor::FreqCis)) {
            let n = self.tensor(t, h.shared_classifier);
            let b = match h.group_size {
                Some(gs) if t.is_matrix() => add(&[n, mul_u64(n / gs as u64, 4)?])?,
                _ => mul_u64(n, 4)?,
            };
            bytes = add(&[bytes, b])?;
        }
        Ok(bytes)
    }

    /// Weights we keep, in values (everything but the legacy freq_cis block).
    fn kept_floats(&self) -> Result<u64> {
        add(&[
            self.token_embedding_table,
            self.rms,
            self.rms,
            self.wq,
            self.wq,
            self.wk,
            self.wk,
            self.w1,
            self.w1,
            self.w1,
            self.rms_final,
            self.wcls,
        ])
    }
}

/// How many bytes a file with this header must have.
pub fn expected_file_size(h: &Header) -> Result<u64> {
    let s = Sizes::of(h)?;
    let header = if h.version == 0 { LEGACY_HEADER_BYTES } else { EXPORT_HEADER_BYTES } as u64;
    let freq_cis = s.freq_cis.checked_mul(4);
    freq_cis
        .and_then(|f| add(&[s.kept_bytes(h).ok()?, f, header]).ok())
        .ok_or_else(|| Error::Checkpoint("the header's dimensions overflow".into()))
}

/// Bytes the weights occupy once loaded (freq_cis dropped).
pub fn weight_bytes(h: &Header) -> Result<u64> {
    Sizes::of(h)?.kept_bytes(h)
}

/// Bytes the run state needs (the KV cache dominates), with overflow checks.
pub fn run_state_bytes(c: &Config) -> Result<u64> {
    let overflow = || Error::Checkpoint("the header's seq_len and dims overflow the KV cache size".into());
    // key_cache and value_cache: (layer, seq_len, kv_dim) each
    let kv = mul(&[c.n_layers, c.seq_len, c.kv_dim(), 2])?;
    // x, xb, xb2, q (dim); hb, hb2 (hidden_dim); att (n_heads, seq_len); logits; RoPE tables
    let small = add(&[
        4 * c.dim as u64,
        2 * c.hidden_dim as u64,
        mul(&[c.n_heads, c.seq_len])?,
        c.vocab_size as u64,
        c.head_size() as u64,
    ])?;
    add(&[kv, small])?.checked_mul(4).ok_or_else(overflow)
}

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
    let bytes = memory_needed(&header)?;
    if bytes >= memory_limit() {
        return Err(Error::TooLarge { what: "this model (weights, KV cache and activations)", bytes });
    }
    Ok(header)
}

/// The KV cache's ceiling relative to the weights (see [`KV_PER_WEIGHT`]).
pub fn check_kv_cache(h: &Header) -> Result<()> {
    let c = &h.config;
    let kv = mul(&[c.n_layers, c.seq_len, c.kv_dim(), 2 * 4])?;
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

/// Bytes a loaded model occupies for its whole life: weights, run state,
/// and the generation's own buffers (token history and what followed each
/// position, up to seq_len; the sampler's (vocab_size,) sort buffer).
pub fn memory_needed(h: &Header) -> Result<u64> {
    let c = &h.config;
    let history = mul(&[c.seq_len + 1, 4 + 8])?;
    let sampler = mul(&[c.vocab_size, 8])?;
    add(&[weight_bytes(h)?, run_state_bytes(c)?, history, sampler])
}

fn looks_like_export(head: &[u8]) -> bool {
    head.len() >= 4 && i32_at(head, 0) as u32 == MAGIC
}

/// Does this look like a checkpoint at all (magic, or a plausible legacy
/// header)? Used to tell dropped files apart by content, not by name.
pub fn looks_like_checkpoint(head: &[u8]) -> bool {
    looks_like_export(head) || parse_header(head).is_ok()
}

/// Number of parameters a header describes (0 if it overflows, which a
/// loaded checkpoint's header never does).
pub fn param_count(h: &Header) -> u64 {
    Sizes::of(h).and_then(|s| s.kept_floats()).unwrap_or(0)
}

/// What a byte range of the file holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    F32,    // fp32 values
    Int8,   // Q8_0 int8 values
    Scales, // Q8_0 fp32 group scales
}

/// One byte range of the file and the tensor it fills.
#[derive(Debug)]
struct Slot {
    tensor: Tensor,
    part: Part,
    start: u64, // byte offsets in the file
    end: u64,
}

/// A tensor's buffers while loading: fp32 values (or Q8_0 scales), int8 values.
#[derive(Debug, Default)]
struct Buffers {
    f32: Vec<f32>,
    i8: Vec<i8>,
}

fn reserve<T>(v: &mut Vec<T>, n: u64) -> Result<()> {
    let too_large = || Error::TooLarge { what: "the weights", bytes: n * std::mem::size_of::<T>() as u64 };
    v.try_reserve_exact(usize::try_from(n).map_err(|_| too_large())?).map_err(|_| too_large())?;
    crate::kernels::stream_hint(v);
    Ok(())
}

/// Builds a checkpoint from its bytes arriving in order, chunk by chunk (a
/// download or a file being read): the header is checked and every tensor
/// allocated first, then each chunk is converted straight into the tensors,
/// so the file never needs to be held whole in memory next to the weights.
#[derive(Debug)]
pub struct CheckpointBuilder {
    header: Header,
    file_len: u64,
    pos: u64,                     // bytes received so far
    slots: Vec<Slot>,             // in file order
    slot: usize,                  // the slot `pos` is in or before
    buffers: Vec<Buffers>,        // by `Tensor as usize`
    carry: Vec<u8>,               // the first bytes of a float split between chunks
}

impl CheckpointBuilder {
    /// Start from the first bytes of the file (256, or all if shorter) and
    /// its total length; fails before allocating if they do not fit together.
    pub fn new(head: &[u8], file_len: u64) -> Result<CheckpointBuilder> {
        let header = check(head, file_len)?;
        let s = Sizes::of(&header)?;
        let order = if header.version == 0 { LEGACY_ORDER } else { EXPORT_ORDER };
        let mut offset = if header.version == 0 { LEGACY_HEADER_BYTES } else { EXPORT_HEADER_BYTES } as u64;
        let mut slots = Vec::new();
        let mut buffers: Vec<Buffers> = (0..TENSORS).map(|_| Buffers::default()).collect();
        let mut slot = |tensor, part, bytes: u64| {
            slots.push(Slot { tensor, part, start: offset, end: offset + bytes });
            offset += bytes;
        };
        for &tensor in order {
            let n = s.tensor(tensor, header.shared_classifier);
            let buf = &mut buffers[tensor as usize];
            match header.group_size {
                _ if n == 0 => {}
                // the legacy RoPE tables: skipped (a slot whose bytes go nowhere)
                _ if matches!(tensor, Tensor::FreqCis) => slot(tensor, Part::F32, n * 4),
                Some(gs) if tensor.is_matrix() => {
                    // runq.c's order: each layer's int8 values, then its scales
                    let pieces = tensor.pieces(&header.config);
                    let each = n / pieces;
                    for _ in 0..pieces {
                        slot(tensor, Part::Int8, each);
                        slot(tensor, Part::Scales, each / gs as u64 * 4);
                    }
                    reserve(&mut buf.i8, n)?;
                    reserve(&mut buf.f32, n / gs as u64)?;
                }
                _ => {
                    slot(tensor, Part::F32, n * 4);
                    reserve(&mut buf.f32, n)?;
                }
            }
        }
        Ok(CheckpointBuilder { header, file_len, pos: 0, slots, slot: 0, buffers, carry: Vec::with_capacity(4) })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.pos
    }

    /// The next bytes of the file, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        let arriving = self.pos + chunk.len() as u64;
        if arriving > self.file_len {
            return Err(Error::CheckpointSize { actual: arriving, expected: self.file_len });
        }
        let mut bytes = chunk;
        while !bytes.is_empty() {
            while self.slot < self.slots.len() && self.slots[self.slot].end <= self.pos {
                self.slot += 1;
            }
            let Some(slot) = self.slots.get(self.slot) else { break };
            if self.pos < slot.start {
                // the header
                let skip = (slot.start - self.pos).min(bytes.len() as u64) as usize;
                self.pos += skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (slot.end - self.pos).min(bytes.len() as u64) as usize;
            let (mut part, rest) = bytes.split_at(take);
            self.pos += take as u64;
            bytes = rest;
            if matches!(slot.tensor, Tensor::FreqCis) {
                continue;
            }
            let buf = &mut self.buffers[slot.tensor as usize];
            if slot.part == Part::Int8 {
                buf.i8.extend(part.iter().map(|&b| b as i8));
                continue;
            }
            // f32 values or scales; tensors start at multiples of 4 bytes, so a
            // float split between chunks never spans two slots
            if !self.carry.is_empty() {
                let need = (4 - self.carry.len()).min(part.len());
                self.carry.extend_from_slice(&part[..need]);
                part = &part[need..];
                if let [a, b, c, d] = self.carry[..] {
                    buf.f32.push(f32::from_le_bytes([a, b, c, d]));
                    self.carry.clear();
                }
            }
            let floats = part.chunks_exact(4);
            self.carry.extend_from_slice(floats.remainder());
            buf.f32.extend(floats.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
        }
        self.pos = arriving;
        Ok(())
    }

    /// All bytes received: the checkpoint.
    pub fn finish(mut self) -> Result<Checkpoint> {
        if self.pos != self.file_len {
            return Err(Error::Checkpoint(format!(
                "the file ended after {} of its {} bytes",
                thousands(self.pos),
                thousands(self.file_len)
            )));
        }
        // a NaN or infinite weight makes every logit NaN (the model would
        // print <unk> forever): refuse the file, naming where it starts
        for (i, buf) in self.buffers.iter().enumerate() {
            if let Some(at) = buf.f32.iter().position(|v| !v.is_finite()) {
                let bad = buf.f32.iter().filter(|v| !v.is_finite()).count();
                let what = if self.header.group_size.is_some() && i != Tensor::RmsAtt as usize
                    && i != Tensor::RmsFfn as usize && i != Tensor::RmsFinal as usize { " scale" } else { "" };
                return Err(Error::Checkpoint(format!(
                    "{}'s{what} values hold {} NaN or infinite number{} (the first, {}, at index {}): the file is damaged",
                    TENSOR_NAMES[i],
                    thousands(bad as u64),
                    if bad == 1 { "" } else { "s" },
                    buf.f32[at],
                    thousands(at as u64)
                )));
            }
        }
        let group_size = self.header.group_size;
        let mut take = |t: Tensor| std::mem::take(&mut self.buffers[t as usize]);
        let mut matrix = |t: Tensor| {
            let b = take(t);
            match group_size {
                Some(group_size) => Matrix::Q8 { q: b.i8, s: b.f32, group_size },
                None => Matrix::F32(b.f32),
            }
        };
        let weights = Weights {
            token_embedding_table: matrix(Tensor::Embedding),
            wq: matrix(Tensor::Wq),
            wk: matrix(Tensor::Wk),
            wv: matrix(Tensor::Wv),
            wo: matrix(Tensor::Wo),
            w1: matrix(Tensor::W1),
            w2: matrix(Tensor::W2),
            w3: matrix(Tensor::W3),
            wcls: if self.header.shared_classifier { None } else { Some(matrix(Tensor::Wcls)) },
            rms_att_weight: take(Tensor::RmsAtt).f32,
            rms_ffn_weight: take(Tensor::RmsFfn).f32,
            rms_final_weight: take(Tensor::RmsFinal).f32,
            group_size: self.header.group_size,
        };
        Ok(Checkpoint { header: self.header, weights })
    }
}

/// export.py's Q8_0 rule for one matrix: per group of `gs` values,
/// scale = max|w| / 127 and q = round(w / scale), ties to even (torch.round).
pub fn quantize_q80(w: &[f32], gs: usize) -> Result<(Vec<i8>, Vec<f32>)> {
    let (mut q, mut s) = (Vec::new(), Vec::new());
    let too_large = || Error::TooLarge { what: "the int8 copy of the weights", bytes: (w.len() + w.len() / gs * 4) as u64 };
    q.try_reserve_exact(w.len()).map_err(|_| too_large())?;
    s.try_reserve_exact(w.len() / gs).map_err(|_| too_large())?;
    for group in w.chunks_exact(gs) {
        let wmax = group.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = wmax / 127.0;
        s.push(scale);
        // an all-zero group divides 0 by 0: NaN, which becomes 0
        q.extend(group.iter().map(|v| (v / scale).round_ties_even() as i8));
    }
    Ok((q, s))
}

impl Checkpoint {
    /// Load a checkpoint from its bytes (any supported format).
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        Checkpoint::from_source(bytes)
    }

    /// Load from any byte source: validate the header and the length, then
    /// copy the tensors out in 64 KiB chunks.
    pub fn from_source<S: ByteSource + ?Sized>(src: &S) -> Result<Checkpoint> {
        let len = src.byte_len();
        let mut chunk = vec![0u8; len.min(EXPORT_HEADER_BYTES as u64) as usize];
        src.read_into(0, &mut chunk);
        let mut builder = CheckpointBuilder::new(&chunk, len)?;
        chunk.resize(1 << 16, 0);
        while builder.received() < len {
            let n = (len - builder.received()).min(chunk.len() as u64) as usize;
            src.read_into(builder.received(), &mut chunk[..n]);
            builder.push(&chunk[..n])?;
        }
        builder.finish()
    }

    pub fn config(&self) -> &Config {
        &self.header.config
    }

    /// Quantize an fp32 checkpoint to Q8_0 (export.py's rule and group size
    /// choice), one matrix at a time so the fp32 copy of each is freed as
    /// soon as it is converted. A Q8_0 checkpoint is returned as it is.
    ///
    /// Refused when the group size export.py's rule picks would not make the
    /// model smaller (dim or hidden_dim odd: group size 1 costs a 4-byte
    /// scale per int8 value), and when memory runs out (an error, with the
    /// fp32 model given up: quantizing replaces it matrix by matrix).
    pub fn quantize(mut self) -> Result<Checkpoint> {
        if self.weights.group_size.is_some() {
            return Ok(self);
        }
        let c = self.header.config;
        let gs = default_group_size(&c);
        if gs < 2 {
            return Err(Error::Checkpoint(format!(
                "int8 needs a group size of at least 2, but the largest power of two dividing dim {} and hidden_dim {} is {gs}: \
                 int8 values with a 4-byte scale each would be larger than fp32; run this model as fp32",
                c.dim, c.hidden_dim
            )));
        }
        for m in self.weights.matrices_mut() {
            if let Matrix::F32(w) = m {
                let (q, s) = quantize_q80(w, gs)?;
                *m = Matrix::Q8 { q, s, group_size: gs };
            }
        }
        self.weights.group_size = Some(gs);
        Ok(self)
    }

    /// Number of parameters held (the classifier counted once when shared).
    pub fn param_count(&self) -> u64 {
        param_count(&self.header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legacy_header(f: [i32; 7]) -> Vec<u8> {
        f.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn stories260k_sizes() {
        let h = parse_header(&legacy_header([64, 172, 5, 8, 4, 512, 512])).unwrap();
        assert_eq!(h.config.kv_dim(), 32);
        assert_eq!(h.config.kv_mul(), 2);
        assert!(h.shared_classifier);
        assert_eq!(expected_file_size(&h).unwrap(), 1_056_540);
    }

    #[test]
    fn negative_vocab_means_separate_classifier() {
        let h = parse_header(&legacy_header([64, 172, 5, 8, 4, -512, 512])).unwrap();
        assert!(!h.shared_classifier);
        assert_eq!(h.config.vocab_size, 512);
        assert_eq!(expected_file_size(&h).unwrap(), 1_056_540 + 512 * 64 * 4);
    }

    #[test]
    fn export_q80_rule_rounds_half_to_even() {
        // max 127 -> scale 1: 2.5 -> 2, 3.5 -> 4, -0.5 -> -0 (ties to even, as torch.round)
        let (q, s) = quantize_q80(&[127.0, 2.5, 3.5, -0.5], 4).unwrap();
        assert_eq!((q, s), (vec![127, 2, 4, 0], vec![1.0]));
    }

    #[test]
    fn group_size_for_quantize_on_load() {
        let c = |dim, hidden_dim| Config { dim, hidden_dim, n_layers: 1, n_heads: 1, n_kv_heads: 1, vocab_size: 1, seq_len: 1 };
        assert_eq!(default_group_size(&c(64, 172)), 4); // stories260K
        assert_eq!(default_group_size(&c(288, 768)), 32); // stories15M
        assert_eq!(default_group_size(&c(768, 2048)), 64); // stories110M
    }

    #[test]
    fn absurd_dims_are_an_error_not_an_allocation() {
        let h = legacy_header([i32::MAX - 1, i32::MAX, i32::MAX, 2, 1, i32::MIN, i32::MAX]);
        assert!(Checkpoint::from_bytes(&h).is_err());
    }
}
