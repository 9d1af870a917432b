//! The WebGPU build (cargo feature `webgpu`): the same shared generator on Burn's wgpu backend.
//!
//! In the browser the device must be created with `init_async` and every readback must be
//! `into_data_async` (a synchronous readback panics in WebAssembly), so the drawing calls return
//! promises. The calls are those of the CPU [`crate::KyaraModel`], with the same face specs and
//! results; the recipe (latent, edits, condition) is computed from the card, with no device.
//! A spec the model cannot draw throws at once; the promise rejects only when WebGPU fails, so the
//! caller can tell the two apart (the worker falls back to the CPU for the second only).

use std::rc::Rc;

use shared_model::card::LoadedModel;
use shared_model::face::Face;
use shared_model::sample::{FaceRequest, rgba_from_data};
use shared_model::{FaceSpec, ModelCard};
use wasm_bindgen::prelude::*;

use burn::prelude::*;

use crate::{FaceOut, frames_to_js, js, spec_from_js, to_js};

/// A kyara model on WebGPU: `await KyaraGpuModel.load(cardJson, weights)`, then
/// `await model.face(spec)`.
#[wasm_bindgen]
pub struct KyaraGpuModel {
    model: Rc<LoadedModel>,
}

/// One face on the GPU, read back asynchronously.
async fn draw(model: &LoadedModel, req: &FaceRequest) -> Result<Vec<u8>, JsError> {
    let images = model.forward_request(req);
    let dims = images.dims();
    let data = images
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("WebGPU readback failed: {e:?}")))?;
    Ok(rgba_from_data(data, dims).remove(0))
}

#[wasm_bindgen]
impl KyaraGpuModel {
    /// Asks the browser for a WebGPU device and loads the model onto it.
    pub async fn load(card_json: String, weights: Vec<u8>) -> Result<KyaraGpuModel, JsError> {
        let card = ModelCard::from_json(&card_json).map_err(js)?;
        let device = Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| JsError::new(&format!("WebGPU is not usable here: {e}")))?;
        let model = LoadedModel::from_bytes(card, weights, &device).map_err(js)?;
        Ok(Self {
            model: Rc::new(model),
        })
    }

    pub fn resolution(&self) -> usize {
        self.model.card.resolution
    }

    /// Resolves to the face of `spec`, as `KyaraModel.face` gives it.
    #[wasm_bindgen(unchecked_return_type = "Promise<Face>")]
    pub fn face(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] spec: JsValue,
    ) -> Result<js_sys::Promise, JsError> {
        let spec: FaceSpec = spec_from_js("", spec)?;
        let inputs = self.model.card.face_inputs(&spec).map_err(js)?;
        let model = Rc::clone(&self.model);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let rgba = draw(&model, &inputs).await?;
            Ok(to_js(&FaceOut::new(&spec, Face { inputs, rgba }))?)
        }))
    }

    /// Resolves to the RGBA pixels (`Uint8Array`s) of the `count` frames from `a` to `b`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array[]>")]
    pub fn frames(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] a: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] b: JsValue,
        count: usize,
    ) -> Result<js_sys::Promise, JsError> {
        let a = spec_from_js("transition start", a)?;
        let b = spec_from_js("transition end", b)?;
        let requests = self.model.card.transition(&a, &b, count).map_err(js)?;
        let model = Rc::clone(&self.model);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let mut frames = Vec::with_capacity(requests.len());
            for r in &requests {
                frames.push(draw(&model, r).await?);
            }
            Ok(frames_to_js(&frames).into())
        }))
    }
}
