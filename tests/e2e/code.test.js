// The walkthrough's code beside the numbers (no browser): every stage's
// snippets are lines of our source, at the line numbers shown, and contain
// the names they claim; the build's code.json is what the source gives
// now; a map that points at lines that are gone stops the extraction.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CODE_MAP } from "../../www/inspector/code-map.js";
import { cutSnippet, extractCode } from "../../www/inspector/code-extract.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const code = extractCode(root);

test("every snippet is the source's lines at its line numbers, and its highlight holds its names", () => {
  let n = 0;
  for (const [stage, snippets] of Object.entries(code.stages)) {
    assert.ok(snippets.length > 0, `${stage} shows some code`);
    for (const s of snippets) {
      const file = fs.readFileSync(path.join(root, s.file), "utf8").split("\n");
      assert.deepEqual(s.lines, file.slice(s.first - 1, s.first - 1 + s.lines.length), `${stage}: ${s.file}:${s.first}`);
      const [h0, h1] = s.highlight;
      assert.ok(s.first <= h0 && h0 <= h1 && h1 < s.first + s.lines.length, `${stage}: the highlight is inside the lines shown`);
      const highlighted = file.slice(h0 - 1, h1).join("\n");
      for (const name of s.names) assert.ok(highlighted.includes(name), `${stage}: ${s.file}:${h0}-${h1} contains ${name}`);
      // the lines are inside the function the map names
      const fnLine = file.findIndex((l) => new RegExp(`fn ${s.fn}\\b`).test(l)) + 1;
      assert.ok(fnLine > 0 && fnLine <= h0, `${stage}: ${s.fn} starts at or before line ${h0}`);
      n++;
    }
  }
  assert.ok(n >= 25, `${n} snippets`);
});

test("the map covers every vector the engine's walkthrough names, and the sampler", () => {
  // the stage ids the engine gives Model.trace() (src/inspect/stage.rs, Stage::id)
  const src = fs.readFileSync(path.join(root, "src/inspect/stage.rs"), "utf8");
  const body = src.slice(src.indexOf("fn id("));
  const ids = [...body.slice(0, body.indexOf("\n    }\n")).matchAll(/Stage::\w+ => "(\w+)"/g)].map((m) => m[1]);
  assert.equal(ids.length, 13);
  assert.deepEqual(Object.keys(CODE_MAP).sort(), [...ids, "next"].sort());
});

test("the build's code.json is what the source gives now", () => {
  const built = path.join(root, "www/inspector/code.json");
  assert.ok(fs.existsSync(built), "./build.sh build writes www/inspector/code.json");
  assert.deepEqual(JSON.parse(fs.readFileSync(built, "utf8")), code);
});

test("a map pointing at lines that are gone stops the extraction, naming what is missing", () => {
  const source = fs.readFileSync(path.join(root, "src/transformer.rs"), "utf8");
  const snippet = CODE_MAP.query[0];
  assert.doesNotThrow(() => cutSnippet(snippet, source, "query"));
  assert.throws(() => cutSnippet(snippet, source.replace("// qkv matmuls for this position", "// matmuls"), "stage query"),
    /stage query: "\/\/ qkv matmuls for this position" is not in `forward_recorded`/);
  assert.throws(() => cutSnippet(snippet, source.replaceAll("w.wq", "w.w_q"), "stage query"),
    /stage query: the lines \d+-\d+ of `forward_recorded` no longer contain "w.wq"/);
  assert.throws(() => cutSnippet({ ...snippet, fn: "forward_gone" }, source, "stage query"), /no function `forward_gone`/);
});
