//! Calls through the exports' JavaScript glue (the class's own methods,
//! `Reflect.apply`), as a page makes them.
use wasm_bindgen::{JsCast, JsValue};

use crate::support::{get, js};

pub fn n(x: f64) -> JsValue {
    JsValue::from_f64(x)
}

pub fn s(x: &str) -> JsValue {
    JsValue::from_str(x)
}

/// An `ArrayBuffer` holding `bytes`.
pub fn buffer(bytes: &[u8]) -> JsValue {
    js(bytes).buffer().into()
}

pub fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

/// `obj[method](...args)` through the JS glue; the message of what it threw.
pub fn call(obj: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue, String> {
    let f: js_sys::Function = get(obj, method).dyn_into().unwrap_or_else(|_| panic!("no method {method}"));
    let list = js_sys::Array::new();
    for a in args {
        list.push(a);
    }
    js_sys::Reflect::apply(&f, obj, &list).map_err(|e| js_message(&e))
}

/// `new class(...args)` through the JS glue.
pub fn construct(class: &JsValue, args: &[JsValue]) -> Result<JsValue, String> {
    let list = js_sys::Array::new();
    for a in args {
        list.push(a);
    }
    js_sys::Reflect::construct(class.unchecked_ref::<js_sys::Function>(), &list).map_err(|e| js_message(&e))
}

/// `obj[key] = value` through a setter of the glue.
pub fn assign(obj: &JsValue, key: &str, value: &JsValue) -> Result<(), String> {
    js_sys::Reflect::set(obj, &s(key), value).map(|_| ()).map_err(|e| js_message(&e))
}

/// A greedy run of 24 steps from "Once upon a time" through the JS methods: its tokens.
pub fn greedy_tokens(model: &JsValue) -> Vec<u32> {
    call(model, "start", &[s("Once upon a time"), n(0.0), n(0.9), n(1.0), n(24.0)]).unwrap();
    while !call(model, "step", &[]).unwrap().is_undefined() {}
    let tokens: js_sys::Uint32Array = call(model, "tokens", &[]).unwrap().dyn_into().unwrap();
    tokens.to_vec()
}
