//! The forward pass on the GPU, through the browser's WebGPU (web-sys).
//!
//! `Gpu::new` finds a device (`device.rs`: limits checked first), compiles
//! the kernels (`wgsl.rs`), uploads the weights once (`buffers.rs`: each
//! layer's matrices in their own buffers, cut into pieces when larger than
//! one binding may be) and records the forward pass as a list of
//! dispatches (`program.rs`, run.c's order). `Gpu::forward` then costs one
//! command submission per token: the token and position go in through a
//! small uniform write, every intermediate vector stays on the GPU, the KV
//! cache lives there, and only the logits come back (`mapAsync`).
//!
//! Sampling stays on the CPU (run.c's sampler and random numbers), in
//! `Llama::step_with_logits`; `llama/backends.rs` keeps the CPU's and the
//! GPU's KV caches in step when the backends change hands.
//!
//! Limits of this backend: dim and hidden_dim must be multiples of 4 (the
//! fp32 matmul loads four floats at a time) and a Q8_0 group size a
//! multiple of 4 (four int8 values per word); one layer's KV cache
//! (seq_len × kv_dim floats) must fit one binding.

mod buffers;
mod device;
mod program;
mod wgsl;

use js_sys::{Array, Float32Array, JsNullable, Promise, Undefined};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{gpu_buffer_usage as usage, gpu_map_mode, GpuBuffer, GpuDevice, GpuError, GpuErrorFilter, GpuQueue};

pub use device::{adapter, AdapterInfo, Need};

use self::device::js_message;
use self::program::{Embed, Op};
use crate::checkpoint::{Config, Weights};
use crate::error::{Error, Result};

/// A model on the GPU: its weights, its KV cache and the recorded forward pass.
pub struct Gpu {
    device: GpuDevice,
    queue: GpuQueue,
    info: AdapterInfo,
    config: Config,
    /// (4,) u32: token, pos, padding
    step: GpuBuffer,
    /// (head_size,) cos of each pair's angle at this position, then sin
    rope: GpuBuffer,
    /// (dim,) the residual stream, where the embedding goes
    x: GpuBuffer,
    /// (vocab_size,) read back through `staging`
    logits: GpuBuffer,
    staging: GpuBuffer,
    key_cache: Vec<GpuBuffer>,   // (layer) of (seq_len, kv_dim)
    value_cache: Vec<GpuBuffer>, // (layer) of (seq_len, kv_dim)
    /// The embedding table's pieces (the token picks one).
    embed: Vec<Embed>,
    /// Everything after the embedding, in run.c's order.
    program: Vec<Op>,
    /// Bytes of GPU memory held.
    bytes: u64,
}

/// How `Gpu::new` should go about it.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Limits to ask for beyond what the model needs (WebGPU's names).
    pub required_limits: Vec<(String, f64)>,
    /// Cut matrices into pieces of at most this many bytes even when a
    /// binding could hold more (tests the pieces with a small model).
    pub max_piece_bytes: Option<u64>,
}

/// What this backend cannot run, before any GPU is asked.
fn check_shapes(c: &Config, group_size: Option<usize>) -> Result<()> {
    if c.dim % 4 != 0 || c.hidden_dim % 4 != 0 {
        return Err(Error::Gpu(format!(
            "the WebGPU backend needs dim and hidden_dim to be multiples of 4 (this model: {} and {}): run on the CPU",
            c.dim, c.hidden_dim
        )));
    }
    if let Some(gs) = group_size.filter(|gs| gs % 4 != 0) {
        return Err(Error::Gpu(format!(
            "the WebGPU backend needs a Q8_0 group size that is a multiple of 4 (this model: {gs}): run on the CPU"
        )));
    }
    Ok(())
}

/// The limits the model needs (beyond WebGPU's defaults where they suffice).
fn needs(c: &Config, group_size: Option<usize>, options: &Options) -> Vec<Need> {
    let kv = (c.seq_len * c.kv_dim()) as f64 * 4.0;
    let largest = kv.max((c.n_heads * c.seq_len) as f64 * 4.0).max(c.vocab_size as f64 * 4.0).max(c.hidden_dim as f64 * 4.0);
    let what = format!("this model's largest buffer that cannot be split (one layer's KV cache is {} bytes)", kv as u64);
    let mut needs = vec![
        Need { limit: "maxStorageBufferBindingSize".into(), value: largest, what: what.clone() },
        Need { limit: "maxBufferSize".into(), value: largest, what },
        Need {
            limit: "maxStorageBuffersPerShaderStage".into(),
            value: if group_size.is_some() { 5.0 } else { 3.0 },
            what: "the matmul kernel".into(),
        },
    ];
    for (limit, value) in &options.required_limits {
        needs.retain(|n| &n.limit != limit || n.value > *value);
        needs.push(Need { limit: limit.clone(), value: *value, what: "the caller (useGpu's requiredLimits)".into() });
    }
    needs
}

