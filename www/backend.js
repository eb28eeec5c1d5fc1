// The backend a model runs on: the CPU (WebAssembly SIMD128, always there)
// or the GPU through WebGPU (Model.useGpu, src/gpu). Owns the "Run on"
// choice (#backend-choice) and the card's backend line.
//
// Why time it: a GPU is faster only when a token's work is large enough to
// hide what each token costs it (a submission and a read-back); stories260K
// is faster on the CPU everywhere, 110M on a real GPU, and a software
// adapter (SwiftShader, what headless Chromium offers without a GPU) is
// slower than the CPU at every size. So "Automatic" runs a few tokens on
// each (once per model) and keeps the faster; "CPU" and "GPU" override it.
//
// Failure: whatever goes wrong with the GPU (no WebGPU, no adapter, a limit
// too small, a kernel that does not compile, out of memory, the device lost
// mid-generation) leaves the model running on the CPU, and the card and the
// notice line say why.

/** Tokens (forward passes of TIMING_PROMPT) each backend runs for the automatic choice (after one to warm up). */
const TIMED_TOKENS = 6;
/** What the timed tokens feed: more than TIMED_TOKENS + 2 tokens with any tokenizer (512 or 32000 pieces). */
const TIMING_PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside.";
/** The CPU's timing stops early after this long (a large model on a slow machine). */
const CPU_BUDGET_MS = 400;

const $ = (id) => document.getElementById(id);

