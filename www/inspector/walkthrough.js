// The walkthrough (#insp-walk): a generation run one token per click
// (#walk-step), and every vector of run.c's forward pass for the position
// shown (#walk-table, one layer or all: #walk-layer), with its status line
// (#walk-status).
import { fillSelect } from "./common.js";

const $ = (id) => document.getElementById(id);

/**
 * `records`: www/inspector/records.js; `visible()`: the position shown;
 * `onStep(report)`: run one token (www/generation.js walkStep), calling
 * `report({ more, positions, promptLength })`.
 */
export function createWalkthrough(records, { visible, onStep }) {
  const title = $("walk-title");
  const status = $("walk-status");
  const layerSelect = $("walk-layer");
  const body = $("walk-table").tBodies[0];

  /** The forward pass of `pos`, when the text is a walkthrough of the model installed. */
  function render(pos = visible()) {
    const m = records.view?.model;
    if (!m || m !== records.model || !m.walkthrough || pos === null) return;
    let trace;
    try {
      if (m.inspectedPosition !== pos) m.inspectAt(pos);
      trace = m.trace();
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    title.textContent = `Walkthrough: position ${pos} through run.c's forward`;
    const layer = layerSelect.value;
    const rowsOut = [];
    trace.forEach((s, i) => {
      if (layer !== "all" && s.layer !== undefined && s.layer !== Number(layer)) return;
      const tr = document.createElement("tr");
      const vals = [...s.values].map((v) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3))).join(" ");
      const cells = [i + 1, s.name, s.layer ?? "–", `${s.shape} = ${s.length}`,
        vals + (s.length > s.values.length ? " …" : ""), s.rms.toFixed(3), s.explain];
      for (const c of cells) {
        const td = document.createElement("td");
        td.textContent = String(c);
        tr.append(td);
      }
      rowsOut.push(tr);
    });
    body.replaceChildren(...rowsOut);
  }

  const report = ({ more, positions: n, promptLength }) => {
    status.textContent = more
      ? `${n} position${n === 1 ? "" : "s"} run${n <= promptLength - 1 ? " (prompt)" : ""}; click again for the next token.`
      : "The generation is over; the next click starts a new one.";
  };

  layerSelect.addEventListener("change", () => records.view?.manual && render());
  $("walk-step").addEventListener("click", () => onStep(report));

  return {
    render,
    /** A model was installed: its layers in the selector. */
    attach: (config) => fillSelect(layerSelect, config.n_layers, "all layers", "0"),
    /** The user stopped the run. */
    stopped: () => (status.textContent = "Stopped."),
  };
}
