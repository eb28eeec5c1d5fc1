// Generating: the form's settings, the loop that steps the model, the text
// as it streams in (#output, one span per position) and the numbers under
// the form (#stats). Continue (model.extend) resumes the last run where it
// stopped, appending to the same text.
import { createStats } from "./stats.js";

// On the GPU backend (www/backend.js) the loop awaits each token instead:
// model.beginStep() submits the forward pass and resolves when its logits
// are ready, model.endStep() samples; nothing is borrowed in between, so
// the page's buttons keep working, and the same painting shows the text.
//
// Generation runs in short tasks (a MessageChannel loop), each stepping for
// about SLICE_MS, so the browser handles input between them; a
// requestAnimationFrame loop paints what they produced, at most every
// PAINT_EVERY_MS. Measured on the 2-core bench machine (15M shape, see
// README "Performance"): stepping inside rAF alone reached ~75% of a raw
// step() loop (a 9 ms token does not fit twice in a 16.7 ms frame, and
// overrunning costs a whole frame); tasks + painting every frame ~80%
// (producing each frame costs CPU and memory bandwidth there); tasks +
// painting every ~50 ms ~85%. Text still streams visibly at ~16 paints/s.
const SLICE_MS = 4;
const PAINT_EVERY_MS = 50;

const $ = (id) => document.getElementById(id);

/**
 * The generation form and its text. Options: `model()` the model to run
 * (or null); `clearError()`, `showError(e)`; `onText(model, spans,
 * promptLength, manual)` when a new text starts (its tokens' spans will
 * fill `spans`), `onPaint(force)` when text was painted, `onSpeed(tokPerSec)`
 * a new speed reading; `onStopClick()` when the user stops the run;
 * `onTakeBack(pos)` when the tokens from position `pos` on were taken back
 * (choose mode's Undo); `onChooseEnd()` when a choose-mode run ends;
 * `onGpuFailure(model, error)` when a step on the GPU failed (the model is
 * then on the CPU, and the run goes on there).
 */
