// The model host the page tests download from (model-server.mjs), checked
// with Node's own fetch: what it promises a page test (ranges, If-Range, a
// cut connection, CORS on and off, a login wall, a throttled download that
// stops when the client goes away) and what it counts.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { serveModels } from "./model-server.mjs";

const FILE = "/karpathy/tinyllamas/resolve/main/model.bin";
const BUFFERED = "/in/memory.bin";

// 300,000 bytes that are not all alike, on disk; and a few in memory
const bytes = Buffer.alloc(300_000);
for (let i = 0, x = 1; i < bytes.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  bytes[i] = x >>> 24;
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "model-server-"));
fs.writeFileSync(path.join(dir, "model.bin"), bytes);
const small = Buffer.from("a small file held in memory");

const server = await serveModels({ [FILE]: path.join(dir, "model.bin"), [BUFFERED]: small });
after(async () => {
  await server.close();
  fs.rmSync(dir, { recursive: true });
});

const get = (p, headers = {}, method = "GET") => fetch(server.url + p, { method, headers });
const body = async (res) => Buffer.from(await res.arrayBuffer());
const last = () => server.requests.at(-1);

test("a whole file, with its headers, and HEAD", async () => {
  const res = await get(FILE);
  assert.equal(res.status, 200);
  assert.deepEqual(await body(res), bytes);
  const h = res.headers;
  assert.equal(h.get("content-length"), "300000");
  assert.equal(h.get("accept-ranges"), "bytes");
  assert.equal(h.get("content-type"), "application/octet-stream");
  assert.equal(h.get("cache-control"), "no-store");
  assert.match(h.get("etag"), /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.equal(new Date(h.get("last-modified")).getTime(), Math.floor(fs.statSync(path.join(dir, "model.bin")).mtimeMs / 1000) * 1000);
  assert.equal(h.get("access-control-allow-origin"), "*");
  assert.equal(h.get("access-control-expose-headers"), "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified");
  assert.equal(h.get("cross-origin-resource-policy"), "cross-origin");
  assert.deepEqual(last(), { method: "GET", path: FILE, range: null, status: 200, bytes: 300_000 });

  const head = await get(FILE, {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), "300000");
  assert.equal(head.headers.get("etag"), h.get("etag"));
  assert.equal((await body(head)).length, 0);
  assert.equal(last().bytes, 0);

  // a Buffer: the same, its ETag a hash of its bytes
  const mem = await get(BUFFERED);
  assert.equal((await body(mem)).toString(), small.toString());
  assert.match(mem.headers.get("etag"), /^"[0-9a-f]{32}"$/);
});

test("ranges: 206 with the right bytes, 416 past the end, If-Range", async () => {
  for (const [range, start, end] of [["bytes=1000-1999", 1000, 1999], ["bytes=299990-", 299_990, 299_999],
    ["bytes=299000-400000", 299_000, 299_999], ["bytes=-5", 299_995, 299_999], ["bytes=0-0", 0, 0]]) {
    const res = await get(FILE, { Range: range });
    assert.equal(res.status, 206, range);
    assert.equal(res.headers.get("content-range"), `bytes ${start}-${end}/300000`, range);
    assert.equal(res.headers.get("content-length"), String(end - start + 1), range);
    assert.deepEqual(await body(res), bytes.subarray(start, end + 1), range);
    assert.deepEqual(last(), { method: "GET", path: FILE, range, status: 206, bytes: end - start + 1 });
  }
  // a range of a Buffer
  const mem = await get(BUFFERED, { Range: "bytes=2-6" });
  assert.equal((await body(mem)).toString(), "small");

  for (const range of ["bytes=300000-", "bytes=500000-600000", "bytes=-0"]) {
    const res = await get(FILE, { Range: range });
    assert.equal(res.status, 416, range);
    assert.equal(res.headers.get("content-range"), "bytes */300000");
    assert.equal((await body(res)).length, 0);
  }
  // several ranges or a malformed one: ignored, the whole file
  for (const range of ["bytes=0-1,5-6", "bytes=5-1", "items=0-1"]) {
    const res = await get(FILE, { Range: range });
    assert.equal(res.status, 200, range);
    assert.equal((await body(res)).length, 300_000);
  }

  // If-Range: the range only for the version named
  const { etag, modified } = await get(FILE, {}, "HEAD").then((r) => ({ etag: r.headers.get("etag"), modified: r.headers.get("last-modified") }));
  const same = await get(FILE, { Range: "bytes=100-", "If-Range": etag });
  assert.equal(same.status, 206);
  assert.deepEqual(await body(same), bytes.subarray(100));
  const byDate = await get(FILE, { Range: "bytes=100-", "If-Range": modified });
  assert.equal(byDate.status, 206);
  await body(byDate);
  for (const other of ['"another-version"', `W/${etag}`, "Thu, 01 Jan 1970 00:00:00 GMT"]) {
    const res = await get(FILE, { Range: "bytes=100-", "If-Range": other });
    assert.equal(res.status, 200, other);
    assert.equal(res.headers.get("content-range"), null);
    assert.deepEqual(await body(res), bytes, other);
  }
});

test("ranges off: Range ignored, no Accept-Ranges", async () => {
  server.set({ ranges: false });
  try {
    const res = await get(FILE, { Range: "bytes=1000-1999" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("accept-ranges"), null);
    assert.equal((await body(res)).length, 300_000);
  } finally {
    server.set({ ranges: true });
  }
});

test("cutAfter: the body ends after exactly n bytes with an error, once", async () => {
  for (const [n, range] of [[100_000, null], [1_000, "bytes=5000-"], [0, null]]) {
    server.set({ cutAfter: n });
    const res = await get(FILE, range ? { Range: range } : {});
    assert.equal(res.status, range ? 206 : 200);
    const reader = res.body.getReader();
    let received = 0;
    await assert.rejects(async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.length;
      }
    }, `a cut after ${n} bytes is an error, not the end`);
    assert.equal(received, n);
    assert.equal(last().bytes, n);
    // the next request is whole
    const next = await get(FILE);
    assert.deepEqual(await body(next), bytes);
  }
  // HEAD does not use it up; a cut at or beyond the body's length cuts nothing
  server.set({ cutAfter: 10 });
  await get(FILE, {}, "HEAD");
  assert.equal((await body(await get(FILE, { Range: "bytes=0-9" }))).length, 10);
  assert.deepEqual(await body(await get(FILE)), bytes);
});

