// The walkthrough (#insp-walk): a generation run one token per click
// (#walk-step), and every vector of run.c's forward pass for the position
// shown (#walk-table, one layer or all: #walk-layer), with its status line
// (#walk-status). Picking a vector (a row's button) shows beside the table
// the code that made it (#walk-code: code-view.js) and its values; picking
// one of those follows that number back to its inputs (follow.js).
import { snippetFigures, loadCode } from "./code-view.js";
import { NEXT_STAGE } from "./code-map.js";
import { fillSelect, show } from "./common.js";
import { renderFollow } from "./follow.js";

const $ = (id) => document.getElementById(id);

/** How many values of the picked vector are offered for following. */
const VALUES_SHOWN = 8;

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3));

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
  const codeTitle = $("walk-code-title");
  const codeFacts = $("walk-code-facts");
  const valuesList = $("walk-values");
  const followIndex = $("follow-index");
  const followOut = $("walk-follow");
  const snippetsOut = $("walk-snippets");
  // the vector picked: its stage id and layer, kept from one position to the next
  let picked = { id: "embedding", layer: null };
  let shown = null; // { pos, stage } on display in #walk-code

  /** The forward pass of `pos`, when the text is a walkthrough of the model installed. */
  function render(pos = visible()) {
    const m = records.view?.model;
    if (!m || m !== records.model || !m.walkthrough || pos === null) return;
    let trace;
    try {
      // a step the GPU ran recorded no vectors: replay it on the CPU
      if (m.inspectedPosition !== pos || m.recordBackend === "webgpu") m.inspectAt(pos);
      trace = m.trace();
    } catch (e) {
      status.textContent = e.message;
      return;
    }
    const next = records.view.records.get(pos)?.top?.next;
    trace.push({ ...NEXT_STAGE, length: 1, values: [], rms: NaN, token: next });
    title.textContent = `Walkthrough: position ${pos} through run.c's forward`;
    const layer = layerSelect.value;
    const rows = [];
    let pickedStage = null;
    trace.forEach((s, i) => {
      if (layer !== "all" && s.layer !== undefined && s.layer !== Number(layer)) return;
      const isPicked = s.id === picked.id && (s.layer ?? null) === picked.layer;
      if (isPicked) pickedStage = s;
      rows.push(row(i, s, isPicked));
    });
    body.replaceChildren(...rows);
    if (!pickedStage && rows.length) {
      // the vector picked is not in this layer's rows: the first row instead
      pickedStage = trace.find((s) => layer === "all" || s.layer === undefined || s.layer === Number(layer));
      picked = { id: pickedStage.id, layer: pickedStage.layer ?? null };
      rows[0].classList.add("picked");
      rows[0].querySelector("button").setAttribute("aria-pressed", "true");
    }
    if (pickedStage) showStage(pos, pickedStage);
  }

  function row(i, s, isPicked) {
    const tr = document.createElement("tr");
    if (isPicked) tr.className = "picked";
    const vals = s.id === "next"
      ? s.token === undefined ? "?" : `${s.token} "${show(records.pieceOf(s.token))}"`
      : [...s.values].map(fmt).join(" ") + (s.length > s.values.length ? " …" : "");
    const cells = [i + 1, null, s.layer ?? "–", s.id === "next" ? "token id" : `${s.shape} = ${s.length}`,
      vals, Number.isNaN(s.rms) ? "–" : s.rms.toFixed(3), s.explain];
    for (const c of cells) {
      const td = document.createElement("td");
      if (c === null) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "stage";
        b.textContent = s.name;
        b.setAttribute("aria-pressed", String(isPicked));
        b.title = "show the code that made it";
        b.addEventListener("click", () => {
          picked = { id: s.id, layer: s.layer ?? null };
          followOut.replaceChildren();
          render();
        });
        td.append(b);
      } else {
        td.textContent = String(c);
      }
      tr.append(td);
    }
    return tr;
  }

  /** #walk-code: what made the vector `s` of `pos`: its code, its values, the number followed. */
  async function showStage(pos, s) {
    const same = shown && shown.pos === pos && shown.stage.id === s.id && shown.stage.layer === s.layer;
    shown = { pos, stage: s };
    const where = s.layer === undefined ? "" : ` · layer ${s.layer}`;
    codeTitle.textContent = `${s.name}${where} at position ${pos}`;
    codeFacts.textContent = s.id === "next"
      ? s.explain
      : `${s.explain}. Shape ${s.shape} = ${s.length.toLocaleString("en-US")}, rms ${s.rms.toFixed(4)}.`;
    valuesList.replaceChildren(...[...s.values].slice(0, VALUES_SHOWN).map((v, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "value";
      b.textContent = `[${i}] ${fmt(v)}`;
      b.title = `follow ${s.name}[${i}] back to its inputs`;
      b.addEventListener("click", () => follow(i));
      return b;
    }));
    const followable = s.id !== "next";
    followIndex.disabled = !followable;
    $("follow-button").disabled = !followable;
    followIndex.max = String(Math.max(0, s.length - 1));
    if (!same) followOut.replaceChildren();
    try {
      const { stages } = await loadCode();
      if (shown?.stage !== s) return; // another vector was picked meanwhile
      snippetsOut.replaceChildren(...snippetFigures(stages[s.id] ?? []));
    } catch (e) {
      snippetsOut.textContent = e.message;
    }
  }

  /** Follow element `index` of the vector shown back to its inputs. */
  function follow(index) {
    const m = records.view?.model;
    if (!shown || !m || m !== records.model) return;
    const { pos, stage } = shown;
    followIndex.value = String(index);
    try {
      if (!Number.isInteger(index) || index < 0 || index >= stage.length) {
        throw new Error(`pick an element from 0 to ${stage.length - 1}`);
      }
      renderFollow(followOut, m.follow(pos, stage.id, stage.layer ?? null, index), { stage, pos, piece: records.pieceOf });
    } catch (e) {
      const p = document.createElement("p");
      p.className = "error-text";
      p.textContent = e.message;
      followOut.replaceChildren(p);
    }
  }

  const report = ({ more, positions: n, promptLength }) => {
    status.textContent = more
      ? `${n} position${n === 1 ? "" : "s"} run${n <= promptLength - 1 ? " (prompt)" : ""}; click again for the next token.`
      : "The generation is over; the next click starts a new one.";
  };

  layerSelect.addEventListener("change", () => records.view?.manual && render());
  $("walk-step").addEventListener("click", () => onStep(report));
  $("follow-form").addEventListener("submit", (e) => {
    e.preventDefault();
    follow(Number(followIndex.value));
  });

  return {
    render,
    /** A model was installed: its layers in the selector. */
    attach: (config) => fillSelect(layerSelect, config.n_layers, "all layers", "0"),
    /** The user stopped the run. */
    stopped: () => (status.textContent = "Stopped."),
  };
}
