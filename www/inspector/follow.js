// "Follow one number": how one element of a walkthrough vector was computed
// from its inputs (Model.follow), drawn into the walkthrough's #walk-follow:
// the formula with its numbers, and for sums (a matmul row, q·k, the
// attention's weighted sum) every term with its running total.
//
// `value` is always the forward pass's own number. The recomputations
// beside it use run.c's scalar arithmetic in order: equal with the scalar
// kernels and for Q8_0 matmuls; with the SIMD kernels a sum can differ in
// the last bits (another order of addition), and the page says by how much.

/** Rows of a terms table shown before "show all". */
const FIRST_ROWS = 12;

/** What each matrix multiplies (run.c's names). */
const INPUT_OF = {
  wq: "xb", wk: "xb", wv: "xb", w1: "xb", w3: "xb", // the normed x
  wo: "xb", // the attention's output
  w2: "hb",
  wcls: "x", // after the final rmsnorm
};

const num = (v) => {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e5) ? v.toExponential(4) : v.toFixed(6).replace(/0+$/, "").replace(/\.$/, ".0");
};

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

/** Draw `f` (Model.follow's answer) for element `f.index` of `stage` (a trace entry) at `pos`. */
export function renderFollow(out, f, { stage }) {
  const name = `${stage.name}[${f.index}]`;
  const parts = [el("h5", "", `${name} = ${num(f.value)}${f.layer === undefined ? "" : ` (layer ${f.layer})`}`)];
  const draw = KINDS[f.kind];
  parts.push(...(draw ? draw(f, name) : [el("p", "note", `(${f.kind})`)]));
  out.replaceChildren(...parts);
}

const KINDS = {
  embedding: (f, name) => [
    formula(`${name} = token_embedding_table[${f.token}, ${f.index}] = ${num(f.value)}` +
      (f.quantized ? ` = q ${f.quantized.q} × scale ${num(f.quantized.scale)} (Q8_0)` : "")),
    el("p", "note", `The input token's row of the embedding table: x starts as this row (${f.row.length} numbers).`),
  ],

  rmsnorm: (f, name) => [
    formula(`${name} = ${f.weightName}[${f.index}] × (x[${f.index}] / rms)\n` +
      `rms = sqrt(Σ x² / dim + ${f.eps}) = sqrt(${num(f.sumSquares)} / ${f.input.length} + ${f.eps}) = ${num(f.rms)}\n` +
      `${name} = ${num(f.weight)} × (${num(f.x)} × ${num(f.invRms)}) = ${num(f.recomputed)}`),
    agreement(f.recomputed, f.value, "run.c's formula with these numbers"),
    el("p", "note", `All ${f.input.length} values of x set the scale; this element's own x is ${num(f.x)}.`),
  ],

  matmul: (f, name) => matmul(f, name, true),

  swiglu: (f, name) => [
    formula(`${name} = silu(w1[${f.index}] · xb) × (w3[${f.index}] · xb)\n` +
      `w1 · xb = ${num(f.w1.dot)}, w3 · xb = ${num(f.w3.dot)}\n` +
      `silu(h) = h × σ(h) = ${num(f.w1.dot)} × ${num(f.sigmoid)} = ${num(f.silu)}\n` +
      `${name} = ${num(f.silu)} × ${num(f.w3.dot)} = ${num(f.recomputed)}`),
    agreement(f.recomputed, f.value, "run.c's formula with these numbers"),
    details(`the gate: row ${f.index} of w1 · xb`, matmul(f.w1, `w1[${f.index}]·xb`, false)),
    details(`row ${f.index} of w3 · xb`, matmul(f.w3, `w3[${f.index}]·xb`, false)),
  ],

  attention: (f, name) => {
    const t = f.index;
    return [
      formula(`score_t = q · k_t / sqrt(head_size)   (head ${f.head}, reading kv head ${f.kvHead})\n` +
        `score_${t} = ${num(f.partialSums.at(-1))} / ${num(f.scale)} = ${num(f.scores[t])}\n` +
        `${name} = e^(score_${t} − max) / Σ_u e^(score_u − max) = ${num(f.exp)} / ${num(f.sumExp)} = ${num(f.recomputed)}`),
      agreement(f.recomputed, f.value, "the softmax recomputed"),
      el("p", "note", `The scores of positions 0..${f.scores.length - 1}: ${[...f.scores].map(num).join(", ")} (max ${num(f.max)}).`),
      details(`q · k_${t}: the ${f.query.length} terms`, [terms(["j", "q[j]", `k_${t}[j]`, "q·k", "running sum"],
        [f.query, f.key, f.products, f.partialSums])]),
    ];
  },

  attOutput: (f, name) => [
    formula(`${name} = Σ_t att[t] × v_t[${f.offset}]   (head ${f.head}, reading kv head ${f.kvHead})\n` +
      `= ${num(f.partialSums.at(-1))}`),
    agreement(f.partialSums.at(-1), f.value, "the sum in order"),
    terms(["t", "att[t]", `v_t[${f.offset}]`, "product", "running sum"], [f.weights, f.values, f.products, f.partialSums]),
  ],
};

