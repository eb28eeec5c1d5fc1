//! `Model`'s inspector methods: open it, replay a position, and read what
//! was recorded (next-token candidates, attention, timings, walkthrough).
//! Everything goes through `Llama`'s inspector API.
//!
//! A record of a step the GPU ran (`stepAsync`, `endStep`; `recordBackend`
//! is "webgpu") holds the GPU's logits: `topk` and `logits` work as on the
//! CPU. Nothing else is read back from the GPU, so `attention` and
//! `attentionAll` throw (saying to replay it: `inspectAt(pos)` runs the
//! position on the CPU, exactly, with attention and phase timings),
//! `timings` has only the whole step (`{ backend: "webgpu", total }`, no
//! phases) and `trace` is empty.

use js_sys::{Array, Float32Array, Int32Array, Int8Array};
use wasm_bindgen::prelude::*;

use super::args::{bool_arg, describe, index_from_js, js_number, performance_now, string_arg, token_from_js, whole_from_js};
use super::model::Model;
use super::object::Fields;
use crate::error::Error;
use crate::inspect::{
    check_follow, index_error, layer_error, Clock, Follow, Kind, LensCandidate, Live, Matmul, Phase, Prediction, Record, Stage,
};

/// The names of `timingsAll()`'s columns, in order: the keys of
/// `timings()` without `total` (the phases a step's time is split into).
#[wasm_bindgen(js_name = timingPhases)]
pub fn timing_phases() -> Vec<String> {
    Phase::ALL.iter().map(|p| p.name().to_string()).collect()
}

/// A copy of `v` for JS (never a view into wasm memory).
fn f32s(v: &[f32]) -> JsValue {
    Float32Array::from(v).into()
}

/// `Follow`'s matmul as JS fields (see `Model::follow`).
fn matmul_fields(f: Fields, m: &Matmul) -> Fields {
    let rope = m.rope.as_ref().map_or(JsValue::UNDEFINED, |r| {
        Fields::new()
            .num("pair", r.pair)
            .num("freq", r.freq)
            .num("cos", r.cos)
            .num("sin", r.sin)
            .num("own", r.own)
            .num("partnerIndex", r.partner_index)
            .num("partner", r.partner)
            .num("rotated", r.rotated)
            .build()
    });
    let quantized = m.quantized.as_ref().map_or(JsValue::UNDEFINED, |q| {
        Fields::new()
            .num("groupSize", q.group_size)
            .value("weightsQ", Int8Array::from(&q.weights_q[..]).into())
            .value("weightScales", f32s(&q.weight_scales))
            .value("inputQ", Int8Array::from(&q.input_q[..]).into())
            .value("inputScales", f32s(&q.input_scales))
            .value("groupDots", Int32Array::from(&q.group_dots[..]).into())
            .build()
    });
    f.text("matrix", m.matrix)
        .num("row", m.row)
        .value("weights", f32s(&m.weights))
        .value("input", f32s(&m.input))
        .value("products", f32s(&m.products))
        .value("partialSums", f32s(&m.partial_sums))
        .num("sum", m.sum)
        .num("dot", m.dot)
        .maybe("xBefore", m.x_before)
        .value("rope", rope)
        .value("quantized", quantized)
}

