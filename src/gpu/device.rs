//! Finding a GPU: `navigator.gpu`, an adapter, its limits checked against
//! what the model needs, and a device asking for them.

use js_sys::{Object, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Gpu, GpuAdapter, GpuDevice, GpuDeviceDescriptor};

use crate::error::{Error, Result};

/// What the page can show about the GPU (WebGPU's `GPUAdapterInfo`;
/// browsers leave fields empty to avoid fingerprinting).
#[derive(Debug, Clone, Default)]
pub struct AdapterInfo {
    pub vendor: String,
    pub architecture: String,
    pub device: String,
    pub description: String,
}

/// One limit the model needs: WebGPU's name, the value, and what needs it
/// (for the message when the adapter has less).
#[derive(Debug, Clone)]
pub struct Need {
    pub limit: String,
    pub value: f64,
    pub what: String,
}

/// A JS exception or rejection's message (an `Error`'s, else the value as a string).
pub fn js_message(e: &JsValue) -> String {
    Reflect::get(e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn text(o: &JsValue, key: &str) -> String {
    Reflect::get(o, &key.into()).ok().and_then(|v| v.as_string()).unwrap_or_default()
}

/// A limit of a `GPUSupportedLimits` by its WebGPU name (NaN when unknown).
pub fn limit(limits: &JsValue, name: &str) -> f64 {
    Reflect::get(limits, &name.into()).ok().and_then(|v| v.as_f64()).unwrap_or(f64::NAN)
}

/// `navigator.gpu`, in a page or a Worker, or why there is none.
fn navigator_gpu() -> Result<Gpu> {
    let global = js_sys::global();
    let gpu = Reflect::get(&global, &"navigator".into())
        .ok()
        .filter(|n| n.is_object())
        .and_then(|n| Reflect::get(&n, &"gpu".into()).ok())
        .filter(|g| g.is_object());
    gpu.map(|g| g.unchecked_into()).ok_or_else(|| {
        Error::Gpu(
            "this browser has no WebGPU (navigator.gpu is missing: it needs a recent Chrome, Edge or Safari, \
             and a secure page, https or localhost): run on the CPU"
                .into(),
        )
    })
}

/// The adapter WebGPU offers and how the browser describes it, or why
/// there is none (no WebGPU, no adapter). Asks for no device.
pub async fn adapter() -> Result<(GpuAdapter, AdapterInfo)> {
    let gpu = navigator_gpu()?;
    let adapter = gpu
        .request_adapter()
        .await
        .map_err(|e| Error::Gpu(format!("WebGPU found no GPU: {}", js_message(&e))))?
        .into_option()
        .ok_or_else(|| {
            Error::Gpu(
                "WebGPU is there but offers no adapter (GPU acceleration off, or this GPU is blocklisted): run on the CPU"
                    .into(),
            )
        })?;
    let adapter: GpuAdapter = adapter;
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let info = AdapterInfo {
        vendor: text(&info, "vendor"),
        architecture: text(&info, "architecture"),
        device: text(&info, "device"),
        description: text(&info, "description"),
    };
    Ok((adapter, info))
}

/// An adapter, its info, and a device with the limits the model needs
/// (`needs`; checked first, so a shortfall names the limit and both
/// values) plus the largest buffers the adapter allows (the weights are
/// split into pieces of at most that).
pub async fn open(needs: &[Need]) -> Result<(GpuDevice, AdapterInfo)> {
    let (adapter, info) = adapter().await?;
    let limits: JsValue = adapter.limits().into();
    for need in needs {
        let have = limit(&limits, &need.limit);
        if have.is_nan() {
            return Err(Error::Gpu(format!("this browser's WebGPU has no limit named {}", need.limit)));
        }
        if have < need.value {
            return Err(Error::GpuLimit { limit: need.limit.clone(), have, need: need.value, what: need.what.clone() });
        }
    }
    // ask for what the model needs, and for the largest buffers there are
    let required = Object::new();
    for need in needs {
        Reflect::set(&required, &need.limit.as_str().into(), &need.value.into()).ok();
    }
    for name in ["maxStorageBufferBindingSize", "maxBufferSize"] {
        Reflect::set(&required, &name.into(), &limit(&limits, name).into()).ok();
    }
    let descriptor = GpuDeviceDescriptor::new();
    descriptor.set_required_limits_record_from_str_to_f64(required.unchecked_ref());
    let device = adapter
        .request_device_with_descriptor(&descriptor)
        .await
        .map_err(|e| Error::Gpu(format!("the GPU refused a device: {}", js_message(&e))))?;
    Ok((device, info))
}
