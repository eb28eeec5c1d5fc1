// Getting bytes into the page: fetch with progress, dropped files with
// progress, each into ONE Uint8Array of the final size (no chunk list plus a
// concatenated copy), so a 420 MB checkpoint costs 420 MB in JS, once.

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

/** Read a stream into `buffer` (growing it if the size was unknown). */
async function readInto(reader, buffer, onProgress, total) {
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > buffer.length) {
      // size unknown or wrong: grow geometrically
      const bigger = new Uint8Array(Math.max(buffer.length * 2, at + value.length));
      bigger.set(buffer.subarray(0, at));
      buffer = bigger;
    }
    buffer.set(value, at);
    at += value.length;
    onProgress(at, total || at);
  }
  return at === buffer.length ? buffer : buffer.slice(0, at);
}

/** fetch(url) into one Uint8Array, reporting (loaded, total) bytes. */
export async function fetchBytes(url, onProgress = () => {}) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`could not download ${url}: HTTP ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get("Content-Length")) || 0;
  onProgress(0, total);
  if (!response.body) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    onProgress(bytes.length, bytes.length);
    return bytes;
  }
  return readInto(response.body.getReader(), allocate(total || 1 << 20, url), onProgress, total);
}

/** The first `n` bytes of a File (to tell what it is before reading it all). */
export async function readHead(file, n = 256) {
  return new Uint8Array(await file.slice(0, n).arrayBuffer());
}

/** A whole File into one Uint8Array, reporting (loaded, total) bytes. */
export async function readFile(file, onProgress = () => {}) {
  const buffer = allocate(file.size, file.name);
  onProgress(0, file.size);
  if (!file.stream) {
    buffer.set(new Uint8Array(await file.arrayBuffer()));
    onProgress(file.size, file.size);
    return buffer;
  }
  return readInto(file.stream().getReader(), buffer, onProgress, file.size);
}
