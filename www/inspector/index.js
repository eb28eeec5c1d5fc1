// The inspector: next-token candidates, attention and timings of the tokens
// on the page, read from the engine (Model.topk / attentionAll / timings /
// trace / inspectAt). Closed, it sets model.inspect = false: the engine
// records nothing and this module does nothing per token.
//
// This module opens and closes the panel (#inspector-toggle,
// #inspector-body), follows the position picked in the text (click, hover,
// keyboard on the output element it is given; #insp-selected says which,
// #insp-announce tells screen readers) and has the views draw it:
// candidates.js, timings.js, sparkline.js, attention.js, lens.js, walkthrough.js,
// from what records.js read.
import { createAttention } from "./attention.js";
import { createCandidates } from "./candidates.js";
import { createLens } from "./lens.js";
import { show } from "./common.js";
import { createRecords } from "./records.js";
import { createSparkline } from "./sparkline.js";
import { createTimings } from "./timings.js";
import { createWalkthrough } from "./walkthrough.js";

const $ = (id) => document.getElementById(id);

const PAINT_EVERY_MS = 250;
const HOVER_MS = 60;
const HEATMAP_EVERY_MS = 1000;

/**
 * `output`: the element holding the text's token spans (www/generation.js);
 * `onWalkStep(report)`: the walkthrough's button (www/generation.js walkStep).
 */
