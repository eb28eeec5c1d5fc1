// The storage Worker: every write to the Origin Private File System (OPFS)
// happens here, through synchronous access handles, which only dedicated
// Workers may open. Why a Worker: a sync handle writes in place, so the
// bytes of a download are on disk as they arrive and a download cut by a
// closed tab or a lost network resumes from them (the main thread's
// createWritable() writes to a swap file that is thrown away unless it is
// closed properly). Each stored file's SHA-256 is computed here too, by the
// engine's own Sha256 (src/sha256.rs) in a small instance of its own.
//
// Files: `models/<id>` holds the bytes, `models/<id>.json` what they are
// (www/storage.js writes and reads that record; this Worker only stores it).
// Requests come as { seq, op, args } and are answered { seq, result } or
// { seq, error: { name, message } }, one at a time, in order.
import init, { Sha256 } from "./pkg/llama2_wasm.js";

const CHUNK = 1 << 20; // bytes read at a time when hashing
const ready = init();
let folder = null;
/** Open downloads: id -> { access: FileSystemSyncAccessHandle, at, hash: Sha256 }. */
const writers = new Map();

async function models() {
  folder ??= await (await navigator.storage.getDirectory()).getDirectoryHandle("models", { create: true });
  return folder;
}

function closeWriter(id) {
  const w = writers.get(id);
  if (!w) return;
  writers.delete(id);
  try {
    w.access.flush();
  } finally {
    w.access.close();
    w.hash.free();
  }
}

/** Hash `size` bytes of a sync handle from its start into `hash`. */
function hashHandle(access, size, hash) {
  const buffer = new Uint8Array(CHUNK);
  for (let at = 0; at < size; ) {
    const n = access.read(buffer.subarray(0, Math.min(CHUNK, size - at)), { at });
    if (n === 0) throw new Error(`the stored file ended at ${at} bytes, not ${size}`);
    hash.update(buffer.subarray(0, n));
    at += n;
  }
}

const ops = {
  /**
   * Start writing `id` at byte `offset`: what is stored past it is cut off,
   * what is before it is kept (a resumed download) and hashed so the digest
   * covers the whole file. Resolves to { offset } (less than asked when
   * fewer bytes are stored).
   */
  async begin({ id, offset }) {
    closeWriter(id);
    const handle = await (await models()).getFileHandle(id, { create: true });
    const access = await handle.createSyncAccessHandle();
    const hash = new Sha256();
    try {
      const keep = Math.min(offset, access.getSize());
      access.truncate(keep);
      hashHandle(access, keep, hash);
      writers.set(id, { access, at: keep, hash });
      return { offset: keep };
    } catch (e) {
      access.close();
      hash.free();
      throw e;
    }
  },

  /** Append `bytes` (transferred) to `id`. */
  write({ id, bytes }) {
    const w = writers.get(id);
    if (!w) throw new Error(`${id} is not open for writing`);
    const n = w.access.write(bytes, { at: w.at });
    if (n !== bytes.length) throw new DOMException(`only ${n} of ${bytes.length} bytes were written`, "QuotaExceededError");
    w.at += n;
    w.hash.update(bytes);
    return { at: w.at };
  },

  /** Flush and close `id`: { size, sha256 } of everything written. */
  end({ id }) {
    const w = writers.get(id);
    if (!w) throw new Error(`${id} is not open for writing`);
    const size = w.at;
    const sha256 = w.hash.hex();
    closeWriter(id);
    return { size, sha256 };
  },

  /** Stop writing `id`, keeping what is on disk (a paused or cut download). */
  pause({ id }) {
    closeWriter(id);
    return {};
  },

  /** { size, sha256 } of what is stored as `id` now. */
  async hash({ id }) {
    closeWriter(id);
    const handle = await (await models()).getFileHandle(id);
    const access = await handle.createSyncAccessHandle();
    const hash = new Sha256();
    try {
      const size = access.getSize();
      hashHandle(access, size, hash);
      return { size, sha256: hash.hex() };
    } finally {
      access.close();
      hash.free();
    }
  },

  /** Copy a File (a dropped one the person asked to keep) to `id`: { size, sha256 }. */
  async keep({ id, file }) {
    await ops.begin({ id, offset: 0 });
    try {
      const reader = file.stream().getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        ops.write({ id, bytes: value });
      }
      return ops.end({ id });
    } catch (e) {
      closeWriter(id);
      throw e;
    }
  },

  /** Replace the text of `name` (a record: <id>.json). */
  async writeText({ name, text }) {
    const handle = await (await models()).getFileHandle(name, { create: true });
    const access = await handle.createSyncAccessHandle();
    try {
      const bytes = new TextEncoder().encode(text);
      access.truncate(0);
      if (access.write(bytes, { at: 0 }) !== bytes.length) throw new DOMException("the record was not written", "QuotaExceededError");
      access.flush();
    } finally {
      access.close();
    }
    return {};
  },

  /** Delete these files of the folder (absent ones are fine). */
  async remove({ names }) {
    const dir = await models();
    for (const name of names) {
      closeWriter(name);
      try {
        await dir.removeEntry(name);
      } catch (e) {
        if (e.name !== "NotFoundError") throw e;
      }
    }
    return {};
  },
};

async function answer({ seq, op, args }) {
  try {
    await ready;
    if (!Object.hasOwn(ops, op)) throw new Error(`unknown storage request ${op}`);
    self.postMessage({ seq, result: await ops[op](args) });
  } catch (e) {
    self.postMessage({ seq, error: { name: e?.name ?? "Error", message: e?.message ?? String(e) } });
  }
}

// one request at a time, in the order they came (a write never overtakes its begin)
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(() => answer(data));
};