/// A `Follow` as the JS object `Model::follow` documents.
fn follow_object(f: &Follow) -> JsValue {
    let base = Fields::new()
        .num("pos", f.pos)
        .num("token", f.token)
        .text("stage", f.stage.id())
        .text("name", f.stage.name())
        .maybe("layer", f.layer)
        .num("index", f.index)
        .num("value", f.value)
        .text("kind", f.kind.name());
    let fields = match &f.kind {
        Kind::Embedding(e) => {
            let quantized = e.quantized.map_or(JsValue::UNDEFINED, |(q, scale)| {
                Fields::new().num("q", q as i32).num("scale", scale).build()
            });
            base.value("row", f32s(&e.row)).value("quantized", quantized)
        }
        Kind::Rmsnorm(r) => base
            .text("weightName", r.weight_name)
            .value("input", f32s(&r.input))
            .num("x", r.x)
            .num("weight", r.weight)
            .num("sumSquares", r.sum_squares)
            .num("meanSquare", r.mean_square)
            .num("eps", r.eps)
            .num("rms", r.rms)
            .num("invRms", r.inv_rms)
            .num("recomputed", r.recomputed),
        Kind::Matmul(m) => matmul_fields(base, m),
        Kind::Swiglu(s) => base
            .value("w1", matmul_fields(Fields::new(), &s.w1).build())
            .value("w3", matmul_fields(Fields::new(), &s.w3).build())
            .num("sigmoid", s.sigmoid)
            .num("silu", s.silu)
            .num("recomputed", s.recomputed),
        Kind::Attention(a) => base
            .num("head", a.head)
            .num("kvHead", a.kv_head)
            .value("query", f32s(&a.query))
            .value("key", f32s(&a.key))
            .value("products", f32s(&a.products))
            .value("partialSums", f32s(&a.partial_sums))
            .num("scale", a.scale)
            .value("scores", f32s(&a.scores))
            .value("weights", f32s(&a.weights))
            .num("max", a.max)
            .num("exp", a.exp)
            .num("sumExp", a.sum_exp)
            .num("recomputed", a.recomputed),
        Kind::AttOutput(o) => base
            .num("head", o.head)
            .num("kvHead", o.kv_head)
            .num("offset", o.offset)
            .value("weights", f32s(&o.weights))
            .value("values", f32s(&o.values))
            .value("products", f32s(&o.products))
            .value("partialSums", f32s(&o.partial_sums)),
    };
    fields.build()
}

/// `{ backend: "cpu", projections, attention, ffn, classifier, sampling,
/// other, total }` in ms; a GPU's step `{ backend: "webgpu", total }`.
fn timings_object(live: &Live) -> JsValue {
    match live {
        Live::Cpu(t) => {
            let fields = Phase::ALL.iter().fold(Fields::new().text("backend", "cpu"), |f, &p| f.num(p.name(), t.get(p)));
            fields.num("total", t.total()).build()
        }
        Live::Gpu(ms) => Fields::new().text("backend", "webgpu").num("total", *ms).build(),
    }
}

/// The backend that ran a record's forward pass, as `Model.backend` names it.
fn backend_name(r: &Record) -> &'static str {
    if r.gpu {
        "webgpu"
    } else {
        "cpu"
    }
}

#[wasm_bindgen]
impl Model {
    /// The inspector: `model.inspect = true` makes every following `step()`
    /// record its logits, attention weights and timings (read them with
    /// `topk`, `attention`, `timings`); `false` (the default) records nothing.
    #[wasm_bindgen(getter)]
    pub fn inspect(&self) -> bool {
        self.llama.inspector().is_some()
    }

    #[wasm_bindgen(setter)]
    pub fn set_inspect(&mut self, on: &JsValue) -> Result<(), JsError> {
        let on = bool_arg(on, "inspect", None)?;
        let trace = on && self.walkthrough();
        self.llama.set_inspect(on.then_some(performance_now as Clock), trace);
        Ok(())
    }

    /// Walkthrough: also keep a few values of every vector of the forward
    /// pass (`trace()`). Setting it opens the inspector.
    #[wasm_bindgen(getter)]
    pub fn walkthrough(&self) -> bool {
        self.llama.inspector().is_some_and(|i| i.tracing())
    }

    #[wasm_bindgen(setter)]
    pub fn set_walkthrough(&mut self, on: &JsValue) -> Result<(), JsError> {
        let on = bool_arg(on, "walkthrough", None)?;
        if on || self.inspect() {
            self.llama.set_inspect(Some(performance_now), on);
        }
        Ok(())
    }

    /// The position the inspector's record is of (`undefined` before any).
    #[wasm_bindgen(getter, js_name = inspectedPosition)]
    pub fn inspected_position(&self) -> Option<usize> {
        self.llama.record().map(|r| r.pos)
    }

