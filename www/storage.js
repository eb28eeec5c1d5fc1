// The models this page keeps on the device, in the Origin Private File
// System (OPFS): a folder `models/` private to this site, which survives
// reloads and needs no permission. Each stored file is two entries:
//   models/<id>        its bytes (written by www/storage-worker.js)
//   models/<id>.json   its record: { id, name, kind, url, size, complete,
//                      sha256, format, vocab_size, date, validator }
// A record says `complete: true` only after the bytes were checked (their
// size and header, www/download.js) and hashed; anything else is a partial
// download, kept so it can resume, never loaded as a model.

const RECORD = ".json";
/** Bytes posted to the storage Worker and not yet written before write() waits (backpressure). */
const IN_FLIGHT = 16 << 20;

/** A stored file's id from its name: letters, digits, `.`, `_`, `-` (never a record's name). */
export function storedId(name) {
  const id = String(name).replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_").slice(0, 120) || "model.bin";
  return id.endsWith(RECORD) ? `${id}_` : id;
}

/**
 * The storage, or `{ supported: false, why }` when this browser gives the
 * page no OPFS (an old browser, some private windows).
 */
export function createStorage() {
  if (!globalThis.navigator?.storage?.getDirectory || typeof Worker === "undefined") {
    return { supported: false, why: "this browser gives pages no file storage (Origin Private File System)" };
  }
  let worker = null;
  let seq = 0;
  const pending = new Map(); // seq -> { resolve, reject }
  let quotaForTest = null; // setQuotaForTest

  function start() {
    worker = new Worker(new URL("./storage-worker.js", import.meta.url), { type: "module", name: "llama2 storage" });
    worker.onmessage = ({ data: { seq: n, result, error } }) => {
      const p = pending.get(n);
      pending.delete(n);
      if (!p) return;
      if (error) p.reject(Object.assign(new Error(error.message), { name: error.name }));
      else p.resolve(result);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      const err = new Error(`the storage worker failed: ${e.message || "it did not start"}`);
      for (const p of pending.values()) p.reject(err);
      pending.clear();
      worker.terminate();
      worker = null; // the next request starts a new one
    };
  }

  /** One request to the storage Worker (www/storage-worker.js ops). */
  function request(op, args, transfer = []) {
    if (!worker) start();
    return new Promise((resolve, reject) => {
      const n = ++seq;
      pending.set(n, { resolve, reject });
      worker.postMessage({ seq: n, op, args }, transfer);
    });
  }

  const folder = async () => (await navigator.storage.getDirectory()).getDirectoryHandle("models", { create: true });

  /** The bytes stored as `id` (0 when none, or while the Worker holds them open). */
  async function storedBytes(dir, id) {
    try {
      return (await (await dir.getFileHandle(id)).getFile()).size;
    } catch {
      return 0;
    }
  }

  async function readRecord(dir, id) {
    try {
      const text = await (await (await dir.getFileHandle(id + RECORD)).getFile()).text();
      const record = JSON.parse(text);
      return record && record.id === id ? { ...record, stored: await storedBytes(dir, id) } : null;
    } catch {
      return null; // absent, or not ours: as if nothing were stored
    }
  }

  return {
    supported: true,

    /** Every record, newest first; `stored`: the bytes on disk now. */
    async list() {
      const dir = await folder();
      const records = [];
      for await (const name of dir.keys()) {
        if (!name.endsWith(RECORD)) continue;
        const record = await readRecord(dir, name.slice(0, -RECORD.length));
        if (record) records.push(record);
      }
      return records.sort((a, b) => String(b.date).localeCompare(String(a.date)));
    },

    /** The record of `id`, or null. */
    async record(id) {
      return readRecord(await folder(), id);
    },

    /** The record of the file downloaded from `url` (complete or not), or null. */
    async find(url) {
      return (await this.list()).find((r) => r.url === url) ?? null;
    },

    /**
     * The id to store `name` from `url` (null: a dropped file) under: the
     * one it already has, else its name, else "2-name", "3-name"… so that a
     * file of the same name from elsewhere never replaces a stored one.
     */
    async place(name, url) {
      const dir = await folder();
      const base = storedId(name);
      for (let n = 1; ; n++) {
        const id = n === 1 ? base : storedId(`${n}-${base}`);
        const record = await readRecord(dir, id);
        if (!record || record.url === url) return id;
      }
    },

    /** The stored bytes of `id` as a File (read lazily, in chunks). */
    async file(id) {
      return (await (await folder()).getFileHandle(id)).getFile();
    },

    /** Write a record (replacing the old one). */
    save(record) {
      const { stored, ...kept } = record; // (`stored` is read from the disk, never written)
      return request("writeText", { name: record.id + RECORD, text: JSON.stringify(kept) });
    },

    /** Delete a stored file and its record. */
    remove(id) {
      return request("remove", { names: [id + RECORD, id] });
    },

    /** { size, sha256 } of the bytes stored as `id`, hashed in the Worker. */
    hash(id) {
      return request("hash", { id });
    },

    /** Copy a File into storage as `id`: { size, sha256 }. */
    keep(id, file) {
      return request("keep", { id, file });
    },

    /**
     * Write `id` in order: begin(offset) keeps the stored bytes before
     * `offset` and resolves to { offset } (what was kept); write(bytes)
     * resolves once the Worker has few enough bytes waiting (backpressure);
     * end() resolves to { size, sha256 }; pause() stops, keeping the bytes.
     * A write that fails (a full disk) fails the next write() or end().
     */
    writer(id) {
      const queue = [];
      let waiting = 0;
      let failed = null;
      return {
        begin: (offset) => request("begin", { id, offset }),
        async write(bytes) {
          if (failed) throw failed;
          // the chunk's memory moves to the Worker: no copy unless it is a view of a larger buffer
          const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
          const n = own.byteLength;
          waiting += n;
          queue.push(request("write", { id, bytes: own }, [own.buffer]).then(
            () => (waiting -= n),
            (e) => ((failed ??= e), (waiting -= n)),
          ));
          while (waiting > IN_FLIGHT) await queue.shift();
          if (failed) throw failed;
        },
        async end() {
          await Promise.all(queue);
          if (failed) throw failed;
          return request("end", { id });
        },
        async pause() {
          await Promise.all(queue);
          await request("pause", { id }).catch(() => {});
        },
      };
    },

    /** { usage, quota } in bytes (navigator.storage.estimate()). */
    async estimate() {
      const { usage = 0, quota = 0 } = await navigator.storage.estimate();
      return { usage, quota: quotaForTest === null ? quota : Math.min(quota, quotaForTest) };
    },

    /** TEST ONLY: report at most `bytes` of quota (null: the browser's). */
    setQuotaForTest(bytes) {
      quotaForTest = bytes;
    },

    /** Ask the browser to keep the stored files under storage pressure; resolves to whether it will. */
    async persist() {
      try {
        return (await navigator.storage.persisted?.()) || (await navigator.storage.persist?.()) || false;
      } catch {
        return false;
      }
    },
  };
}
