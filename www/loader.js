// Getting bytes into the page, from a URL or a dropped file, as streams of
// chunks: checkpoints go chunk by chunk into wasm (never whole in JS), small
// files (tokenizers) are read into one buffer of their final size.

/** Format a byte count for people: 1056540 -> "1.06 MB". */
export function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let i = -1;
  do {
    n /= 1000;
    i++;
  } while (n >= 1000 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

/** A Uint8Array of `size` bytes, or an Error a person can read. */
function allocate(size, name) {
  try {
    return new Uint8Array(size);
  } catch {
    throw new Error(`${name} is ${formatBytes(size)}, more than this browser tab can hold in memory`);
  }
}

/**
 * A byte source to read once, in order: `{ name, total, reader }`, where
 * `reader.read()` gives `{ done, value: Uint8Array }` chunks. Checkpoints are
 * pushed into wasm chunk by chunk from these; small files are read whole.
 */
export async function urlSource(url) {
  const name = url.split("/").pop();
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`could not download ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get("Content-Length")) || 0;
  if (total && response.body) return { name, total, reader: response.body.getReader() };
  // no length (or no stream): read it whole, then hand it out as one chunk
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { name, total: bytes.length, reader: oneChunk(bytes) };
}

export function fileSource(file) {
  const byob = byobReader(file);
  if (byob) return { name: file.name, total: file.size, reader: byob };
  const reader = file.stream ? file.stream().getReader() : null;
  if (reader) return { name: file.name, total: file.size, reader };
  let bytes = null;
  return {
    name: file.name,
    total: file.size,
    reader: {
      async read() {
        if (bytes) return { done: true };
        bytes = new Uint8Array(await file.arrayBuffer());
        return { done: false, value: bytes };
      },
    },
  };
}

/**
 * Reads a File through one reused 1 MiB buffer ("bring your own buffer"), so
 * streaming a 420 MB checkpoint leaves no trail of garbage chunks for the GC
 * to catch up with. Each chunk is valid until the next read(): consumers copy
 * it right away (ModelLoader.push does). null where BYOB is not supported.
 */
function byobReader(file) {
  let reader;
  try {
    reader = file.stream().getReader({ mode: "byob" });
  } catch {
    return null;
  }
  let buffer = new ArrayBuffer(1 << 20);
  return {
    async read() {
      const { done, value } = await reader.read(new Uint8Array(buffer));
      if (done) return { done: true };
      buffer = value.buffer; // the buffer comes back (transferred) with the data
      return { done: false, value };
    },
    cancel: () => reader.cancel(),
  };
}

function oneChunk(bytes) {
  let given = false;
  return {
    read: async () => (given ? { done: true } : ((given = true), { done: false, value: bytes })),
    cancel: async () => {},
  };
}

/** A whole source into one Uint8Array of its final size, reporting (loaded, total). */
export async function readAll(source, onProgress = () => {}) {
  const buffer = allocate(source.total, source.name);
  let at = 0;
  onProgress(0, source.total);
  for (;;) {
    const { done, value } = await source.reader.read();
    if (done) break;
    if (at + value.length > buffer.length) throw new Error(`${source.name} is longer than announced`);
    buffer.set(value, at);
    at += value.length;
    onProgress(at, source.total);
  }
  return at === buffer.length ? buffer : buffer.slice(0, at);
}

/** The first `n` bytes of a File (to tell what it is before reading it all). */
export async function readHead(file, n = 256) {
  return new Uint8Array(await file.slice(0, n).arrayBuffer());
}
