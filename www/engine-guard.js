// Seeing the engine crash.
//
// A Rust panic inside wasm traps (a WebAssembly.RuntimeError, "unreachable")
// and leaves the instance unusable: an object that was borrowed when it
// trapped refuses every later call ("recursive use of an object detected",
// "attempted to take ownership of Rust value while it was borrowed"), and the
// allocator may be half-way through a change. The engine validates every
// argument so that no input should get there; if something does, the page
// says so, loads a new instance of the engines and the last good model
// (www/models.js).

/** Is this error (or its cause) the engine dying rather than refusing an input? */
export function isEngineCrash(e) {
  for (let depth = 0; e && depth < 4; depth++, e = e.cause) {
    if (e instanceof WebAssembly.RuntimeError) return true;
    if (/recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed/
      .test(String(e.message ?? e))) return true;
  }
  return false;
}

/** A crash as the page names it: "RuntimeError: unreachable". */
export const crashText = (e) => (e instanceof WebAssembly.RuntimeError ? `RuntimeError: ${e.message}` : e.message);

/** The packages of engines that crashed: none of their objects is called again. */
const deadEngines = new WeakSet();
// ... nor freed by the garbage collector: wasm-bindgen's finalizers would
// run Rust code in the dead instance (it keeps its memory anyway)
const graveyard = [];

/** The engines whose packages are `pkgs` crashed. */
export function markDead(pkgs) {
  for (const pkg of pkgs) deadEngines.add(pkg);
}

export const isDead = (pkg) => deadEngines.has(pkg);

/** Keep an object of a dead engine from the garbage collector (see graveyard). */
export function bury(obj) {
  graveyard.push(obj);
}

/**
 * `{ noticed, guard }` for a page that restarts the engine with
 * `onCrash(error)`: noticed(e) passes an engine error on, calling onCrash
 * first when it is a crash; guard(obj) wraps a Model or ModelLoader so that
 * every call (methods, getters, setters) goes through noticed(): wherever
 * the page or the inspector touches the engine, a crash is seen at once.
 */
export function crashWatch(onCrash) {
  const noticed = (e) => {
    if (isEngineCrash(e)) onCrash(e);
    return e;
  };
  const guard = (obj) => {
    const methods = new Map();
    return new Proxy(obj, {
      get(target, prop) {
        let value;
        try {
          value = Reflect.get(target, prop, target);
        } catch (e) {
          throw noticed(e);
        }
        if (typeof value !== "function" || prop === "constructor") return value;
        let method = methods.get(prop);
        if (!method) {
          method = (...args) => {
            try {
              return value.apply(target, args);
            } catch (e) {
              throw noticed(e);
            }
          };
          methods.set(prop, method);
        }
        return method;
      },
      set(target, prop, value) {
        try {
          return Reflect.set(target, prop, value, target);
        } catch (e) {
          throw noticed(e);
        }
      },
    });
  };
  return { noticed, guard };
}