impl Gpu {
    /// Find a GPU, compile the kernels and upload `weights`.
    pub async fn new(config: &Config, weights: &Weights, options: &Options) -> Result<Gpu> {
        let gs = weights.group_size();
        check_shapes(config, gs)?;
        let (device, info) = device::open(&needs(config, gs, options)).await?;
        let result = Gpu::build(device.clone(), info, config, weights, options).await;
        if result.is_err() {
            device.destroy(); // free what was uploaded
        }
        result
    }

    async fn build(device: GpuDevice, info: AdapterInfo, config: &Config, weights: &Weights, options: &Options) -> Result<Gpu> {
        let pipelines = program::compile(&device, config, weights.group_size()).await?;
        // errors of buffer creation and writes surface only through error scopes
        device.push_error_scope(GpuErrorFilter::OutOfMemory);
        device.push_error_scope(GpuErrorFilter::Validation);
        let built = program::build(&device, &pipelines, config, weights, options);
        let validation = device.pop_error_scope().await;
        let oom = device.pop_error_scope().await;
        let mut gpu = built?;
        gpu.info = info;
        if let Some(e) = oom.ok().and_then(|e| e.into_option()) {
            return Err(Error::Gpu(format!(
                "out of GPU memory while uploading the model ({} bytes of weights and KV cache): {}; run on the CPU",
                crate::error::thousands(gpu.bytes),
                js_message(&e)
            )));
        }
        if let Some(e) = validation.ok().and_then(|e| e.into_option()) {
            return Err(Error::Gpu(format!("WebGPU refused the model's buffers: {}", js_message(&e))));
        }
        Ok(gpu)
    }

    /// The adapter, as the browser describes it.
    pub fn info(&self) -> &AdapterInfo {
        &self.info
    }

    /// Bytes of GPU memory held (weights, KV cache, activations).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Give the GPU memory back (the device is unusable afterwards); also
    /// the way tests lose the device on purpose.
    pub fn destroy(&self) {
        self.device.destroy();
    }

    /// Positions `from..to` of the CPU's KV cache `key_cache`, `value_cache`
    /// (layer, seq_len, kv_dim) into the GPU's.
    pub fn upload_kv(&self, key_cache: &[f32], value_cache: &[f32], from: usize, to: usize) -> Result<()> {
        let c = &self.config;
        let kv_dim = c.kv_dim();
        for l in 0..c.n_layers {
            let at = (l * c.seq_len + from) * kv_dim..(l * c.seq_len + to) * kv_dim;
            let offset = (from * kv_dim * 4) as u64;
            buffers::write_f32(&self.queue, &self.key_cache[l], offset, &key_cache[at.clone()])?;
            buffers::write_f32(&self.queue, &self.value_cache[l], offset, &value_cache[at])?;
        }
        Ok(())
    }

    /// The forward pass of `token` at `pos` (RoPE's `cos`, `sin` of that
    /// position from the CPU), one submission: the logits (vocab_size,).
    /// Writes position `pos` of the GPU's KV cache and reads 0..pos.
    pub async fn forward(&self, token: u32, pos: usize, cos: &[f32], sin: &[f32]) -> Result<Vec<f32>> {
        self.submit(token, pos, cos, sin)?.wait().await?;
        self.read_logits()
    }

