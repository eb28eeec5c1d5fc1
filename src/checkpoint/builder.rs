//! The streaming loader: a checkpoint built from its bytes as they arrive,
//! each chunk converted straight into the tensors.

use super::header::EXPORT_HEADER_BYTES;
use super::layout::{Sizes, Tensor, TENSORS, TENSOR_NAMES};
use super::memory::check;
use super::model::{Checkpoint, Header, Matrix, Weights};
use crate::error::{thousands, Error, Result};

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
        let mut offset = header.bytes_in_file();
        let mut slots = Vec::new();
        let mut buffers: Vec<Buffers> = (0..TENSORS).map(|_| Buffers::default()).collect();
        let mut slot = |tensor, part, bytes: u64| {
            slots.push(Slot { tensor, part, start: offset, end: offset + bytes });
            offset += bytes;
        };
        for &tensor in Tensor::file_order(&header) {
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
        };
        Ok(Checkpoint { header: self.header, weights })
    }
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
}
