//! The browser face of kyara: the shared generator compiled to WebAssembly.
//!
//! [`Facade`] is plain Rust (so native tests can drive exactly what the page runs); the
//! `#[wasm_bindgen]` class [`KyaraModel`] is a thin wrapper over it. The page makes one call per
//! face: `face(spec)` takes a face spec ([`FaceSpec`]: seed, tags, strengths, variations,
//! directions) as a plain JavaScript object and returns the pixels, the tags used, the condition
//! vector and the permalink text in one object ([`FaceOut`]). `frames(a, b, count)` draws a
//! transition, `read_link(text)` / [`parse_link`] / [`print_link`] read and write permalinks. The
//! recipe itself (latent, variations, directions, strengths, interpolation) is `shared-model`'s
//! [`shared_model::face`], the same code `trainer generate --link` and `trainer interpolate` run.

use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_model::face::Face;
use shared_model::{FaceSpec, ModelCard, ModelError, Permalink, card::LoadedModel};
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

    /// Length of the latent vector `z`.
    pub fn latent_dim(&self) -> usize {
        self.model.card.generator.latent_dim()
    }

    /// Style inputs of the synthesis network (0 for families without styles): the crossover
    /// layers a fusion may start at are `1..styles`.
    pub fn styles(&self) -> usize {
        self.model.card.generator.sizes().styles
    }

    /// Length of the condition vector `c` (one entry per tag of the vocabulary).
    pub fn num_tags(&self) -> usize {
        self.model.card.vocab.len()
    }

    /// Whether the generator reads the tags (an unconditional DCGAN ignores them).
    pub fn conditional(&self) -> bool {
        self.model.card.generator.conditional()
    }

    /// The face of `spec`: its inputs (resolved tags, `z`, `c`) and RGBA bytes.
    pub fn face(&self, spec: &FaceSpec) -> Result<Face, ModelError> {
        self.model.draw(spec)
    }

    /// RGBA bytes of the `count` transition frames from `a` to `b`.
    pub fn frames(
        &self,
        a: &FaceSpec,
        b: &FaceSpec,
        count: usize,
    ) -> Result<Vec<Vec<u8>>, ModelError> {
        self.model.draw_transition(a, b, count)
    }

    /// Reads a permalink for this model (what it cannot use is in `problems`).
    pub fn read_link(&self, text: &str) -> Permalink {
        self.model.card.read_link(text)
    }

    /// RGBA bytes (`resolution^2 * 4`) of the face for `seed` and the comma-separated `tags`.
    pub fn generate(&self, seed: u64, tags: &str) -> Result<Vec<u8>, ModelError> {
        Ok(self.face(&FaceSpec::new(seed, tags))?.rgba)
    }

    /// The full tag list the face for `seed` and `tags` is drawn with.
    pub fn resolve_tags(&self, seed: u64, tags: &str) -> Result<Vec<String>, ModelError> {
        Ok(self.face(&FaceSpec::new(seed, tags))?.inputs.tags)
    }
}

/// What `face(spec)` gives JavaScript (one plain object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaceOut {
    /// `resolution^2 * 4` RGBA bytes (a `Uint8Array`).
    #[serde(with = "serde_bytes")]
    pub rgba: Vec<u8>,
    /// The seed, in decimal.
    pub seed: String,
    /// The asked tags, spelled canonically.
    pub asked: Vec<String>,
    /// The tags the face is drawn with (asked ones plus those drawn for open groups).
    pub tags: Vec<String>,
    /// The condition vector (vocabulary order, strengths applied).
    pub condition: Vec<f32>,
    /// The permalink text of the spec (without `#`).
    pub link: String,
}

