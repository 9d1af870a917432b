//! The browser face of kyara: the shared generator compiled to WebAssembly.
//!
//! [`Facade`] is plain Rust (so native tests can drive exactly what the page runs); the
//! `#[wasm_bindgen]` class [`KyaraModel`] is a thin wrapper that turns errors into `JsError`.

use burn::prelude::*;
use shared_model::{ModelCard, ModelError, card::LoadedModel};
use wasm_bindgen::prelude::*;

/// A loaded model plus the calls the page makes. Runs on the pure-Rust Flex CPU backend.
pub struct Facade {
    model: LoadedModel,
}

impl Facade {
    /// Parses the model card JSON and loads the weights bytes it describes.
    pub fn load(card_json: &str, weights: &[u8]) -> Result<Self, ModelError> {
        let card = ModelCard::from_json(card_json)?;
        let device = Device::flex();
        let model = LoadedModel::from_bytes(card, weights.to_vec(), &device)?;
        Ok(Self { model })
    }

    pub fn card(&self) -> &ModelCard {
        &self.model.card
    }

    /// RGBA bytes (`resolution^2 * 4`) of the face for `seed` and the comma-separated `tags`.
    pub fn generate(&self, seed: u64, tags: &str) -> Result<Vec<u8>, ModelError> {
        Ok(self.model.generate(seed, tags)?.0)
    }

    /// The full tag list the face for `seed` and `tags` is drawn with.
    pub fn resolve_tags(&self, seed: u64, tags: &str) -> Result<Vec<String>, ModelError> {
        let req = shared_model::sample::FaceRequest::new(
            &self.model.card.vocab,
            self.model.card.generator.latent_dim(),
            seed,
            tags,
        )?;
        Ok(req.tags)
    }
}

fn js(e: ModelError) -> JsError {
    JsError::new(&e.to_string())
}

/// A kyara model in the page: `KyaraModel.load(cardJson, weightsBytes)`, then `generate(seed, tags)`.
#[wasm_bindgen]
pub struct KyaraModel {
    inner: Facade,
}

#[wasm_bindgen]
impl KyaraModel {
    /// Loads a model from its card (JSON text) and weights (burnpack bytes).
    pub fn load(card_json: &str, weights: &[u8]) -> Result<KyaraModel, JsError> {
        Ok(Self {
            inner: Facade::load(card_json, weights).map_err(js)?,
        })
    }

    pub fn resolution(&self) -> usize {
        self.inner.card().resolution
    }

    pub fn card_json(&self) -> String {
        self.inner.card().to_json()
    }

    /// RGBA pixels of one face, `resolution * resolution * 4` bytes.
    pub fn generate(&self, seed: u64, tags: &str) -> Result<Vec<u8>, JsError> {
        self.inner.generate(seed, tags).map_err(js)
    }

    /// The tags actually used for `seed` (open groups drawn from the seed), comma-separated.
    pub fn resolve_tags(&self, seed: u64, tags: &str) -> Result<String, JsError> {
        Ok(self.inner.resolve_tags(seed, tags).map_err(js)?.join(", "))
    }
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