export function createInspector({ output, onWalkStep }) {
  const records = createRecords();
  const ui = {
    open: false,
    selected: null, // pinned position, or null to follow the newest token
    hover: null,
    paintedAt: 0,
    heatmapAt: 0,
  };
  const selectedLine = $("insp-selected");
  const candidates = createCandidates(records);
  const timings = createTimings(records);
  const sparkline = createSparkline();
  const attention = createAttention(records, { onPick: () => render() });
  const walk = createWalkthrough(records, { visible: () => visible(), onStep: onWalkStep });
  const lens = createLens(records);
  lens.onOpen(() => render());

  function setOpen(open) {
    ui.open = open;
    $("inspector-body").hidden = !open;
    $("inspector-toggle").setAttribute("aria-expanded", String(open));
    $("inspector-toggle").textContent = open ? "Close inspector" : "Open inspector";
    output.classList.toggle("inspecting", open);
    const model = records.model;
    if (model) {
      model.inspect = open;
      // a walkthrough in progress goes on recording its vectors
      model.walkthrough = open && !!records.view?.manual && records.view.model === model;
    }
    if (open) render();
  }
  $("inspector-toggle").addEventListener("click", () => setOpen(!ui.open));

  // ------------------------------------------------------------ selection

  function latest() {
    const spans = records.view?.spans;
    return spans && spans.length ? spans.length - 1 : null;
  }

  const visible = () => ui.hover ?? ui.selected ?? latest();

  /** Pin a position (null: follow the newest); a user action, so it is announced. */
  function select(pos) {
    const spans = records.view?.spans;
    if (spans?.[ui.selected]) spans[ui.selected].classList.remove("sel");
    ui.selected = pos;
    if (pos !== null && spans?.[pos]) spans[pos].classList.add("sel");
    render();
    // the live region speaks only on the user's actions, never while text streams in
    const top = candidates.topLabel();
    $("insp-announce").textContent = selectedLine.textContent + (top ? `; most likely: ${top}` : "");
  }

  const posOf = (el) => (el?.classList?.contains("tok") ? Number(el.dataset.pos) : null);

  output.addEventListener("click", (e) => {
    const pos = posOf(e.target);
    if (!ui.open || pos === null) return;
    select(pos === ui.selected ? null : pos);
  });
  // hovering renders once the pointer rests (HOVER_MS): a position not seen
  // yet is a forward pass, ~50 ms on a 110M model, too much per token crossed
  let hoverTimer = 0;
  output.addEventListener("mouseover", (e) => {
    const pos = posOf(e.target);
    if (!ui.open || pos === null || pos === ui.hover) return;
    ui.hover = pos;
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => ui.open && render(), HOVER_MS);
  });
  output.addEventListener("mouseleave", () => {
    clearTimeout(hoverTimer);
    if (ui.hover === null) return;
    ui.hover = null;
    if (ui.open) render();
  });
  output.addEventListener("keydown", (e) => {
    if (!ui.open || !records.view) return;
    const last = latest();
    if (last === null) return;
    ui.hover = null; // the keyboard takes over from the mouse
    const cur = ui.selected ?? last;
    const to = { ArrowLeft: cur - 1, ArrowRight: cur + 1, Home: 0, End: last }[e.key];
    if (e.key === "Escape") select(null);
    else if (to !== undefined) select(Math.max(0, Math.min(last, to)));
    else return;
    e.preventDefault();
    records.view.spans[ui.selected]?.scrollIntoView({ block: "nearest" });
  });

  // ------------------------------------------------------------ rendering

  function render(heatmap = true) {
    const pos = visible();
    if (!records.view || pos === null) {
      selectedLine.textContent = "Generate some text, then pick a token.";
      return;
    }
    let rec = null;
    try {
      rec = records.recordOf(pos);
    } catch (e) {
      selectedLine.textContent = `position ${pos}: ${e.message}`;
      return;
    }
    if (!rec) {
      selectedLine.textContent = `position ${pos}: not recorded, and the model's KV cache no longer holds this ` +
        "text (the model was replaced, or another text or a comparison ran since), so it cannot be recomputed";
      return;
    }
    renderSelected(pos, rec);
    candidates.render(rec);
    timings.render(rec);
    if (heatmap) {
      // a token picked (or pointed at) is worth a replay on the CPU when the GPU ran it
      attention.render(pos, ui.selected === pos || ui.hover === pos);
      lens.render(pos); // (on demand: only while its view is open, once per position)
    }
    if (records.view.manual) walk.render(pos);
  }

  /** The line naming the position shown: its input, the token that came, and how. */
  function renderSelected(pos, rec) {
    const t = rec.top;
    const model = records.view.model;
    const input = model && model === records.model ? show(model.piece(t.token)) : `#${t.token}`;
    const nextText = t.next === undefined ? "?" : input === `#${t.token}` ? `#${t.next}` : show(model.piece(t.next));
    const how = t.forced ? "prompt token (not sampled)" :
      t.temperature === 0 ? "greedy (argmax)" :
      `sampled at temperature ${+t.temperature.toFixed(3)}` +
        (t.topp > 0 && t.topp < 1 ? `, top-p ${+t.topp.toFixed(3)}: ${t.nucleus.toLocaleString("en-US")} ` +
          `candidates (mass ${t.nucleusMass.toFixed(3)})` : ", full distribution");
    const pin = ui.selected === pos ? " · pinned (Esc to follow the newest)" :
      ui.hover === pos ? "" : " · following the newest token";
    const ran = rec.gpu ? " · ran on the GPU (WebGPU)" :
      rec.replayed ? " · recomputed (it ran with the inspector closed)" : "";
    selectedLine.textContent = `position ${pos} · input "${input}" → "${nextText}" · ${how}${ran}${pin}`;
  }

  // ------------------------------------------------------------ the page's calls

  return {
    /** Is the panel open (the engine recording)? */
    get open() {
      return ui.open;
    },

    /** A model was installed (or replaced); `phases`: its engine's timingPhases(). */
    attach(model, phases) {
      records.attach(model, phases);
      model.inspect = ui.open;
      attention.attach(records.config);
      walk.attach(records.config);
    },

    /** A generation started on `model`; its tokens will get spans in `spans`. */
    newText(model, spans, promptLength, manual) {
      records.newText(model, spans, promptLength, manual);
      lens.forget();
      ui.selected = null;
      ui.hover = null;
      sparkline.reset();
      model.walkthrough = ui.open && manual;
      if (ui.open) render();
    },

    /** The text on the page no longer matches the model's KV cache. */
    invalidate: () => records.invalidate(),

    /** The tokens made by positions `pos` and on were taken back (choose mode's Undo). */
    takeBack(pos) {
      records.forgetFrom(pos);
      lens.forget();
      if (ui.selected !== null && ui.selected >= pos) ui.selected = null;
      if (ui.hover !== null && ui.hover >= pos) ui.hover = null;
      if (ui.open) render();
    },

    /**
     * The model was unloaded (to make room for another, or its engine
     * crashed): never call it again. The text's kept charts stay readable.
     */
    detach() {
      records.detach();
      attention.detach();
    },

    /** A tokens/s reading of the run. */
    speed: (tokPerSec) => sparkline.push(tokPerSec, ui.open),

    /**
     * At paint time: refresh the views (they follow the newest token unless
     * one is pinned), at most every PAINT_EVERY_MS while text streams in:
     * redrawing the heatmap and charts competes with generation for the CPU.
     */
    paint(force = false) {
      if (!ui.open) return;
      const now = performance.now();
      if (!force && now - ui.paintedAt < PAINT_EVERY_MS) return;
      ui.paintedAt = now;
      // the heatmap follows the newest token once a second while text streams in
      const heavy = force || now - ui.heatmapAt >= HEATMAP_EVERY_MS;
      if (heavy) ui.heatmapAt = now;
      render(heavy);
    },

    /** The user stopped the run (the walkthrough says so). */
    stopped: () => walk.stopped(),
  };
}
