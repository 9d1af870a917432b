//! The WebGPU build (cargo feature `webgpu`): the same shared generator on Burn's wgpu backend.
//!
//! In the browser the device must be created with `init_async` and every readback must be
//! `into_data_async` (a synchronous readback panics in WebAssembly), so the calls here return
//! promises. Inputs (`z`, `c`) come from the CPU facade's helpers in JavaScript (`latent`,
//! `condition` are pure Rust and need no device).

use std::rc::Rc;

use burn::prelude::*;
use shared_model::sample::rgba_from_data;
use shared_model::{ModelCard, card::LoadedModel};
use wasm_bindgen::prelude::*;

use crate::{check_vector, js};

/// A kyara model on WebGPU: `await KyaraGpuModel.load(cardJson, weights)`, then
/// `await model.generate_with(z, c)`.
#[wasm_bindgen]
pub struct KyaraGpuModel {
    model: Rc<LoadedModel>,
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

    /// Resolves to the RGBA pixels of the face for latent `z` and condition vector `c`.
    pub fn generate_with(&self, z: Vec<f32>, c: Vec<f32>) -> js_sys::Promise {
        let model = Rc::clone(&self.model);
        wasm_bindgen_futures::future_to_promise(async move {
            let cfg = &model.card;
            check_vector("latent z", &z, cfg.generator.latent_dim()).map_err(js)?;
            check_vector("condition c", &c, cfg.vocab.len()).map_err(js)?;
            let (zl, cl) = (z.len(), c.len());
            let z = Tensor::<2>::from_data(TensorData::new(z, [1, zl]), &model.device);
            let c = Tensor::<2>::from_data(TensorData::new(c, [1, cl]), &model.device);
            let images = model
                .generator
                .forward(shared_model::GeneratorInput::new(z, c));
            let dims = images.dims();
            let data = images
                .into_data_async()
                .await
                .map_err(|e| JsError::new(&format!("WebGPU readback failed: {e:?}")))?;
            let rgba = rgba_from_data(data, dims).remove(0);
            Ok(js_sys::Uint8Array::from(rgba.as_slice()).into())
        })
    }
}
