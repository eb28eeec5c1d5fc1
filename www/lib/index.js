// llama2-wasm: Karpathy's llama2.c in Rust, compiled to WebAssembly SIMD.
// The high-level API (Llama2) and the low-level one the demo page drives
// (Model, ModelLoader, fileInfo, … from the SIMD build's wasm-bindgen glue;
// call `init()` before using them).
export { Llama2, DEFAULTS } from "./llama2.js";
export { default as init, Model, ModelLoader, Sha256, fileInfo, tokenizerInfo, memoryLimit, timingPhases } from "../pkg/llama2_wasm.js";
