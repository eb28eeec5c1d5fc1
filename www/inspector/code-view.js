// The code beside the numbers: the lines of our Rust that made a
// walkthrough vector, as ./build.sh cut them from src/ into code.json
// (code-map.js says which; code-extract.mjs cuts them). Fetched once, when
// a walkthrough is first shown.

let code = null; // Promise of code.json's { stages }

/** code.json, fetched on first use. */
export function loadCode() {
  code ??= fetch(new URL("./code.json", import.meta.url)).then(async (r) => {
    if (!r.ok) throw new Error(`the code view's www/inspector/code.json could not be read (HTTP ${r.status}): ./build.sh build writes it`);
    return r.json();
  });
  code.catch(() => (code = null)); // a failed fetch is tried again next time
  return code;
}

/**
 * Figures for `snippets` (code.json's for one stage): each with its file,
 * line numbers and function, the stage's lines highlighted and the names
 * the walkthrough talks about marked in them.
 */
export function snippetFigures(snippets) {
  return snippets.map((s) => {
    const fig = document.createElement("figure");
    fig.className = "code";
    const cap = document.createElement("figcaption");
    const [h0, h1] = s.highlight;
    const where = document.createElement("code");
    where.textContent = `${s.file}:${h0}${h1 > h0 ? `–${h1}` : ""}`;
    const fn = document.createElement("code");
    fn.textContent = `${s.fn}()`;
    cap.append(where, " in ", fn);
    if (s.kernel) cap.append(" · the scalar reference kernel (the SIMD one sums in another order; Q8_0 models use matmul_q8)");
    const pre = document.createElement("pre");
    const body = document.createElement("code");
    s.lines.forEach((text, i) => {
      const n = s.first + i;
      const line = document.createElement("span");
      const hl = n >= h0 && n <= h1;
      line.className = hl ? "line hl" : "line";
      line.dataset.line = n;
      const ln = document.createElement("span");
      ln.className = "ln";
      ln.textContent = String(n);
      ln.setAttribute("aria-hidden", "true");
      line.append(ln, ...(hl ? marked(text, s.names) : [text]), "\n");
      body.append(line);
    });
    pre.append(body);
    fig.append(cap, pre);
    return fig;
  });
}

/** `text` as nodes, each occurrence of one of `names` in a <mark>. */
function marked(text, names) {
  const nodes = [];
  let rest = text;
  for (;;) {
    let at = -1;
    let name = "";
    for (const n of names) {
      const i = rest.indexOf(n);
      if (i >= 0 && (at < 0 || i < at)) [at, name] = [i, n];
    }
    if (at < 0) break;
    if (at > 0) nodes.push(rest.slice(0, at));
    const m = document.createElement("mark");
    m.textContent = name;
    nodes.push(m);
    rest = rest.slice(at + name.length);
  }
  if (rest) nodes.push(rest);
  return nodes;
}
