// The inspector: next-token candidates, attention and timings of the tokens
// on the page, read from the engine (Model.topk / attentionAll / timings /
// trace / inspectAt). Closed, it sets model.inspect = false: the engine
// records nothing and this module does nothing per token.

const $ = (id) => document.getElementById(id);

const TOP_K = 10;
const PHASES = [
  ["projections", "q k v o matmuls", "#2f5fd0"],
  ["attention", "attention", "#d0652f"],
  ["ffn", "FFN", "#3a9a5b"],
  ["classifier", "classifier", "#8e44ad"],
  ["sampling", "sampling", "#c9a227"],
  ["other", "other", "#9a9a9a"],
];
const SPARK_POINTS = 120;
const ATT_CACHE = 8; // replayed positions' attention kept for re-selection
const PAINT_EVERY_MS = 250;
const HOVER_MS = 60;
const HEATMAP_EVERY_MS = 1000;
const HEAT_GUTTER = 44; // px left of the heatmap for "L3 H2" labels
const HEAT_LABELS = 64; // px under it for the token labels

/** A token's text made visible: newlines, tabs, a leading space and other control characters as marks. */
function show(text) {
  if (text === "") return "∅";
  return text
    .replace(/\n/g, "↵")
    .replace(/\t/g, "⇥")
    .replace(/^ /, "␣")
    .replace(/[\u0000-\u001f\u007f]/g, (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

const fmtMs = (ms) => (ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

export function createInspector() {
  const self = {
    open: false,
    model: null, // the model installed on the page
    view: null, // the text on the page: { model, spans, records, promptLength, tokens, manual }
    selected: null, // pinned position, or null to follow the newest token
    hover: null,
    speeds: [],
  };
  const output = $("output");

  // ------------------------------------------------------------ lifecycle

  /** A model was installed (or replaced). */
  self.attach = (model) => {
    self.model = model;
    heat = null; // the heatmap on screen was the old model's
    model.inspect = self.open;
    const c = model.config();
    fillSelect($("att-layer"), c.n_layers, "all layers");
    fillSelect($("att-head"), c.n_heads, "all heads");
    fillSelect($("walk-layer"), c.n_layers, "all layers", "0");
    self.cfg = c;
  };

  /** A generation started on `model`; its tokens will get spans in `spans`. */
  self.newText = (model, spans, promptLength, manual) => {
    self.view = { model, spans, promptLength, records: new Map(), tokens: null, manual, attCache: new Map() };
    self.selected = null;
    self.hover = null;
    self.speeds = [];
    model.walkthrough = self.open && manual;
    if (self.open) render();
  };

  /** The text on the page no longer matches the model's KV cache. */
  self.invalidate = () => {
    if (self.view) self.view.model = null;
  };

  /**
   * The model was unloaded (to make room for another, or its engine
   * crashed): never call it again. The text's kept charts stay readable.
   */
  self.detach = () => {
    self.invalidate();
    self.model = null;
    heat = null;
  };

  /** A token's text from the current model, or `#id` when it has none (another vocabulary, no model). */
  function pieceOf(token) {
    if (!self.model) return `#${token}`;
    try {
      return self.model.piece(token);
    } catch {
      return `#${token}`;
    }
  }

  self.speed = (tokPerSec) => {
    self.speeds.push(tokPerSec);
    if (self.speeds.length > SPARK_POINTS) self.speeds.shift();
    if (self.open) drawSparkline();
  };

  /**
   * At paint time: refresh the views (they follow the newest token unless
   * one is pinned), at most every PAINT_EVERY_MS while text streams in:
   * redrawing the heatmap and charts competes with generation for the CPU.
   */
  self.paint = (force = false) => {
    if (!self.open) return;
    const now = performance.now();
    if (!force && now - (self.paintedAt ?? 0) < PAINT_EVERY_MS) return;
    self.paintedAt = now;
    // the heatmap follows the newest token once a second while text streams in
    const heavy = force || now - (self.heatmapAt ?? 0) >= HEATMAP_EVERY_MS;
    if (heavy) self.heatmapAt = now;
    render(heavy);
  };

  function setOpen(open) {
    self.open = open;
    $("inspector-body").hidden = !open;
    $("inspector-toggle").setAttribute("aria-expanded", String(open));
    $("inspector-toggle").textContent = open ? "Close inspector" : "Open inspector";
    output.classList.toggle("inspecting", open);
    if (self.model) {
      self.model.inspect = open;
      // a walkthrough in progress goes on recording its vectors
      self.model.walkthrough = open && !!self.view?.manual && self.view.model === self.model;
    }
    if (open) render();
  }

  // ------------------------------------------------------------ selection

  const visible = () => self.hover ?? self.selected ?? latest();

  function latest() {
    const spans = self.view?.spans;
    return spans && spans.length ? spans.length - 1 : null;
  }

  /** Pin a position (null: follow the newest); a user action, so it is announced. */
  function select(pos) {
    if (self.view?.spans[self.selected]) self.view.spans[self.selected].classList.remove("sel");
    self.selected = pos;
    if (pos !== null && self.view?.spans[pos]) self.view.spans[pos].classList.add("sel");
    render();
    // the live region speaks only on the user's actions, never while text streams in
    const top = $("cand-list").firstElementChild?.getAttribute("aria-label");
    $("insp-announce").textContent = $("insp-selected").textContent + (top ? `; most likely: ${top}` : "");
  }

  const posOf = (el) => (el?.classList?.contains("tok") ? Number(el.dataset.pos) : null);

  output.addEventListener("click", (e) => {
    const pos = posOf(e.target);
    if (!self.open || pos === null) return;
    select(pos === self.selected ? null : pos);
  });
  // hovering renders once the pointer rests (HOVER_MS): a position not seen
  // yet is a forward pass, ~50 ms on a 110M model, too much per token crossed
  let hoverTimer = 0;
  output.addEventListener("mouseover", (e) => {
    const pos = posOf(e.target);
    if (!self.open || pos === null || pos === self.hover) return;
    self.hover = pos;
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => self.open && render(), HOVER_MS);
  });
  output.addEventListener("mouseleave", () => {
    clearTimeout(hoverTimer);
    if (self.hover === null) return;
    self.hover = null;
    if (self.open) render();
  });
  output.addEventListener("keydown", (e) => {
    if (!self.open || !self.view) return;
    const last = latest();
    if (last === null) return;
    self.hover = null; // the keyboard takes over from the mouse
    const cur = self.selected ?? last;
    const to = { ArrowLeft: cur - 1, ArrowRight: cur + 1, Home: 0, End: last }[e.key];
    if (e.key === "Escape") select(null);
    else if (to !== undefined) select(Math.max(0, Math.min(last, to)));
    else return;
    e.preventDefault();
    self.view.spans[self.selected]?.scrollIntoView({ block: "nearest" });
  });

  // ------------------------------------------------------------ data

  /** Can the model that wrote the text still recompute its positions? */
  const replayable = () => self.view?.model && self.view.model === self.model;

  function tokens() {
    const view = self.view;
    if (replayable() && (!view.tokens || view.tokens.length !== view.model.tokenCount)) {
      view.tokens = view.model.tokens();
    }
    return view.tokens;
  }

  /**
   * What the page shows for `pos`: its top-10 (the engine's record when it
   * is of `pos`, the newest token while generating; else that position
   * recomputed from the KV cache; then kept) and its timings (as it ran
   * live, which the engine keeps per position while the inspector is open;
   * else those of the recomputation). Nothing is read per step: generating
   * with the inspector open costs only the engine's own recording.
   */
  function recordOf(pos) {
    const view = self.view;
    let rec = view.records.get(pos);
    if (!rec) {
      if (!replayable()) return null;
      const m = view.model;
      if (m.inspectedPosition !== pos) {
        m.inspectAt(pos);
        view.attCache.set(pos, m.attentionAll());
        trimCache(view.attCache);
      }
      rec = { top: m.topk(TOP_K), replayTimings: m.timings() };
      view.records.set(pos, rec);
    }
    const live = replayable() ? view.model.timings(pos) : undefined;
    return { top: rec.top, timings: live ?? rec.replayTimings, replayed: !live };
  }

  /** (n_layers, n_heads, pos + 1) attention of `pos`. */
  function attentionOf(pos) {
    const view = self.view;
    if (!replayable()) return null;
    const m = view.model;
    if (m.inspectedPosition === pos) return m.attentionAll();
    if (view.attCache.has(pos)) return view.attCache.get(pos);
    m.inspectAt(pos);
    const att = m.attentionAll();
    view.attCache.set(pos, att);
    trimCache(view.attCache);
    return att;
  }

  function trimCache(cache) {
    while (cache.size > ATT_CACHE) cache.delete(cache.keys().next().value);
  }

  // ------------------------------------------------------------ rendering

  function render(heatmap = true) {
    const pos = visible();
    if (!self.view || pos === null) {
      $("insp-selected").textContent = "Generate some text, then pick a token.";
      return;
    }
    let rec = null;
    try {
      rec = recordOf(pos);
    } catch (e) {
      $("insp-selected").textContent = `position ${pos}: ${e.message}`;
      return;
    }
    if (!rec) {
      $("insp-selected").textContent = `position ${pos}: not recorded, and the model that wrote this text ` +
        "is no longer loaded, so it cannot be recomputed";
      return;
    }
    renderSelected(pos, rec);
    renderCandidates(rec);
    renderTime(rec);
    if (heatmap) renderAttention(pos);
    if (self.view.manual) renderWalk(pos);
  }

  function renderSelected(pos, rec) {
    const t = rec.top;
    const model = self.view.model;
    const input = model && self.view.model === self.model ? show(model.piece(t.token)) : `#${t.token}`;
    const nextText = t.next === undefined ? "?" : input === `#${t.token}` ? `#${t.next}` : show(model.piece(t.next));
    const how = t.forced ? "prompt token (not sampled)" :
      t.temperature === 0 ? "greedy (argmax)" :
      `sampled at temperature ${+t.temperature.toFixed(3)}` +
        (t.topp > 0 && t.topp < 1 ? `, top-p ${+t.topp.toFixed(3)}: ${t.nucleus.toLocaleString("en-US")} ` +
          `candidates (mass ${t.nucleusMass.toFixed(3)})` : ", full distribution");
    const pin = self.selected === pos ? " · pinned (Esc to follow the newest)" :
      self.hover === pos ? "" : " · following the newest token";
    $("insp-selected").textContent =
      `position ${pos} · input "${input}" → "${nextText}" · ${how}` +
      `${rec.replayed ? " · recomputed (it ran with the inspector closed)" : ""}${pin}`;
  }

  function renderCandidates(rec) {
    const t = rec.top;
    const list = $("cand-list");
    const max = t.candidates[0]?.prob || 1;
    const rows = t.candidates.map((c) => ({ ...c, rank: 0 }));
    if (t.nextRank > rows.length && replayable()) {
      // the token that came, from further down the list
      rows.push({ token: t.next, text: pieceOf(t.next), prob: t.nextProb, logit: NaN,
        kept: !t.forced && t.nextRank <= t.nucleus, rank: t.nextRank });
    }
    const items = rows.map((c) => {
      const li = document.createElement("li");
      li.className = (c.kept ? "kept" : "") + (c.token === t.next ? " chosen" : "") + (c.rank ? " further" : "");
      const name = document.createElement("span");
      name.className = "tt";
      name.textContent = (c.rank ? `#${c.rank.toLocaleString("en-US")} ` : "") + show(c.text);
      name.title = `token ${c.token}` + (Number.isNaN(c.logit) ? "" : `, logit ${c.logit.toFixed(3)}`);
      const bar = document.createElement("span");
      bar.className = "bar";
      const fill = document.createElement("i");
      fill.style.width = `${(100 * c.prob) / max}%`;
      bar.append(fill);
      const p = document.createElement("span");
      p.className = "p";
      p.textContent = c.prob >= 0.001 ? c.prob.toFixed(3) : c.prob.toExponential(1);
      li.append(name, bar, p);
      li.setAttribute("aria-label", `${show(c.text)}: ${c.prob.toFixed(3)}${c.kept ? "" : ", outside top-p"}` +
        (c.token === t.next ? ", chosen" : ""));
      return li;
    });
    list.replaceChildren(...items);
    const mass = t.candidates.reduce((s, c) => s + c.prob, 0);
    const pct = 100 * mass >= 1 ? (100 * mass).toFixed(1) : (100 * mass).toPrecision(2);
    $("cand-note").textContent = `The top 10 hold ${pct}% of the probability. ` +
      "Dark bars: tokens the sampler could pick (top-p nucleus); → the token that came" +
      (t.nextRank > t.candidates.length ? `, ranked #${t.nextRank.toLocaleString("en-US")} (last row).` : ".");
  }

  function stackInto(el, timings, scale) {
    el.replaceChildren(...PHASES.map(([key, , color]) => {
      const i = document.createElement("i");
      i.style.width = `${(100 * timings[key]) / scale}%`;
      i.style.background = color;
      i.title = `${key}: ${fmtMs(timings[key])} ms`;
      return i;
    }));
    el.setAttribute("aria-label", PHASES.map(([key, name]) => `${name} ${fmtMs(timings[key])} ms`).join(", "));
  }

  function renderTime(rec) {
    // the mean over every position that ran with the inspector open
    const avg = Object.fromEntries(PHASES.map(([k]) => [k, 0]));
    avg.total = 0;
    let n = 0;
    const all = replayable() ? self.view.model.timingsAll() : new Float64Array(0);
    for (let row = 0; row * PHASES.length < all.length; row++) {
      const parts = all.subarray(row * PHASES.length, (row + 1) * PHASES.length);
      if (Number.isNaN(parts[0])) continue;
      PHASES.forEach(([k], i) => (avg[k] += parts[i]));
      avg.total += parts.reduce((a, b) => a + b, 0);
      n++;
    }
    if (n) for (const k in avg) avg[k] /= n;
    const scale = Math.max(rec.timings.total, avg.total) || 1;
    stackInto($("time-token"), rec.timings, scale);
    stackInto($("time-avg"), n ? avg : rec.timings, scale);
    $("time-avg-label").textContent = n ? `mean of ${n}` : "mean: –";
    $("time-legend").replaceChildren(...PHASES.map(([key, name, color]) => {
      const li = document.createElement("li");
      li.style.setProperty("--c", color);
      li.textContent = `${name} ${fmtMs(rec.timings[key])}` + (n ? ` (mean ${fmtMs(avg[key])})` : "") + " ms";
      return li;
    }), Object.assign(document.createElement("li"), {
      textContent: `total ${fmtMs(rec.timings.total)} ms${rec.replayed ? " (replayed: no sampling)" : ""}` +
        (self.crossOriginIsolated ? "" : " · clock 0.1 ms"),
    }));
  }
  self.crossOriginIsolated = globalThis.crossOriginIsolated === true;

  function drawSparkline() {
    const canvas = $("sparkline");
    const ctx = canvas.getContext("2d");
    const { width: w, height: h } = canvas;
    ctx.clearRect(0, 0, w, h);
    const data = self.speeds;
    if (!data.length) return;
    const max = Math.max(...data) * 1.1 || 1;
    ctx.strokeStyle = "#2f5fd0";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    data.forEach((v, i) => {
      const x = data.length === 1 ? w : (i / (data.length - 1)) * w;
      const y = h - 2 - (v / max) * (h - 4);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    if (data.length === 1) ctx.lineTo(0, h - 2 - (data[0] / max) * (h - 4)); // one reading: a level line
    ctx.stroke();
    const last = data[data.length - 1];
    $("spark-value").textContent = `${last.toFixed(1)} tokens/s now · peak ${Math.max(...data).toFixed(1)}`;
    canvas.setAttribute("aria-label", `tokens per second over the last ${data.length} readings; now ${last.toFixed(1)}`);
  }

  // ---- attention

  /** The (layer, head) rows the heatmap shows, from the two selectors. */
  function rows() {
    const { n_layers: L, n_heads: H } = self.cfg;
    const layer = $("att-layer").value;
    const head = $("att-head").value;
    const out = [];
    for (let l = 0; l < L; l++) {
      if (layer !== "all" && Number(layer) !== l) continue;
      for (let h = 0; h < H; h++) {
        if (head !== "all" && Number(head) !== h) continue;
        out.push([l, h]);
      }
    }
    return out;
  }

  /** The input token at position t, for labels (BOS shows as <s>); cached per text. */
  function inputLabel(toks, t) {
    if (!toks) return `#${t}`;
    const labels = (self.view.labels ??= []);
    return (labels[t] ??= toks[t] === 1 ? "<s>" : pieceOf(toks[t]));
  }

  let heat = null; // what the canvas shows, for hover lookups

  function renderAttention(pos) {
    if (heat?.pos !== pos) $("att-hover").textContent = "";
    let att = null;
    try {
      att = attentionOf(pos);
    } catch (e) {
      $("att-hover").textContent = e.message;
    }
    const canvas = $("att-grid");
    const ctx = canvas.getContext("2d");
    if (!att) {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      $("att-text").replaceChildren();
      $("att-top").textContent = "";
      heat = null;
      return;
    }
    const { n_heads: H } = self.cfg;
    const T = pos + 1;
    const shown = rows();
    const cellW = Math.max(1, Math.min(14, Math.floor(640 / T)));
    const cellH = Math.max(2, Math.min(10, Math.floor(400 / shown.length)));
    // a gutter on the left for layer/head labels; token labels under the
    // columns when they are wide enough to read
    const left = HEAT_GUTTER;
    const bottom = cellW >= 8 ? HEAT_LABELS : 0;
    canvas.width = left + T * cellW;
    canvas.height = shown.length * cellH + bottom;
    const img = ctx.createImageData(T, shown.length);
    const mean = new Float32Array(T);
    shown.forEach(([l, h], r) => {
      const row = att.subarray((l * H + h) * T, (l * H + h + 1) * T);
      for (let t = 0; t < T; t++) {
        const v = Math.sqrt(Math.min(1, Math.max(0, row[t]))); // sqrt: small weights stay visible
        const o = (r * T + t) * 4;
        img.data[o] = 255 - 208 * v;
        img.data[o + 1] = 255 - 160 * v;
        img.data[o + 2] = 255 - 47 * v;
        img.data[o + 3] = 255;
        mean[t] += row[t] / shown.length;
      }
    });
    const small = new OffscreenCanvas(T, shown.length);
    small.getContext("2d").putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, left, 0, T * cellW, shown.length * cellH);
    // a line between layers, and the labels
    ctx.font = "10px ui-monospace, monospace";
    ctx.textBaseline = "top";
    shown.forEach(([l, h], r) => {
      const first = r === 0 || shown[r - 1][0] !== l;
      if (first && r > 0) {
        ctx.fillStyle = "#b9b4a6";
        ctx.fillRect(0, r * cellH, canvas.width, 1);
      }
      const one = shown.length <= self.cfg.n_layers; // one head per layer (or a single row)
      if ((first && cellH * H >= 10) || (one && cellH >= 9)) {
        ctx.fillStyle = "#6b6b70";
        ctx.fillText(one ? `L${l} H${h}` : `L${l}`, 2, r * cellH + 1);
      }
    });
    if (bottom) {
      const toks = tokens();
      ctx.fillStyle = "#3d4a6b";
      ctx.textBaseline = "middle";
      for (let t = 0; t < T; t++) {
        ctx.save();
        ctx.translate(left + t * cellW + cellW / 2, shown.length * cellH + 4);
        ctx.rotate(Math.PI / 2); // read downwards: one label per 8+ px column
        ctx.fillText(show(inputLabel(toks, t)).slice(0, 10), 0, 0);
        ctx.restore();
      }
    }
    heat = { att, pos, shown, cellW, cellH, T, nHeads: H, left };
    canvas.setAttribute("aria-label", `attention heatmap of position ${pos}: ${shown.length} rows (layer, head) ` +
      `by ${T} positions`);
    // the text, shaded by the mean of the rows shown
    const toks = tokens();
    const spans = [];
    for (let t = 0; t < T; t++) {
      const s = document.createElement("span");
      s.textContent = inputLabel(toks, t);
      const a = Math.sqrt(mean[t]);
      s.style.background = `rgba(47, 95, 208, ${a.toFixed(3)})`;
      if (a > 0.6) s.style.color = "#fff";
      s.title = `position ${t}: ${mean[t].toFixed(4)}`;
      if (t === pos) s.className = "q";
      spans.push(s);
    }
    $("att-text").replaceChildren(...spans);
    // the five positions the rows shown attend to most, in words
    const top = [...mean.keys()].sort((a, b) => mean[b] - mean[a]).slice(0, 5);
    const what = shown.length === 1 ? `layer ${shown[0][0]}, head ${shown[0][1]}` : `the mean of ${shown.length} heads`;
    $("att-top").textContent = `Most attended (${what}): ` +
      top.map((t) => `"${show(inputLabel(toks, t))}" at ${t} (${mean[t].toFixed(3)})`).join(", ");
  }

  function heatAt(e) {
    if (!heat) return null;
    const rect = $("att-grid").getBoundingClientRect();
    const t = Math.floor((e.clientX - rect.left - heat.left) / heat.cellW);
    const r = Math.floor((e.clientY - rect.top) / heat.cellH);
    if (t < 0 || t >= heat.T || r < 0 || r >= heat.shown.length) return null;
    const [l, h] = heat.shown[r];
    return { l, h, t, w: heat.att[(l * heat.nHeads + h) * heat.T + t] };
  }

  $("att-grid").addEventListener("mousemove", (e) => {
    const at = heatAt(e);
    if (!at) return;
    const toks = tokens();
    const label = show(inputLabel(toks, at.t));
    $("att-hover").textContent = `layer ${at.l}, head ${at.h} → position ${at.t} "${label}": ${at.w.toFixed(4)}`;
  });
  $("att-grid").addEventListener("click", (e) => {
    const at = heatAt(e);
    if (!at) return;
    $("att-layer").value = String(at.l);
    $("att-head").value = String(at.h);
    render();
  });
  $("att-layer").addEventListener("change", () => render());
  $("att-head").addEventListener("change", () => render());

  // ---- walkthrough

  function renderWalk(pos = visible()) {
    const m = self.view?.model;
    if (!m || m !== self.model || !m.walkthrough || pos === null) return;
    let trace;
    try {
      if (m.inspectedPosition !== pos) m.inspectAt(pos);
      trace = m.trace();
    } catch (e) {
      $("walk-status").textContent = e.message;
      return;
    }
    $("walk-title").textContent = `Walkthrough: position ${pos} through run.c's forward`;
    const layer = $("walk-layer").value;
    const body = $("walk-table").tBodies[0];
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
  $("walk-layer").addEventListener("change", () => self.view?.manual && renderWalk());
  $("walk-step").addEventListener("click", () => self.onWalkStep?.());

  function fillSelect(select, n, allLabel, value = "all") {
    const opts = [new Option(allLabel, "all")];
    for (let i = 0; i < n; i++) opts.push(new Option(String(i), String(i)));
    select.replaceChildren(...opts);
    select.value = value;
  }

  $("inspector-toggle").addEventListener("click", () => setOpen(!self.open));
  return self;
}
