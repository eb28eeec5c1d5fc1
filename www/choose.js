// Choose the next token yourself (#choose): a generation with the form's
// settings in which the learner picks each token from the candidates (or
// types a word that is one token), takes one back (Undo), or lets the
// sampler finish. The stepping is generation.js's choose mode; this module
// is the panel.
//
// The newest token on the page is always the sampler's own pick, drawn but
// not yet taken (outlined): the candidates shown are those of the position
// that made it, with the probabilities the sampler drew from (after
// temperature; the top-p nucleus marked). Taking the pick costs one more
// step (the next position's forward pass); taking another token costs two
// (undo, forceNext, step: that position again; then the next). Undo never
// recomputes the positions before it: the KV cache keeps them.
import { show } from "./inspector/common.js";

const $ = (id) => document.getElementById(id);
const TOP_K = 10;

/**
 * `generation`: www/generation.js; `model()`: the model on the page (or
 * null); `inspecting()`: is the inspector open (then the engine records
 * anyway); `clearError()`, `showError(e)`: the page's error box.
 */
export function createChooser({ generation, model: currentModel, inspecting, clearError, showError }) {
  const body = $("choose-body");
  const status = $("choose-status");
  const list = $("choose-list");
  const startButton = $("choose-start");
  const undoButton = $("choose-undo");
  const wordInput = $("choose-word-input");
  const BOS = 1; // llama2.c's BOS: sampled or chosen, it ends the story
  let top = null; // the candidates shown: Model.topk of the newest position
  let tentative = false; // the newest token is the sampler's pick, not yet taken

  /** Choose mode on: a new generation, the prompt run, the first candidates shown. */
  function begin() {
    clearError();
    const m = currentModel();
    if (!m) return;
    m.inspect = true; // topk reads the engine's record of each step
    const r = generation.chooseStart();
    if (!r) {
      m.inspect = inspecting();
      return;
    }
    tentative = m.tokenCount > r.promptLength;
    body.hidden = false;
    startButton.textContent = "Start again";
    show_();
    list.querySelector("button")?.focus();
  }

  /** Read the newest position's candidates and draw them. */
  function show_() {
    const r = generation.choosing();
    if (!r) return;
    const m = r.model;
    try {
      top = m.topk(TOP_K);
    } catch (e) {
      showError(e);
      return;
    }
    const over = !tentative; // the story ended (its end token taken) or reached seq_len
    for (const s of generation.output.querySelectorAll(".tentative")) s.classList.remove("tentative");
    if (tentative) r.spans.at(-1)?.classList.add("tentative");
    list.replaceChildren(...top.candidates.map((c) => item(c)));
    const pick = top.next === undefined ? null : top.next;
    const how = top.temperature === 0 ? "temperature 0: the sampler takes the most likely" :
      `temperature ${+top.temperature.toFixed(3)}` +
      (top.topp > 0 && top.topp < 1 ? `, top-p ${+top.topp.toFixed(3)}: it draws from the ${top.nucleus} marked` : ": it draws from all");
    const end = (t) => (t === BOS ? "the end of the story" : `"${show(m.piece(t))}"`);
    status.textContent = over
      ? `The text ended (${m.tokens().at(-1) === BOS ? "its end token was taken" : "no more positions"}). ` +
        "Undo to choose again."
      : `Position ${top.pos}: after "${show(m.piece(top.token))}", the sampler picked ${end(pick)} ` +
        `(${how}). Take it, or choose another.`;
    // the tokens taken after the prompt: Undo takes back the newest
    undoButton.disabled = m.tokenCount - (tentative ? 1 : 0) <= r.promptLength;
    $("choose-sampler").disabled = over;
    $("choose-run").disabled = over;
    wordInput.disabled = over;
    $("choose-word-button").disabled = over;
    for (const b of list.querySelectorAll("button")) b.disabled = over;
  }


  function item(c) {
    const li = document.createElement("li");
    if (c.kept) li.classList.add("kept");
    if (c.token === top.next) li.classList.add("pick");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.token = c.token;
    const text = document.createElement("span");
    text.className = "tt";
    text.textContent = show(c.text);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.setProperty("--w", `${Math.max(0.5, c.prob * 100)}%`);
    const p = document.createElement("span");
    p.className = "p";
    p.textContent = c.prob.toFixed(3);
    b.append(text, bar, p);
    if (c.token === top.next) {
      const tag = document.createElement("small");
      tag.textContent = "sampler's pick";
      b.append(tag);
    }
    b.setAttribute("aria-label", `${show(c.text)}, probability ${c.prob.toFixed(3)}` +
      `${c.token === top.next ? ", the sampler's pick" : ""}${c.kept ? ", in the nucleus" : ""}`);
    b.addEventListener("click", () => take(c.token));
    li.append(b);
    return li;
  }

  /** Take `token` at the newest position, then show the candidates of the next. */
  function take(token) {
    const r = generation.choosing();
    if (!r || !tentative || !top) return;
    clearError();
    const m = r.model;
    m.inspect = true;
    if (token !== top.next) {
      generation.takeBack(); // the sampler's pick
      generation.chooseStep(token); // the same position, taking `token`
      r.spans.at(-1)?.classList.add("chosen");
    }
    if (token === BOS) tentative = false;
    else pickNext(r);
    show_();
  }

  /** The next position: its forward pass and the sampler's pick (none at seq_len). */
  function pickNext(r) {
    const before = r.model.tokenCount;
    generation.chooseStep();
    tentative = r.model.tokenCount > before;
  }

  /** The word typed, if it is one token of this vocabulary (as the text would have it: with its space). */
  function typed() {
    const m = currentModel();
    const word = wordInput.value;
    if (!m || word.trim() === "") throw new Error("type a word first");
    // encode adds BOS and, as run.c, a leading space: "cat" is the token " cat" (▁cat)
    const ids = [...m.encode(word.replace(/^ /, ""))].slice(1);
    if (ids.length !== 1) {
      throw new Error(`"${word}" is ${ids.length} tokens in this vocabulary (${ids.map((t) => `"${show(m.piece(t))}"`).join(" ")}), ` +
        "not one: choose a word from the list, or a shorter one");
    }
    return ids[0];
  }

  startButton.addEventListener("click", begin);
  $("choose-sampler").addEventListener("click", () => top && take(top.next));
  undoButton.addEventListener("click", () => {
    clearError();
    const r = generation.choosing();
    if (!r) return;
    // the pick shown (not taken) and the token taken before it go; that
    // position runs again and the sampler picks there as it first did
    if (tentative) generation.takeBack();
    generation.takeBack();
    r.model.inspect = true;
    pickNext(r);
    show_();
  });
  $("choose-run").addEventListener("click", () => {
    generation.chooseEnd(true);
  });
  $("choose-stop").addEventListener("click", () => generation.chooseEnd(false));
  $("choose-word").addEventListener("submit", (e) => {
    e.preventDefault();
    try {
      take(typed());
      wordInput.value = "";
    } catch (err) {
      status.textContent = err.message;
    }
  });

  return {
    /** The choose-mode run ended (Stop, a new generation, Let it finish, another model). */
    ended() {
      body.hidden = true;
      startButton.textContent = "Start choosing";
      top = null;
      for (const s of generation.output.querySelectorAll(".tentative")) s.classList.remove("tentative");
      try {
        const m = currentModel();
        if (m) m.inspect = inspecting();
      } catch {
        // a crashed engine: the page reports it where it matters
      }
    },
  };
}
