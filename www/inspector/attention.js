// The attention view: a heatmap of every layer and head over the previous
// positions (#att-grid, filtered by #att-layer / #att-head), the cell under
// the pointer (#att-hover), and the text shaded by the mean of the rows
// shown (#att-text, #att-top). A token the GPU ran live has no attention
// read back: a note (#att-gpu, made here) says so and how to see it.
import { fillSelect, show } from "./common.js";
import { GPU_ONLY } from "./records.js";

const $ = (id) => document.getElementById(id);

const HEAT_GUTTER = 44; // px left of the heatmap for "L3 H2" labels
const HEAT_LABELS = 64; // px under it for the token labels

/**
 * `records`: www/inspector/records.js; `onPick()`: the user picked a layer
 * or head (the inspector renders again).
 */
export function createAttention(records, { onPick }) {
  const canvas = $("att-grid");
  const layerSelect = $("att-layer");
  const headSelect = $("att-head");
  const hover = $("att-hover");
  const text = $("att-text");
  const topLine = $("att-top");
  let heat = null; // what the canvas shows, for hover lookups
  // said in place of the heatmap for the GPU's live token (index.html has no place for it)
  const gpuNote = Object.assign(document.createElement("p"), { id: "att-gpu", className: "note", hidden: true });
  gpuNote.textContent = "Attention is not read back from the GPU while generating: " +
    "click the token in the text to replay its position on the CPU (exact).";
  document.querySelector("#insp-attention .att-controls")?.after(gpuNote);

  /** The (layer, head) rows the heatmap shows, from the two selectors. */
  function rows() {
    const { n_layers: L, n_heads: H } = records.config;
    const layer = layerSelect.value;
    const head = headSelect.value;
    const out = [];
    for (let l = 0; l < L; l++) {
      if (layer !== "all" && Number(layer) !== l) continue;
      for (let h = 0; h < H; h++) {
        if (head !== "all" && Number(head) !== h) continue;
        out.push([l, h]);
      }
    }
    return out;
  }

  /**
   * The heatmap of `pos`'s attention (rows: the layers and heads picked);
   * `replay`: the user picked `pos`, so a token the GPU ran live is run
   * again on the CPU for its attention.
   */
  function render(pos, replay = false) {
    if (heat?.pos !== pos) hover.textContent = "";
    let att = null;
    try {
      att = records.attentionOf(pos, replay);
    } catch (e) {
      hover.textContent = e.message;
    }
    const gpuOnly = att === GPU_ONLY;
    gpuNote.hidden = !gpuOnly;
    const ctx = canvas.getContext("2d");
    if (!att || gpuOnly) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      canvas.setAttribute("aria-label", gpuOnly ? `attention of position ${pos}: ${gpuNote.textContent}` :
        "attention heatmap: nothing to show");
      text.replaceChildren();
      topLine.textContent = "";
      heat = null;
      return;
    }
    const { n_heads: H } = records.config;
    const T = pos + 1;
    const shown = rows();
    const cellW = Math.max(1, Math.min(14, Math.floor(640 / T)));
    const cellH = Math.max(2, Math.min(10, Math.floor(400 / shown.length)));
    // a gutter on the left for layer/head labels; token labels under the
    // columns when they are wide enough to read
    const left = HEAT_GUTTER;
    const bottom = cellW >= 8 ? HEAT_LABELS : 0;
    canvas.width = left + T * cellW;
    canvas.height = shown.length * cellH + bottom;
    const img = ctx.createImageData(T, shown.length);
    const mean = new Float32Array(T);
    shown.forEach(([l, h], r) => {
      const row = att.subarray((l * H + h) * T, (l * H + h + 1) * T);
      for (let t = 0; t < T; t++) {
        const v = Math.sqrt(Math.min(1, Math.max(0, row[t]))); // sqrt: small weights stay visible
        const o = (r * T + t) * 4;
        img.data[o] = 255 - 208 * v;
        img.data[o + 1] = 255 - 160 * v;
        img.data[o + 2] = 255 - 47 * v;
        img.data[o + 3] = 255;
        mean[t] += row[t] / shown.length;
      }
    });
    const small = new OffscreenCanvas(T, shown.length);
    small.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, left, 0, T * cellW, shown.length * cellH);
    // a line between layers, and the labels
    ctx.font = "10px ui-monospace, monospace";
    ctx.textBaseline = "top";
    shown.forEach(([l, h], r) => {
      const first = r === 0 || shown[r - 1][0] !== l;
      if (first && r > 0) {
        ctx.fillStyle = "#b9b4a6";
        ctx.fillRect(0, r * cellH, canvas.width, 1);
      }
      const one = shown.length <= records.config.n_layers; // one head per layer (or a single row)
      if ((first && cellH * H >= 10) || (one && cellH >= 9)) {
        ctx.fillStyle = "#6b6b70";
        ctx.fillText(one ? `L${l} H${h}` : `L${l}`, 2, r * cellH + 1);
      }
    });
    if (bottom) {
      const toks = records.tokens();
      ctx.fillStyle = "#3d4a6b";
      ctx.textBaseline = "middle";
      for (let t = 0; t < T; t++) {
        ctx.save();
        ctx.translate(left + t * cellW + cellW / 2, shown.length * cellH + 4);
        ctx.rotate(Math.PI / 2); // read downwards: one label per 8+ px column
        ctx.fillText(show(records.inputLabel(toks, t)).slice(0, 10), 0, 0);
        ctx.restore();
      }
    }
    heat = { att, pos, shown, cellW, cellH, T, nHeads: H, left };
    canvas.setAttribute("aria-label", `attention heatmap of position ${pos}: ${shown.length} rows (layer, head) ` +
      `by ${T} positions`);
    shade(pos, mean, shown);
  }

  /** The text, shaded by the mean of the rows shown, and the five positions they attend to most. */
  function shade(pos, mean, shown) {
    const toks = records.tokens();
    const spans = [];
    for (let t = 0; t <= pos; t++) {
      const s = document.createElement("span");
      s.textContent = records.inputLabel(toks, t);
      const a = Math.sqrt(mean[t]);
      s.style.background = `rgba(47, 95, 208, ${a.toFixed(3)})`;
      if (a > 0.6) s.style.color = "#fff";
      s.title = `position ${t}: ${mean[t].toFixed(4)}`;
      if (t === pos) s.className = "q";
      spans.push(s);
    }
    text.replaceChildren(...spans);
    const top = [...mean.keys()].sort((a, b) => mean[b] - mean[a]).slice(0, 5);
    const what = shown.length === 1 ? `layer ${shown[0][0]}, head ${shown[0][1]}` : `the mean of ${shown.length} heads`;
    topLine.textContent = `Most attended (${what}): ` +
      top.map((t) => `"${show(records.inputLabel(toks, t))}" at ${t} (${mean[t].toFixed(3)})`).join(", ");
  }

  /** The cell under the pointer: { l, h, t, w }, or null. */
  function heatAt(e) {
    if (!heat) return null;
    const rect = canvas.getBoundingClientRect();
    const t = Math.floor((e.clientX - rect.left - heat.left) / heat.cellW);
    const r = Math.floor((e.clientY - rect.top) / heat.cellH);
    if (t < 0 || t >= heat.T || r < 0 || r >= heat.shown.length) return null;
    const [l, h] = heat.shown[r];
    return { l, h, t, w: heat.att[(l * heat.nHeads + h) * heat.T + t] };
  }

  canvas.addEventListener("mousemove", (e) => {
    const at = heatAt(e);
    if (!at) return;
    const label = show(records.inputLabel(records.tokens(), at.t));
    hover.textContent = `layer ${at.l}, head ${at.h} → position ${at.t} "${label}": ${at.w.toFixed(4)}`;
  });
  canvas.addEventListener("click", (e) => {
    const at = heatAt(e);
    if (!at) return;
    layerSelect.value = String(at.l);
    headSelect.value = String(at.h);
    onPick();
  });
  layerSelect.addEventListener("change", () => onPick());
  headSelect.addEventListener("change", () => onPick());

  return {
    render,
    /** A model was installed: its layers and heads in the selectors. */
    attach(config) {
      heat = null; // the heatmap on screen was the old model's
      fillSelect(layerSelect, config.n_layers, "all layers");
      fillSelect(headSelect, config.n_heads, "all heads");
    },
    /** The model was unloaded: the heatmap on screen is no longer its. */
    detach: () => (heat = null),
  };
}
