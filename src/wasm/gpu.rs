//! `Model`'s WebGPU backend, as JavaScript sees it: `useGpu()` (a Promise:
//! find a GPU, compile the kernels, upload the weights), `useCpu()`,
//! `backend`, `gpuAdapter`, and `stepAsync()`, which resolves to exactly
//! what `step()` returns, the forward pass run on the GPU and the sampler
//! on the CPU.
//!
//! Switching backends mid-generation is allowed at any step: the backend
//! that is behind catches up (`llama/backends.rs`: the CPU runs the missing
//! positions again, the GPU gets them uploaded from the CPU's cache). So
//! after a lost device (`stepAsync` rejects and says so) `useCpu()` and
//! `step()` go on with the same text; the first CPU step then costs one
//! forward pass per position the GPU ran. `step()` always runs on the CPU.
//!
//! `useGpu()` borrows nothing while the GPU is set up: the model goes on
//! working on the CPU meanwhile (the weights are shared, read-only), and the
//! GPU takes over once its Promise resolved (`useCpu()` or another
//! `useGpu()` before that cancels it). While a `stepAsync()` is pending the
//! model is borrowed: await it before calling anything else on the model
//! (else wasm-bindgen throws "recursive use of an object"). A page whose buttons may call the
//! model at any moment uses the two halves of `stepAsync` instead:
//! `beginStep()` submits the pass and returns a Promise that holds no
//! borrow, `endStep()` samples from its logits. Calls in between are fine;
//! if they changed the generation (a new one, an undo), `endStep` refuses
//! the stale logits.
//!
//! With the inspector open the GPU runs too: each step's record holds the
//! GPU's logits (`topk`, `logits`), `recordBackend` is "webgpu", and as
//! nothing else is read back it has no attention and no phase timings, only
//! the whole step's time (see `Model::timings`); `inspectAt(pos)` replays a
//! position on the CPU for those.

use wasm_bindgen::prelude::*;

use super::args::{gpu_options_arg, index_from_js, token_from_js};
#[cfg(web_sys_unstable_apis)]
use super::args::performance_now;
use super::model::Model;
use crate::error::Error;

use js_sys::Promise;

#[cfg(web_sys_unstable_apis)]
use super::object::Fields;
#[cfg(web_sys_unstable_apis)]
use crate::gpu::{Gpu, Options};
#[cfg(web_sys_unstable_apis)]
use std::{cell::RefCell, rc::Rc};

/// The GPU backend of one model: on (`gpu`), whether its device was lost
/// (then every step says so until `useCpu` or `useGpu`), the step
/// submitted by `beginStep` that `endStep` has not taken yet, and which
/// `useGpu` call may still install its GPU (`setup`: counts the calls of
/// `useGpu` and `useCpu`; a setup that finds it changed was cancelled).
#[cfg(web_sys_unstable_apis)]
#[derive(Default)]
pub(super) struct Backend {
    gpu: Option<Rc<Gpu>>,
    lost: Option<String>,
    pending: Option<Pending>,
    setup: u64,
}

/// `Model`'s hold on its backend: shared with a `useGpu` on its way, which
/// installs the GPU when it is ready (without borrowing the model).
#[cfg(web_sys_unstable_apis)]
pub(super) type GpuSlot = Rc<RefCell<Backend>>;
#[cfg(not(web_sys_unstable_apis))]
pub(super) type GpuSlot = Backend;

/// A forward pass on the GPU: its token and position, when it was
/// submitted, and how its wait ended (`None` while the GPU works; the
/// Promise's future writes it: the time its logits were ready, or the
/// failure).
#[cfg(web_sys_unstable_apis)]
struct Pending {
    token: u32,
    pos: usize,
    submitted_at: f64,
    done: Rc<RefCell<Option<Result<f64, String>>>>,
}

/// Built without web-sys's WebGPU bindings: always the CPU.
#[cfg(not(web_sys_unstable_apis))]
#[derive(Default)]
pub(super) struct Backend;

#[cfg(not(web_sys_unstable_apis))]
const NO_GPU: &str = "this build of the engine has no WebGPU backend (built without --cfg=web_sys_unstable_apis): run on the CPU";

#[cfg(web_sys_unstable_apis)]
impl Backend {
    /// Give the GPU memory back (a pass on its way then fails, and its
    /// `beginStep` Promise rejects; a `useGpu` on its way is cancelled).
    fn release(&mut self) {
        if let Some(gpu) = self.gpu.take() {
            gpu.destroy();
        }
        self.lost = None;
        self.pending = None;
        self.setup += 1;
    }
}