export function createGeneration({
  model: currentModel, clearError, showError, onText, onPaint, onSpeed, onStopClick, onTakeBack, onChooseEnd,
  onGpuFailure,
}) {
  const output = $("output");
  const generateButton = $("generate-button");
  const stopButton = $("stop-button");
  const continueButton = $("continue-button");
  const stats = createStats({ onSpeed });
  let run = null; // the generation in progress: { model, frame, pending, spans, ... }
  let stopped = null; // the last run, once over, while its model can extend it (Continue)
  let gpuPass = Promise.resolve(); // the GPU's last pass (a new loop waits for it: one at a time)
  const ticker = new MessageChannel();
  ticker.port1.onmessage = tick;

  function readNumber(id) {
    const el = $(id);
    const v = Number(el.value);
    if (el.value.trim() === "" || !Number.isFinite(v)) {
      throw new Error(`${el.labels[0].querySelector("span").firstChild.textContent.trim()} must be a number`);
    }
    return v;
  }

  /**
   * Start a generation with the form's settings. `manual`: the walkthrough
   * or choose mode steps it one token per click instead of the task loop;
   * `steps`: instead of the Steps field's (0: up to seq_len).
   */
  function start(manual = false, steps = null) {
    const model = currentModel();
    if (!model) return;
    stop();
    forget();
    clearError();
    try {
      model.start($("prompt").value, readNumber("temperature"), readNumber("topp"), readNumber("seed"), steps ?? readNumber("steps"));
    } catch (e) {
      showError(e);
      return;
    }
    output.replaceChildren();
    output.classList.add("running");
    stats.seed(model.seed);
    run = {
      model,
      manual,
      pending: [], // { pos, text } produced but not yet painted
      spans: [], // position -> the span of the token it produced
      last: null, // the newest span
      count: model.tokenCount,
      started: performance.now(),
      promptLength: model.promptLength,
      decodeStart: 0, // when the first sampled token arrived (run.c starts its timer there)
      decodeFrom: 0, // token count at that moment
      frame: manual ? 0 : requestAnimationFrame(paint),
    };
    onText(model, run.spans, model.promptLength, manual);
    generateButton.disabled = false;
    stopButton.disabled = false;
    stats.update(run);
    if (!manual) ticker.port2.postMessage(null);
  }

  /**
   * Continue: the last run goes on where it stopped for the Steps field's
   * number of positions (model.extend: same KV cache and sampler), its new
   * tokens appended to the same text and counted in the same numbers.
   * `extend` false: it goes on to the end it had (after a change of backend).
   */
  function resume(extend = true) {
    const r = stopped;
    if (!r || run || r.model !== currentModel()) return;
    clearError();
    try {
      if (extend) r.model.extend(readNumber("steps"));
    } catch (e) {
      showError(e);
      return;
    }
    forget();
    // the numbers go on as if there had been no pause: shift the clocks by it
    const pause = performance.now() - r.ended;
    r.started += pause;
    if (r.decodeStart) r.decodeStart += pause;
    if (r.sample) r.sample.t += pause;
    r.ended = undefined;
    r.manual = false; // (a walkthrough's run goes on by itself)
    run = r;
    r.frame = requestAnimationFrame(paint);
    output.classList.add("running");
    stopButton.disabled = false;
    ticker.port2.postMessage(null);
  }

  /**
   * One step() of the run; false when the generation is over. Position p
   * produces token p + 1: its text becomes the span of position p.
   */
  function stepOnce(r, gpu = false) {
    const piece = gpu ? r.model.endStep() : r.model.step();
    const count = r.model.tokenCount;
    if (piece === undefined) {
      // the text ended on BOS with nothing left to show: still a position to inspect
      if (count !== r.count) r.pending.push({ pos: count - 2, text: "", end: true });
      return false;
    }
    if (count !== r.count) {
      r.count = count;
      r.pending.push({ pos: count - 2, text: piece });
      if (!r.decodeStart && count > r.promptLength) {
        r.decodeStart = performance.now();
        r.decodeFrom = count;
      }
    } else if (piece) {
      r.pending.push({ pos: -1, text: piece }); // the end of a split character: same token
    }
    return true;
  }

  /** One task: step for about SLICE_MS (at least once), then yield to the page. */
  function tick() {
    const r = run;
    if (!r || r.manual) return;
    if (r.model.backend === "webgpu") {
      r.gpuLoop ??= gpuLoop(r);
      return;
    }
    const end = performance.now() + SLICE_MS;
    try {
      do {
        if (!stepOnce(r)) {
          finish();
          return;
        }
      } while (performance.now() < end);
    } catch (e) {
      showError(e);
      finish();
      return;
    }
    ticker.port2.postMessage(null);
  }

  /**
   * The run on the GPU: one token per awaited pass, while it is the run and
   * the model stays on the GPU (else back to the tasks). A failed pass
   * moves the model to the CPU (onGpuFailure) and the tasks go on there.
   */
  async function gpuLoop(r) {
    const onGpu = () => run === r && !r.manual && r.model.backend === "webgpu";
    let yielded = performance.now();
    try {
      await gpuPass; // a pass of a run stopped meanwhile still holds the read-back buffer
      while (onGpu()) {
        const pass = r.model.beginStep();
        gpuPass = pass.catch(() => {});
        try {
          await pass;
        } catch {
          // (endStep reports the pass's failure, with the GPU's words)
        }
        if (!onGpu()) break; // stopped, or another run: the next beginStep drops these logits
        if (!stepOnce(r, true)) {
          finish();
          return;
        }
        // a pass that settled at once (nothing for the GPU to do) resumes as a microtask:
        // hand the page a task now and then, as the CPU's loop does
        if (performance.now() - yielded > SLICE_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          yielded = performance.now();
        }
      }
    } catch (e) {
      if (run !== r) return;
      if (r.model.backend === "webgpu") {
        onGpuFailure(r.model, e);
      } else {
        showError(e);
        finish();
        return;
      }
    }
    r.gpuLoop = null;
    if (run === r && !r.manual) ticker.port2.postMessage(null); // on the CPU now: the tasks take over
  }

  /**
   * The walkthrough's button: one token (starting a generation first if
   * needed); `report({ more, positions, promptLength })` before the run
   * ends, if it does.
   */
  function walkStep(report) {
    clearError();
    if (!run?.manual || run.model !== currentModel()) start(true);
    const r = run;
    if (!r) return;
    let more = false;
    try {
      more = stepOnce(r);
    } catch (e) {
      showError(e);
    }
    flush(r, true);
    onPaint(true);
    report({ more, positions: Math.max(0, r.count - 1), promptLength: r.promptLength });
    if (!more) finish();
  }

  // ------------------------------------------------------------ choose mode
  // (www/choose.js) A manual run whose next token the user picks. The
  // newest token is always the sampler's pick, shown as not yet taken:
  // taking it is one more step(); taking another is undo(), forceNext(t),
  // step() (the engine's contract: the random draws stay those of the run
  // without the choice), then step() for the next pick.

  /** Start a choose-mode run (the form's settings, up to seq_len): the prompt and the first pick. */
  function chooseStart() {
    start(true, 0);
    const r = run;
    if (!r) return null;
    r.choosing = true;
    try {
      while (stepOnce(r) && r.model.tokenCount <= r.promptLength);
    } catch (e) {
      showError(e);
    }
    flush(r, true);
    onPaint(true);
    return r;
  }

  /** The choose-mode run in progress, or null. */
  const choosing = () => (run?.choosing && run.model === currentModel() ? run : null);

  /** One step of the choose-mode run, taking `force` (a token id) if given; false once the text ended. */
  function chooseStep(force) {
    const r = choosing();
    if (!r) return false;
    let more = false;
    try {
      if (force !== undefined) r.model.forceNext(force);
      more = stepOnce(r);
    } catch (e) {
      showError(e);
    }
    flush(r, true);
    onPaint(true);
    return more;
  }

  /** Undo the newest token (model.undo): its span goes, the text is the engine's again. */
  function takeBack() {
    const r = choosing();
    if (!r) return;
    flush(r, true);
    const text = r.model.undo();
    const count = r.model.tokenCount;
    r.count = count;
    // position p made token p + 1: the spans of positions count - 1 and on made the tokens taken back
    for (const span of r.spans.splice(Math.max(0, count - 1))) span?.remove();
    r.last = r.spans.at(-1) ?? null;
    // a character split over two tokens is held back by the engine: the last span shows what it returned
    const before = r.spans.slice(0, -1).map((s) => s?.textContent ?? "").join("");
    if (r.last && text.startsWith(before)) r.last.textContent = text.slice(before.length);
    r.last?.classList.remove("end");
    onTakeBack(count - 1);
    stats.refresh(r, true);
    onPaint(true);
  }

  /** Choose mode ends: the run goes on by itself (`runOn`) or stops here. */
  function chooseEnd(runOn) {
    const r = choosing();
    if (!r) return;
    r.choosing = false;
    onChooseEnd();
    if (!runOn) {
      finish();
      return;
    }
    r.manual = false;
    r.frame = requestAnimationFrame(paint);
    ticker.port2.postMessage(null);
  }

  /** In an animation frame: append the new text and refresh the numbers. */
  function paint() {
    const r = run;
    if (!r) return;
    flush(r);
    onPaint(false);
    r.timer = setTimeout(() => (r.frame = requestAnimationFrame(paint)), PAINT_EVERY_MS);
  }

  function flush(r, force = false) {
    if (r.pending.length) {
      const frag = document.createDocumentFragment();
      for (const { pos, text, end } of r.pending) {
        if (pos < 0) {
          if (r.last) r.last.textContent += text;
          continue;
        }
        const span = document.createElement("span");
        span.className = (pos + 1 < r.promptLength ? "tok prompt" : "tok") + (end ? " end" : "");
        span.dataset.pos = pos;
        span.textContent = text;
        r.spans[pos] = span;
        r.last = span;
        frag.append(span);
      }
      output.append(frag);
      r.pending = [];
    }
    stats.refresh(r, force);
  }

  /** The loop ended by itself (steps done, BOS, or an error): paint the rest. */
  function finish() {
    if (!run) return;
    run.ended = performance.now();
    stop();
  }

  function stop() {
    const r = run;
    if (!r) return;
    clearTimeout(r.timer);
    cancelAnimationFrame(r.frame);
    r.ended ??= performance.now();
    flush(r, true);
    onPaint(true);
    run = null;
    if (r.choosing) onChooseEnd();
    output.classList.remove("running");
    stopButton.disabled = true;
    // stopped at its steps or by Stop (not by its end token, nor at seq_len): it can go on
    let more = false;
    try {
      more = r.model.canExtend;
    } catch {
      // a dead engine: the next call that matters (Generate, a load) reports the crash
    }
    if (more) {
      stopped = r;
      continueButton.disabled = false;
    }
  }

  /** The last run can no longer go on (a new one, another model, its KV cache used by someone else). */
  function forget() {
    stopped = null;
    continueButton.disabled = true;
  }

  /** The engine crashed: drop the run without touching its (dead) model, and wait for the next one. */
  function abandon() {
    const r = run;
    run = null; // stop() would read the dead model
    forget();
    if (r?.choosing) onChooseEnd();
    if (r) {
      clearTimeout(r.timer);
      cancelAnimationFrame(r.frame);
      output.classList.remove("running");
      stopButton.disabled = true;
    }
    generateButton.disabled = true;
  }

  /** While the model is busy elsewhere (its backend being chosen): no Generate, no Continue. */
  function hold(busy) {
    generateButton.disabled = busy || !currentModel();
    continueButton.disabled = busy || !stopped;
  }

  /** A model to generate with (its config()), or null while there is none. */
  function ready(config) {
    if (config) $("steps").max = config.seq_len;
    generateButton.disabled = !config;
    forget();
  }

  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  stopButton.addEventListener("click", () => {
    onStopClick();
    stop();
  });
  continueButton.addEventListener("click", () => resume());
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      start();
    }
  });

  return {
    /** A run is going on by itself (not stepped by hand). */
    get running() {
      return Boolean(run && !run.manual);
    },
    output, start, stop, resume, forget, walkStep, abandon, ready, hold,
    chooseStart, choosing, chooseStep, takeBack, chooseEnd,
  };
}
