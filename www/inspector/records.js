// What the inspector knows: the model installed on the page, the text on
// the page, and what was read of the engine about it (top-10 lists, kept;
// attention, the last ATT_CACHE positions picked; token labels). Nothing is
// read per step: generating with the inspector open costs only the
// engine's own recording.
//
// On the WebGPU backend the engine's record of a step holds the GPU's
// logits only (Model.recordBackend "webgpu"): its top-10 is read as on the
// CPU, its timings are the whole step's (no phases), and its attention is
// not read back: attentionOf says so unless asked to replay the position
// on the CPU (Model.inspectAt, exact).

const TOP_K = 10;
const ATT_CACHE = 8; // replayed positions' attention kept for re-selection

export function createRecords() {
  const records = {
    model: null, // the model installed on the page
    config: null, // its config()
    phases: [], // its engine's timingPhases(): the columns of timingsAll(), in order
    // the text on the page: { model, spans, promptLength, records, tokens, manual, attCache, labels }
    view: null,

    /** A model was installed (or replaced); `phases`: its engine's timingPhases(). */
    attach(model, phases) {
      records.model = model;
      records.config = model.config();
      records.phases = phases;
    },

    /** A generation started on `model`; its tokens will get spans in `spans`. */
    newText(model, spans, promptLength, manual) {
      records.view = { model, spans, promptLength, records: new Map(), tokens: null, manual, attCache: new Map() };
    },

    /** The text on the page no longer matches the model's KV cache. */
    invalidate() {
      if (records.view) records.view.model = null;
    },

    /** The tokens made by positions `pos` and on were taken back (choose mode's Undo): forget what was read of them. */
    forgetFrom(pos) {
      const view = records.view;
      if (!view) return;
      for (const map of [view.records, view.attCache]) for (const p of [...map.keys()]) if (p >= pos) map.delete(p);
      view.tokens = null;
      if (view.labels) view.labels.length = Math.min(view.labels.length, pos + 1);
    },

    /** The model was unloaded: never call it again. The text's kept records stay readable. */
    detach() {
      records.invalidate();
      records.model = null;
    },

    /** Can the model that wrote the text still recompute its positions? */
    replayable: () => records.view?.model && records.view.model === records.model,

    /** The text's token ids (read again when it grew), or null when its model is gone. */
    tokens() {
      const view = records.view;
      if (records.replayable() && (!view.tokens || view.tokens.length !== view.model.tokenCount)) {
        view.tokens = view.model.tokens();
      }
      return view.tokens;
    },

    /**
     * What the page shows for `pos`: its top-10 (the engine's record when it
     * is of `pos`, the newest token while generating; else that position
     * recomputed from the KV cache; then kept) and its timings (as it ran
     * live, which the engine keeps per position while the inspector is open;
     * else those of the recomputation). `{ top, timings, replayed, gpu }`
     * (`gpu`: the GPU ran it live: `timings` is `{ backend, total }`, no
     * phases), or null when it was never read and cannot be recomputed.
     */
    recordOf(pos) {
      const view = records.view;
      let rec = view.records.get(pos);
      if (!rec) {
        if (!records.replayable()) return null;
        const m = view.model;
        if (m.inspectedPosition !== pos) {
          m.inspectAt(pos);
          keep(view.attCache, pos, m.attentionAll());
        }
        rec = { top: m.topk(TOP_K), replayTimings: m.timings() };
        view.records.set(pos, rec);
      }
      const live = records.replayable() ? view.model.timings(pos) : undefined;
      const timings = live ?? rec.replayTimings;
      return { top: rec.top, timings, replayed: !live, gpu: timings.backend === "webgpu" };
    },

    /**
     * (n_layers, n_heads, pos + 1) attention of `pos`, or null when its model
     * is gone, or GPU_ONLY when `pos` is the GPU's live record (its attention
     * is not read back) and `replay` is false; with `replay` that position
     * runs again on the CPU (exact; after the GPU's run, the CPU first runs
     * the positions it has not).
     */
    attentionOf(pos, replay = false) {
      const view = records.view;
      if (!records.replayable()) return null;
      const m = view.model;
      if (m.inspectedPosition === pos && m.recordBackend === "webgpu") {
        if (view.attCache.has(pos)) return view.attCache.get(pos);
        if (!replay) return GPU_ONLY;
        m.inspectAt(pos);
        const att = m.attentionAll();
        keep(view.attCache, pos, att);
        return att;
      }
      if (m.inspectedPosition === pos) return m.attentionAll();
      if (view.attCache.has(pos)) return view.attCache.get(pos);
      m.inspectAt(pos);
      const att = m.attentionAll();
      keep(view.attCache, pos, att);
      return att;
    },

    /** A token's text from the current model, or `#id` when it has none (another vocabulary, no model). */
    pieceOf(token) {
      if (!records.model) return `#${token}`;
      try {
        return records.model.piece(token);
      } catch {
        return `#${token}`;
      }
    },

    /** The input token at position t of `toks` (tokens()), for labels (BOS shows as <s>); cached per text. */
    inputLabel(toks, t) {
      if (!toks) return `#${t}`;
      const labels = (records.view.labels ??= []);
      return (labels[t] ??= toks[t] === 1 ? "<s>" : records.pieceOf(toks[t]));
    },
  };
  return records;
}

/** attentionOf's answer for a GPU's live record: nothing read back. */
export const GPU_ONLY = "gpu-only";

/** Keep `att` of `pos`, and only the newest ATT_CACHE positions. */
function keep(cache, pos, att) {
  cache.set(pos, att);
  while (cache.size > ATT_CACHE) cache.delete(cache.keys().next().value);
}