test("cors off: no CORS or CORP headers; on: preflights answered", async () => {
  server.set({ cors: false });
  try {
    const res = await get(FILE);
    await body(res);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), null);
    assert.equal(res.headers.get("access-control-expose-headers"), null);
    assert.equal(res.headers.get("cross-origin-resource-policy"), null);
  } finally {
    server.set({ cors: true });
  }
  const preflight = await get(FILE, { Origin: "http://127.0.0.1:1", "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "range" }, "OPTIONS");
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
  assert.equal(preflight.headers.get("access-control-allow-methods"), "GET, HEAD");
  assert.equal(preflight.headers.get("access-control-allow-headers"), "Range, If-Range");
  // any path not served, and methods other than GET/HEAD
  const missing = await get("/not/there.bin");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.match(await missing.text(), /not found: \/not\/there\.bin/);
  assert.equal((await get(FILE, {}, "POST")).status, 405);
});

test("html: every file is a small HTML page", async () => {
  server.set({ html: true });
  try {
    for (const p of [FILE, BUFFERED]) {
      const res = await get(p, { Range: "bytes=0-99" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(await res.text(), /^<!doctype html>/);
    }
    assert.equal((await get("/not/there.bin")).status, 404);
  } finally {
    server.set({ html: false });
  }
});

test("bytesPerSecond: a slow download stops when the client goes away; bytesSent counts it", async () => {
  const fresh = await serveModels({ [FILE]: path.join(dir, "model.bin") }, { bytesPerSecond: 400_000 });
  try {
    assert.equal((await body(await fetch(fresh.url + FILE, { headers: { Range: "bytes=0-39999" } }))).length, 40_000);
    const abort = new AbortController();
    const started = performance.now();
    const res = await fetch(fresh.url + FILE, { signal: abort.signal });
    const reader = res.body.getReader();
    let received = 0;
    while (received < 60_000) received += (await reader.read()).value.length;
    // 60 KB at 400 KB/s: not before ~150 ms
    assert.ok(performance.now() - started > 100, `${performance.now() - started} ms`);
    abort.abort();
    await new Promise((r) => setTimeout(r, 100));
    const stopped = fresh.requests[1].bytes;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fresh.requests[1].bytes, stopped, "nothing written after the client left");
    assert.ok(stopped < 300_000, `${stopped} bytes sent`);
    assert.equal(fresh.bytesSent(FILE), 40_000 + stopped);
    assert.equal(fresh.bytesSent("/other"), 0);
  } finally {
    await fresh.close();
  }
  // on the shared server: every byte of every body, per path
  const before = server.bytesSent(BUFFERED);
  await body(await get(BUFFERED));
  await body(await get(BUFFERED, { Range: "bytes=0-4" }));
  assert.equal(server.bytesSent(BUFFERED), before + small.length + 5);
});
