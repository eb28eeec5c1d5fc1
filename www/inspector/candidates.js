// The next-token candidates (#cand-list, #cand-note): a position's top 10,
// the sampler's nucleus marked, and the token that came.
import { barCells, show } from "./common.js";

const $ = (id) => document.getElementById(id);

/** `records`: www/inspector/records.js. */
export function createCandidates(records) {
  const list = $("cand-list");
  const note = $("cand-note");

  /** Show the candidates of a record ({ top }: Model.topk). */
  function render(rec) {
    const t = rec.top;
    const max = t.candidates[0]?.prob || 1;
    const rows = t.candidates.map((c) => ({ ...c, rank: 0 }));
    if (t.nextRank > rows.length && records.replayable()) {
      // the token that came, from further down the list
      rows.push({ token: t.next, text: records.pieceOf(t.next), prob: t.nextProb, logit: NaN,
        kept: !t.forced && t.nextRank <= t.nucleus, rank: t.nextRank });
    }
    const items = rows.map((c) => {
      const li = document.createElement("li");
      li.className = (c.kept ? "kept" : "") + (c.token === t.next ? " chosen" : "") + (c.rank ? " further" : "");
      li.append(...barCells(c, show(c.text), max));
      li.setAttribute("aria-label", `${show(c.text)}: ${c.prob.toFixed(3)}${c.kept ? "" : ", outside top-p"}` +
        (c.token === t.next ? ", chosen" : ""));
      return li;
    });
    list.replaceChildren(...items);
    const mass = t.candidates.reduce((s, c) => s + c.prob, 0);
    const pct = 100 * mass >= 1 ? (100 * mass).toFixed(1) : (100 * mass).toPrecision(2);
    note.textContent = `The top 10 hold ${pct}% of the probability. ` +
      "Dark bars: tokens the sampler could pick (top-p nucleus); → the token that came" +
      (t.nextRank > t.candidates.length ? `, ranked #${t.nextRank.toLocaleString("en-US")} (last row).` : ".");
  }

  return {
    render,
    /** The most likely candidate shown, as screen readers hear it ("" when none). */
    topLabel: () => list.firstElementChild?.getAttribute("aria-label") ?? "",
  };
}