/** A matmul row (and what follows it: RoPE, the residual addition). */
function matmul(f, name, top) {
  const input = INPUT_OF[f.matrix] ?? "input";
  const lines = [`${top ? name : "dot"} = Σ_j ${f.matrix}[${f.row}, j] × ${input}[j]   (j = 0..${f.input.length - 1})`,
    `sum in order = ${num(f.sum)}; the forward pass's = ${num(f.dot)}`];
  if (top && f.rope) {
    const r = f.rope;
    const [even, odd] = f.index % 2 === 0 ? [r.own, r.partner] : [r.partner, r.own];
    lines.push(`RoPE rotates the pair (${f.index & ~1}, ${f.index | 1}) by pos × ${num(r.freq)}: ` +
      `cos ${num(r.cos)}, sin ${num(r.sin)}`,
    f.index % 2 === 0
      ? `${name} = ${num(even)} × ${num(r.cos)} − ${num(odd)} × ${num(r.sin)} = ${num(r.rotated)}`
      : `${name} = ${num(even)} × ${num(r.sin)} + ${num(odd)} × ${num(r.cos)} = ${num(r.rotated)}`);
  }
  if (top && f.xBefore !== undefined) {
    lines.push(`residual: ${name} = x before + dot = ${num(f.xBefore)} + ${num(f.dot)} = ${num(f.xBefore + f.dot)}`);
  }
  const parts = [formula(lines.join("\n")), agreement(f.sum, f.dot, "the sum in order")];
  if (f.quantized) {
    const q = f.quantized;
    parts.push(el("p", "note", `Q8_0: weights and ${input} are int8 in groups of ${q.groupSize}, one scale each; ` +
      "each term is (w_q × x_q) × w_scale × x_scale, and the running sum is the kernel's own (exact at each group's end)."));
    parts.push(terms(["j", `${f.matrix} q`, `${input} q`, "term", "running sum"],
      [q.weightsQ, q.inputQ, f.products, f.partialSums]));
  } else {
    parts.push(terms(["j", `${f.matrix}[${f.row}, j]`, `${input}[j]`, "product", "running sum"],
      [f.weights, f.input, f.products, f.partialSums]));
  }
  return parts;
}

function formula(text) {
  return el("pre", "formula", text);
}

/** Does the recomputation give the forward pass's number? Say how close. */
function agreement(recomputed, value, what) {
  if (Object.is(recomputed, value) || recomputed === value) return el("p", "note", `${what}: exactly the forward pass's number.`);
  const diff = Math.abs(recomputed - value);
  return el("p", "note", `${what} differs from the forward pass's by ${diff.toExponential(2)}: ` +
    "the SIMD kernels add in another order (and their exp is a polynomial), so the last bits can differ.");
}

function details(summary, children) {
  const d = el("details");
  d.append(el("summary", "", summary), ...children);
  return d;
}

/** A table of terms: `columns` arrays (index first, then one per array), FIRST_ROWS rows until "show all". */
function terms(headers, columns) {
  const n = columns[0].length;
  const wrap = el("div", "scroll");
  const table = el("table");
  const head = table.createTHead().insertRow();
  for (const h of headers) head.append(el("th", "", h));
  const body = table.createTBody();
  const fill = (rows) => {
    body.replaceChildren();
    for (let j = 0; j < rows; j++) {
      const tr = body.insertRow();
      tr.insertCell().textContent = String(j);
      for (const c of columns) tr.insertCell().textContent = Number.isInteger(c[j]) && !(c instanceof Float32Array) ? String(c[j]) : num(c[j]);
    }
  };
  fill(Math.min(n, FIRST_ROWS));
  wrap.append(table);
  if (n <= FIRST_ROWS) return wrap;
  const more = el("button", "secondary", `Show all ${n} terms`);
  more.type = "button";
  more.addEventListener("click", () => {
    fill(n);
    more.remove();
  });
  const box = el("div");
  box.append(wrap, more);
  return box;
}
