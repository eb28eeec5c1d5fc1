// The loading progress list (#progress): one row per file being read.
import { formatBytes } from "./loader.js";

/** A progress row for one file; returns (loaded, total) => void and a done(). */
export function progressRow(name) {
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
  document.getElementById("progress").append(li);
  const update = (loaded, total) => {
    bar.max = total || 1;
    bar.value = loaded;
    amount.textContent = total ? `${formatBytes(loaded)} / ${formatBytes(total)}` : formatBytes(loaded);
  };
  update.done = () => li.remove();
  return update;
}
