// What `Llama2.load` accepts as a checkpoint or tokenizer, turned into the
// byte sources the page streams into the engine (www/loader.js: { name,
// total, reader }): a URL (fetched, with the page's messages for 404, HTML,
// CORS, offline), a File or Blob, bytes, a ReadableStream, a file path in
// Node.js, or "stored:<name>" for a model the demo page's library stored
// on this device (checked against its SHA-256 while it loads).
import { request } from "../download.js";
import { fileSource, readAll } from "../loader.js";
import { createStorage } from "../storage.js";

const NODE = Boolean(globalThis.process?.versions?.node);

/** A readable error for a value that is none of the accepted kinds. */
function unsupported(what, value) {
  const kind = value === null ? "null" : Array.isArray(value) ? "an Array" : typeof value === "object"
    ? `a ${value?.constructor?.name ?? "object"}` : `a ${typeof value}`;
  return new TypeError(`${what} must be a URL, a File or Blob, bytes (Uint8Array or ArrayBuffer), a ReadableStream` +
    `${NODE ? ", a file path" : ""} or "stored:<name>", not ${kind}`);
}

function oneChunk(bytes) {
  let given = false;
  return { read: async () => (given ? { done: true } : ((given = true), { done: false, value: bytes })), cancel: async () => {} };
}

/**
 * A source for `value` (what: "checkpoint" or "tokenizer", for messages):
 * { name, total (0 when unknown), reader, verify?() }. `verify`, for a
 * stored file, resolves when its SHA-256 matches (rejects when damaged).
 */
export async function openSource(value, what, signal) {
  if (value instanceof URL) value = value.href;
  if (typeof value === "string") {
    if (value.startsWith("stored:")) return storedSource(value.slice("stored:".length), what);
    if (NODE && !/^(https?|data|blob):/i.test(value)) return pathSource(value);
    const url = new URL(value, globalThis.location?.href).href;
    const name = decodeURIComponent(new URL(url).pathname.split("/").pop()) || what;
    const response = await request(url, 0, name, signal);
    const total = Number(response.headers.get("Content-Length")) || 0;
    return { name, total, reader: response.body.getReader() };
  }
  if (typeof Blob !== "undefined" && value instanceof Blob) {
    return fileSource(value.name === undefined ? Object.assign(value, { name: what }) : value);
  }
  if (value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    const bytes = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return { name: what, total: bytes.length, reader: oneChunk(bytes) };
  }
  if (typeof ReadableStream !== "undefined" && value instanceof ReadableStream) {
    return { name: what, total: 0, reader: value.getReader() };
  }
  throw unsupported(what, value);
}

/** A file on disk (Node.js): streamed in 1 MiB chunks. */
async function pathSource(path) {
  const fs = await import(/* Node only */ "node:fs");
  const { Readable } = await import(/* Node only */ "node:stream");
  let stat;
  try {
    stat = await fs.promises.stat(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${e.code === "ENOENT" ? "no such file" : e.message}`, { cause: e });
  }
  if (!stat.isFile()) throw new Error(`${path} is not a file`);
  const stream = Readable.toWeb(fs.createReadStream(path, { highWaterMark: 1 << 20 }));
  const reader = stream.getReader();
  // Node gives Buffers that may share a pool: hand out plain Uint8Array views
  return {
    name: path.split(/[\\/]/).pop(),
    total: stat.size,
    reader: { read: () => reader.read(), cancel: () => reader.cancel() },
  };
}

/** A file the demo page's model library stored (www/storage.js), by its name. */
async function storedSource(name, what) {
  const storage = createStorage();
  if (!storage.supported) throw new Error(`stored:${name}: ${storage.why}`);
  const record = (await storage.list()).find((r) => r.complete && (r.id === name || r.name === name));
  if (!record) throw new Error(`stored:${name}: no complete ${what} of that name is stored on this device`);
  const file = await storage.file(record.id);
  return {
    ...fileSource(file),
    name: record.name,
    async verify() {
      const { sha256, size } = await storage.hash(record.id);
      if (sha256 !== record.sha256 || size !== record.size) {
        throw new Error(`the stored copy of ${record.name} is damaged (its SHA-256 no longer matches): delete it and download it again`);
      }
    },
  };
}

/** A whole source as one Uint8Array (a tokenizer), whatever its announced length. */
export async function readWhole(source) {
  if (source.total) return readAll(source);
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await source.reader.read();
    if (done) break;
    chunks.push(value.slice());
    length += value.length;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