/// The adapter as JavaScript sees it: `{ vendor, architecture, device, description }`.
#[cfg(web_sys_unstable_apis)]
fn adapter_fields(i: &crate::gpu::AdapterInfo) -> Fields {
    Fields::new()
        .text("vendor", &i.vendor)
        .text("architecture", &i.architecture)
        .text("device", &i.device)
        .text("description", &i.description)
}

/// `findGpu()`: the adapter `useGpu()` would get, `{ vendor, architecture,
/// device, description }`, or a rejection saying why there is none (this
/// browser has no WebGPU; WebGPU offers no adapter), in `useGpu`'s words.
/// Asks for no device and touches no model: a page asks this first, and
/// only a browser with an adapter gets a model borrowed by `useGpu`.
#[wasm_bindgen(js_name = findGpu)]
pub async fn find_gpu() -> Result<JsValue, JsError> {
    #[cfg(web_sys_unstable_apis)]
    {
        let (_, info) = crate::gpu::adapter().await?;
        Ok(adapter_fields(&info).build())
    }
    #[cfg(not(web_sys_unstable_apis))]
    Err(Error::Gpu(NO_GPU.into()).into())
}

#[wasm_bindgen]
impl Model {
    /// Run the forward pass on the GPU from the next `stepAsync()` on: find
    /// a WebGPU adapter, check its limits, compile the kernels, upload the
    /// weights (once; they stay on the GPU). Resolves when ready; rejects
    /// with the reason (no WebGPU, no adapter, a limit too small: named
    /// with both values, a kernel that does not compile, out of GPU
    /// memory), and the model then runs on the CPU.
    ///
    /// `options` (optional): `requiredLimits`, WebGPU limits to insist on
    /// (`{ maxStorageBufferBindingSize: 2 ** 30 }`), and `maxPieceBytes`,
    /// the most bytes of one matrix per GPU buffer (larger ones are cut
    /// into pieces of whole rows; default: the GPU's binding limit).
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&mut self, options: JsValue) -> Result<Promise, JsError> {
        let (required_limits, max_piece_bytes) = gpu_options_arg(&options)?;
        #[cfg(web_sys_unstable_apis)]
        {
            let setup = {
                let mut b = self.gpu.borrow_mut();
                b.release();
                b.setup
            };
            self.llama.set_gpu_held(0);
            let t = self.llama.transformer();
            let (config, weights) = (t.header.config, t.weights.clone());
            let slot = self.gpu.clone();
            let options = Options { required_limits, max_piece_bytes };
            // nothing of the model is borrowed while this runs: only the
            // weights (shared, read-only) and the slot the GPU goes into
            Ok(wasm_bindgen_futures::future_to_promise(async move {
                let gpu = Gpu::new(&config, &weights, &options).await.map_err(|e| JsValue::from(JsError::from(e)))?;
                let mut b = slot.borrow_mut();
                // (the model itself gone: only this future holds the slot)
                if b.setup != setup || Rc::strong_count(&slot) == 1 {
                    gpu.destroy();
                    let why = "useGpu() was cancelled: useCpu() or another useGpu() was called before it finished";
                    return Err(JsError::from(Error::Gpu(why.into())).into());
                }
                b.gpu = Some(Rc::new(gpu));
                Ok(JsValue::UNDEFINED)
            }))
        }
        #[cfg(not(web_sys_unstable_apis))]
        {
            let _ = (required_limits, max_piece_bytes);
            Err(Error::Gpu(NO_GPU.into()).into())
        }
    }

    /// Back to the CPU: the GPU memory is given back. The CPU's KV cache
    /// catches up at the next step (it runs again the positions the GPU ran).
    #[wasm_bindgen(js_name = useCpu)]
    pub fn use_cpu(&mut self) {
        #[cfg(web_sys_unstable_apis)]
        self.gpu.borrow_mut().release();
        self.llama.set_gpu_held(0);
    }

    /// "webgpu" after `useGpu()` resolved (also once its device is lost,
    /// until `useCpu()`), else "cpu".
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        #[cfg(web_sys_unstable_apis)]
        if self.gpu.borrow().gpu.is_some() {
            return "webgpu".into();
        }
        "cpu".into()
    }

    /// The GPU in use, as the browser describes it: `{ vendor,
    /// architecture, device, description, bytes }` (browsers may leave the
    /// strings empty; `bytes`: GPU memory this model holds), or `undefined`
    /// on the CPU.
    #[wasm_bindgen(getter, js_name = gpuAdapter)]
    pub fn gpu_adapter(&self) -> JsValue {
        #[cfg(web_sys_unstable_apis)]
        if let Some(gpu) = &self.gpu.borrow().gpu {
            return adapter_fields(gpu.info()).num("bytes", gpu.bytes()).build();
        }
        JsValue::UNDEFINED
    }

    /// `step()` with the forward pass on the GPU (after `useGpu()`): a
    /// Promise of exactly what `step()` returns (the next piece of text,
    /// or `undefined` when finished). On the CPU it resolves `step()`.
    /// Rejects when the GPU fails (its device lost: then `useCpu()` and
    /// go on). With the inspector open it records the GPU's logits only
    /// (see the module's notes). The model stays borrowed until it
    /// settles: see `beginStep` for the halves that leave it free.
    #[wasm_bindgen(js_name = stepAsync)]
    pub async fn step_async(&mut self) -> Result<Option<String>, JsError> {
        let submitted = self.begin_step()?;
        // a rejection is recorded in the pending step: endStep reports it
        let _ = wasm_bindgen_futures::JsFuture::from(submitted).await;
        self.end_step()
    }

    /// The first half of `stepAsync()`: submit the next forward pass to the
    /// GPU and return a Promise that resolves (to `undefined`) once its
    /// logits are ready, or rejects with the GPU's failure. Nothing is
    /// borrowed meanwhile; call `endStep()` after it settled. With nothing
    /// to run on the GPU (the CPU backend, a finished generation) it
    /// resolves at once and `endStep()` does what `step()` does. Throws
    /// while another pass is on its way.
    #[wasm_bindgen(js_name = beginStep)]
    pub fn begin_step(&mut self) -> Result<Promise, JsError> {
        let done = Promise::resolve(&JsValue::UNDEFINED);
        #[cfg(web_sys_unstable_apis)]
        if let Some((gpu, mut b)) = gpu_on(&self.gpu)? {
            if let Some(p) = b.pending.take() {
                let finished = p.done.borrow().clone();
                match finished {
                    None => {
                        b.pending = Some(p);
                        return Err(Error::State("a GPU step is still on its way: wait for beginStep()'s Promise, then endStep()").into());
                    }
                    // finished but never taken (the page moved on): let its logits go
                    Some(Ok(_)) => gpu.discard_logits(),
                    Some(Err(why)) => {
                        b.lost = Some(why.clone());
                        return Err(Error::Gpu(why).into());
                    }
                }
            }
            let Some((token, pos)) = self.llama.next_forward() else {
                return Ok(done);
            };
            // positions the CPU ran since the GPU last did: upload them
            let held = self.llama.held();
            if held.gpu < pos {
                self.llama.catch_up_cpu(pos)?;
                let s = &self.llama.transformer().state;
                gpu.upload_kv(&s.key_cache, &s.value_cache, held.gpu, pos)?;
                self.llama.set_gpu_held(pos);
            }
            let (cos, sin) = rope(&self.llama, pos);
            let submitted_at = performance_now();
            let submitted = match gpu.submit(token, pos, &cos, &sin) {
                Ok(s) => s,
                Err(e) => {
                    b.lost = Some(e.to_string());
                    return Err(e.into());
                }
            };
            let outcome = Rc::new(RefCell::new(None));
            b.pending = Some(Pending { token, pos, submitted_at, done: outcome.clone() });
            return Ok(wasm_bindgen_futures::future_to_promise(async move {
                let result = submitted.wait().await;
                *outcome.borrow_mut() = Some(result.as_ref().map(|_| performance_now()).map_err(|e| e.to_string()));
                result.map(|_| JsValue::UNDEFINED).map_err(|e| JsValue::from(JsError::from(e)))
            }));
        }
        Ok(done)
    }

    /// The second half of `stepAsync()`, once `beginStep()`'s Promise
    /// settled: sample from the GPU's logits, exactly as `step()` goes on
    /// (the next piece of text, or `undefined` when finished). With the
    /// inspector open the position's record is the GPU's: its logits, what
    /// followed, and the whole step's time: the GPU's pass from submission
    /// until its logits were ready, plus this call's sampling (the time
    /// the page took to call `endStep` is not counted). Throws the
    /// GPU's failure if the pass failed (then `useCpu()` and go on), and
    /// refuses logits that no longer fit the generation (it was restarted
    /// or undone meanwhile: `beginStep()` again).
    #[wasm_bindgen(js_name = endStep)]
    pub fn end_step(&mut self) -> Result<Option<String>, JsError> {
        #[cfg(web_sys_unstable_apis)]
        if let Some((gpu, mut b)) = gpu_on(&self.gpu)? {
            let Some(p) = b.pending.take() else {
                if self.llama.next_forward().is_none() {
                    return Ok(self.llama.step()?.map(|s| s.text)); // nothing to run: what step() says (the end)
                }
                return Err(Error::State("no GPU step on its way: beginStep() first").into());
            };
            let finished = p.done.borrow().clone();
            return match finished {
                None => {
                    b.pending = Some(p);
                    Err(Error::State("the GPU step has not finished: wait for beginStep()'s Promise").into())
                }
                Some(Err(why)) => {
                    b.lost = Some(why.clone());
                    Err(Error::Gpu(why).into())
                }
                Some(Ok(ready_at)) => {
                    let logits = gpu.read_logits()?;
                    if self.llama.next_forward() != Some((p.token, p.pos)) || self.llama.held().gpu < p.pos {
                        return Err(Error::State(
                            "the generation changed while the GPU ran its step (a new start or an undo): beginStep() again",
                        )
                        .into());
                    }
                    // the GPU's part of the step, for the inspector's record
                    let gpu_ms = ready_at - p.submitted_at;
                    Ok(self.llama.step_with_logits(&logits, gpu_ms)?.map(|s| s.text))
                }
            };
        }
        self.step()
    }

    /// TEST ONLY: the logits (vocab_size,) of one forward pass of `token`
    /// at `pos` on the current backend, outside any generation (the
    /// current one ends; position `pos` of that backend's KV cache is
    /// written, 0..pos are what earlier calls left): the GPU's and the
    /// CPU's logits side by side.
    #[wasm_bindgen(js_name = __forwardForTest)]
    pub async fn forward_for_test(&mut self, token: JsValue, pos: JsValue) -> Result<Vec<f32>, JsError> {
        let c = *self.llama.config();
        let token = token_from_js(&token, c.vocab_size)?;
        let pos = index_from_js(&pos, "pos")?;
        if pos >= c.seq_len {
            return Err(Error::Argument(format!("position {pos} is beyond seq_len {}", c.seq_len)).into());
        }
        #[cfg(web_sys_unstable_apis)]
        if self.gpu.borrow().gpu.is_some() {
            self.llama.end_sequence();
            return Ok(self.gpu_forward(token, pos).await?);
        }
        Ok(self.llama.forward_alone(token, pos)?.to_vec())
    }

    /// TEST ONLY: lose the GPU device on purpose (`GPUDevice.destroy()`),
    /// as a driver crash or a reset would; the next `stepAsync` rejects.
    #[wasm_bindgen(js_name = __loseGpuForTest)]
    pub fn lose_gpu_for_test(&self) {
        #[cfg(web_sys_unstable_apis)]
        if let Some(gpu) = &self.gpu.borrow().gpu {
            gpu.destroy();
        }
    }
}

