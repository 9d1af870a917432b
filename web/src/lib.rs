//! The browser face of kyara: the shared generator compiled to WebAssembly.
//!
//! [`Facade`] is plain Rust (so native tests can drive exactly what the page runs); the
//! `#[wasm_bindgen]` class [`KyaraModel`] is a thin wrapper that turns errors into `JsError`.
//!
//! Besides "seed + tags -> face" the page needs the two inputs of the generator in the open, so
//! artists can edit them: the latent `z` of a seed ([`Facade::latent`]), the condition vector of
//! a tag list ([`Facade::condition`], real-valued: one strength per tag), and a face from any
//! `(z, c)` pair ([`Facade::generate_with`]). Variations ([`vary`]) and transitions ([`slerp`])
//! are small vector operations on `z`; the network itself is only ever run by `shared-model`.

use burn::prelude::*;
use shared_model::sample::FaceRequest;
use shared_model::{ModelCard, ModelError, SplitMix64, card::LoadedModel};
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

    /// Length of the condition vector `c` (one entry per tag of the vocabulary).
    pub fn num_tags(&self) -> usize {
        self.model.card.vocab.len()
    }

    /// Whether the generator reads the tags (an unconditional DCGAN ignores them).
    pub fn conditional(&self) -> bool {
        self.model.card.generator.conditional()
    }

    fn request(&self, seed: u64, tags: &str) -> Result<FaceRequest, ModelError> {
        FaceRequest::new(&self.model.card.vocab, self.latent_dim(), seed, tags)
    }

    /// RGBA bytes (`resolution^2 * 4`) of the face for `seed` and the comma-separated `tags`.
    pub fn generate(&self, seed: u64, tags: &str) -> Result<Vec<u8>, ModelError> {
        Ok(self.model.generate(seed, tags)?.0)
    }

    /// The full tag list the face for `seed` and `tags` is drawn with.
    pub fn resolve_tags(&self, seed: u64, tags: &str) -> Result<Vec<String>, ModelError> {
        Ok(self.request(seed, tags)?.tags)
    }

    /// The latent `z` of `seed` (it depends on the seed only, never on the tags).
    pub fn latent(&self, seed: u64) -> Vec<f32> {
        SplitMix64::new(seed).normals(self.latent_dim())
    }

    /// The condition vector of `seed` and `tags`: 1.0 for every tag used (open groups drawn
    /// from the seed, as in [`Facade::generate`]), 0.0 elsewhere, in vocabulary order.
    pub fn condition(&self, seed: u64, tags: &str) -> Result<Vec<f32>, ModelError> {
        Ok(self.request(seed, tags)?.c)
    }

    /// RGBA bytes of the face for a latent `z` and a real-valued condition vector `c`.
    /// `generate_with(&latent(s), &condition(s, t)?)` equals `generate(s, t)`.
    pub fn generate_with(&self, z: &[f32], c: &[f32]) -> Result<Vec<u8>, ModelError> {
        check_vector("latent z", z, self.latent_dim())?;
        check_vector("condition c", c, self.num_tags())?;
        let req = FaceRequest {
            seed: 0,
            tags: Vec::new(),
            z: z.to_vec(),
            c: c.to_vec(),
        };
        Ok(self.model.generate_request(&req))
    }
}

fn check_vector(what: &str, v: &[f32], len: usize) -> Result<(), ModelError> {
    if v.len() != len {
        return Err(ModelError::BadConfig(format!(
            "{what} has {} values, the model expects {len}",
            v.len()
        )));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(ModelError::BadConfig(format!(
            "{what}[{i}] is not a finite number"
        )));
    }
    Ok(())
}

/// A variation of latent `z`: `(z + strength * n) / sqrt(1 + strength^2)` with `n` the normal
/// deviates of `seed`, so the result keeps unit variance. `strength = 0` returns `z`.
pub fn vary(z: &[f32], seed: u64, strength: f32) -> Vec<f32> {
    let n = SplitMix64::new(seed).normals(z.len());
    let scale = 1.0 / (1.0 + strength * strength).sqrt();
    z.iter()
        .zip(n)
        .map(|(a, b)| (a + strength * b) * scale)
        .collect()
}

/// Spherical interpolation between two latents (`t = 0` gives `a`, `t = 1` gives `b`); it keeps
/// the norm a Gaussian latent has, so the faces in between stay as sharp as the ends.
/// Falls back to linear interpolation for (nearly) parallel vectors.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp of vectors of different lengths");
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = if na > 0.0 && nb > 0.0 {
        (dot / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let omega = cos.acos();
    let t = t as f64;
    let (wa, wb) = if omega.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * omega).sin() / omega.sin(),
            (t * omega).sin() / omega.sin(),
        )
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * *x as f64 + wb * *y as f64) as f32)
        .collect()
}

/// Linear interpolation (for condition vectors).
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "lerp of vectors of different lengths");
    a.iter().zip(b).map(|(x, y)| x + (y - x) * t).collect()
}

