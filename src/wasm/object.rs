//! The one way this API makes JS objects: the fields are named once, at the
//! Rust call site (`Fields::new().num("pos", ..).flag("forced", ..)`), and
//! the object is made in a single call into JS (a `Reflect.set` per field
//! costs more than a step of a small model).

use js_sys::Array;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// names: the field names joined by "\n"; kinds[i] says where field i's
// value is: 0 numbers[i], 1 numbers[i] as a boolean, 2 undefined, 3 the
// next of `others` (strings, arrays, objects). The slices are views into
// wasm memory, read at once.
export function make_object(names, numbers, kinds, others) {
  const o = {};
  const keys = names.split("\n");
  let j = 0;
  for (let i = 0; i < keys.length; i++) {
    const kind = kinds[i];
    o[keys[i]] = kind === 0 ? numbers[i] : kind === 1 ? numbers[i] !== 0 : kind === 2 ? undefined : others[j++];
  }
  return o;
}
"#)]
extern "C" {
    fn make_object(names: &str, numbers: &[f64], kinds: &[u8], others: &Array) -> JsValue;
}

const NUMBER: u8 = 0;
const BOOL: u8 = 1;
const UNDEFINED: u8 = 2;
const OTHER: u8 = 3;

/// The fields of one JS object, in order.
#[derive(Default)]
pub(super) struct Fields {
    names: String,
    numbers: Vec<f64>,
    kinds: Vec<u8>,
    others: Vec<JsValue>,
}

impl Fields {
    pub fn new() -> Fields {
        Fields::default()
    }

    fn field(mut self, name: &str, number: f64, kind: u8) -> Fields {
        if !self.names.is_empty() {
            self.names.push('\n');
        }
        self.names.push_str(name);
        self.numbers.push(number);
        self.kinds.push(kind);
        self
    }

    /// A number (counts, ids and sizes below 2^53 are exact).
    pub fn num(self, name: &str, value: impl Into<Number>) -> Fields {
        self.field(name, value.into().0, NUMBER)
    }

    pub fn flag(self, name: &str, value: bool) -> Fields {
        self.field(name, if value { 1.0 } else { 0.0 }, BOOL)
    }

    /// A number, or `undefined` for `None`.
    pub fn maybe(self, name: &str, value: Option<impl Into<Number>>) -> Fields {
        match value {
            Some(v) => self.num(name, v),
            None => self.field(name, 0.0, UNDEFINED),
        }
    }

    pub fn text(self, name: &str, value: &str) -> Fields {
        self.value(name, JsValue::from_str(value))
    }

    /// Any JS value (an array, another object).
    pub fn value(mut self, name: &str, value: JsValue) -> Fields {
        self.others.push(value);
        self.field(name, 0.0, OTHER)
    }

    pub fn build(self) -> JsValue {
        let others: Array = self.others.into_iter().collect();
        make_object(&self.names, &self.numbers, &self.kinds, &others)
    }
}

/// What `Fields::num` takes: Rust's numbers as a JS number.
pub(super) struct Number(f64);

macro_rules! number_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(v: $t) -> Number {
                Number(v as f64)
            }
        }
    )*};
}
number_from!(f32, f64, u32, u64, usize, i32);