#[cfg(web_sys_unstable_apis)]
impl Model {
    /// The GPU's forward pass of `token` at `pos` (RoPE's rotation from the
    /// CPU's kernels); a failure marks the device lost.
    async fn gpu_forward(&mut self, token: u32, pos: usize) -> Result<Vec<f32>, Error> {
        let (cos, sin) = rope(&self.llama, pos);
        let gpu = self.gpu.borrow().gpu.clone().ok_or(Error::State("the GPU backend is off: useGpu() first"))?;
        let result = gpu.forward(token, pos, &cos, &sin).await;
        if let Err(e) = &result {
            self.gpu.borrow_mut().lost = Some(e.to_string());
        }
        result
    }
}

/// `gpu_on`'s answer: the GPU, and the backend borrowed for changing.
#[cfg(web_sys_unstable_apis)]
type OnGpu<'a> = (Rc<Gpu>, std::cell::RefMut<'a, Backend>);

/// The GPU, when the backend is on, and the backend to change (its
/// pending step, whether it was lost); refused once its device was lost.
#[cfg(web_sys_unstable_apis)]
fn gpu_on(slot: &GpuSlot) -> Result<Option<OnGpu<'_>>, Error> {
    let Some(gpu) = slot.borrow().gpu.clone() else {
        return Ok(None);
    };
    let b = slot.borrow_mut();
    if let Some(why) = &b.lost {
        return Err(Error::Gpu(why.clone()));
    }
    Ok(Some((gpu, b)))
}

/// RoPE's rotation at `pos` from the CPU's kernels: (cos, sin), each
/// (head_size / 2,), so both backends rotate by the same numbers.
#[cfg(web_sys_unstable_apis)]
fn rope(llama: &crate::llama::Llama, pos: usize) -> (Vec<f32>, Vec<f32>) {
    let half = llama.config().head_size() / 2;
    let (mut cos, mut sin) = (vec![0.0; half], vec![0.0; half]);
    llama.transformer().rope_rotation(pos, &mut cos, &mut sin);
    (cos, sin)
}