/** "4.20 ms/token" */
const perToken = (ms) => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms/token`;

/** The adapter as the card names it: "webgpu: google, swiftshader". */
export function adapterText(info) {
  const parts = [info?.vendor, info?.architecture].filter(Boolean);
  return `webgpu: ${parts.length ? parts.join(", ") : "unnamed adapter"}`;
}

/**
 * An engine error as the page says it: without the engine's advice to
 * JavaScript callers ("run on the CPU", "call useCpu()"), which is what
 * the page does.
 */
function reasonOf(e) {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/: (run on the CPU|call useCpu\(\) to go on on the CPU)$/, "");
}

/** The user's choice: "auto", "cpu" or "gpu" (`?backend=` in the URL sets it first). */
function initialChoice() {
  const asked = new URLSearchParams(globalThis.location?.search ?? "").get("backend");
  return ["auto", "cpu", "gpu"].includes(asked) ? asked : "auto";
}

/**
 * `messages`: www/messages.js (the notice line says why the GPU is not
 * used); `onBusy(busy)`: while a choice is made (the GPU set up, the
 * backends timed on the model) the page does not start generating.
 */
export function createBackend({ messages, onBusy }) {
  const select = $("backend-choice");
  const field = () => document.querySelector('#card [data-field="backend"]');
  select.value = initialChoice();
  let status = { backend: "cpu", text: "cpu", reason: "" };
  let choices = 0; // choices made (tests wait for the next)
  let gpuOptions; // useGpu's options (tests ask for more than the adapter has)
  const timed = new WeakMap(); // model -> Automatic's timing { cpuMs, gpuMs, adapter }

  function show(next) {
    status = next;
    field().textContent = next.text;
    field().title = next.reason;
  }

  /**
   * Try the GPU; resolves to "" or the reason it cannot be used (the model
   * is then on the CPU). `findGpu` first: it asks for no device, and its
   * reasons are useGpu's.
   */
  async function tryGpu(model, pkg) {
    try {
      await pkg.findGpu();
      await model.useGpu(gpuOptions);
      return "";
    } catch (e) {
      model.useCpu();
      return reasonOf(e);
    }
  }

  /** The GPU was asked for and cannot be used: the choice shows what runs. */
  function fellBack() {
    if (select.value === "gpu") select.value = "cpu";
  }

  /**
   * Milliseconds per token of `step` (a function running one token) on a
   * new generation of TIMING_PROMPT; `giveUpMs`: stop once the total passes
   * it (after at least one timed token).
   */
  async function timeTokens(model, step, giveUpMs) {
    // prompt tokens: a forward pass each, like sampled ones, and no end token can cut the timing short
    model.start(TIMING_PROMPT, 0, 0.9, 1, Math.min(model.config().seq_len, TIMED_TOKENS + 2));
    await step(); // warm up: the first token (BOS) compiles and uploads what is lazy
    let n = 0;
    const t0 = performance.now();
    while (n < TIMED_TOKENS && (await step()) !== undefined) {
      n++;
      if (performance.now() - t0 > giveUpMs) break;
    }
    return n ? (performance.now() - t0) / n : Infinity;
  }

  const gpuStep = async (model) => {
    await model.beginStep();
    return model.endStep();
  };

  /** The card's line for a timing's verdict `t` ({ cpuMs, gpuMs, adapter }). */
  function verdict(model, t) {
    const times = `GPU ${perToken(t.gpuMs)}, CPU ${perToken(t.cpuMs)}`;
    if (!Number.isFinite(t.cpuMs)) {
      // (a seq_len of 1: nothing to time) the CPU is the default
      model.useCpu();
      show({ backend: "cpu", text: `cpu: the backends could not be timed (seq_len ${model.config().seq_len})`, reason: "" });
    } else if (t.gpuMs < t.cpuMs) {
      show({ backend: "webgpu", text: `${t.adapter} (faster here: ${times})`, reason: times });
    } else {
      model.useCpu(); // give the GPU memory back
      show({ backend: "cpu", text: `cpu: the GPU is slower here (${t.adapter}: ${times})`, reason: times });
    }
  }

  /**
   * Choose the backend for a model just loaded (or again after the choice
   * changed); resolves once it runs on the chosen one, to `{ restarted }`:
   * true when timing the backends replaced the model's generation (its text
   * can then no longer go on). Never rejects: the CPU is the fallback.
   * `pkg`: the model's engine package (its findGpu). Automatic times a
   * model once; choosing it again for the same model reuses the verdict.
   */
  async function choose(model, pkg) {
    const choice = select.value;
    let restarted = false;
    onBusy(true);
    try {
      if (choice === "cpu") {
        model.useCpu();
        show({ backend: "cpu", text: "cpu (chosen)", reason: "" });
        return { restarted };
      }
      const known = choice === "auto" ? timed.get(model) : undefined;
      if (known && !(known.gpuMs < known.cpuMs)) {
        verdict(model, known);
        return { restarted };
      }
      show({ backend: "cpu", text: "cpu (looking for a GPU…)", reason: "" });
      const why = await tryGpu(model, pkg);
      if (why) {
        show({ backend: "cpu", text: `cpu: the GPU is not used (${why})`, reason: why });
        if (choice === "gpu") {
          messages.notice(`Running on the CPU: ${why}`);
          fellBack();
        }
        return { restarted };
      }
      const adapter = adapterText(model.gpuAdapter);
      if (choice === "gpu") {
        show({ backend: "webgpu", text: `${adapter} (chosen)`, reason: "" });
        return { restarted };
      }
      // Automatic: a few tokens on each, the faster one stays
      let t = known;
      if (!t) {
        show({ backend: "webgpu", text: `${adapter} (timing a few tokens on each backend…)`, reason: "" });
        restarted = true;
        const cpuMs = await timeTokens(model, () => model.step(), CPU_BUDGET_MS);
        // the GPU cannot win once it took longer for its tokens than the CPU for all of them
        const gpuMs = await timeTokens(model, () => gpuStep(model), cpuMs * TIMED_TOKENS);
        t = { cpuMs, gpuMs, adapter };
        timed.set(model, t);
      }
      verdict(model, t);
    } catch (e) {
      // a GPU that failed while being timed: the CPU it is
      try {
        model.useCpu();
      } catch {
        // a dead engine: its restart reports it
      }
      const why = reasonOf(e);
      show({ backend: "cpu", text: `cpu: the GPU failed (${why})`, reason: why });
      messages.notice(`The GPU failed, running on the CPU: ${why}`);
      fellBack();
    } finally {
      choices++;
      onBusy(false);
    }
    return { restarted };
  }

  /**
   * The GPU failed mid-generation (`error` from beginStep or endStep): the
   * model goes on on the CPU (its KV cache catches up by running the GPU's
   * positions again), and the page says so.
   */
  function failed(model, error) {
    const why = reasonOf(error);
    model.useCpu();
    fellBack();
    show({ backend: "cpu", text: `cpu: the GPU failed mid-generation (${why})`, reason: why });
    messages.notice(`The GPU stopped working, so the text goes on on the CPU: ${why}`);
  }

  return {
    choose,
    failed,
    /** Tests: useGpu's options from now on (e.g. `{ requiredLimits }`). */
    setGpuOptions(options) {
      gpuOptions = options;
    },
    /** The choice's control, for the page to react when it changes. */
    select,
    /** { backend, text, reason, choices }: what the card says, and how many choices were made. */
    get status() {
      return { ...status, choices };
    },
  };
}
