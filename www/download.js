// Downloading a model file into storage (www/storage.js), so that people
// can trust it: the bytes go to disk as they arrive (never whole in memory),
// the header is checked by the engine as soon as the first 256 bytes are in
// (an HTML error page or a wrong file is refused at once), a cut connection
// resumes with an HTTP Range request from the bytes already stored (a full
// download when the server ignores ranges or the file changed), Cancel
// stops the network at once, and the file is marked complete only after its
// size and header are verified and its SHA-256 recorded. Each failure gets
// its own message: offline, not found, a server that refuses other sites
// (CORS), one that cannot be reached, a web page instead of a file.
import { formatBytes } from "./loader.js";

const HEAD = 256; // the bytes the engine needs to judge a file (fileInfo)
const RETRIES = 4; // attempts after a cut connection that made no progress, before giving up
const RETRY_MS = 1000; // the first wait before resuming (doubles each time)

/** Why a download stopped: `cancelled` when the person cancelled it. */
export class DownloadError extends Error {
  /** `resumable`: what was stored of the file is kept, to continue later. */
  constructor(message, { cancelled = false, resumable = cancelled, cause } = {}) {
    super(message, { cause });
    this.name = "DownloadError";
    this.cancelled = cancelled;
    this.resumable = resumable;
  }
}

/**
 * Download `file` = { id, name, url, size? } into `storage`, resuming what is
 * stored of it. `judge(head, total)`: the engine's verdict on the first bytes
 * (fileInfo: { kind, error?, version?, vocab_size? }); `expect`: the kind
 * the caller wants ("checkpoint", "tokenizer", or null for either);
 * `onProgress(received, total)`; `onNote(text)`: resuming, retrying;
 * `finish(record)`: a last check of the stored file (its record, before it
 * is marked complete), resolving to the record to save. Resolves to the
 * complete record (www/storage.js).
 */
export async function download(storage, file, {
  judge, expect = null, signal, onProgress = () => {}, onNote = () => {}, finish = async (r) => r,
}) {
  const { id, name, url } = file;
  const old = await storage.record(id);
  // resume only a partial download of the same address
  let offset = old && !old.complete && old.url === url ? old.stored : 0;
  const record = { id, name, kind: expect, url, size: file.size ?? 0, complete: false, date: new Date().toISOString(),
    validator: offset ? old.validator : null };
  // never leave an old "complete" record beside bytes being replaced
  await storage.save(record);
  const writer = storage.writer(id);
  let head = offset ? await firstBytes(storage, id) : new Uint8Array(0);
  let failures = 0; // attempts in a row that brought no byte
  let received = 0; // bytes this call brought
  try {
    for (;;) {
      let response, total;
      try {
        response = await request(url, offset, name, signal);
        ({ offset, total } = await startAt(response, offset, record, () => request(url, 0, name, signal)));
      } catch (e) {
        // a connection that broke mid-download may fail again for a moment: retry as below
        if (!(e.resumable && !e.cancelled && received > 0 && ++failures <= RETRIES)) throw e;
        await sleep(RETRY_MS << (failures - 1), signal, name);
        continue;
      }
      if (offset === 0) head = new Uint8Array(0);
      record.size = total || record.size;
      await checkSpace(storage, name, record.size - offset);
      offset = (await writer.begin(offset)).offset;
      await storage.save(record); // its size and validator, to resume after a reload
      onNote(offset ? `resuming at ${formatBytes(offset)}` : "");
      onProgress(offset, total);
      const reader = response.body.getReader();
      const abort = () => reader.cancel().catch(() => {});
      signal?.addEventListener("abort", abort, { once: true });
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (head.length < HEAD) {
            head = join(head, value.subarray(0, HEAD - head.length));
            if (head.length >= HEAD && total) accept(judge(head, total), name, expect);
          }
          const n = value.length; // (write() moves the chunk's memory to the storage Worker)
          await writer.write(value);
          offset += n;
          received += n;
          failures = 0; // progress: the retries start over
          onProgress(offset, total);
        }
      } catch (e) {
        if (signal?.aborted) throw cancelled(name);
        if (e instanceof DownloadError || e?.name === "QuotaExceededError") throw e;
        // the connection was cut: keep what arrived and resume from it
        await writer.pause();
        if (++failures > RETRIES) {
          throw new DownloadError(`the download of ${name} was interrupted at ${formatBytes(offset)} of ` +
            `${formatBytes(total)} (${e.message}); what arrived is kept: try again to continue from there`,
            { cause: e, resumable: true });
        }
        onNote(`connection lost at ${formatBytes(offset)}: resuming…`);
        await sleep(RETRY_MS << (failures - 1), signal, name);
        continue;
      } finally {
        signal?.removeEventListener("abort", abort);
      }
      if (signal?.aborted) throw cancelled(name);
      if (total && offset < total) {
        await writer.pause();
        if (++failures > RETRIES) {
          throw new DownloadError(`${name}: the server sent ${formatBytes(offset)} of ${formatBytes(total)}`, { resumable: true });
        }
        continue;
      }
      break;
    }
    const { size, sha256 } = await writer.end();
    // the whole file's size against what its header needs (fileInfo checks both)
    const info = accept(judge(head, size), name, expect);
    if (record.size && size !== record.size) {
      throw new DownloadError(`${name}: ${formatBytes(size)} arrived but the server announced ${formatBytes(record.size)}`);
    }
    const done = await finish({ ...record, kind: info.kind, size, sha256, date: new Date().toISOString(),
      format: formatOf(info), vocab_size: info.vocab_size ?? null });
    await storage.save({ ...done, complete: true });
    return { ...done, complete: true };
  } catch (e) {
    await writer.pause();
    const err = e?.name === "QuotaExceededError" ? await quotaError(storage, name, record.size) : e;
    // a cancelled or cut download keeps what arrived (marked partial) to
    // resume; a refused file, a full disk or nothing stored leaves nothing
    if (!(err.resumable && offset > 0)) await storage.remove(id).catch(() => {});
    throw err;
  }
}

