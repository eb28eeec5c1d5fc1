// Build step: the walkthrough's code, cut from our Rust source (code-map.js
// says which lines). Run by ./build.sh:
//   node www/inspector/code-extract.mjs <repo root> <out.json>
// and by tests/e2e/code.test.js. It fails, naming the stage and what is
// missing, when a function, a range or a name cannot be found: the build
// stops rather than show code that no longer runs.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CODE_MAP } from "./code-map.js";

/** Lines of context shown around a highlighted range, inside its function. */
const BEFORE = 3;
const AFTER = 2;

/**
 * The function `name` in `lines` (a file's lines): its first line (the
 * `fn` line) and last (its closing brace at the `fn` line's indentation),
 * 0-based. Throws if it is not there.
 */
export function findFunction(lines, name, where) {
  const head = new RegExp(`^(\\s*)(pub(\\([a-z]+\\))? )?fn ${name}\\b`);
  const start = lines.findIndex((l) => head.test(l));
  if (start < 0) throw new Error(`${where}: no function \`${name}\``);
  const indent = lines[start].match(head)[1];
  // the body ends at the first "}" alone at the fn's indentation (rustfmt's layout)
  const end = lines.findIndex((l, i) => i > start && l === `${indent}}`);
  if (end < 0) throw new Error(`${where}: the end of \`${name}\` was not found`);
  return { start, end };
}

/** One snippet of the map, cut from `source` (the file's text). */
export function cutSnippet(snippet, source, where) {
  const lines = source.split("\n");
  const fn = findFunction(lines, snippet.fn, where);
  let start = fn.start;
  let end = fn.end; // inclusive
  if (snippet.from) {
    start = lines.findIndex((l, i) => i > fn.start && i < fn.end && l.includes(snippet.from));
    if (start < 0) throw new Error(`${where}: "${snippet.from}" is not in \`${snippet.fn}\``);
    end = fn.end - 1;
    if (snippet.until) {
      const stop = lines.findIndex((l, i) => i > start && i < fn.end && l.includes(snippet.until));
      if (stop < 0) throw new Error(`${where}: "${snippet.until}" does not follow "${snippet.from}" in \`${snippet.fn}\``);
      end = stop - 1;
    }
    while (end > start && lines[end].trim() === "") end--;
  }
  const highlighted = lines.slice(start, end + 1).join("\n");
  for (const name of snippet.names) {
    if (!highlighted.includes(name)) {
      throw new Error(`${where}: the lines ${start + 1}-${end + 1} of \`${snippet.fn}\` no longer contain "${name}"`);
    }
  }
  const from = snippet.from ? Math.max(fn.start, start - BEFORE) : start;
  const to = snippet.from ? Math.min(fn.end, end + AFTER) : end;
  return {
    file: snippet.file,
    fn: snippet.fn,
    kernel: !!snippet.kernel,
    names: snippet.names,
    // 1-based, inclusive, as an editor numbers them
    highlight: [start + 1, end + 1],
    first: from + 1,
    lines: lines.slice(from, to + 1),
  };
}

/** Every stage's snippets, reading the files under `root`. */
export function extractCode(root, map = CODE_MAP) {
  const files = new Map();
  const read = (file) => {
    if (!files.has(file)) files.set(file, fs.readFileSync(path.join(root, file), "utf8"));
    return files.get(file);
  };
  const stages = {};
  for (const [stage, snippets] of Object.entries(map)) {
    stages[stage] = snippets.map((s, i) => cutSnippet(s, read(s.file), `stage ${stage}, snippet ${i + 1} (${s.file})`));
  }
  return { stages };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root, out] = process.argv.slice(2);
  if (!root || !out) {
    console.error("usage: node code-extract.mjs <repo root> <out.json>");
    process.exit(2);
  }
  try {
    fs.writeFileSync(out, JSON.stringify(extractCode(root)));
  } catch (e) {
    console.error(`code-extract: ${e.message}`);
    process.exit(1);
  }
}
