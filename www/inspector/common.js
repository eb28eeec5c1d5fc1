// Small helpers shared by the inspector's views.

/** A token's text made visible: newlines, tabs, a leading space and other control characters as marks. */
export function show(text) {
  if (text === "") return "∅";
  return text
    .replace(/\n/g, "↵")
    .replace(/\t/g, "⇥")
    .replace(/^ /, "␣")
    .replace(/[\u0000-\u001f\u007f]/g, (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

/** Milliseconds with three significant-ish digits. */
export const fmtMs = (ms) => (ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

/** Options "all" (labelled `allLabel`) and 0..n-1, with `value` selected. */
export function fillSelect(select, n, allLabel, value = "all") {
  const opts = [new Option(allLabel, "all")];
  for (let i = 0; i < n; i++) opts.push(new Option(String(i), String(i)));
  select.replaceChildren(...opts);
  select.value = value;
}

/**
 * A candidate's cells in a bar chart row (`c`: { token, prob, logit, rank? }):
 * its text (`#rank` first when it is outside the top list), a bar scaled to
 * `max`, and its probability.
 */
export function barCells(c, text, max) {
  const name = document.createElement("span");
  name.className = "tt";
  name.textContent = (c.rank ? `#${c.rank.toLocaleString("en-US")} ` : "") + text;
  name.title = `token ${c.token}` + (Number.isFinite(c.logit) ? `, logit ${c.logit.toFixed(3)}` : "");
  const bar = document.createElement("span");
  bar.className = "bar";
  const fill = document.createElement("i");
  fill.style.width = `${(100 * c.prob) / max}%`;
  bar.append(fill);
  const p = document.createElement("span");
  p.className = "p";
  p.textContent = c.prob >= 0.001 ? c.prob.toFixed(3) : c.prob.toExponential(1);
  return [name, bar, p];
}