impl FaceOut {
    pub fn new(spec: &FaceSpec, face: Face) -> Self {
        Self {
            seed: face.inputs.seed.to_string(),
            asked: spec.tags.clone(),
            tags: face.inputs.tags,
            condition: face.inputs.c,
            link: spec.to_link(),
            rgba: face.rgba,
        }
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A face spec; seeds are decimal strings (or safe integers), tags an array or one comma-separated string. */
export interface FaceSpec {
  model?: string;
  seed?: string | number | bigint;
  tags?: string[] | string;
  strengths?: Record<string, number>;
  variations?: { seed: string | number | bigint; strength: number }[];
  directions?: Record<string, number>;
  /** Truncation towards the tags' mean face (StyleGAN2-style models). */
  psi?: number;
  /** Another character's styles from a layer on (StyleGAN2-style models). */
  fuse?: { seed: string | number | bigint; tags?: string[] | string; from_layer: number };
}
export interface Face {
  rgba: Uint8Array; seed: string; asked: string[]; tags: string[]; condition: number[]; link: string;
}
export interface Permalink { spec: FaceSpec; problems: string[] }
"#;

pub(crate) fn js(e: ModelError) -> JsError {
    JsError::new(&e.to_string())
}

/// A face spec from JavaScript (its errors name the field that is wrong).
pub(crate) fn spec_from_js(what: &str, value: JsValue) -> Result<FaceSpec, JsError> {
    from_js(what, value)
}

fn from_js<T: DeserializeOwned>(what: &str, value: JsValue) -> Result<T, JsError> {
    serde_wasm_bindgen::from_value(value).map_err(|e| {
        // The error is a JavaScript `Error` already; keep its message (its `to_string` would
        // start with "Error: ").
        let e = JsValue::from(e);
        let text = match e.dyn_ref::<js_sys::Error>() {
            Some(err) => String::from(err.message()),
            None => format!("{e:?}"),
        };
        match what {
            "" => JsError::new(&text),
            _ => JsError::new(&format!("{what}: {text}")),
        }
    })
}

/// A plain JavaScript value (maps as objects, byte buffers as `Uint8Array`).
pub(crate) fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let s = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value
        .serialize(&s)
        .map_err(|e| JsError::new(&format!("could not hand the result to JavaScript: {e}")))
}

pub(crate) fn frames_to_js(frames: &[Vec<u8>]) -> js_sys::Array {
    frames
        .iter()
        .map(|f| js_sys::Uint8Array::from(f.as_slice()))
        .collect()
}

/// A kyara model in the page: `KyaraModel.load(cardJson, weightsBytes)`, then `face(spec)`.
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

    pub fn latent_dim(&self) -> usize {
        self.inner.latent_dim()
    }

    pub fn styles(&self) -> usize {
        self.inner.styles()
    }

    pub fn num_tags(&self) -> usize {
        self.inner.num_tags()
    }

    /// Whether the tags change the face (false for an unconditional DCGAN).
    pub fn conditional(&self) -> bool {
        self.inner.conditional()
    }

    /// The card as JSON (latent directions included).
    pub fn card_json(&self) -> String {
        self.inner.card().to_json()
    }

    /// One face: `{ rgba, seed, asked, tags, condition, link }` for a face spec.
    #[wasm_bindgen(unchecked_return_type = "Face")]
    pub fn face(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] spec: JsValue,
    ) -> Result<JsValue, JsError> {
        let spec = spec_from_js("", spec)?;
        let face = self.inner.face(&spec).map_err(js)?;
        to_js(&FaceOut::new(&spec, face))
    }

    /// RGBA pixels (`Uint8Array`s) of the `count` frames from spec `a` to spec `b`.
    #[wasm_bindgen(unchecked_return_type = "Uint8Array[]")]
    pub fn frames(
        &self,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] a: JsValue,
        #[wasm_bindgen(unchecked_param_type = "FaceSpec")] b: JsValue,
        count: usize,
    ) -> Result<js_sys::Array, JsError> {
        let a = spec_from_js("transition start", a)?;
        let b = spec_from_js("transition end", b)?;
        Ok(frames_to_js(&self.inner.frames(&a, &b, count).map_err(js)?))
    }

    /// Reads a permalink for this model: `{ spec, problems }`; tags and directions the model does
    /// not know are left out and named in `problems`, as malformed parts are.
    #[wasm_bindgen(unchecked_return_type = "Permalink")]
    pub fn read_link(&self, text: &str) -> Result<JsValue, JsError> {
        to_js(&self.inner.read_link(text))
    }
}

/// Reads a permalink without a model (syntax only): `{ spec, problems }`.
#[wasm_bindgen(js_name = parseLink, unchecked_return_type = "Permalink")]
pub fn parse_link(text: &str) -> Result<JsValue, JsError> {
    to_js(&FaceSpec::from_link(text))
}

