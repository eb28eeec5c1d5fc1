// Where the time goes (#time-token, #time-avg, #time-legend): a position's
// step split into the engine's phases, beside the mean of every position
// that ran with the inspector open. A step the GPU ran has no phases (the
// engine times only the whole step there): one bar, and a line saying so.
import { fmtMs } from "./common.js";

const $ = (id) => document.getElementById(id);

// labels and colours by phase name; the phases and their order are the
// engine's (timingPhases(): the columns of Model.timingsAll())
const PHASE_LOOK = {
  projections: ["q k v o matmuls", "#2f5fd0"],
  attention: ["attention", "#d0652f"],
  ffn: ["FFN", "#3a9a5b"],
  classifier: ["classifier", "#8e44ad"],
  sampling: ["sampling", "#c9a227"],
  other: ["other", "#9a9a9a"],
};
const lookOf = (key) => PHASE_LOOK[key] ?? [key, "#9a9a9a"];
const GPU_COLOR = "#5a6b8c";

/** `records`: www/inspector/records.js (its `phases`: the engine's timingPhases()). */
export function createTimings(records) {
  const token = $("time-token");
  const average = $("time-avg");
  const averageLabel = $("time-avg-label");
  const legend = $("time-legend");
  // the browser's clock is coarse (0.1 ms) unless the page is cross-origin isolated
  const fineClock = globalThis.crossOriginIsolated === true;

  function stackInto(el, timings, scale) {
    const phases = records.phases;
    el.replaceChildren(...phases.map((key) => {
      const i = document.createElement("i");
      i.style.width = `${(100 * timings[key]) / scale}%`;
      i.style.background = lookOf(key)[1];
      i.title = `${key}: ${fmtMs(timings[key])} ms`;
      return i;
    }));
    el.setAttribute("aria-label", phases.map((key) => `${lookOf(key)[0]} ${fmtMs(timings[key])} ms`).join(", "));
  }

  /** One bar for a GPU's whole step, in `el`, scaled to `scale`. */
  function wholeInto(el, ms, scale) {
    const i = document.createElement("i");
    i.style.width = `${(100 * ms) / scale}%`;
    i.style.background = GPU_COLOR;
    i.title = `whole step on the GPU: ${fmtMs(ms)} ms`;
    el.replaceChildren(i);
    el.setAttribute("aria-label", `whole step ${fmtMs(ms)} ms (WebGPU: no split into phases)`);
  }

  /** Show a record's timings ({ timings, replayed, gpu }: www/inspector/records.js recordOf). */
  function render(rec) {
    const phases = records.phases;
    // the mean over every position that ran with the inspector open
    const avg = Object.fromEntries(phases.map((k) => [k, 0]));
    avg.total = 0;
    let n = 0;
    const all = records.replayable() ? records.view.model.timingsAll() : new Float64Array(0);
    const positions = phases.length ? all.length / phases.length : 0;
    for (let row = 0; row < positions; row++) {
      const parts = all.subarray(row * phases.length, (row + 1) * phases.length);
      if (Number.isNaN(parts[0])) continue;
      phases.forEach((k, i) => (avg[k] += parts[i]));
      avg.total += parts.reduce((a, b) => a + b, 0);
      n++;
    }
    if (n) for (const k in avg) avg[k] /= n;
    if (rec.gpu) return renderGpu(rec.timings.total, n ? avg : null, n);
    const scale = Math.max(rec.timings.total, avg.total) || 1;
    stackInto(token, rec.timings, scale);
    stackInto(average, n ? avg : rec.timings, scale);
    averageLabel.textContent = n ? `mean of ${n}` : "mean: –";
    legend.replaceChildren(...phases.map((key) => {
      const [name, color] = lookOf(key);
      const li = document.createElement("li");
      li.style.setProperty("--c", color);
      li.textContent = `${name} ${fmtMs(rec.timings[key])}` + (n ? ` (mean ${fmtMs(avg[key])})` : "") + " ms";
      return li;
    }), Object.assign(document.createElement("li"), {
      textContent: `total ${fmtMs(rec.timings.total)} ms${rec.replayed ? " (replayed: no sampling)" : ""}` +
        (fineClock ? "" : " · clock 0.1 ms"),
    }));
  }

  /** A GPU's step: its whole time, beside the CPU's mean when some positions ran there. */
  function renderGpu(total, avg, n) {
    const scale = Math.max(total, avg?.total ?? 0) || 1;
    wholeInto(token, total, scale);
    if (avg) stackInto(average, avg, scale);
    else {
      average.replaceChildren();
      average.setAttribute("aria-label", "no position of this text ran on the CPU");
    }
    averageLabel.textContent = avg ? `mean of ${n} on the CPU` : "mean: –";
    legend.replaceChildren(Object.assign(document.createElement("li"), {
      textContent: `Phase timings: not available on the WebGPU backend (whole step ${fmtMs(total)} ms)`,
      title: "the GPU's forward pass, from submission until its logits were back on the CPU, plus the sampling",
    }));
    legend.firstChild.style.setProperty("--c", GPU_COLOR);
  }

  return { render };
}
