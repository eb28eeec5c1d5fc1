//! The benchmark's comparison point: candle's llama2.c model (candle-transformers
//! `llama2_c`, as in candle's own wasm example), built for wasm32 + SIMD128.
//! Used only by the benchmark in bench/ (`./build.sh bench`), never by the page.
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_transformers::models::llama2_c::{Cache, Config, Llama};
use candle_transformers::models::llama2_c_weights::TransformerWeights;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
}

#[wasm_bindgen]
pub struct CandleModel {
    llama: Llama,
    vb: candle_nn::VarBuilder<'static>,
    config: Config,
}

fn js(e: candle_core::Error) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl CandleModel {
    /// A legacy (v0) llama2.c checkpoint without grouped-query attention.
    #[wasm_bindgen(constructor)]
    pub fn new(weights: &[u8]) -> Result<CandleModel, JsError> {
        let dev = Device::Cpu;
        let mut cursor = std::io::Cursor::new(weights);
        let config = Config::from_reader(&mut cursor).map_err(js)?;
        let tw = TransformerWeights::from_reader(&mut cursor, &config, &dev).map_err(js)?;
        let vb = tw.var_builder(&config, &dev).map_err(js)?;
        let llama = Llama::load(vb.clone(), config.clone()).map_err(js)?;
        Ok(CandleModel { llama, vb, config })
    }

    /// Greedy generation from BOS for `steps` positions, timed from the first
    /// token on (as run.c): [tokens/s, tokens generated after the first,
    /// then every token id].
    pub fn greedy(&self, steps: usize) -> Result<Vec<f64>, JsError> {
        let dev = Device::Cpu;
        let mut cache = Cache::new(true, &self.config, self.vb.pp("rot")).map_err(js)?;
        let mut token: u32 = 1;
        let mut ids = Vec::new();
        let mut t0 = 0.0;
        for pos in 0..steps.min(self.config.seq_len) {
            let input = Tensor::new(&[token], &dev).and_then(|t| t.unsqueeze(0)).map_err(js)?;
            let logits = self.llama.forward(&input, pos, &mut cache).map_err(js)?;
            let logits = logits.squeeze(0).and_then(|l| l.to_dtype(DType::F32)).map_err(js)?;
            let logits = if logits.rank() == 2 { logits.i(logits.dim(0).map_err(js)? - 1).map_err(js)? } else { logits };
            let v: Vec<f32> = logits.to_vec1().map_err(js)?;
            let mut best = 0;
            for (i, &x) in v.iter().enumerate() {
                if x > v[best] {
                    best = i;
                }
            }
            token = best as u32;
            ids.push(token as f64);
            if pos == 0 {
                t0 = now(); // the first token is not timed
            }
        }
        let n = ids.len().saturating_sub(1) as f64;
        let mut out = vec![n / (now() - t0) * 1000.0, n];
        out.extend(ids);
        Ok(out)
    }
}
