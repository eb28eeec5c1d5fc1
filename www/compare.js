// Compare two settings (#compare): the same prompt, seed and steps (the
// Generate form's) run at two temperature / top-p settings, A then B, shown
// side by side with the first position where they part marked, and at that
// position the candidates as each setting's sampler saw them.
//
// It drives the page's model directly, so it replaces the KV cache the
// page's text was written into: `takeModel()` stops the page's generation
// and tells the inspector and Continue that the text no longer matches.
// Anything else that takes the model (Generate, the walkthrough, the debug
// hooks) calls `stop()` first; a model swapped or lost (a load, an engine
// restart) is seen before each step.
import { barCells, show } from "./inspector/common.js";

// Runs step in short tasks like www/generation.js (a MessageChannel loop
// with ~SLICE_MS of work per task), so the page stays responsive and Stop
// is heard between tasks.
const SLICE_MS = 4;
const TOP_K = 10;
const BOS = 1;

const $ = (id) => document.getElementById(id);

/** A comparison ended early (Stop, Generate, another model): not an error. */
class Stopped extends Error {}

const STOP_REASONS = {
  user: "Stopped.",
  generate: "Stopped: the page's generation took the model (Generate or the walkthrough).",
  model: "Stopped: the model changed (a load, or an engine restart).",
  other: "Stopped: something else took the model.",
};

/**
 * The comparison panel. Options: `model()` the page's model (or null);
 * `takeModel()` stop the page's generation and mark its text as no longer
 * matching the KV cache; `inspecting()` is the inspector open (the state
 * `model.inspect` goes back to).
 */
