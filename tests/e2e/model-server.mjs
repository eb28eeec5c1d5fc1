// A model host for the page tests: serves checkpoint files the way a
// download site (Hugging Face's /resolve/ URLs) does, from another origin
// than the page, and misbehaves on request: no CORS, no ranges, a
// connection cut after n bytes, a slow line, an HTML page where the file
// should be. It records every request so a test can check what the page
// asked for and how many bytes it really got. Node alone, no packages; not
// a test file itself (`node --test tests/e2e/` runs only *.test.js).
import http from "node:http";
import fs from "node:fs";
import crypto from "node:crypto";

/** Bodies are sent (and throttled) this much at a time at most. */
const CHUNK = 64 * 1024;

const DEFAULTS = { cors: true, ranges: true, cutAfter: null, bytesPerSecond: null, html: false };

// What a page's script may read of a cross-origin response besides the
// CORS-safelisted headers: a download's size and where a range lies in it.
const EXPOSED = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified";

const HTML_PAGE = `<!doctype html>
<html><head><title>Sign in to continue</title></head>
<body><h1>Sign in to continue</h1><p>This file is not available: you may need to log in.</p></body></html>
`;

/**
 * Serve `files` ({ "/url/path": "/absolute/file/path" or a Buffer }) on
 * 127.0.0.1 (any free port). GET and HEAD of those paths, OPTIONS
 * preflights; anything else 404 (another path) or 405 (another method).
 *
 * `options` (all optional, changeable between requests with `set`):
 * - `cors` (true): `Access-Control-Allow-Origin: *`, the exposed headers and
 *   `Cross-Origin-Resource-Policy: cross-origin` on every response; false
 *   sends none of them, as a host that refuses other origins.
 * - `ranges` (true): honour `Range` (206, 416) and `If-Range`; false answers
 *   every request with the whole file and no `Accept-Ranges`.
 * - `cutAfter` (null): the next response carrying a file's bytes (200 or
 *   206, not HEAD) sends this many bytes of body, then the connection is
 *   closed under it; used once, then null again. A number at least the
 *   body's length cuts nothing.
 * - `bytesPerSecond` (null): send bodies at about this rate, so a test can
 *   act mid-download (read at each piece, so a `set` applies at once).
 * - `html` (false): every file path answers 200 `text/html` with a small
 *   sign-in page, as a misconfigured host or a login wall does.
 *
 * Resolves to { url, origin, close(), requests, bytesSent(path), set(options) }:
 * `url` and `origin` are both "http://127.0.0.1:PORT" (paths are appended to
 * `url`; `origin` is what the page sees in CORS terms); `requests` lists
 * { method, path, range, status, bytes } in arrival order, `bytes` being the
 * body bytes written so far (it grows while a body is sent); `bytesSent(path)`
 * sums them over that path's requests.
 */
export async function serveModels(files, options = {}) {
  const opts = { ...DEFAULTS };
  const set = (changes) => {
    for (const [key, value] of Object.entries(changes)) {
      if (!(key in DEFAULTS)) throw new TypeError(`serveModels: unknown option "${key}"`);
      opts[key] = value;
    }
  };
  set(options);
  const sources = new Map(Object.entries(files).map(([urlPath, from]) => [urlPath, source(from)]));
  const requests = [];

  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url, "http://x").pathname;
    const record = { method: req.method, path: pathname, range: req.headers.range ?? null, status: 0, bytes: 0 };
    requests.push(record);
    res.on("error", () => {}); // a client gone mid-write: nothing to do
    handle(req, res, sources.get(pathname), opts, record).catch(() => res.destroy());
  });
  server.on("clientError", (_, socket) => socket.destroy());
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    origin: url,
    requests,
    set,
    bytesSent: (path) => requests.filter((r) => r.path === path).reduce((sum, r) => sum + r.bytes, 0),
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        // kept-alive and half-sent (throttled) connections would hold close() open
        server.closeAllConnections();
      }),
  };
}