/// The permalink text (without `#`) of a face spec.
#[wasm_bindgen(js_name = printLink)]
pub fn print_link(
    #[wasm_bindgen(unchecked_param_type = "FaceSpec")] spec: JsValue,
) -> Result<String, JsError> {
    Ok(spec_from_js("", spec)?.to_link())
}

#[cfg(feature = "webgpu")]
pub mod gpu;

/// Whether this WebAssembly build was compiled with the `simd128` target feature.
#[wasm_bindgen(js_name = builtWithSimd)]
pub fn built_with_simd() -> bool {
    cfg!(target_feature = "simd128")
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = include_str!("../../www/models/anime64/model.json");

    fn shipped() -> Facade {
        let weights = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../www/models/anime64/generator.bpk"
        ))
        .expect("shipped weights");
        Facade::load(CARD, &weights).expect("shipped model loads")
    }

    #[test]
    fn every_listed_model_loads_and_follows_its_tags() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../www/models");
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{root}/index.json")).unwrap())
                .unwrap();
        let names = index["models"].as_array().unwrap();
        assert!(names.len() >= 2, "{index}");
        for name in names {
            let dir = format!("{root}/{}", name.as_str().unwrap());
            let card = std::fs::read_to_string(format!("{dir}/model.json")).unwrap();
            let file: serde_json::Value = serde_json::from_str(&card).unwrap();
            let weights_file = file["weights"].as_str().unwrap();
            let weights = std::fs::read(format!("{dir}/{weights_file}")).unwrap();
            let f = Facade::load(&card, &weights).unwrap_or_else(|e| panic!("{dir}: {e}"));
            let a = f.generate(3, "blonde hair, blue eyes").unwrap();
            let b = f.generate(3, "black hair, red eyes").unwrap();
            assert_eq!(a.len(), f.card().resolution.pow(2) * 4);
            assert_eq!(a != b, f.conditional(), "{dir}");
            // A family with styles ships with its sliders' directions; the others have none.
            let styled = f.card().generator.sizes().styles > 0;
            assert_eq!(!f.card().directions.is_empty(), styled, "{dir}");
            // Every card writes back the bytes it was read from.
            assert_eq!(f.card().to_json().trim_end(), card.trim_end(), "{dir}");
        }
    }

    #[test]
    fn a_face_from_a_link_carries_what_the_page_shows() {
        let f = shipped();
        let link = f.read_link(
            "#model=anime64&seed=42&tags=Blonde_Hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35",
        );
        assert!(link.problems.is_empty(), "{:?}", link.problems);
        let face = f.face(&link.spec).unwrap();
        let out = FaceOut::new(&link.spec, face.clone());
        assert_eq!(out.seed, "42");
        assert_eq!(out.asked, ["blonde hair", "blue eyes"]);
        assert_eq!(
            out.tags,
            f.resolve_tags(42, "blonde hair, blue eyes").unwrap()
        );
        assert_eq!(
            out.link,
            "model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35"
        );
        let i = f.card().vocab.index_of("blue eyes").unwrap();
        assert_eq!(out.condition[i], 1.45);
        assert_eq!(out.rgba.len(), 64 * 64 * 4);
        // The strength and the variation both show in the pixels.
        let plain = f.generate(42, "blonde hair, blue eyes").unwrap();
        assert_ne!(out.rgba, plain);
        let only_s = f.read_link("seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45");
        assert_ne!(f.face(&only_s.spec).unwrap().rgba, plain);
        assert_ne!(f.face(&only_s.spec).unwrap().rgba, out.rgba);
        // Unknown tags in a link are reported, not drawn.
        let bad = f.read_link("seed=1&tags=zebra_hair");
        assert_eq!(bad.problems, ["unknown tag “zebra hair”"]);
        // ... and an unknown tag in a spec is an error that names it.
        let e = f.face(&FaceSpec::new(1, "zebra hair")).unwrap_err();
        assert!(e.to_string().contains("zebra hair"), "{e}");
    }

    #[test]
    fn transition_frames_end_at_the_two_faces() {
        let f = shipped();
        let a = FaceSpec::new(11, "blonde hair");
        let b = FaceSpec::new(12, "red hair");
        let frames = f.frames(&a, &b, 4).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], f.face(&a).unwrap().rgba);
        assert_eq!(frames[3], f.face(&b).unwrap().rgba);
        assert!(frames[1] != frames[0] && frames[1] != frames[3]);
    }
}
