//! The forward pass recorded once as a list of dispatches: pipelines
//! compiled, buffers made and weights uploaded, and every bind group made
//! up front, in the order of `Transformer::forward_recorded`. Only the
//! attention's dispatch sizes depend on the position.

use std::ops::Range;

use web_sys::{
    GpuAutoLayoutMode, GpuBindGroup, GpuBindGroupDescriptor, GpuBindGroupEntry, GpuBuffer, GpuComputePassEncoder,
    GpuComputePipeline, GpuComputePipelineDescriptor, GpuDevice, GpuProgrammableStage, GpuShaderModuleDescriptor,
};

use super::buffers::{Maker, Piece, PieceData};
use super::device::{js_message, limit};
use super::wgsl::{self, MATMUL_ROWS, THREADS};
use super::{groups, AdapterInfo, Gpu, Options, STAGING};
use crate::checkpoint::{Config, Weights};
use crate::error::{Error, Result};

/// The kernels by name.
pub struct Pipelines(Vec<(&'static str, GpuComputePipeline)>);

impl Pipelines {
    fn get(&self, name: &str) -> &GpuComputePipeline {
        &self.0.iter().find(|(n, _)| *n == name).expect("every kernel is compiled").1
    }
}

/// Compile every kernel (asynchronously: a failure rejects, naming the kernel).
pub async fn compile(device: &GpuDevice, c: &Config, group_size: Option<usize>) -> Result<Pipelines> {
    let mut out = Vec::new();
    for (name, source) in wgsl::sources(c, group_size) {
        let module_descriptor = GpuShaderModuleDescriptor::new(&source);
        module_descriptor.set_label(name);
        let module = device.create_shader_module(&module_descriptor);
        let stage = GpuProgrammableStage::new(&module);
        stage.set_entry_point("main");
        let descriptor = GpuComputePipelineDescriptor::new_with_gpu_auto_layout_mode(GpuAutoLayoutMode::Auto, &stage);
        descriptor.set_label(name);
        let pipeline = device
            .create_compute_pipeline_async(&descriptor)
            .await
            .map_err(|e| Error::Gpu(format!("the WebGPU kernel `{name}` did not compile: {}", js_message(&e))))?;
        out.push((name, pipeline));
    }
    Ok(Pipelines(out))
}

/// How many workgroups one dispatch runs.
#[derive(Debug, Clone, Copy)]
pub enum Groups {
    Fixed(u32, u32),
    /// One thread per position 0..=pos, times this many heads (attention scores).
    Positions(u32),
}

/// One dispatch of the forward pass.
pub struct Op {
    pipeline: GpuComputePipeline,
    bind: GpuBindGroup,
    groups: Groups,
}

impl Op {
    pub fn encode(&self, pass: &GpuComputePassEncoder, pos: usize) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.bind));
        let (x, y) = match self.groups {
            Groups::Fixed(x, y) => (x, y),
            Groups::Positions(heads) => (groups(pos + 1, THREADS), heads),
        };
        pass.dispatch_workgroups_with_workgroup_count_y(x, y);
    }
}

/// One piece of the embedding table: fp32 rows are copied into x, Q8_0 rows
/// dequantized by a kernel.
pub enum Embed {
    F32 { rows: Range<usize>, table: GpuBuffer },
    Q8 { rows: Range<usize>, op: Op, q: GpuBuffer, s: GpuBuffer },
}

impl Embed {
    pub fn rows(&self) -> &Range<usize> {
        match self {
            Embed::F32 { rows, .. } | Embed::Q8 { rows, .. } => rows,
        }
    }
}

/// A bind group of `buffers` at bindings 0, 1, 2... of `pipeline`.
fn bind(device: &GpuDevice, pipeline: &GpuComputePipeline, buffers: &[&GpuBuffer]) -> GpuBindGroup {
    let entries: Vec<GpuBindGroupEntry> =
        buffers.iter().enumerate().map(|(i, b)| GpuBindGroupEntry::new_with_gpu_buffer(i as u32, b)).collect();
    device.create_bind_group(&GpuBindGroupDescriptor::new(&entries, &pipeline.get_bind_group_layout(0)))
}

/// Records the ops.
struct Recorder<'a> {
    device: &'a GpuDevice,
    pipelines: &'a Pipelines,
    /// maxComputeWorkgroupsPerDimension
    max_groups: u32,
    ops: Vec<Op>,
}

