// The numbers under the form (#stats): speed, tokens, elapsed time, seed.

const $ = (id) => document.getElementById(id);

// the numbers are refreshed a few times a second: readable, and cheaper to paint
const STATS_EVERY_MS = 250;

/** `onSpeed(tokPerSec)`: each new speed reading (the inspector's sparkline). */
export function createStats({ onSpeed }) {
  const speed = $("stat-speed");
  const tokens = $("stat-tokens");
  const elapsed = $("stat-elapsed");

  /** The numbers of `run` (www/generation.js) now. */
  function update(run) {
    const now = run.ended ?? performance.now();
    const count = run.model.tokenCount;
    const decoded = run.decodeStart ? count - run.decodeFrom : 0;
    const secs = (now - run.decodeStart) / 1000;
    speed.textContent = decoded > 0 && secs > 0 ? (decoded / secs).toFixed(1) : "–";
    // the inspector's sparkline: the speed since the previous reading
    if (decoded > 0 && !run.manual) {
      const prev = run.sample ?? { t: run.decodeStart, count: run.decodeFrom };
      if (now > prev.t && count > prev.count) onSpeed(((count - prev.count) / (now - prev.t)) * 1000);
      run.sample = { t: now, count };
    }
    tokens.textContent = `${Math.max(0, count - run.promptLength)} / ${count}`;
    elapsed.textContent = `${((now - run.started) / 1000).toFixed(2)} s`;
  }

  return {
    update,
    /** At paint time: update at most every STATS_EVERY_MS, unless `force`. */
    refresh(run, force) {
      const now = performance.now();
      if (force || now - (run.statsAt ?? 0) >= STATS_EVERY_MS) {
        run.statsAt = now;
        update(run);
      }
    },
    seed: (seed) => ($("stat-seed").textContent = String(seed)),
  };
}