/** A file's format for the stored-models list, from the engine's verdict. */
export function formatOf(info) {
  if (info.kind === "tokenizer") return "tokenizer";
  return ["legacy v0, fp32", "export v1, fp32", "export v2, Q8_0"][info.version] ?? `export v${info.version}`;
}

/** The engine's verdict, or a DownloadError saying why the file is refused. */
function accept(info, name, expect) {
  if (info.error) throw new DownloadError(`${name}: ${info.error}`);
  if (expect && info.kind !== expect) throw new DownloadError(`${name} is a ${info.kind}, not a ${expect}`);
  return info;
}

/**
 * fetch `url` from byte `offset`, turning network failures into messages a
 * person can act on (also the npm package's URL loads, www/lib/sources.js).
 */
export async function request(url, offset, name, signal) {
  let response;
  try {
    response = await fetch(url, { headers: offset ? { Range: `bytes=${offset}-` } : {}, signal, cache: "no-store" });
  } catch (e) {
    if (signal?.aborted) throw cancelled(name);
    throw await unreachable(url, name, signal, e);
  }
  if (response.status === 404 || response.status === 410) {
    throw new DownloadError(`${name} was not found at ${url} (HTTP ${response.status}): check the address`);
  }
  if (!response.ok && response.status !== 416) {
    // a server error may pass: keep what is stored
    throw new DownloadError(`could not download ${name}: the server answered HTTP ${response.status} ${response.statusText}`.trim(),
      { resumable: response.status >= 500 });
  }
  if (/text\/html|application\/xhtml/i.test(response.headers.get("Content-Type") ?? "")) {
    response.body?.cancel().catch(() => {});
    const hint = /huggingface\.co\/.+\/blob\//.test(url) ? " (on Hugging Face, use the file's /resolve/ link, not /blob/)" : "";
    throw new DownloadError(`${url} gave a web page (HTML), not a model file${hint}: check the address`);
  }
  return response;
}

/**
 * Where the response starts and the file's whole size: a 206 continues at
 * `offset`; a 200 (the server ignored the range) or a changed file (its
 * ETag / Last-Modified differ from the stored part's) starts over at 0.
 */
async function startAt(response, offset, record, again) {
  const validator = response.headers.get("ETag") || response.headers.get("Last-Modified") || null;
  const length = Number(response.headers.get("Content-Length")) || 0;
  if (response.status === 416) {
    // the stored part is as long as the file (or longer): start over
    response.body?.cancel().catch(() => {});
    return startAt(await again(), 0, record, again);
  }
  if (response.status === 206) {
    // Content-Range may be unreadable cross-origin (not exposed): then trust the range asked for
    const range = /bytes (\d+)-\d+\/(\d+|\*)/.exec(response.headers.get("Content-Range") ?? "");
    const start = range ? Number(range[1]) : offset;
    const total = range && range[2] !== "*" ? Number(range[2]) : offset + length;
    const changed = record.validator && validator && validator !== record.validator;
    if (start === offset && !changed) {
      record.validator = validator ?? record.validator;
      return { offset, total };
    }
    response.body?.cancel().catch(() => {});
    return startAt(await again(), 0, record, again);
  }
  record.validator = validator;
  return { offset: 0, total: length };
}

/** A failed fetch: offline, a server that refuses other sites (CORS), or one that cannot be reached. */
async function unreachable(url, name, signal, cause) {
  if (globalThis.navigator?.onLine === false) {
    return new DownloadError(`you are offline: ${name} cannot be downloaded now (stored models still work)`,
      { cause, resumable: true });
  }
  const target = new URL(url, location.href);
  if (target.origin !== location.origin) {
    // an opaque (no-cors) request reaches a server that refuses CORS but
    // still fails for one that cannot be reached
    try {
      await fetch(target, { method: "HEAD", mode: "no-cors", cache: "no-store", signal });
      return new DownloadError(`${target.host} does not let other sites download ${name} (its answer has no ` +
        "Access-Control-Allow-Origin header): download the file yourself and drop it on the page", { cause });
    } catch {
      if (signal?.aborted) return cancelled(name);
    }
  }
  return new DownloadError(`could not reach ${target.host} to download ${name} (a wrong address, the server is ` +
    "down, or the network blocks it)", { cause, resumable: true });
}

/** Refuse a download that cannot fit in what the browser lets this site store. */
async function checkSpace(storage, name, bytes) {
  if (!(bytes > 0)) return;
  const { usage, quota } = await storage.estimate();
  if (quota && usage + bytes > quota) throw await quotaError(storage, name, bytes);
}

async function quotaError(storage, name, bytes) {
  const { usage, quota } = await storage.estimate().catch(() => ({ usage: 0, quota: 0 }));
  const free = Math.max(0, quota - usage);
  return new DownloadError(`not enough storage for ${name}${bytes ? ` (${formatBytes(bytes)})` : ""}: this browser ` +
    `lets the page store ${formatBytes(free)} more. Delete stored models, or drop the file on the page (it then runs ` +
    "without being stored)");
}

function cancelled(name) {
  return new DownloadError(`the download of ${name} was cancelled`, { cancelled: true });
}

async function firstBytes(storage, id) {
  return new Uint8Array(await (await storage.file(id)).slice(0, HEAD).arrayBuffer());
}

function join(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function sleep(ms, signal, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(cancelled(name));
    }, { once: true });
  });
}