impl Recorder<'_> {
    fn op(&self, kernel: &str, buffers: &[&GpuBuffer], groups: Groups) -> Op {
        let pipeline = self.pipelines.get(kernel).clone();
        let bind = bind(self.device, &pipeline, buffers);
        Op { pipeline, bind, groups }
    }

    fn push(&mut self, kernel: &str, buffers: &[&GpuBuffer], groups: Groups) {
        let op = self.op(kernel, buffers, groups);
        self.ops.push(op);
    }

    /// Workgroups for `rows` matmul rows, over two dimensions when one is not enough.
    fn matmul_groups(&self, rows: usize) -> Groups {
        let n = groups(rows, MATMUL_ROWS);
        if n <= self.max_groups {
            Groups::Fixed(n, 1)
        } else {
            Groups::Fixed(self.max_groups, n.div_ceil(self.max_groups))
        }
    }

    /// xout (d,) = W @ x for each piece of W; row r goes to
    /// xout[r + pos * pos_stride] (the KV cache's row of this position).
    /// fp32 pieces read `x`, Q8_0 ones the quantized `xq`, `xs`.
    #[allow(clippy::too_many_arguments)]
    fn matmul(&mut self, m: &mut Maker, step: &GpuBuffer, pieces: &[Piece], n: usize, x: &GpuBuffer, q: &Quantized, xout: &GpuBuffer, pos_stride: usize) -> Result<()> {
        for p in pieces {
            let rows = p.rows.len();
            let groups = self.matmul_groups(rows);
            match &p.data {
                PieceData::F32(w) => {
                    let mat = m.uniform("mat", &[rows as u32, (n / 4) as u32, p.rows.start as u32, pos_stride as u32])?;
                    self.push("matmul", &[step, &mat, w, x, xout], groups);
                }
                PieceData::Q8 { q: wq, s: ws } => {
                    let mat = m.uniform("mat", &[rows as u32, n as u32, p.rows.start as u32, pos_stride as u32])?;
                    let (xq, xs) = q.buffers.as_ref().expect("a Q8_0 model has quantized inputs");
                    self.push("matmul_q8", &[step, &mat, wq, ws, xq, xs, xout], groups);
                }
            }
        }
        Ok(())
    }

    /// runq.c's `quantize` of `x` (n,), before a Q8_0 model's matmuls.
    fn quantize(&mut self, q: &Quantized, x: &GpuBuffer, len: &GpuBuffer, n: usize) {
        if let (Some((xq, xs)), Some(gs)) = (&q.buffers, q.group_size) {
            self.push("quantize", &[len, x, xq, xs], Groups::Fixed(groups(n / gs, THREADS), 1));
        }
    }
}

/// A Q8_0 model's quantized matmul input: (max(dim, hidden_dim) / 4,) int8
/// words and (max / gs,) scales. `None` for fp32.
struct Quantized {
    buffers: Option<(GpuBuffer, GpuBuffer)>,
    group_size: Option<usize>,
}

