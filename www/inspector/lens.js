// The logit lens (#insp-lens): for the position shown, the residual stream
// after each layer sent through the model's own head (final RMSNorm and
// classifier: Model.lens), as the top 5 next tokens per layer, so the
// learner sees at which layer the final answer appears. Computed only while
// the view is open, once per position shown (a replay of that position plus
// n_layers classifier matmuls: about 3.5 steps' time on stories110M);
// closed, it computes nothing.
import { show } from "./common.js";

const $ = (id) => document.getElementById(id);
const K = 5;

export function createLens(records) {
  const toggle = $("lens-toggle");
  const bodyEl = $("lens-body");
  const table = $("lens-table");
  const note = $("lens-note");
  let open = false;
  let shown = null; // { view, pos, lens }: what the table shows

  toggle.addEventListener("click", () => {
    open = !open;
    bodyEl.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    toggle.textContent = open ? "Hide the logit lens" : "Show the logit lens";
    if (open) onOpen?.();
  });
  let onOpen = null;

  /** Draw the lens of `pos` (computing it if it is not the one shown). */
  function render(pos) {
    if (!open) return;
    const view = records.view;
    if (!view || pos === null) return;
    if (shown?.view === view && shown.pos === pos) return;
    if (!records.replayable()) {
      note.textContent = "The model's KV cache no longer holds this text (the model was replaced, or another text or a " +
        "comparison ran since): generate again to look through its layers.";
      table.replaceChildren();
      shown = null;
      return;
    }
    let lens;
    const t0 = performance.now();
    try {
      lens = view.model.lens(pos, K);
    } catch (e) {
      note.textContent = `position ${pos}: ${e.message}`;
      return;
    }
    const ms = performance.now() - t0;
    shown = { view, pos, lens };
    draw(lens, ms);
  }

  function draw(lens, ms) {
    const answer = lens.final[0]?.token;
    const head = document.createElement("thead");
    const hr = head.insertRow();
    for (const h of ["after layer", ...Array.from({ length: K }, (_, i) => `#${i + 1}`), "token that came"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      hr.append(th);
    }
    const body = document.createElement("tbody");
    const rows = [...lens.layers.map((l) => ({ label: String(l.layer), ...l })),
      { label: "output", candidates: lens.final, ...lens.layers.at(-1), final: true }];
    for (const r of rows) {
      const tr = body.insertRow();
      if (r.final) tr.className = "final";
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = r.label;
      tr.append(th);
      for (const c of r.candidates) {
        const td = tr.insertCell();
        td.style.setProperty("--p", c.prob.toFixed(3));
        if (c.token === answer) td.classList.add("answer");
        if (c.token === lens.next) td.classList.add("came");
        const t = document.createElement("span");
        t.className = "tt";
        t.textContent = show(c.text);
        const p = document.createElement("span");
        p.className = "p";
        p.textContent = c.prob.toFixed(3);
        td.append(t, " ", p);
      }
      const td = tr.insertCell();
      td.textContent = r.nextRank === undefined ? "–" : `${r.nextProb.toFixed(3)} (rank ${r.nextRank})`;
    }
    table.replaceChildren(head, body);
    // when does the answer appear: the first layer from which the output's top token stays the top
    let from = lens.layers.length;
    while (from > 0 && lens.layers[from - 1].candidates[0]?.token === answer) from--;
    const piece = (t) => `"${show(records.pieceOf(t))}"`;
    note.textContent = `Position ${lens.pos}, input ${piece(lens.token)}. The output's most likely token, ` +
      `${piece(answer)}, is the top one from layer ${from} on (of ${lens.layers.length}).` +
      (lens.next === undefined ? "" : ` The token that came, ${piece(lens.next)}, is outlined.`) +
      ` Computed in ${ms.toFixed(1)} ms (one replay of the position and ${lens.layers.length} classifier matmuls).`;
  }

  return {
    render,
    /** `f()` when the view opens (the inspector draws the position shown). */
    onOpen: (f) => (onOpen = f),
    /** The text changed under the table (Undo, a new text). */
    forget: () => (shown = null),
    get open() {
      return open;
    },
  };
}