/** A file on disk (stat at each request: a test may replace it) or bytes in memory. */
function source(from) {
  if (Buffer.isBuffer(from) || from instanceof Uint8Array) {
    const bytes = Buffer.from(from.buffer, from.byteOffset, from.byteLength);
    // the content's hash, computed once: the same bytes, the same ETag
    const etag = `"${crypto.createHash("sha256").update(bytes).digest("hex").slice(0, 32)}"`;
    const modified = new Date();
    return {
      stat: async () => ({ size: bytes.length, etag, modified }),
      read: (start, end) => pieces(bytes, start, end),
    };
  }
  if (typeof from !== "string") throw new TypeError("serveModels: a file is a path or a Buffer");
  return {
    stat: async () => {
      const st = await fs.promises.stat(from);
      // as nginx does: size and modification time, in hex
      return { size: st.size, etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`, modified: st.mtime };
    },
    // streamed from disk, never read whole (a 61 MB file is served many times)
    read: (start, end) => fs.createReadStream(from, { start, end, highWaterMark: CHUNK }),
  };
}

function* pieces(bytes, start, end) {
  for (let at = start; at <= end; at += CHUNK) yield bytes.subarray(at, Math.min(at + CHUNK, end + 1));
}

function corsHeaders(opts) {
  if (!opts.cors) return {};
  return {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": EXPOSED,
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
}

async function handle(req, res, src, opts, record) {
  const reply = (status, headers, body = "") => {
    record.status = status;
    const bytes = Buffer.from(body);
    res.writeHead(status, { ...corsHeaders(opts), "Cache-Control": "no-store", "Content-Length": bytes.length, ...headers });
    if (req.method === "HEAD") return res.end();
    record.bytes = bytes.length;
    res.end(bytes);
  };

  if (req.method === "OPTIONS") {
    // a preflight: Range is not a CORS-safelisted header in every form
    const allow = opts.cors
      ? {
          "Access-Control-Allow-Methods": "GET, HEAD",
          "Access-Control-Allow-Headers": "Range, If-Range",
          // options change between requests: a cached preflight would hide that
          "Access-Control-Max-Age": "0",
        }
      : {};
    return reply(204, { Allow: "GET, HEAD, OPTIONS", ...allow });
  }
  if (!src) return reply(404, { "Content-Type": "text/plain; charset=utf-8" }, `not found: ${record.path}\n`);
  if (req.method !== "GET" && req.method !== "HEAD") {
    return reply(405, { Allow: "GET, HEAD, OPTIONS", "Content-Type": "text/plain; charset=utf-8" }, "GET or HEAD only\n");
  }
  if (opts.html) return reply(200, { "Content-Type": "text/html; charset=utf-8" }, HTML_PAGE);

  let stat;
  try {
    stat = await src.stat();
  } catch (e) {
    return reply(404, { "Content-Type": "text/plain; charset=utf-8" }, `not found: ${record.path} (${e.code ?? e.message})\n`);
  }
  const { size, etag, modified } = stat;
  const headers = {
    "Content-Type": "application/octet-stream",
    ETag: etag,
    "Last-Modified": modified.toUTCString(),
  };
  if (opts.ranges) headers["Accept-Ranges"] = "bytes";

  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = opts.ranges && ifRangeHolds(req.headers["if-range"], headers) ? parseRange(req.headers.range, size) : null;
  if (range === "unsatisfiable") {
    return reply(416, { ...headers, "Content-Range": `bytes */${size}` });
  } else if (range) {
    [start, end] = range;
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  }

  record.status = status;
  res.writeHead(status, { ...corsHeaders(opts), "Cache-Control": "no-store", "Content-Length": end - start + 1, ...headers });
  if (req.method === "HEAD" || end < start) return res.end();
  const cut = opts.cutAfter;
  opts.cutAfter = null;
  await sendBody(res, src.read(start, end), end - start + 1, cut, opts, record);
}

/**
 * `If-Range`: the range applies only to the version named (an ETag, compared
 * strongly, or the exact Last-Modified date); otherwise the whole file is sent.
 */
function ifRangeHolds(ifRange, headers) {
  if (ifRange === undefined) return true;
  return ifRange.startsWith('"') ? ifRange === headers.ETag : ifRange === headers["Last-Modified"];
}

/**
 * One byte range of a `Range` header: [start, end] (inclusive), null to
 * send the whole file (no header, a malformed one, several ranges, another
 * unit: RFC 9110 lets a server ignore them), or "unsatisfiable".
 */
function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? "");
  if (!m || (m[1] === "" && m[2] === "")) return null;
  if (m[1] === "") {
    // the last n bytes
    const n = Number(m[2]);
    return n === 0 || size === 0 ? "unsatisfiable" : [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  if (m[2] !== "" && Number(m[2]) < start) return null;
  if (start >= size) return "unsatisfiable";
  return [start, m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1)];
}

/**
 * Write `chunks` (a file's `length` bytes) to `res`: at `opts.bytesPerSecond`
 * if set, stopping as soon as the client goes away, and cut after `cut` bytes
 * if that is less than the whole.
 */
async function sendBody(res, chunks, length, cut, opts, record) {
  let closed = false;
  let wake = () => {};
  res.on("close", () => {
    closed = true;
    wake();
  });
  // sleeps end early when the client goes away
  const sleep = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const limit = cut !== null && cut < length ? cut : length;
  let clock = null; // { rate, since, bytes }: the throttle's account since the rate was set
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.length && record.bytes < limit; ) {
      if (closed) return;
      const rate = opts.bytesPerSecond;
      let n = Math.min(chunk.length - at, limit - record.bytes);
      if (rate) {
        // ~10 pieces a second at slow rates, so a cancel is noticed quickly
        n = Math.min(n, Math.max(1, Math.floor(rate / 10)));
        if (clock?.rate !== rate) clock = { rate, since: performance.now(), bytes: 0 };
        const due = clock.since + (clock.bytes / rate) * 1000;
        if (due > performance.now()) await sleep(due - performance.now());
        if (closed) return;
        clock.bytes += n;
      }
      const piece = chunk.subarray(at, at + n);
      at += n;
      record.bytes += n;
      if (!res.write(piece)) {
        await new Promise((resolve) => {
          res.once("drain", resolve);
          wake = resolve;
        });
      }
    }
    if (record.bytes >= limit) break;
  }
  if (closed) return;
  if (limit < length) {
    // the headers and the bytes written go out, then the connection ends
    // under the response (writeHead only composes the headers: a cut at 0
    // must still send them)
    if (record.bytes === 0) res.flushHeaders();
    const socket = res.socket;
    socket.end();
    socket.once("finish", () => socket.destroy());
  } else {
    res.end();
  }
}
