// The benchmark's native programs: the CLI, llama2.c's run.c / runq.c and
// the memory ceiling probe, each timed RUNS times.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { CLI, REF, RUNS, STEPS, THREADS, root, stats } from "./common.mjs";

/**
 * Bytes of weights a forward pass reads per token: every weight once (the
 * shared classifier is the embedding table), i.e. the file's weights without
 * its header and, in the legacy format, the unused freq_cis block.
 */
export function streamBytes(file) {
  const head = Buffer.alloc(28);
  const fd = fs.openSync(file, "r");
  fs.readSync(fd, head, 0, 28, 0);
  fs.closeSync(fd);
  const size = fs.statSync(file).size;
  if (head.readUInt32LE(0) === 0x616b3432) return size - 256;
  const [dim, , , heads, , , seqLen] = [0, 1, 2, 3, 4, 5, 6].map((i) => head.readInt32LE(4 * i));
  return size - 28 - 4 * seqLen * (dim / heads);
}

/** RUNS runs of a native program; the "achieved tok/s" lines of its stderr. */
function timeNative(bin, args, what) {
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = spawnSync(bin, args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    const m = res.stderr?.match(/achieved tok\/s: ([\d.]+)/);
    if (res.status !== 0 || !m) throw new Error(`${what} failed: ${bin} ${args.join(" ")}\n${res.stderr ?? res.error}`);
    runs.push(Number(m[1]));
  }
  return stats(runs);
}

/** Whether this CLI has `-k simd|scalar` (an older one rejects the flag). */
export function cliHasKernelFlag(model) {
  const res = spawnSync(CLI, [model.file, "-z", model.tokenizer, "-t", "0", "-n", "2", "-i", "", "-k", "scalar"],
    { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (res.status === 0) return true;
  if (/unknown option -k/.test(res.stderr ?? "")) return false;
  throw new Error(`native CLI failed on ${model.file}: ${res.stderr ?? res.error}`);
}

/** The native CLI, greedy from an empty prompt: `kernel` null runs it without -k. */
export const native = (model, { threads = 1, kernel = null } = {}) =>
  timeNative(CLI, [model.file, "-z", model.tokenizer, "-t", "0", "-s", "1", "-n", String(STEPS), "-i", "",
    "-j", String(threads), ...(kernel ? ["-k", kernel] : [])], "native CLI");

/**
 * llama2.c's own program for the file, one thread: run.c on fp32, runq.c on
 * Q8_0 (invoked as `run model.bin -z tokenizer.bin -n 256 -t 0 -i ""`); null
 * when it is not built.
 */
export function reference(model) {
  const ref = REF[model.q80 ? "q80" : "fp32"];
  if (!fs.existsSync(ref.bin)) return null;
  const s = timeNative(ref.bin, [model.file, "-z", model.tokenizer, "-t", "0", "-s", "1", "-n", String(STEPS), "-i", ""],
    ref.name);
  return { program: ref.name, build: ref.build, ...s };
}

/**
 * The machine's memory ceiling (bench/bandwidth.c): run.c's matmul over
 * 438 MB natively, built for 128-bit SSE (wasm SIMD's width) and for this
 * CPU (-march=native), with 1 and THREADS threads; null when not built.
 */
export function bandwidth() {
  const res = {};
  for (const build of ["sse", "native"]) {
    const bin = path.join(root, `target/bandwidth-${build}`);
    if (!fs.existsSync(bin)) return null;
    for (const threads of [...new Set([1, THREADS])]) {
      const out = spawnSync(bin, [String(threads)], { encoding: "utf8" });
      const m = out.stdout.match(/GB\/s: ([\d.]+) \(([\d.]+)-([\d.]+)\)/);
      if (!m) throw new Error(`bandwidth-${build} failed: ${out.stderr}`);
      res[`${build}${threads}`] = { median: Number(m[1]), min: Number(m[2]), max: Number(m[3]) };
    }
  }
  return res;
}