export function createCompare({ model: currentModel, takeModel, inspecting }) {
  const form = $("compare-form");
  const runButton = $("compare-button");
  const stopButton = $("compare-stop");
  const status = $("compare-status");
  const progress = $("compare-progress");
  const error = $("compare-error");
  const results = $("compare-results");
  const summary = $("compare-summary");
  let job = null; // the comparison in progress: { model, stopped }

  const ticker = new MessageChannel();
  let wake = null;
  ticker.port1.onmessage = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  /** Let the page handle input and paint, then go on (a task, not a frame: it runs hidden too). */
  const nextTask = () => new Promise((resolve) => {
    wake = resolve;
    ticker.port2.postMessage(null);
  });

  function showError(message) {
    error.textContent = message;
    error.hidden = false;
  }

  function clearError() {
    error.hidden = true;
    error.textContent = "";
  }

  /** A field's number, or an error naming it. */
  function readNumber(id, name) {
    const el = $(id);
    const v = Number(el.value);
    if (el.value.trim() === "" || !Number.isFinite(v)) throw new Error(`${name} must be a number`);
    return v;
  }

  /**
   * The settings, checked. The engine would clamp a negative temperature
   * to 0 and a top-p outside [0, 1] to 0.9 (as run.c does); here that would
   * compare something else than what was typed, so it is refused instead.
   */
  function readSettings() {
    const side = (s) => {
      const temperature = readNumber(`compare-${s}-temperature`, `${s.toUpperCase()}'s temperature`);
      const topp = readNumber(`compare-${s}-topp`, `${s.toUpperCase()}'s top-p`);
      if (temperature < 0) throw new Error(`${s.toUpperCase()}'s temperature must be 0 (greedy) or more, not ${temperature}`);
      if (topp < 0 || topp > 1) throw new Error(`${s.toUpperCase()}'s top-p must be from 0 to 1, not ${topp}`);
      return { temperature, topp };
    };
    return {
      a: side("a"),
      b: side("b"),
      prompt: $("prompt").value,
      // the engine checks them further (whole numbers, ranges) and says so
      seed: readNumber("seed", "Seed (in the Generate form)"),
      steps: readNumber("steps", "Steps (in the Generate form)"),
    };
  }

  /** Throw Stopped when the comparison should not touch the model any more. */
  function check(j) {
    if (!j.stopped && currentModel() !== j.model) j.stopped = "model";
    if (j.stopped) throw new Stopped(STOP_REASONS[j.stopped] ?? STOP_REASONS.other);
  }

  /**
   * Step `j.model` (already started) in slices until it ends or has
   * `until` tokens (BOS included); returns the text of each position as
   * www/generation.js builds it: position p's text is token p + 1's piece.
   */
  async function stepRun(j, label, until = Infinity) {
    const m = j.model;
    const texts = [];
    let count = m.tokenCount;
    for (;;) {
      const end = performance.now() + SLICE_MS;
      do {
        check(j);
        if (m.tokenCount >= until) return texts;
        const piece = m.step();
        const now = m.tokenCount;
        if (piece === undefined) {
          if (now !== count) texts[now - 2] = ""; // ended on BOS: a position with no text
          return texts;
        }
        if (now !== count) {
          count = now;
          texts[now - 2] = piece;
        } else if (piece && texts.length) {
          texts[texts.length - 1] += piece; // the end of a split character: same token
        }
      } while (performance.now() < end);
      progress.textContent = `${label}: ${count - 1} positions`;
      await nextTask();
    }
  }

  /** One setting's whole run: `{ tokens, texts, promptLength, seed }`. */
  async function runSetting(j, s, settings, label) {
    check(j);
    j.model.inspect = false; // nothing is read per step: recording would only cost
    j.model.start(settings.prompt, s.temperature, s.topp, settings.seed, settings.steps);
    const texts = await stepRun(j, label);
    check(j);
    return { tokens: Array.from(j.model.tokens()), texts, promptLength: j.model.promptLength, seed: j.model.seed };
  }

  /**
   * The candidates at the parting position d - 1 (the step that produced
   * token d, the first that differs), as each setting's sampler saw them.
   *
   * Both runs fed the same tokens 0..d-1, so the logits there are the same;
   * what differs is the sampler (temperature, top-p), and Model.topk scores
   * the recorded logits with the sampler's current settings, run.c's own
   * arithmetic (src/inspect/distribution.rs). So:
   * - B, the last run: its KV cache still holds positions 0..d-1, and the
   *   sampler is B's. inspectAt(d - 1) replays that one position (one
   *   forward pass, the same logits bit for bit) and topk reads it.
   * - A: its sampler is gone (start() replaced it). Run A again from the
   *   start up to position d - 1 only, recording just that last step: d
   *   forward passes, usually a handful past the prompt, at most one more
   *   run. Recomputing A's softmax and nucleus in JavaScript from the logits
   *   would cost nothing, but would be a second sampler that could disagree
   *   with the engine's (f32 softmax, the nucleus's edge); recording topk at
   *   every step of A would cost a vocabulary-wide pass per step for one
   *   position's worth.
   */
  async function partingCandidates(j, settings, seed, a, d) {
    const m = j.model;
    check(j);
    m.inspect = true;
    m.inspectAt(d - 1);
    const b = m.topk(TOP_K);
    m.inspect = false;
    m.start(settings.prompt, settings.a.temperature, settings.a.topp, seed, settings.steps);
    await stepRun(j, "A again, up to where they part", d);
    check(j);
    m.inspect = true;
    m.step(); // position d - 1 (undefined when A's token d is BOS: still recorded)
    const aTop = m.topk(TOP_K);
    if (aTop.pos !== d - 1 || aTop.next !== a.tokens[d]) {
      throw new Error(`running A again did not give the same token at position ${d - 1} (${aTop.next}, ` +
        `not ${a.tokens[d]}): the engine is not deterministic here`);
    }
    return { a: aTop, b };
  }

  async function compare() {
    clearError();
    let settings;
    try {
      settings = readSettings();
    } catch (e) {
      showError(e.message);
      return;
    }
    const model = currentModel();
    if (!model) {
      showError("No model is loaded yet: wait for it (or load one above), then compare.");
      return;
    }
    stop();
    takeModel();
    const j = { model, stopped: null };
    job = j;
    runButton.disabled = true;
    stopButton.disabled = false;
    results.hidden = true;
    summary.textContent = "";
    status.textContent = "Running A…";
    progress.textContent = "";
    try {
      const a = await runSetting(j, settings.a, settings, "A");
      // seed 0 drew a random one for A: B uses the same
      status.textContent = "Running B…";
      const b = await runSetting(j, settings.b, { ...settings, seed: a.seed }, "B");
      const d = firstDifference(a.tokens, b.tokens);
      let tops = null;
      if (d !== null && d < a.tokens.length && d < b.tokens.length) {
        status.textContent = "Scoring the position where they part…";
        tops = await partingCandidates(j, settings, a.seed, a, d);
      }
      check(j);
      render({ settings, a, b, d, tops, piece: (t) => pieceOf(model, t) });
    } catch (e) {
      if (job !== j) {
        // stopped by stop(), which said so (and a new comparison may be running)
      } else if (e instanceof Stopped) {
        status.textContent = e.message;
      } else {
        status.textContent = "The comparison failed.";
        showError(e instanceof Error ? e.message : String(e));
      }
    } finally {
      if (job === j) {
        job = null;
        progress.textContent = "";
        restoreInspect(j);
        runButton.disabled = false;
        stopButton.disabled = true;
      }
    }
  }

  /** The model records again exactly when the inspector is open (closed costs nothing). */
  function restoreInspect(j) {
    if (currentModel() !== j.model) return; // freed or dead: never call it again
    try {
      j.model.inspect = inspecting();
    } catch {
      // a dead engine: models.js has seen it (the guard) and restarts it
    }
  }

  /**
   * Stop the comparison in progress, if any, before its next step:
   * `reason` says why ("user", "generate", "model", "other").
   */
  function stop(reason = "other") {
    const j = job;
    if (!j) return;
    j.stopped = reason;
    job = null;
    restoreInspect(j);
    status.textContent = STOP_REASONS[reason] ?? STOP_REASONS.other;
    progress.textContent = "";
    runButton.disabled = false;
    stopButton.disabled = true;
  }

  // ------------------------------------------------------------ the result

  function render({ settings, a, b, d, tops, piece }) {
    const parted = tops !== null;
    const pos = parted ? d - 1 : null;
    results.hidden = false;
    results.dataset.firstDiff = parted ? String(pos) : "none";
    fillColumn("a", settings.a, a, pos, tops?.a, tops?.b, piece);
    fillColumn("b", settings.b, b, pos, tops?.b, tops?.a, piece);
    let line;
    if (parted) {
      line = `first differ at position ${pos}: A chose "${label(tops.a.next, piece)}", ` +
        `B chose "${label(tops.b.next, piece)}"`;
    } else if (d === null) {
      line = `A and B never differ: the same ${a.tokens.length - 1} tokens, every position chose alike`;
    } else {
      // (the same steps for both: only a run that ended early is shorter, on BOS, which differs)
      line = `A and B never differ in their first ${d - 1} tokens; then ${a.tokens.length < b.tokens.length ? "A" : "B"} ended`;
    }
    summary.textContent = line;
    status.textContent = `Done: A then B, seed ${a.seed} for both.`;
    // the marked token in view inside each text box (not scrolling the page)
    for (const s of ["a", "b"]) {
      const box = $(`compare-${s}-text`);
      const mark = box.querySelector("mark");
      box.scrollTop = mark ? Math.max(0, mark.offsetTop - box.clientHeight / 3) : 0;
    }
  }

  /** One side: its settings line, its text (common / parting / after), its candidates. */
  function fillColumn(s, set, run, pos, top, otherTop, piece) {
    const name = s.toUpperCase();
    const other = name === "A" ? "B" : "A";
    $(`compare-${s}-title`).textContent = `${name}: ${describe(set.temperature, set.topp)}`;
    const spans = run.texts.map((text, p) => {
      const el = document.createElement(p === pos ? "mark" : "span");
      const part = pos === null || p < pos ? "same" : p === pos ? "diff" : "after";
      el.className = `tok ${part}` + (p + 1 < run.promptLength ? " prompt" : "") +
        (run.tokens[p + 1] === BOS ? " end" : "");
      el.dataset.pos = p;
      el.dataset.token = run.tokens[p + 1];
      el.textContent = text ?? "";
      if (p === pos) el.title = `first difference: position ${p}`;
      return el;
    });
    $(`compare-${s}-text`).replaceChildren(...spans);
    const list = $(`compare-${s}-cands`);
    const caption = $(`compare-${s}-cands-title`);
    const note = $(`compare-${s}-cands-note`);
    $(`compare-${s}-figure`).hidden = !top;
    if (!top) {
      list.replaceChildren();
      return;
    }
    caption.textContent = `${name}'s candidates at position ${pos}`;
    const rows = candidateRows(top, name, other, otherTop.next, piece);
    list.replaceChildren(...rows);
    note.textContent = samplerNote(top);
    if (!rows.some((li) => li.classList.contains("other"))) {
      // the same logits on both sides: a temperature keeps their order, so the rank is the other's
      note.textContent += ` ${other}'s pick, "${label(otherTop.next, piece)}", ranks ` +
        `#${otherTop.nextRank.toLocaleString("en-US")}.`;
    }
  }

  /** The top-K bars (www/inspector/candidates.js's look), this side's pick and the other's marked. */
  function candidateRows(top, name, other, otherNext, piece) {
    const max = top.candidates[0]?.prob || 1;
    const rows = top.candidates.map((c) => ({ ...c, rank: 0 }));
    if (top.nextRank > rows.length) {
      // the token this side chose, from further down the list
      rows.push({ token: top.next, text: piece(top.next), prob: top.nextProb, kept: true, rank: top.nextRank });
    }
    return rows.map((c) => {
      const li = document.createElement("li");
      const mine = c.token === top.next;
      const theirs = c.token === otherNext;
      li.className = (c.kept ? "kept" : "") + (mine ? " chosen" : "") + (theirs ? " other" : "") +
        (c.rank ? " further" : "");
      li.dataset.token = c.token;
      const [tt, bar, p] = barCells(c, label(c.token, () => c.text), max);
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = [mine && `${name} chose`, theirs && `${other} chose`].filter(Boolean).join(", ");
      li.append(tt, bar, p, who);
      li.setAttribute("aria-label", `${label(c.token, () => c.text)}: ${c.prob.toFixed(3)}` +
        (c.kept ? "" : ", outside what the sampler could pick") + (who.textContent ? `, ${who.textContent}` : ""));
      return li;
    });
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    compare();
  });
  stopButton.addEventListener("click", () => stop("user"));

  return {
    stop,
    /** Is a comparison running? */
    get running() {
      return job !== null;
    },
  };
}

