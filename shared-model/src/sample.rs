//! Seed + tags -> pixels, the base of the one pipeline both `trainer generate` and the page run
//! (the whole recipe, with strengths, variations and directions, is [`crate::face`]).
//!
//! For a seed `s`: a [`SplitMix64`] seeded with `s` yields `latent_dim` normal deviates (z), then
//! draws a tag for every exclusive group the request leaves open. Each face is generated on its
//! own (batch 1) so that a face does not depend on what else is drawn with it.

use burn::prelude::*;

use crate::card::LoadedModel;
use crate::vocab::parse_tags;
use crate::{GeneratorInput, ModelError, SplitMix64, StyleMix, TagVocab};

/// Everything that decides one face.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRequest {
    pub seed: u64,
    /// The full tag list used (asked tags plus those drawn for open groups).
    pub tags: Vec<String>,
    pub z: Vec<f32>,
    pub c: Vec<f32>,
    /// Added to the style (style-space directions); empty for none.
    pub style_offset: Vec<f32>,
    /// Truncation psi (1 = none).
    pub psi: f64,
    /// The other character of a fusion.
    pub fuse: Option<FuseRequest>,
}

/// The second character of a fused face: its latent and condition, and the first style layer
/// it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct FuseRequest {
    pub z: Vec<f32>,
    pub c: Vec<f32>,
    pub from_layer: usize,
}

impl FaceRequest {
    pub fn new(
        vocab: &TagVocab,
        latent_dim: usize,
        seed: u64,
        tags: &str,
    ) -> Result<Self, ModelError> {
        Self::for_tags(vocab, latent_dim, seed, &parse_tags(tags))
    }

    /// [`FaceRequest::new`] for tags already in canonical spelling.
    pub fn for_tags(
        vocab: &TagVocab,
        latent_dim: usize,
        seed: u64,
        asked: &[String],
    ) -> Result<Self, ModelError> {
        let mut rng = SplitMix64::new(seed);
        let z = rng.normals(latent_dim);
        let tags = vocab.resolve(asked, &mut rng)?;
        let c = vocab.encode(&tags)?;
        Ok(Self {
            seed,
            tags,
            z,
            c,
            style_offset: Vec::new(),
            psi: 1.0,
            fuse: None,
        })
    }
}

/// `[B, 3, H, W]` images in `[-1, 1]` -> one RGBA byte buffer (`H*W*4`) per image.
pub fn to_rgba(images: Tensor<4>) -> Vec<Vec<u8>> {
    let dims = images.dims();
    rgba_from_data(images.into_data(), dims)
}

/// [`to_rgba`] for data already read back (e.g. with `into_data_async` on WebGPU).
pub fn rgba_from_data(data: TensorData, [b, ch, h, w]: [usize; 4]) -> Vec<Vec<u8>> {
    assert_eq!(ch, 3, "expected RGB images");
    let data = data.convert::<f32>();
    let values = data.as_slice::<f32>().expect("f32 data");
    (0..b)
        .map(|i| {
            let img = &values[i * 3 * h * w..(i + 1) * 3 * h * w];
            let mut out = Vec::with_capacity(h * w * 4);
            for p in 0..h * w {
                for k in 0..3 {
                    out.push(to_u8(img[k * h * w + p]));
                }
                out.push(255);
            }
            out
        })
        .collect()
}

/// Maps `[-1, 1]` to `0..=255` with rounding.
pub fn to_u8(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

impl LoadedModel {
    /// One face: RGBA bytes (`resolution^2 * 4`) and the tags it was drawn with.
    /// [`LoadedModel::draw`] of a plain seed + tags spec.
    pub fn generate(&self, seed: u64, tags: &str) -> Result<(Vec<u8>, Vec<String>), ModelError> {
        let face = self.draw(&crate::face::FaceSpec::new(seed, tags))?;
        Ok((face.rgba, face.inputs.tags))
    }

    /// Runs the generator for a prepared request.
    pub fn generate_request(&self, req: &FaceRequest) -> Vec<u8> {
        to_rgba(self.forward_request(req)).remove(0)
    }

    /// The generator's `[1, 3, H, W]` output for a request, not read back yet (WebGPU reads it
    /// back asynchronously, then calls [`rgba_from_data`]).
    pub fn forward_request(&self, req: &FaceRequest) -> Tensor<4> {
        let row = |v: &[f32]| {
            Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &self.device)
        };
        // The face's seed also draws its noise maps (families that have them).
        let mut input = GeneratorInput::new(row(&req.z), row(&req.c))
            .with_noise_seeds(vec![req.seed])
            .with_truncation(req.psi);
        if !req.style_offset.is_empty() {
            input = input.with_style_offset(row(&req.style_offset));
        }
        if let Some(f) = &req.fuse {
            input = input.with_mix(StyleMix {
                z: row(&f.z),
                c: row(&f.c),
                from_layer: f.from_layer,
            });
        }
        self.generator.forward(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_u8_maps_range_ends() {
        assert_eq!(to_u8(-1.0), 0);
        assert_eq!(to_u8(1.0), 255);
        assert_eq!(to_u8(0.0), 128);
        assert_eq!(to_u8(5.0), 255);
    }

    #[test]
    fn same_seed_same_request() {
        let sets = [
            vec!["a hair".to_string(), "b eyes".to_string()],
            vec!["c hair".into(), "d eyes".into()],
        ];
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let a = FaceRequest::new(&vocab, 16, 42, "a hair").unwrap();
        let b = FaceRequest::new(&vocab, 16, 42, "a hair").unwrap();
        let c = FaceRequest::new(&vocab, 16, 43, "a hair").unwrap();
        assert_eq!(a, b);
        assert_ne!(a.z, c.z);
        assert!(FaceRequest::new(&vocab, 16, 1, "zebra").is_err());
    }
}
