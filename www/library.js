// The model library: the menu (www/catalog.js: one click downloads, stores
// and runs a model), "From a URL…", dropped files kept on this device when
// the box says so, and the list of stored models (#stored) with the space
// they take. Downloads: www/download.js; the stored files: www/storage.js.
// A stored file is run only after its SHA-256 matches the one recorded when
// it was stored (hashed in the storage Worker while the checkpoint streams
// into the engine); a damaged copy is deleted and downloaded again.
import { catalog } from "./catalog.js";
import { download, formatOf } from "./download.js";
import { fileSource, formatBytes, readAll, urlSource } from "./loader.js";
import { progressRow } from "./progress.js";
import { createStorage } from "./storage.js";

const LAST = "llama2-wasm.last"; // localStorage: the stored model last run, loaded by itself on the next visit
const $ = (id) => document.getElementById(id);

/** A stored file whose bytes no longer hash to what was recorded. */
class Damaged extends Error {
  constructor(record) {
    super(`the stored copy of ${record.name} is damaged (its SHA-256 no longer matches the one recorded when it was stored)`);
    this.record = record;
  }
}

/** `models`: www/models.js; `messages`: www/messages.js. */
export function createLibrary({ models, messages }) {
  const storage = createStorage();
  const entries = catalog();
  const busy = new Set(); // ids being downloaded or stored now
  const keepBox = $("keep");
  let persisted = null; // navigator.storage.persist()'s answer, once asked

  // ------------------------------------------------------------ storing

  /** Download `file` ({ name, url, size? }) into storage with a progress row and a Cancel button: its record. */
  async function fetchInto(file, expect) {
    file = { ...file, id: await storage.place(file.name, file.url) };
    const controller = new AbortController();
    const progress = progressRow(file.name, { onCancel: () => controller.abort() });
    busy.add(file.id);
    refresh();
    try {
      const record = await download(storage, file, {
        judge: (head, size) => models.fileInfo(head, size),
        expect,
        signal: controller.signal,
        onProgress: progress,
        onNote: progress.note,
        finish: (record) => finishTokenizer(record),
      });
      askPersist();
      return record;
    } finally {
      busy.delete(file.id);
      progress.done();
      refresh();
    }
  }

  /** A tokenizer is complete only once the engine's parser accepts it: its vocabulary size. */
  async function finishTokenizer(record) {
    if (record.kind !== "tokenizer") return record;
    const bytes = new Uint8Array(await (await storage.file(record.id)).arrayBuffer());
    return { ...record, vocab_size: models.tokenizerInfo(bytes).vocab_size };
  }

  /** The stored, complete copy of a catalog file (downloading it when there is none). */
  async function ensure(file, expect) {
    const record = await storage.find(file.url);
    if (record?.complete) return record;
    return fetchInto(file, expect);
  }

  /** Keep a dropped file on this device (after it loaded fine, so its header and size are verified). */
  async function keep(file, info) {
    if (!storage.supported || !keepBox.checked) return;
    const id = await storage.place(file.name, null);
    const record = { id, name: file.name, kind: info.kind, url: null, size: file.size, complete: false,
      date: new Date().toISOString() };
    const progress = progressRow(`storing ${file.name}`);
    busy.add(id);
    try {
      await storage.save(record);
      const { size, sha256 } = await storage.keep(id, file);
      if (size !== file.size) throw new Error(`only ${formatBytes(size)} of ${formatBytes(file.size)} were stored`);
      let done = { ...record, sha256, complete: true, format: formatOf(info), vocab_size: info.vocab_size ?? null };
      done = await finishTokenizer(done);
      await storage.save(done);
      askPersist();
      // the next visit loads a kept checkpoint by itself, as one run from the menu
      if (done.kind === "checkpoint" && models.name === file.name) {
        localStorage.setItem(LAST, JSON.stringify({ checkpoint: id, tokenizer: null, name: file.name }));
      }
      return done;
    } catch (e) {
      await storage.remove(id).catch(() => {});
      const why = e.name === "QuotaExceededError" ? "there is not enough storage space for it" : e.message;
      throw new Error(`${file.name} runs but was not kept on this device: ${why}`, { cause: e });
    } finally {
      busy.delete(id);
      progress.done();
      refresh();
    }
  }

  /** Ask once that the browser keep stored models under storage pressure. */
  async function askPersist() {
    if (persisted === null) persisted = await storage.persist();
  }

  // ------------------------------------------------------------ running

  /** A stored tokenizer's bytes, hashed against its record: { name, bytes }. */
  async function readTokenizer(record) {
    const [bytes, hashed] = await Promise.all([readAll(fileSource(await storage.file(record.id))), storage.hash(record.id)]);
    if (hashed.sha256 !== record.sha256) throw new Damaged(record);
    return { name: record.name, bytes };
  }

  /**
   * Run a stored checkpoint with a stored tokenizer (a record) or, when
   * `tokRecord` is null, the tokenizer the page holds for its vocabulary.
   */
  async function runStored(record, tokRecord) {
    const tok = tokRecord ? await readTokenizer(tokRecord) : await models.tokenizerFor(record.vocab_size);
    try {
      models.tokenizerInfo(tok.bytes, record.vocab_size);
    } catch (e) {
      throw new Error(`${tok.name}: ${e.message} (${record.name})`, { cause: e });
    }
    remembering = { checkpoint: record.id, tokenizer: tokRecord?.id ?? null, name: record.name };
    await models.loadSource({
      name: record.name,
      open: async () => fileSource(await storage.file(record.id)),
      tok,
      // the SHA-256 in the storage Worker while the bytes stream into the engine
      verify: async () => {
        const hashed = await storage.hash(record.id);
        if (hashed.sha256 !== record.sha256 || hashed.size !== record.size) throw new Damaged(record);
      },
    });
    models.holdTokenizer(record.vocab_size, tok);
  }

  /**
   * Run a catalog entry's files, downloading what is not stored; a damaged
   * stored copy is deleted and downloaded again (once).
   */
  async function runEntry(entry) {
    if (entry.builtIn) {
      await models.loadDefault();
      return;
    }
    if (!storage.supported) {
      messages.notice(`${entry.checkpoint.name} is not kept: ${storage.why}`);
      const tok = { name: entry.tokenizer.name, bytes: await readAll(await urlSource(entry.tokenizer.url)) };
      const open = () => urlSource(entry.checkpoint.url);
      await models.loadSource({ name: entry.checkpoint.name, open, tok });
      return;
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const tokRecord = await ensure(entry.tokenizer, "tokenizer");
        const record = await ensure(entry.checkpoint, "checkpoint");
        await runStored(record, tokRecord);
        return;
      } catch (e) {
        if (!(e instanceof Damaged) || attempt > 0) throw e;
        await storage.remove(e.record.id);
        messages.notice(`${e.message}: it was deleted and is downloaded again.`);
      }
    }
  }

  /** Download any llama2.c checkpoint or tokenizer from `url`, store it and use it. */
  async function runUrl(url) {
    let name;
    try {
      name = decodeURIComponent(new URL(url, location.href).pathname.split("/").pop()) || "model.bin";
    } catch {
      throw new Error(`"${url}" is not a web address`);
    }
    if (!storage.supported) throw new Error(`cannot download ${name}: ${storage.why}; download it yourself and drop it on the page`);
    const old = await storage.find(url);
    const record = old?.complete ? old : await fetchInto({ name, url }, null);
    if (record.kind === "tokenizer") {
      models.useTokenizer(await readTokenizer(record));
      return;
    }
    await runStored(record, await storedTokenizer(record.vocab_size));
  }

  /** A complete stored tokenizer of `vocabSize` tokens, or null (the page's own is used then). */
  async function storedTokenizer(vocabSize) {
    return (await storage.list()).find((r) => r.complete && r.kind === "tokenizer" && r.vocab_size === vocabSize) ?? null;
  }

  // ------------------------------------------------------------ the next visit

  let remembering = null; // what runStored is loading: remembered once it runs
  models.onChange = () => {
    if (remembering && models.name === remembering.name) localStorage.setItem(LAST, JSON.stringify(remembering));
    else if (models.name !== readLast()?.name) localStorage.removeItem(LAST);
    remembering = null;
    refresh();
  };

  function readLast() {
    try {
      return JSON.parse(localStorage.getItem(LAST));
    } catch {
      return null;
    }
  }

  /** Load the stored model last run (without the network), else the default one. */
  async function loadStart() {
    const last = storage.supported ? readLast() : null;
    if (last) {
      try {
        const record = await storage.record(last.checkpoint);
        const tokRecord = last.tokenizer ? await storage.record(last.tokenizer) : await storedTokenizer(record?.vocab_size);
        if (record?.complete && (!last.tokenizer || tokRecord?.complete)) {
          await runStored(record, tokRecord);
          return;
        }
      } catch (e) {
        messages.error(`${last.name} could not be loaded from this device's storage (${e.message}): ` +
          "the default model is loaded instead");
      }
      localStorage.removeItem(LAST);
    }
    await models.loadDefault();
  }

  // ------------------------------------------------------------ the page

  const menu = $("menu");
  const list = $("stored");

  function entryButton(entry) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "menu-item";
    button.dataset.model = entry.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.label;
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = formatBytes(entry.builtIn ? entry.size : entry.checkpoint.size);
    const state = document.createElement("span");
    state.className = "state";
    button.append(name, size, state);
    button.title = entry.about;
    button.addEventListener("click", () => {
      messages.clear();
      messages.notice("");
      models.enqueue(() => runEntry(entry));
    });
    li.append(button);
    return li;
  }
  menu.replaceChildren(...entries.map(entryButton));

  $("url-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const url = $("url-input").value.trim();
    if (!url) return;
    messages.clear();
    messages.notice("");
    models.enqueue(() => runUrl(url));
  });

  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  function action(label, title, run) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small";
    button.textContent = label;
    button.setAttribute("aria-label", title);
    button.addEventListener("click", () => {
      messages.clear();
      run();
    });
    return button;
  }

  /** One stored file: name, size, format, date, and what can be done with it. */
  function storedItem(r) {
    const li = document.createElement("li");
    li.dataset.id = r.id;
    const size = r.complete ? formatBytes(r.size) : `partial: ${formatBytes(r.stored)}${r.size ? ` of ${formatBytes(r.size)}` : ""}`;
    const top = document.createElement("div");
    top.className = "top";
    top.append(span("name", r.name), span("size", size));
    const format = r.format ? r.format + (r.vocab_size ? `, ${r.vocab_size.toLocaleString("en-US")} tokens` : "") : "downloading";
    const facts = span("facts", `${format} · ${new Date(r.date).toLocaleString()}`);
    const actions = document.createElement("div");
    actions.className = "actions";
    if (r.complete && r.kind === "checkpoint") {
      actions.append(action("Run", `Run ${r.name}`, () => models.enqueue(() => runStoredRecord(r))));
    } else if (r.complete && r.kind === "tokenizer") {
      actions.append(action("Use", `Use ${r.name} with the current model`,
        () => models.enqueue(async () => models.useTokenizer(await readTokenizer(r)))));
    } else if (r.url && !busy.has(r.id)) {
      actions.append(action("Resume", `Resume downloading ${r.name}`, () => models.enqueue(() => runStoredRecord(r))));
    }
    const del = action("Delete", `Delete ${r.name} from this device`, async () => {
      await storage.remove(r.id).catch((e) => messages.error(`could not delete ${r.name}: ${e.message}`));
      refresh();
    });
    del.disabled = busy.has(r.id);
    actions.append(del);
    li.append(top, facts, actions);
    return li;
  }

  /**
   * Run (or resume downloading) a file of the stored list: a menu model as
   * the menu does, another checkpoint with a stored tokenizer of its
   * vocabulary if there is one.
   */
  async function runStoredRecord(r) {
    const entry = entries.find((e) => e.checkpoint?.url === r.url);
    if (entry) return runEntry(entry);
    if (!r.complete) return runUrl(r.url);
    try {
      await runStored(r, await storedTokenizer(r.vocab_size));
    } catch (e) {
      if (!(e instanceof Damaged)) throw e;
      await storage.remove(e.record.id);
      refresh();
      throw new Error(`${e.message}: it was deleted${e.record.url ? "; run it again to download it again" : "; drop the file again"}`);
    }
  }

  let refreshing = null;
  /** Redraw the menu's states and the stored list from the storage (coalesced). */
  function refresh() {
    refreshing ??= Promise.resolve().then(async () => {
      refreshing = null;
      const records = storage.supported ? await storage.list().catch(() => []) : [];
      const byUrl = new Map(records.filter((r) => r.url).map((r) => [r.url, r]));
      for (const entry of entries) {
        const button = menu.querySelector(`[data-model="${entry.id}"]`);
        const r = entry.checkpoint && byUrl.get(entry.checkpoint.url);
        const name = entry.builtIn ? "stories260K.bin" : entry.checkpoint.name;
        button.setAttribute("aria-pressed", String(models.name === name));
        button.querySelector(".state").textContent = entry.builtIn ? "built in"
          : busy.has(r?.id) ? "downloading…"
          : r?.complete ? "stored"
          : r?.stored ? `${Math.floor((100 * r.stored) / (r.size || 1))}% downloaded`
          : "download";
      }
      list.replaceChildren(...records.map(storedItem));
      $("stored-empty").hidden = records.length > 0;
      list.hidden = records.length === 0;
      await showUsage();
    });
    return refreshing;
  }

  async function showUsage() {
    const usage = $("storage-usage");
    if (!storage.supported) {
      usage.textContent = `Nothing can be kept: ${storage.why}.`;
      return;
    }
    const { usage: used, quota } = await storage.estimate();
    const kept = persisted === null ? (await navigator.storage.persisted?.()) ?? false : persisted;
    usage.textContent = `This site stores ${formatBytes(used)} of the ${formatBytes(quota)} the browser allows it. ` +
      (kept ? "The browser keeps it for good." : "The browser may clear it when the disk runs short of space.");
  }

  refresh();

  return {
    storage,
    loadStart,
    keep,
    refresh,
    /** Catalog entry ids (tests). */
    entries,
  };
}