    /// Which backend ran the record's forward pass: "webgpu" (a live step
    /// of `stepAsync` / `endStep`: logits only, no attention, no phase
    /// timings; `inspectAt(pos)` replays it on the CPU), "cpu" (`step()`
    /// or a replay), `undefined` before any record.
    #[wasm_bindgen(getter, js_name = recordBackend)]
    pub fn record_backend(&self) -> Option<String> {
        self.llama.record().map(|r| backend_name(r).to_string())
    }

    /// Record position `pos` of the current text again: it is recomputed
    /// from the KV cache (one forward pass, nothing sampled, nothing
    /// changed), so earlier tokens can be inspected without storing them.
    #[wasm_bindgen(js_name = inspectAt)]
    pub fn inspect_at(&mut self, pos: &JsValue) -> Result<(), JsError> {
        let pos = whole_from_js(pos, "position")?;
        if !self.inspect() {
            return Err(Error::State("the inspector is closed: open it (inspect = true) first").into());
        }
        let pos = self.cached_position(pos)?;
        Ok(self.llama.inspect_at(pos)?)
    }

    /// The logit lens of position `pos` of the current text: the residual
    /// stream after each layer put through the final RMSNorm and the
    /// classifier, `{ pos, token, next, layers: [{ layer, candidates: [{
    /// token, text, prob, logit }], nextProb, nextRank }], final: [{ token,
    /// text, prob, logit }] }`: per layer (0 first) the `k` most likely
    /// next tokens (k: a whole number; more than the vocabulary means all of
    /// it), `final` the same of the model's real logits (what `logits()`
    /// gives after `inspectAt(pos)`), equal to the last layer's bit for bit.
    /// `prob` is at temperature 1 (the softmax of the logits, whatever the
    /// sampler's settings); `nextProb` and `nextRank` (1 = most likely)
    /// place the token that came, also outside the `k`. Recomputed on each
    /// call: one forward pass of that position plus n_layers classifier
    /// matmuls (see README for times); needs no inspector, changes neither
    /// its record nor anything that follows.
    pub fn lens(&mut self, pos: &JsValue, k: &JsValue) -> Result<JsValue, JsError> {
        let pos = whole_from_js(pos, "position")?;
        let k = index_from_js(k, "k")?;
        let pos = self.cached_position(pos)?;
        let lens = self.llama.lens(pos, k)?;
        let layers: Array = lens
            .layers
            .iter()
            .enumerate()
            .map(|(layer, p)| {
                Fields::new()
                    .num("layer", layer)
                    .value("candidates", self.lens_candidates(&p.candidates).into())
                    .maybe("nextProb", p.next.map(|(prob, _)| prob))
                    .maybe("nextRank", p.next.map(|(_, rank)| rank))
                    .build()
            })
            .collect();
        let Prediction { candidates, .. } = &lens.output;
        Ok(Fields::new()
            .num("pos", lens.pos)
            .num("token", lens.token)
            .maybe("next", lens.next)
            .value("layers", layers.into())
            .value("final", self.lens_candidates(candidates).into())
            .build())
    }