fn js(e: ModelError) -> JsError {
    JsError::new(&e.to_string())
}

fn same_len(what: &str, a: &[f32], b: &[f32]) -> Result<(), JsError> {
    if a.len() != b.len() {
        return Err(JsError::new(&format!(
            "{what}: vectors of {} and {} values",
            a.len(),
            b.len()
        )));
    }
    Ok(())
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

    pub fn latent_dim(&self) -> usize {
        self.inner.latent_dim()
    }

    pub fn num_tags(&self) -> usize {
        self.inner.num_tags()
    }

    /// Whether the tags change the face (false for an unconditional DCGAN).
    pub fn conditional(&self) -> bool {
        self.inner.conditional()
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

    /// The latent `z` of `seed` (`latent_dim` values).
    pub fn latent(&self, seed: u64) -> Vec<f32> {
        self.inner.latent(seed)
    }

    /// The condition vector (`num_tags` values, vocabulary order) of `seed` and `tags`.
    pub fn condition(&self, seed: u64, tags: &str) -> Result<Vec<f32>, JsError> {
        self.inner.condition(seed, tags).map_err(js)
    }

    /// RGBA pixels of the face for latent `z` and a real-valued condition vector `c`.
    pub fn generate_with(&self, z: &[f32], c: &[f32]) -> Result<Vec<u8>, JsError> {
        self.inner.generate_with(z, c).map_err(js)
    }
}

/// A variation of a latent: `strength` 0 keeps it, 1 mixes in as much noise (from `seed`) as it has.
#[wasm_bindgen(js_name = varyLatent)]
pub fn vary_latent(z: &[f32], seed: u64, strength: f32) -> Vec<f32> {
    vary(z, seed, strength)
}

/// Spherical interpolation of two latents at `t` in `[0, 1]`.
#[wasm_bindgen(js_name = slerpLatent)]
pub fn slerp_latent(a: &[f32], b: &[f32], t: f32) -> Result<Vec<f32>, JsError> {
    same_len("slerp", a, b)?;
    Ok(slerp(a, b, t))
}

/// Linear interpolation of two condition vectors at `t` in `[0, 1]`.
#[wasm_bindgen(js_name = lerpCondition)]
pub fn lerp_condition(a: &[f32], b: &[f32], t: f32) -> Result<Vec<f32>, JsError> {
    same_len("lerp", a, b)?;
    Ok(lerp(a, b, t))
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
            let weights = std::fs::read(format!("{dir}/generator.bpk")).unwrap();
            let f = Facade::load(&card, &weights).unwrap_or_else(|e| panic!("{dir}: {e}"));
            let a = f.generate(3, "blonde hair, blue eyes").unwrap();
            let b = f.generate(3, "black hair, red eyes").unwrap();
            assert_eq!(a.len(), f.card().resolution.pow(2) * 4);
            assert_eq!(a != b, f.conditional(), "{dir}");
        }
    }

    #[test]
    fn generate_with_latent_and_condition_equals_generate() {
        let f = shipped();
        let tags = "blonde hair, blue eyes";
        let z = f.latent(42);
        let c = f.condition(42, tags).unwrap();
        assert_eq!(z.len(), f.latent_dim());
        assert_eq!(c.iter().filter(|v| **v == 1.0).count(), 2);
        assert_eq!(
            f.generate_with(&z, &c).unwrap(),
            f.generate(42, tags).unwrap()
        );

        // A real-valued strength changes the face; the wrong lengths and NaN are errors.
        let mut weaker = c.clone();
        let i = f.card().vocab.index_of("blonde hair").unwrap();
        weaker[i] = 0.4;
        assert_ne!(
            f.generate_with(&z, &weaker).unwrap(),
            f.generate(42, tags).unwrap()
        );
        assert!(f.generate_with(&z[1..], &c).is_err());
        assert!(f.generate_with(&z, &c[1..]).is_err());
        let mut nan = c;
        nan[0] = f32::NAN;
        assert!(f.generate_with(&z, &nan).is_err());
    }

    #[test]
    fn vary_and_interpolate() {
        let a: Vec<f32> = SplitMix64::new(1).normals(64);
        let b: Vec<f32> = SplitMix64::new(2).normals(64);
        assert_eq!(vary(&a, 7, 0.0), a);
        let v = vary(&a, 7, 0.5);
        assert_ne!(v, a);
        assert_eq!(v, vary(&a, 7, 0.5), "variations are reproducible");
        let close = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-5);
        assert!(close(&slerp(&a, &b, 0.0), &a));
        assert!(close(&slerp(&a, &b, 1.0), &b));
        let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let mid = slerp(&a, &b, 0.5);
        assert!(
            norm(&mid) > 0.9 * norm(&a).min(norm(&b)),
            "slerp keeps the norm"
        );
        assert_eq!(lerp(&[0.0, 1.0], &[1.0, 1.0], 0.25), vec![0.25, 1.0]);
    }
}