/// Make every buffer, upload the weights, and record the forward pass.
pub fn build(device: &GpuDevice, pipelines: &Pipelines, c: &Config, w: &Weights, options: &Options) -> Result<Gpu> {
    let queue = device.queue();
    let limits = device.limits().into();
    let binding = limit(&limits, "maxStorageBufferBindingSize").min(limit(&limits, "maxBufferSize")) as u64;
    let piece_bytes = options.max_piece_bytes.map_or(binding, |p| p.min(binding));
    let max_groups = limit(&limits, "maxComputeWorkgroupsPerDimension") as u32;
    let m = &mut Maker { device, queue: &queue, bytes: 0, piece_bytes };
    let (dim, hidden_dim, kv_dim) = (c.dim, c.hidden_dim, c.kv_dim());
    let gs = w.group_size();

    // the run state, as RunState's
    let step = m.uniform("step", &[0; 4])?;
    let rope = m.storage("rope", c.head_size())?;
    let x = m.storage("x", dim)?;
    let xb = m.storage("xb", dim)?;
    let xb2 = m.storage("xb2", dim)?;
    let hb = m.storage("hb", hidden_dim)?;
    let hb2 = m.storage("hb2", hidden_dim)?;
    let q = m.storage("q", dim)?;
    let att = m.storage("att", c.n_heads * c.seq_len)?;
    let logits = m.storage("logits", c.vocab_size)?;
    let staging = m.buffer("staging", c.vocab_size as u64 * 4, STAGING)?;
    let quantized = Quantized {
        buffers: match gs {
            Some(gs) => {
                let n = dim.max(hidden_dim);
                Some((m.storage("xq", n / 4)?, m.storage("xs", n / gs)?))
            }
            None => None,
        },
        group_size: gs,
    };
    let len_dim = m.uniform("len", &[0, dim as u32, 0, 0])?;
    let len_hidden = m.uniform("len", &[0, hidden_dim as u32, 0, 0])?;
    let mut key_cache = Vec::new();
    let mut value_cache = Vec::new();
    for _ in 0..c.n_layers {
        key_cache.push(m.storage("key_cache", c.seq_len * kv_dim)?);
        value_cache.push(m.storage("value_cache", c.seq_len * kv_dim)?);
    }

    let mut r = Recorder { device, pipelines, max_groups, ops: Vec::new() };
    let (dim_groups, hidden_groups) = (Groups::Fixed(groups(dim, THREADS), 1), Groups::Fixed(groups(hidden_dim, THREADS), 1));

    // the embedding table's pieces
    let mut embed = Vec::new();
    for p in m.matrix("token_embedding_table", &w.token_embedding_table, 0, c.vocab_size, dim)? {
        embed.push(match p.data {
            PieceData::F32(table) => Embed::F32 { rows: p.rows, table },
            PieceData::Q8 { q: tq, s: ts } => {
                let mat = m.uniform("mat", &[p.rows.len() as u32, dim as u32, p.rows.start as u32, 0])?;
                Embed::Q8 { op: r.op("embed_q8", &[&step, &mat, &tq, &ts, &x], dim_groups), rows: p.rows, q: tq, s: ts }
            }
        });
    }

    for l in 0..c.n_layers {
        let rms_att = m.floats("rms_att_weight", &w.rms_att_weight[l * dim..][..dim])?;
        let rms_ffn = m.floats("rms_ffn_weight", &w.rms_ffn_weight[l * dim..][..dim])?;
        let (key, value) = (&key_cache[l], &value_cache[l]);
        // attention rmsnorm
        r.push("rmsnorm", &[&x, &rms_att, &xb], Groups::Fixed(1, 1));
        // qkv matmuls for this position (k and v straight into the cache)
        r.quantize(&quantized, &xb, &len_dim, dim);
        let wq = m.matrix("wq", &w.wq, l, dim, dim)?;
        r.matmul(m, &step, &wq, dim, &xb, &quantized, &q, 0)?;
        let wk = m.matrix("wk", &w.wk, l, kv_dim, dim)?;
        r.matmul(m, &step, &wk, dim, &xb, &quantized, key, kv_dim)?;
        let wv = m.matrix("wv", &w.wv, l, kv_dim, dim)?;
        r.matmul(m, &step, &wv, dim, &xb, &quantized, value, kv_dim)?;
        // RoPE: rotate q and this position's key
        r.push("rope", &[&step, &rope, &q, key], Groups::Fixed(groups(dim / 2, THREADS), 1));
        // multihead attention: scores, softmax, weighted sum of the values into xb
        r.push("scores", &[&step, &q, key, &att], Groups::Positions(c.n_heads as u32));
        r.push("softmax", &[&step, &att], Groups::Fixed(c.n_heads as u32, 1));
        r.push("mix", &[&step, &att, value, &xb], dim_groups);
        // the output of the attention, and the residual connection
        r.quantize(&quantized, &xb, &len_dim, dim);
        let wo = m.matrix("wo", &w.wo, l, dim, dim)?;
        r.matmul(m, &step, &wo, dim, &xb, &quantized, &xb2, 0)?;
        r.push("residual", &[&x, &xb2], dim_groups);
        // ffn rmsnorm; PyTorch: self.w2(F.silu(self.w1(x)) * self.w3(x))
        r.push("rmsnorm", &[&x, &rms_ffn, &xb], Groups::Fixed(1, 1));
        r.quantize(&quantized, &xb, &len_dim, dim);
        let w1 = m.matrix("w1", &w.w1, l, hidden_dim, dim)?;
        r.matmul(m, &step, &w1, dim, &xb, &quantized, &hb, 0)?;
        let w3 = m.matrix("w3", &w.w3, l, hidden_dim, dim)?;
        r.matmul(m, &step, &w3, dim, &xb, &quantized, &hb2, 0)?;
        r.push("swiglu", &[&hb, &hb2], hidden_groups);
        r.quantize(&quantized, &hb, &len_hidden, hidden_dim);
        let w2 = m.matrix("w2", &w.w2, l, dim, hidden_dim)?;
        r.matmul(m, &step, &w2, hidden_dim, &hb, &quantized, &xb, 0)?;
        r.push("residual", &[&x, &xb], dim_groups);
    }

    // final rmsnorm and classifier into logits
    let rms_final = m.floats("rms_final_weight", &w.rms_final_weight)?;
    r.push("rmsnorm", &[&x, &rms_final, &xb], Groups::Fixed(1, 1));
    r.quantize(&quantized, &xb, &len_dim, dim);
    let wcls = match &w.wcls {
        Some(wcls) => m.matrix("wcls", wcls, 0, c.vocab_size, dim)?,
        // shared with the embedding table: its pieces again
        None => embed_pieces(&embed),
    };
    r.matmul(m, &step, &wcls, dim, &xb, &quantized, &logits, 0)?;

    Ok(Gpu {
        device: device.clone(),
        queue: queue.clone(),
        info: AdapterInfo::default(),
        config: *c,
        step,
        rope,
        x,
        logits,
        staging,
        key_cache,
        value_cache,
        embed,
        program: r.ops,
        bytes: m.bytes,
    })
}

/// The classifier's pieces when it is the embedding table: the same buffers.
fn embed_pieces(embed: &[Embed]) -> Vec<Piece> {
    embed
        .iter()
        .map(|e| match e {
            Embed::F32 { rows, table } => Piece { rows: rows.clone(), data: PieceData::F32(table.clone()) },
            Embed::Q8 { rows, q, s, .. } => Piece { rows: rows.clone(), data: PieceData::Q8 { q: q.clone(), s: s.clone() } },
        })
        .collect()
}