    /// `forward` in two halves, so that nothing is borrowed while the GPU
    /// works: `submit` records and submits the pass and starts mapping the
    /// logits for reading; once `Submitted::wait` resolved, `read_logits`
    /// copies them out.
    pub fn submit(&self, token: u32, pos: usize, cos: &[f32], sin: &[f32]) -> Result<Submitted> {
        let c = &self.config;
        let words = [token, pos as u32, 0, 0];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        buffers::write_bytes(&self.queue, &self.step, 0, &bytes)?;
        let rope: Vec<f32> = cos.iter().chain(sin).copied().collect();
        buffers::write_f32(&self.queue, &self.rope, 0, &rope)?;

        let embed = self.embed.iter().find(|e| e.rows().contains(&(token as usize))).ok_or_else(|| {
            Error::Argument(format!("token {token} is outside the vocabulary ({})", c.vocab_size))
        })?;
        self.device.push_error_scope(GpuErrorFilter::Validation);
        let encoder = self.device.create_command_encoder();
        let copy_refused = |e: JsValue| Error::Gpu(format!("WebGPU refused a copy: {}", js_message(&e)));
        if let Embed::F32 { rows, table } = embed {
            // the token's row of the table into x
            let row = ((token as usize - rows.start) * c.dim * 4) as u32;
            if let Err(e) = encoder.copy_buffer_to_buffer_with_u32_and_u32_and_u32(table, row, &self.x, 0, (c.dim * 4) as u32) {
                let _ = self.device.pop_error_scope();
                return Err(copy_refused(e));
            }
        }
        let pass = encoder.begin_compute_pass();
        if let Embed::Q8 { op, .. } = embed {
            op.encode(&pass, pos);
        }
        for op in &self.program {
            op.encode(&pass, pos);
        }
        pass.end();
        let logit_bytes = (c.vocab_size * 4) as u32;
        if let Err(e) = encoder.copy_buffer_to_buffer_with_u32_and_u32_and_u32(&self.logits, 0, &self.staging, 0, logit_bytes) {
            let _ = self.device.pop_error_scope();
            return Err(copy_refused(e));
        }
        self.queue.submit(&[encoder.finish()]);
        let validation = self.device.pop_error_scope();
        let map = self.staging.map_async(gpu_map_mode::READ);
        Ok(Submitted { map, validation, device: self.device.clone() })
    }

    /// The logits of the pass whose `Submitted::wait` resolved (the
    /// read-back buffer is unmapped again, ready for the next pass).
    pub fn read_logits(&self) -> Result<Vec<f32>> {
        let logits = self
            .staging
            .get_mapped_range()
            .map(|range| Float32Array::new(&range).to_vec())
            .map_err(|e| Error::Gpu(format!("could not read the logits back: {}", js_message(&e))));
        self.staging.unmap();
        logits
    }

    /// A pass that was waited for but whose logits are not wanted: the
    /// read-back buffer is unmapped for the next.
    pub fn discard_logits(&self) {
        self.staging.unmap();
    }
}

/// A forward pass on its way (`Gpu::submit`). Only JavaScript handles: the
/// wait borrows neither the `Gpu` nor the model.
pub struct Submitted {
    map: Promise<Undefined>,
    validation: Promise<JsNullable<GpuError>>,
    device: GpuDevice,
}

impl Submitted {
    /// Resolves once the logits can be read; fails when the GPU stopped
    /// answering (a lost device) or refused the pass.
    pub async fn wait(self) -> Result<()> {
        if let Err(e) = self.map.await {
            return Err(Error::Gpu(format!(
                "the GPU stopped answering ({}; {}): call useCpu() to go on on the CPU",
                lost_reason(&self.device).await,
                js_message(&e)
            )));
        }
        if let Some(e) = self.validation.await.ok().and_then(|e| e.into_option()) {
            return Err(Error::Gpu(format!("WebGPU refused the forward pass: {}", js_message(&e))));
        }
        Ok(())
    }
}

/// Why `device` was lost, if it was ("device lost: ..."), else a guess.
async fn lost_reason(device: &GpuDevice) -> String {
    // device.lost settles only once it happened, and a moment after the
    // failure it explains: race it with a quarter of a second
    let lost: JsValue = device.lost().into();
    let race = Promise::race(&Array::of2(&lost, &after_ms(250)));
    match race.await {
        Ok(info) if !info.is_null() && !info.is_undefined() => {
            format!("the GPU device was lost: {}", js_message(&info))
        }
        _ => "the GPU device did not say why".into(),
    }
}

/// A Promise that resolves to `null` after `ms` milliseconds (the global
/// `setTimeout`: a page's or a Worker's).
fn after_ms(ms: i32) -> JsValue {
    let timer = Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).ok();
        match set_timeout.and_then(|f| f.dyn_into::<js_sys::Function>().ok()) {
            Some(f) => {
                let _ = f.call2(&JsValue::UNDEFINED, &resolve, &ms.into());
            }
            None => {
                let _ = resolve.call1(&JsValue::UNDEFINED, &JsValue::NULL);
            }
        }
    });
    timer.into()
}

/// `GPUBufferUsage` of the read-back buffer.
const STAGING: u32 = usage::MAP_READ | usage::COPY_DST;

/// Workgroups for `n` threads of `per` threads each.
fn groups(n: usize, per: u32) -> u32 {
    (n as u32).div_ceil(per)
}