    /// Follow one number: how element `index` of one walkthrough vector of
    /// position `pos` was computed from its inputs. `stage` is a stage's
    /// `id` (as `trace()` lists them: "embedding", "attNorm", "query",
    /// "key", "value", "attWeights", "attOutput", "attResidual", "ffnNorm",
    /// "hidden", "ffnResidual", "finalNorm", "logits"); `layer` a whole
    /// number below n_layers for the stages inside the layers, `undefined`
    /// (or null) for embedding, finalNorm and logits; `index` a whole number
    /// below the stage's length (`trace()`'s `length`). Returns `{ pos,
    /// token, stage, name, layer, index, value, kind, ... }`: `value` is the
    /// forward pass's number bit for bit, `kind` says how it was made and
    /// which fields follow (vectors are Float32Arrays, copies):
    /// - "embedding": `row` (the token's row of the table), `quantized`
    ///   ({ q, scale } for Q8_0);
    /// - "rmsnorm": `weightName`, `input` (the x normalized), `x`,
    ///   `weight`, `sumSquares`, `meanSquare`, `eps`, `rms`, `invRms`,
    ///   `recomputed` (= weight * (invRms * x), run.c's formula);
    /// - "matmul" (query, key, value, attResidual, ffnResidual, logits):
    ///   `matrix`, `row`, `weights`, `input`, `products`, `partialSums`
    ///   (running sum in order), `sum` (its last), `dot` (the engine's,
    ///   whose SIMD kernels sum in another order: fp32 differs from `sum`
    ///   by rounding; Q8_0 is exact), `xBefore` (residual stages: value =
    ///   xBefore + dot), `rope` (query, key: { pair, freq, cos, sin, own,
    ///   partnerIndex, partner, rotated }), `quantized` (Q8_0: { groupSize,
    ///   weightsQ, weightScales, inputQ, inputScales, groupDots }, the int8
    ///   values the kernel multiplied);
    /// - "swiglu" (hidden): `w1` and `w3` (two matmul objects as above),
    ///   `sigmoid`, `silu`, `recomputed` (= silu * w3.dot);
    /// - "attention" (attWeights, head 0): `head`, `kvHead`, `query`,
    ///   `key`, `products`, `partialSums`, `scale` (sqrt(head_size)),
    ///   `scores` (every position's), `weights`, `max`, `exp`, `sumExp`,
    ///   `recomputed` (= exp / sumExp);
    /// - "attOutput": `head`, `kvHead`, `offset`, `weights`, `values`,
    ///   `products`, `partialSums` (the last is the value).
    ///
    /// A replay of that position, as `lens` does: about one step's time;
    /// needs no inspector, changes neither its record nor anything that
    /// follows.
    pub fn follow(&mut self, pos: &JsValue, stage: &JsValue, layer: &JsValue, index: &JsValue) -> Result<JsValue, JsError> {
        let pos = whole_from_js(pos, "position")?;
        let stage = Stage::from_id(&string_arg(stage, "stage")?)?;
        let c = *self.llama.config();
        // numbers compared as JS numbers, so a message shows what was given
        let layer = if layer.is_undefined() || layer.is_null() {
            None
        } else {
            let l = whole_from_js(layer, "layer")?;
            if stage.in_layer() && l >= c.n_layers as f64 {
                return Err(layer_error(&c, js_number(l)).into());
            }
            Some(l as usize) // (outside the layers, any layer is refused below)
        };
        let index = whole_from_js(index, "index")?;
        let pos = self.cached_position(pos)?;
        let len = stage.len(&c, pos);
        if index >= len as f64 {
            check_follow(&c, pos, stage, layer, 0)?; // a wrong layer first, as natively
            return Err(index_error(stage, len, js_number(index)).into());
        }
        Ok(follow_object(&self.llama.follow(pos, stage, layer, index as usize)?))
    }

    fn lens_candidates(&self, candidates: &[LensCandidate]) -> Array {
        candidates.iter().map(|c| self.candidate_fields(c.token, c.prob, c.logit).build()).collect()
    }

    /// `{ token, text, prob, logit }`: a candidate of the lens and of `topk`.
    fn candidate_fields(&self, token: u32, prob: f32, logit: f32) -> Fields {
        Fields::new().num("token", token).text("text", &self.piece_text(token)).num("prob", prob).num("logit", logit)
    }

    /// A position of the current text the KV cache holds, or the error
    /// naming the ones it does (compared as a JS number: no saturation).
    fn cached_position(&self, pos: f64) -> Result<usize, Error> {
        let cached = self.llama.cached_positions();
        if pos >= cached as f64 {
            let pos = js_number(pos);
            if cached == 0 {
                return Err(Error::Argument(format!("position {pos} has not been generated yet, nor has any other (generate first)")));
            }
            return Err(Error::Argument(format!(
                "position {pos} has not been generated yet: positions 0 to {} can be inspected",
                cached - 1
            )));
        }
        Ok(pos as usize)
    }

