//! The WGSL kernels, one compute shader per operation of run.c's forward
//! pass, with the model's shapes written in as constants.
//!
//! Each mirrors a CPU kernel of `kernels/scalar.rs` (same formula, same
//! order of operations per element); sums that a workgroup splits between
//! threads (matmul, rmsnorm, softmax) add in a tree instead of run.c's
//! sequential order, so the GPU's floats differ from the CPU's in the last
//! bits (tests/web/gpu.rs bounds how much that moves the logits).
//!
//! Buffers: `x, xb, xb2, hb, hb2, q, att, logits` as in `RunState`; the KV
//! cache one buffer per layer; `step` (uniform) holds the token and the
//! position, `rope` the position's cos and sin (from the CPU, so both
//! backends rotate by the same numbers); `mat` (uniform) describes one
//! matrix piece.

use crate::checkpoint::Config;

/// Threads per matmul workgroup, and how many of them share one row.
pub const MATMUL_THREADS: u32 = 64;
pub const MATMUL_LANES: u32 = 16;
/// Rows per matmul workgroup (64 threads / 16 lanes).
pub const MATMUL_ROWS: u32 = MATMUL_THREADS / MATMUL_LANES;
/// Threads per workgroup of the element-wise kernels.
pub const THREADS: u32 = 64;

/// The constants every kernel sees: the model's shapes.
fn prelude(c: &Config, group_size: usize) -> String {
    let head_size = c.head_size();
    // sqrt(head_size) exactly as the CPU computes it, passed as its bits
    let scale = (head_size as f32).sqrt().to_bits();
    format!(
        "const DIM: u32 = {dim}u;\n\
         const HIDDEN_DIM: u32 = {hidden}u;\n\
         const KV_DIM: u32 = {kv_dim}u;\n\
         const HEAD_SIZE: u32 = {head_size}u;\n\
         const N_HEADS: u32 = {n_heads}u;\n\
         const KV_MUL: u32 = {kv_mul}u;\n\
         const SEQ_LEN: u32 = {seq_len}u;\n\
         const GS: u32 = {gs}u; // Q8_0 group size (0: fp32 model)\n\
         const SCALE: f32 = bitcast<f32>({scale}u); // sqrt(head_size)\n\
         struct Step {{ token: u32, pos: u32, pad0: u32, pad1: u32 }}\n\
         // one matrix piece: rows (d), row length (n, or n / 4 for fp32's vec4s),\n\
         // where row 0 goes in the output, and how far each position moves it\n\
         struct Mat {{ d: u32, n: u32, out_base: u32, out_pos_stride: u32 }}\n",
        dim = c.dim,
        hidden = c.hidden_dim,
        kv_dim = c.kv_dim(),
        n_heads = c.n_heads,
        kv_mul = c.kv_mul(),
        seq_len = c.seq_len,
        gs = group_size,
    )
}

/// The matmuls' row index and its reduction, shared by fp32 and Q8_0:
/// `ROWS` rows per workgroup, `LANES` threads per row each summing a strided
/// part of the row, then a tree sum in workgroup memory.
const MATMUL_TAIL: &str = r#"
  partial[t] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s = s >> 1u) {
    if (lane < s) { partial[t] = partial[t] + partial[t + s]; }
    workgroupBarrier();
  }
  if (lane == 0u && row < mat.d) {
    xout[mat.out_base + step.pos * mat.out_pos_stride + row] = partial[t];
  }
}
"#;

fn matmul_head() -> String {
    format!(
        "const LANES: u32 = {MATMUL_LANES}u;\nconst ROWS: u32 = {MATMUL_ROWS}u;\n\
         var<workgroup> partial: array<f32, {MATMUL_THREADS}>;\n"
    )
}

