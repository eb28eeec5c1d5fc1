// Settings and statistics shared by the benchmark's parts (run.mjs drives them).
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const RUNS = Number(process.env.BENCH_RUNS ?? 3);
export const STEPS = 256;
export const THREADS = Number(process.env.BENCH_THREADS ?? Math.min(os.cpus().length, 4));
export const CLI = path.join(root, "target/release/llama2");
// llama2.c's programs (./build.sh's build_runc)
export const REF = { fp32: { name: "run.c", bin: path.join(root, "target/ref/run"), build: "gcc -Ofast" },
  q80: { name: "runq.c", bin: path.join(root, "target/ref/runq"), build: "gcc -Ofast -march=native" } };

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs });
/** A file's address on the bench's server (it serves the repository's root). */
export const url = (file) => "/" + path.relative(root, file).split(path.sep).join("/");