    /// The next-token distribution of the recorded position: `{ pos, token,
    /// next, nextProb, nextRank, forced, chosen, replayed, backend,
    /// temperature, topp, nucleus, nucleusMass, candidates: [{ token, text,
    /// prob, logit, kept }] }` (`backend`: `recordBackend`'s),
    /// the `k` most likely first (k: a whole number; more than the
    /// vocabulary means all of it); `nextRank` (1 = most likely) and
    /// `nextProb` place the token that came even outside the `k`. `prob`
    /// is after temperature (softmax of the logits at temperature 0, where
    /// the sampler takes the top one); `kept`: inside the top-p nucleus the
    /// sampler drew from; `next`: the token that came (`forced`: the
    /// prompt's; `chosen`: the caller's, `forceNext`); after `undo()` a
    /// record of the position taken back keeps its candidates, without `next`.
    pub fn topk(&self, k: &JsValue) -> Result<JsValue, JsError> {
        let k = index_from_js(k, "k")?.min(self.llama.config().vocab_size);
        let r = self.record()?;
        let d = self.llama.distribution(k).ok_or(Error::State("nothing recorded yet"))?;
        let params = self.llama.params();
        let candidates: Array = d
            .candidates
            .iter()
            .map(|c| {
                self.candidate_fields(c.token, c.prob, c.logit)
                    .flag("kept", c.kept)
                    .build()
            })
            .collect();
        Ok(Fields::new()
            .num("pos", r.pos)
            .num("token", r.token)
            .maybe("next", r.next)
            .flag("forced", r.forced)
            .flag("chosen", r.chosen)
            .flag("replayed", r.replayed)
            .text("backend", backend_name(r))
            .num("temperature", params.temperature)
            .num("topp", params.topp)
            .num("nucleus", d.nucleus)
            .num("nucleusMass", d.nucleus_mass)
            .maybe("nextProb", d.next.map(|(p, _)| p))
            .maybe("nextRank", d.next.map(|(_, rank)| rank))
            .value("candidates", candidates.into())
            .build())
    }

    /// (vocab_size,) the recorded position's logits, before sampling (a copy).
    pub fn logits(&self) -> Result<Vec<f32>, JsError> {
        Ok(self.record()?.logits.clone())
    }

    /// (pos + 1,) attention weights of one layer and head at the recorded
    /// position, over positions 0..=pos (a copy; each row sums to 1).
    /// `layer` and `head` are whole numbers within the model's; anything
    /// else is an error naming the valid ranges. Throws on a GPU's record
    /// (`recordBackend` "webgpu"): replay it with `inspectAt(pos)`.
    pub fn attention(&self, layer: &JsValue, head: &JsValue) -> Result<Vec<f32>, JsError> {
        let c = self.llama.config();
        let range = |v: &JsValue, n: usize| v.as_f64().filter(|x| x.fract() == 0.0 && *x >= 0.0 && *x < n as f64);
        let (Some(l), Some(h)) = (range(layer, c.n_layers), range(head, c.n_heads)) else {
            let show = |v: &JsValue| v.as_f64().map_or_else(|| describe(v), js_number);
            return Err(Error::Argument(format!(
                "no layer {} head {}: this model has layers 0-{} and heads 0-{} (whole numbers)",
                show(layer),
                show(head),
                c.n_layers - 1,
                c.n_heads - 1
            ))
            .into());
        };
        self.cpu_record()?
            .attention(l as usize, h as usize)
            .map(<[f32]>::to_vec)
            .ok_or_else(|| Error::State("the record holds no attention for this layer and head").into())
    }

    /// (n_layers, n_heads, pos + 1) every attention row of the recorded
    /// position in one copy. Throws on a GPU's record, as `attention` does.
    #[wasm_bindgen(js_name = attentionAll)]
    pub fn attention_all(&self) -> Result<Float32Array, JsError> {
        Ok(Float32Array::from(&self.cpu_record()?.attention[..]))
    }