/// The kernels by name, each a complete WGSL module.
pub fn sources(c: &Config, group_size: Option<usize>) -> Vec<(&'static str, String)> {
    let pre = prelude(c, group_size.unwrap_or(0));
    let mm = matmul_head();
    let mut out = vec![
        // W (d, n) @ x (n,) -> xout (d,), four floats per load
        ("matmul", format!(r#"{pre}{mm}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> mat: Mat; // n counts vec4s
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>; // (d, n)
@group(0) @binding(3) var<storage, read> x: array<vec4<f32>>; // (n,)
@group(0) @binding(4) var<storage, read_write> xout: array<f32>;
@compute @workgroup_size({MATMUL_THREADS})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
  let row = (wg.y * nwg.x + wg.x) * ROWS + t / LANES;
  let lane = t % LANES;
  var acc = 0.0;
  if (row < mat.d) {{
    let base = row * mat.n;
    for (var k = lane; k < mat.n; k = k + LANES) {{ acc = acc + dot(w[base + k], x[k]); }}
  }}{MATMUL_TAIL}"#)),
        // o (dim,) = weight * x / sqrt(mean(x^2) + 1e-5), one workgroup
        ("rmsnorm", format!(r#"{pre}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {{
  var ss = 0.0;
  for (var i = t; i < DIM; i = i + 256u) {{ ss = ss + x[i] * x[i]; }}
  red[t] = ss;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {{
    if (t < s) {{ red[t] = red[t] + red[t + s]; }}
    workgroupBarrier();
  }}
  let r = 1.0 / sqrt(red[0] / f32(DIM) + 1e-5);
  for (var i = t; i < DIM; i = i + 256u) {{ o[i] = weight[i] * (r * x[i]); }}
}}
"#)),
        // rotate each pair of q (dim,) and of this position's key (kv_dim,)
        ("rope", format!(r#"{pre}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> rope: array<f32>; // cos (head_size / 2,), then sin
@group(0) @binding(2) var<storage, read_write> q: array<f32>; // (dim,)
@group(0) @binding(3) var<storage, read_write> key: array<f32>; // (seq_len, kv_dim)
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let i = id.x; // pair index over all heads
  if (i >= DIM / 2u) {{ return; }}
  let half = HEAD_SIZE / 2u;
  let pair = i % half;
  let k = (i / half) * HEAD_SIZE + 2u * pair;
  let fcr = rope[pair];
  let fci = rope[half + pair];
  let q0 = q[k];
  let q1 = q[k + 1u];
  q[k] = q0 * fcr - q1 * fci;
  q[k + 1u] = q0 * fci + q1 * fcr;
  if (k < KV_DIM) {{
    let o = step.pos * KV_DIM + k;
    let k0 = key[o];
    let k1 = key[o + 1u];
    key[o] = k0 * fcr - k1 * fci;
    key[o + 1u] = k0 * fci + k1 * fcr;
  }}
}}
"#)),
        // att[h, t] = q_h . k_t / sqrt(head_size) for t in 0..=pos
        ("scores", format!(r#"{pre}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> q: array<f32>; // (dim,)
@group(0) @binding(2) var<storage, read> key: array<f32>; // (seq_len, kv_dim)
@group(0) @binding(3) var<storage, read_write> att: array<f32>; // (n_heads, seq_len)
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let t = id.x;
  let h = id.y;
  if (t > step.pos) {{ return; }}
  let qo = h * HEAD_SIZE;
  let ko = t * KV_DIM + (h / KV_MUL) * HEAD_SIZE;
  var s = 0.0;
  for (var i = 0u; i < HEAD_SIZE; i = i + 1u) {{ s = s + q[qo + i] * key[ko + i]; }}
  att[h * SEQ_LEN + t] = s / SCALE;
}}
"#)),
        // softmax of att[h, 0..=pos], one workgroup per head
        ("softmax", format!(r#"{pre}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read_write> att: array<f32>; // (n_heads, seq_len)
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>) {{
  let n = step.pos + 1u;
  let base = wg.x * SEQ_LEN;
  var m = att[base];
  for (var i = t; i < n; i = i + 256u) {{ m = max(m, att[base + i]); }}
  red[t] = m;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {{
    if (t < s) {{ red[t] = max(red[t], red[t + s]); }}
    workgroupBarrier();
  }}
  let max_val = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var i = t; i < n; i = i + 256u) {{
    let e = exp(att[base + i] - max_val);
    att[base + i] = e;
    sum = sum + e;
  }}
  red[t] = sum;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {{
    if (t < s) {{ red[t] = red[t] + red[t + s]; }}
    workgroupBarrier();
  }}
  let total = red[0];
  for (var i = t; i < n; i = i + 256u) {{ att[base + i] = att[base + i] / total; }}
}}
"#)),
        // xb[h, i] = sum_t att[h, t] * v_t[i], t in 0..=pos (run.c's order)
        ("mix", format!(r#"{pre}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> att: array<f32>; // (n_heads, seq_len)
@group(0) @binding(2) var<storage, read> value: array<f32>; // (seq_len, kv_dim)
@group(0) @binding(3) var<storage, read_write> xb: array<f32>; // (dim,)
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let i = id.x;
  if (i >= DIM) {{ return; }}
  let h = i / HEAD_SIZE;
  let vo = (h / KV_MUL) * HEAD_SIZE + i % HEAD_SIZE;
  var acc = 0.0;
  for (var t = 0u; t <= step.pos; t = t + 1u) {{ acc = acc + att[h * SEQ_LEN + t] * value[t * KV_DIM + vo]; }}
  xb[i] = acc;
}}
"#)),
        // hb = silu(hb) * hb2
        ("swiglu", format!(r#"{pre}
@group(0) @binding(0) var<storage, read_write> hb: array<f32>; // (hidden_dim,)
@group(0) @binding(1) var<storage, read> hb2: array<f32>;
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let i = id.x;
  if (i >= HIDDEN_DIM) {{ return; }}
  let v = hb[i];
  hb[i] = v * (1.0 / (1.0 + exp(-v))) * hb2[i];
}}
"#)),
        // x += d, the residual connection
        ("residual", format!(r#"{pre}
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // (dim,)
@group(0) @binding(1) var<storage, read> d: array<f32>;
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let i = id.x;
  if (i >= DIM) {{ return; }}
  x[i] = x[i] + d[i];
}}
"#)),
    ];
    if group_size.is_some() {
        out.extend([
            // runq.c's quantize: one thread per group of x (n,)
            ("quantize", format!(r#"{pre}
@group(0) @binding(0) var<uniform> mat: Mat; // n: the length of x
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>; // (n / 4,) four int8 per word
@group(0) @binding(3) var<storage, read_write> xs: array<f32>; // (n / GS,)
// C's roundf: half away from zero (WGSL's round() goes to even)
fn round_away(v: f32) -> i32 {{
  let t = trunc(v);
  var r = t;
  if (abs(v - t) >= 0.5) {{ r = t + sign(v); }}
  return i32(clamp(r, -128.0, 127.0));
}}
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let g = id.x;
  if (g >= mat.n / GS) {{ return; }}
  var wmax = 0.0;
  for (var i = 0u; i < GS; i = i + 1u) {{ wmax = max(wmax, abs(x[g * GS + i])); }}
  let scale = wmax / 127.0;
  xs[g] = scale;
  for (var w = 0u; w < GS / 4u; w = w + 1u) {{
    var word = 0u;
    for (var b = 0u; b < 4u; b = b + 1u) {{
      var q = 0; // an all-zero group: scale 0, values 0 (as the CPU's NaN -> 0)
      if (scale > 0.0) {{ q = round_away(x[g * GS + 4u * w + b] / scale); }}
      word = word | ((bitcast<u32>(q) & 0xffu) << (8u * b));
    }}
    xq[g * (GS / 4u) + w] = word;
  }}
}}
"#)),
            // runq.c's matmul: integer dot per group, then val += ival * w_scale * x_scale
            ("matmul_q8", format!(r#"{pre}{mm}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> mat: Mat;
@group(0) @binding(2) var<storage, read> wq: array<u32>; // (d, n / 4) four int8 per word
@group(0) @binding(3) var<storage, read> ws: array<f32>; // (d, n / GS)
@group(0) @binding(4) var<storage, read> xq: array<u32>; // (n / 4,)
@group(0) @binding(5) var<storage, read> xs: array<f32>; // (n / GS,)
@group(0) @binding(6) var<storage, read_write> xout: array<f32>;
fn bytes(a: u32) -> vec4<i32> {{
  return vec4<i32>(bitcast<i32>(a << 24u) >> 24u, bitcast<i32>(a << 16u) >> 24u,
                   bitcast<i32>(a << 8u) >> 24u, bitcast<i32>(a) >> 24u);
}}
@compute @workgroup_size({MATMUL_THREADS})
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {{
  let row = (wg.y * nwg.x + wg.x) * ROWS + t / LANES;
  let lane = t % LANES;
  var acc = 0.0;
  if (row < mat.d) {{
    let groups = mat.n / GS;
    let words = GS / 4u;
    let wbase = row * (mat.n / 4u);
    for (var g = lane; g < groups; g = g + LANES) {{
      var ival = 0;
      for (var j = 0u; j < words; j = j + 1u) {{
        ival = ival + dot(bytes(wq[wbase + g * words + j]), bytes(xq[g * words + j]));
      }}
      acc = acc + f32(ival) * ws[row * groups + g] * xs[g];
    }}
  }}{MATMUL_TAIL}"#)),
            // x = the token's row of a Q8_0 embedding table piece, dequantized
            ("embed_q8", format!(r#"{pre}
@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<uniform> mat: Mat; // out_base: the piece's first row
@group(0) @binding(2) var<storage, read> q: array<u32>; // (rows, dim / 4)
@group(0) @binding(3) var<storage, read> s: array<f32>; // (rows, dim / GS)
@group(0) @binding(4) var<storage, read_write> x: array<f32>; // (dim,)
@compute @workgroup_size({THREADS})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
  let i = id.x;
  if (i >= DIM) {{ return; }}
  let at = (step.token - mat.out_base) * DIM + i;
  let v = bitcast<i32>(q[at / 4u] << (24u - 8u * (at % 4u))) >> 24u;
  x[i] = f32(v) * s[at / GS];
}}
"#)),
        ]);
    }
    out
}
