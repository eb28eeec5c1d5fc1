// The loading progress list (#progress): one row per file being read or
// downloaded. A download's row also shows its rate and the time left, a
// note (resuming, retrying) and a Cancel button.
import { formatBytes } from "./loader.js";

const RATE_WINDOW_MS = 3000; // the rate is over the last few seconds, not since the start

/**
 * A progress row for one file; returns update(loaded, total), with done()
 * and note(text). `onCancel`: show a Cancel button calling it.
 */
export function progressRow(name, { onCancel } = {}) {
  const li = document.createElement("li");
  const label = document.createElement("div");
  label.className = "label";
  const what = document.createElement("span");
  what.textContent = name;
  const amount = document.createElement("span");
  label.append(what, amount);
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `loading ${name}`);
  li.append(label, bar);
  const detail = document.createElement("div");
  detail.className = "detail";
  const speed = document.createElement("span");
  const note = document.createElement("span");
  note.setAttribute("role", "status");
  detail.append(speed, note);
  if (onCancel) {
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary small";
    cancel.textContent = "Cancel";
    cancel.setAttribute("aria-label", `Cancel downloading ${name}`);
    cancel.addEventListener("click", () => {
      cancel.disabled = true;
      onCancel();
    });
    detail.append(cancel);
    li.append(detail);
  }
  document.getElementById("progress").append(li);

  const samples = []; // [time, loaded] over the last RATE_WINDOW_MS
  const update = (loaded, total) => {
    bar.max = total || 1;
    bar.value = loaded;
    amount.textContent = total ? `${formatBytes(loaded)} / ${formatBytes(total)}` : formatBytes(loaded);
    if (!onCancel) return;
    const now = performance.now();
    samples.push([now, loaded]);
    while (samples.length > 2 && now - samples[0][0] > RATE_WINDOW_MS) samples.shift();
    const [t0, b0] = samples[0];
    const rate = now > t0 ? ((loaded - b0) / (now - t0)) * 1000 : 0;
    if (now - t0 < 300 || !(rate > 0)) return; // too early to say
    const left = total > loaded ? ` · ${duration((total - loaded) / rate)} left` : "";
    speed.textContent = `${formatBytes(rate)}/s${left}`;
  };
  update.note = (text) => {
    note.textContent = text ? ` · ${text}` : "";
  };
  update.done = () => li.remove();
  return update;
}

/** Seconds for people: 75 -> "1 min 15 s". */
function duration(s) {
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}
