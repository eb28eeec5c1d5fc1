//! GPU buffers: made, filled from wasm memory, and the weight matrices cut
//! into pieces that each fit one binding (`maxStorageBufferBindingSize`).

use std::ops::Range;

use web_sys::{gpu_buffer_usage as usage, GpuBuffer, GpuBufferDescriptor, GpuDevice, GpuQueue};

use super::device::js_message;
use crate::checkpoint::Matrix;
use crate::error::{Error, Result};

/// Values per `writeBuffer` call when uploading: a bounded staging copy
/// (the weights are never copied whole).
const CHUNK: usize = 1 << 16;

/// Makes buffers on one device and counts their bytes.
pub struct Maker<'a> {
    pub device: &'a GpuDevice,
    pub queue: &'a GpuQueue,
    /// Bytes of all the buffers made (weights, KV cache, activations).
    pub bytes: u64,
    /// The largest piece of a matrix, in bytes: one binding's limit.
    pub piece_bytes: u64,
}

/// A piece of one layer's matrix: some of its rows, in its own buffer(s).
pub struct Piece {
    pub rows: Range<usize>,
    pub data: PieceData,
}

pub enum PieceData {
    /// (rows, n) floats
    F32(GpuBuffer),
    /// (rows, n) int8 values, four per u32 word, and (rows, n / gs) scales
    Q8 { q: GpuBuffer, s: GpuBuffer },
}

impl Maker<'_> {
    /// A buffer of `bytes` (rounded up to 4), for `use_` (`GPUBufferUsage` bits).
    pub fn buffer(&mut self, label: &str, bytes: u64, use_: u32) -> Result<GpuBuffer> {
        let bytes = bytes.max(4).next_multiple_of(4);
        let d = GpuBufferDescriptor::new_with_f64(bytes as f64, use_);
        d.set_label(label);
        let b = self
            .device
            .create_buffer(&d)
            .map_err(|e| Error::Gpu(format!("the GPU refused a buffer of {bytes} bytes for {label}: {}", js_message(&e))))?;
        self.bytes += bytes;
        Ok(b)
    }

    /// A storage buffer the kernels read and write, zeroed (WebGPU zeroes new buffers).
    pub fn storage(&mut self, label: &str, floats: usize) -> Result<GpuBuffer> {
        self.buffer(label, floats as u64 * 4, usage::STORAGE | usage::COPY_DST | usage::COPY_SRC)
    }

    /// A uniform buffer holding `words`.
    pub fn uniform(&mut self, label: &str, words: &[u32]) -> Result<GpuBuffer> {
        let b = self.buffer(label, words.len() as u64 * 4, usage::UNIFORM | usage::COPY_DST)?;
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        write_bytes(self.queue, &b, 0, &bytes)?;
        Ok(b)
    }

    /// A storage buffer filled with `data`.
    pub fn floats(&mut self, label: &str, data: &[f32]) -> Result<GpuBuffer> {
        let b = self.storage(label, data.len())?;
        write_f32(self.queue, &b, 0, data)?;
        Ok(b)
    }

    /// Layer `layer` of `m` (all layers of `d` rows of `n` values), cut
    /// into pieces of whole rows that each fit one binding.
    pub fn matrix(&mut self, label: &str, m: &Matrix, layer: usize, d: usize, n: usize) -> Result<Vec<Piece>> {
        let row_bytes = match m {
            Matrix::F32(_) => n as u64 * 4,
            Matrix::Q8 { .. } => n as u64, // the scales are smaller (group size >= 4)
        };
        let rows_per_piece = ((self.piece_bytes / row_bytes) as usize).max(1).min(d);
        let mut pieces = Vec::new();
        for r0 in (0..d).step_by(rows_per_piece) {
            let rows = r0..(r0 + rows_per_piece).min(d);
            let at = (layer * d + rows.start) * n..(layer * d + rows.end) * n; // values of these rows
            let data = match m {
                Matrix::F32(w) => PieceData::F32(self.floats(label, &w[at])?),
                Matrix::Q8 { q, s, group_size: gs } => {
                    let qb = self.buffer(label, at.len() as u64, usage::STORAGE | usage::COPY_DST)?;
                    write_i8(self.queue, &qb, &q[at.clone()])?;
                    PieceData::Q8 { q: qb, s: self.floats(label, &s[at.start / gs..at.end / gs])? }
                }
            };
            pieces.push(Piece { rows, data });
        }
        Ok(pieces)
    }
}

pub fn write_bytes(queue: &GpuQueue, b: &GpuBuffer, offset: u64, bytes: &[u8]) -> Result<()> {
    queue
        .write_buffer_with_f64_and_u8_slice(b, offset as f64, bytes)
        .map_err(|e| Error::Gpu(format!("could not write to a GPU buffer: {}", js_message(&e))))
}

/// `data` into `b` from byte `offset` on, a chunk at a time.
pub fn write_f32(queue: &GpuQueue, b: &GpuBuffer, offset: u64, data: &[f32]) -> Result<()> {
    let mut bytes = Vec::with_capacity(CHUNK.min(data.len()) * 4);
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        bytes.clear();
        bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
        write_bytes(queue, b, offset + (i * CHUNK * 4) as u64, &bytes)?;
    }
    Ok(())
}

/// int8 values into `b`, four to a u32 word (little-endian: the kernels' byte order).
fn write_i8(queue: &GpuQueue, b: &GpuBuffer, data: &[i8]) -> Result<()> {
    let mut bytes = Vec::with_capacity(CHUNK.min(data.len()));
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        bytes.clear();
        bytes.extend(chunk.iter().map(|&v| v as u8));
        write_bytes(queue, b, (i * CHUNK) as u64, &bytes)?;
    }
    Ok(())
}