    /// Milliseconds a step spent in each part: `{ backend: "cpu",
    /// projections (rmsnorm + q, k, v, o matmuls), attention (RoPE, scores,
    /// softmax, weighted sum), ffn, classifier, sampling, other, total }`;
    /// the parts add up to `total`. A step the GPU ran has no parts, only
    /// `{ backend: "webgpu", total }`: the GPU's pass from submission until
    /// its logits were ready on the CPU, plus `endStep`'s sampling. Without
    /// `pos` (or `undefined`): the recorded step (a replay has no
    /// sampling). With `pos`: that position as it ran live with the
    /// inspector open, or `undefined` when it ran while the inspector was
    /// closed (or has not run).
    pub fn timings(&self, pos: &JsValue) -> Result<JsValue, JsError> {
        let t = if pos.is_undefined() || pos.is_null() {
            let r = self.record()?;
            if r.gpu {
                Live::Gpu(r.step_ms)
            } else {
                Live::Cpu(r.timings)
            }
        } else {
            let pos = index_from_js(pos, "position")?;
            let Some(inspector) = self.llama.inspector() else {
                return Err(Error::State("the inspector is closed: set model.inspect = true, then step()").into());
            };
            match inspector.live_at(pos) {
                Some(t) => t,
                None => return Ok(JsValue::UNDEFINED),
            }
        };
        Ok(timings_object(&t))
    }

    /// (positions, phases) the live timings of every position of the current
    /// text, one row per position with its columns in `timingPhases()`'s
    /// order (`timings()`'s phase keys); NaN for positions run while the
    /// inspector was closed, and for those the GPU ran (they have no
    /// phases: `timings(pos)`). Empty when it is closed.
    #[wasm_bindgen(js_name = timingsAll)]
    pub fn timings_all(&self) -> Vec<f64> {
        let Some(inspector) = self.llama.inspector() else { return Vec::new() };
        let missing = [f64::NAN; Phase::ALL.len()];
        inspector
            .history()
            .iter()
            .flat_map(|t| match t {
                Some(Live::Cpu(t)) => t.ms,
                _ => missing,
            })
            .collect()
    }

    /// The walkthrough of the recorded position (needs `walkthrough = true`
    /// before the step; empty on a GPU's record): run.c's forward pass in order, `[{ id, name, layer,
    /// shape, length, values (first 8), rms, explain }]`; `id` names the
    /// stage uniquely (run.c's `name`s repeat), as `follow` takes it.
    pub fn trace(&self) -> Result<Array, JsError> {
        let snapshots = &self.record()?.snapshots;
        Ok(snapshots
            .iter()
            .map(|s| {
                Fields::new()
                    .text("id", s.stage.id())
                    .text("name", s.stage.name())
                    .maybe("layer", s.layer)
                    .text("shape", s.stage.shape())
                    .num("length", s.len)
                    .value("values", Float32Array::from(&s.values[..]).into())
                    .num("rms", s.rms)
                    .text("explain", s.stage.explain())
                    .build()
            })
            .collect())
    }

    /// A token's text for display: its vocabulary piece, with a raw-byte
    /// token (`<0x0A>`) as its character when that byte is one on its own
    /// (ASCII); other byte tokens keep their `<0xE2>` name. `token`: a whole
    /// number below the vocabulary size.
    pub fn piece(&self, token: &JsValue) -> Result<String, JsError> {
        let t = token_from_js(token, self.llama.tokenizer().vocab_size())?;
        Ok(self.piece_text(t))
    }

    fn piece_text(&self, token: u32) -> String {
        let tok = self.llama.tokenizer();
        if token as usize >= tok.vocab_size() {
            return String::new();
        }
        match std::str::from_utf8(tok.decode(0, token)) {
            Ok(text) => text.to_string(),
            Err(_) => String::from_utf8_lossy(tok.piece(token)).into_owned(),
        }
    }

    /// The record, refused when a GPU ran it (for what only the CPU's
    /// forward pass records).
    fn cpu_record(&self) -> Result<&Record, Error> {
        let r = self.record()?;
        if r.gpu {
            return Err(Error::State(
                "attention is not read back from the GPU while generating: inspectAt(pos) replays this position on the CPU (exact)",
            ));
        }
        Ok(r)
    }

    fn record(&self) -> Result<&Record, Error> {
        match self.llama.record() {
            Some(p) => Ok(p),
            None if self.inspect() => Err(Error::State("nothing recorded yet: step() or inspectAt(pos) first")),
            None => Err(Error::State("the inspector is closed: set model.inspect = true, then step()")),
        }
    }
}