/** The first index where the token lists differ (one may be shorter), or null when they are equal. */
function firstDifference(a, b) {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return null;
}

/** A setting in words. */
function describe(temperature, topp) {
  if (temperature === 0) return "temperature 0 (greedy)";
  return `temperature ${temperature}, ` + (topp > 0 && topp < 1 ? `top-p ${topp}` : "no top-p (full distribution)");
}

/** What the probabilities are and what the sampler could pick, from topk's own fields. */
function samplerNote(t) {
  if (t.temperature === 0) {
    return "Greedy: the sampler takes the most likely token (the dark bar); probabilities shown at " +
      "temperature 1 (the softmax of the logits).";
  }
  const prob = `Probabilities after temperature ${+t.temperature.toFixed(3)}`;
  if (t.nucleus === 1) return `${prob}; only the top token could be picked (dark bar).`;
  if (t.topp > 0 && t.topp < 1) {
    return `${prob}; dark bars: the top-p nucleus the sampler drew from, ` +
      `${t.nucleus.toLocaleString("en-US")} tokens holding ${t.nucleusMass.toFixed(3)}.`;
  }
  return `${prob}; no top-p: the sampler drew from the whole distribution.`;
}

/** A token as the panel names it: its piece made visible, BOS as the end it is. */
function label(token, piece) {
  return token === BOS ? "<s> (end)" : show(piece(token));
}

function pieceOf(model, token) {
  try {
    return model.piece(token);
  } catch {
    return `#${token}`;
  }
}
