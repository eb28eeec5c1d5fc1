//! `Sha256` as the page's model library uses it: a file's chunks in, the
//! digest `sha256sum` prints out; a finished object or a wrong argument is
//! an error, never a trap.
use js_sys::{DataView, Uint8Array};
use llama2_wasm::wasm::Sha256;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use crate::glue::{buffer, call, construct, n, s};
use crate::support::*;

const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const MILLION_A: &str = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

/// The digest of these chunks through the class's Rust API.
fn digest_of(chunks: &[&[u8]]) -> String {
    let mut sha = Sha256::new();
    for chunk in chunks {
        sha.update(&js(chunk).into()).unwrap();
    }
    sha.hex().unwrap()
}

/// The same computed by the core module, in this wasm instance.
fn core_digest(data: &[u8]) -> String {
    let mut sha = llama2_wasm::sha256::Sha256::new();
    sha.update(data);
    llama2_wasm::sha256::hex(&sha.finish())
}

#[wasm_bindgen_test]
fn nist_digests_through_the_class() {
    assert_eq!(digest_of(&[b"abc"]), ABC);
    assert_eq!(digest_of(&[]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // one million 'a' in one chunk, and in uneven chunks (an empty one among them)
    let million = vec![b'a'; 1_000_000];
    assert_eq!(digest_of(&[&million]), MILLION_A);
    let mut chunks: Vec<&[u8]> = Vec::new();
    let mut rest = &million[..];
    for n in [0, 1, 63, 64, 65, 4096, 65_536].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at((*n).min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    assert_eq!(digest_of(&chunks), MILLION_A);
}

#[wasm_bindgen_test]
fn a_checkpoint_through_the_js_glue_in_the_pages_chunks() {
    // as a page calls it: `new Sha256()`, `update` with views of a download's
    // chunks, and one chunk larger than the 1 MiB the class copies at a time
    let want = core_digest(STORIES260K);
    let class = get(&Sha256::new().into(), "constructor");
    for size in [65_536, STORIES260K.len()] {
        let sha = construct(&class, &[]).unwrap();
        for chunk in STORIES260K.chunks(size) {
            call(&sha, "update", &[js(chunk).into()]).unwrap();
        }
        assert_eq!(call(&sha, "hex", &[]).unwrap().as_string().unwrap(), want, "chunks of {size}");
    }
    // an ArrayBuffer, and views of part of a buffer: only the viewed bytes count
    let sha = construct(&class, &[]).unwrap();
    call(&sha, "update", &[buffer(b"a")]).unwrap();
    let padded = js(b"xxbcxx");
    call(&sha, "update", &[padded.subarray(2, 3).into()]).unwrap();
    call(&sha, "update", &[DataView::new(&padded.buffer(), 3, 1).into()]).unwrap();
    assert_eq!(call(&sha, "hex", &[]).unwrap().as_string().unwrap(), ABC);
}

#[wasm_bindgen_test]
fn a_finished_sha256_refuses_more() {
    let mut sha = Sha256::new();
    sha.update(&js(b"abc").into()).unwrap();
    assert_eq!(sha.hex().unwrap(), ABC);
    let msg = message(sha.update(&js(b"more").into()).err().unwrap());
    assert!(msg.contains("already given its digest"), "{msg}");
    let msg = message(sha.hex().err().unwrap());
    assert!(msg.contains("already given its digest"), "{msg}");
    // through the glue: thrown as JS errors, and the object still answers
    let sha: JsValue = Sha256::new().into();
    call(&sha, "hex", &[]).unwrap();
    let msg = call(&sha, "update", &[js(b"abc").into()]).unwrap_err();
    assert!(msg.contains("already given its digest"), "{msg}");
    assert!(call(&sha, "hex", &[]).unwrap_err().contains("already given its digest"));
}

#[wasm_bindgen_test]
fn a_wrong_argument_is_an_error_that_changes_nothing() {
    let sha: JsValue = Sha256::new().into();
    call(&sha, "update", &[js(b"ab").into()]).unwrap();
    let symbol: JsValue = js_sys::Symbol::for_("x").into();
    for (arg, want) in [
        (s("c"), "bytes must be a Uint8Array or an ArrayBuffer, not a string"),
        (n(99.0), "bytes must be a Uint8Array or an ArrayBuffer, not the number 99"),
        (JsValue::NULL, "bytes must be a Uint8Array or an ArrayBuffer, not null"),
        (JsValue::UNDEFINED, "bytes must be a Uint8Array or an ArrayBuffer, not undefined"),
        (symbol, "bytes must be a Uint8Array or an ArrayBuffer, not a symbol"),
        (js_sys::Array::of1(&n(99.0)).into(), "bytes must be a Uint8Array or an ArrayBuffer, not an Array"),
        (js_sys::Object::new().into(), "bytes must be a Uint8Array or an ArrayBuffer, not an Object"),
    ] {
        let msg = call(&sha, "update", &[arg]).unwrap_err();
        assert!(msg.contains(want), "{msg}");
    }
    // no argument at all
    let msg = call(&sha, "update", &[]).unwrap_err();
    assert!(msg.contains("not undefined"), "{msg}");
    // the digest is still that of "ab" + "c"
    call(&sha, "update", &[Uint8Array::from(&b"c"[..]).into()]).unwrap();
    assert_eq!(call(&sha, "hex", &[]).unwrap().as_string().unwrap(), ABC);
}
