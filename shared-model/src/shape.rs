//! The shape encoder: a small CNN whose features see the drawing (pose, face shape, hair cut,
//! line work) and not the colours. `trainer eval` measures FD, precision/recall and
//! within-tag-set diversity in its features next to the tagger's: the tagger was trained to
//! tell hair and eye colours apart, so in its features two faces with the same tags look alike
//! whatever they show, and near-copies of one face score as well as different characters.
//!
//! It is trained self-supervised (`trainer shape train`, SimCLR-style NT-Xent): two randomly
//! augmented views of one face must be closer to each other than to any other face of the
//! batch. The augmentations change everything a "same drawing" should not depend on: colours
//! (channel permutation, hue rotation, saturation, brightness, contrast, grayscale), framing
//! (random resized crops) and mirroring.
//!
//! **Colour blindness by construction and by training.** The network reads one channel, the
//! luminance of the image ([`luma`]): hue and saturation never reach it. Luminance alone still
//! tells a yellow from a blue hair (BT.601 weighs green six times blue), so training feeds it
//! the luminance of a *recoloured* image: the brightness pattern of each colour region changes
//! from view to view, and the loss teaches the network to ignore it. Inference reads the
//! luminance of the image as it is.
//!
//! The card (`format: "kyara-shape-encoder"`) carries the config, the held-out split (the
//! tagger's rule, so the faces `eval` holds out were never seen by either network), the
//! training settings and the SHA-256 of the weights, which loading always checks.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use kernels::act::leaky_relu;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::arch::limits;
use crate::card::load_weights;
use crate::conv_stack::{self, ConvBn, DownStage, StackShape};
use crate::integrity::{check_sha256, check_sha256_field};
use crate::tagger::{HoldoutSplit, mean_max_pool};

pub const SHAPE_FORMAT: &str = "kyara-shape-encoder";
pub const SHAPE_VERSION: u32 = 1;
/// File name of the card inside a shape encoder's folder.
pub const SHAPE_CARD: &str = "shape.json";

/// Shape encoder architecture.
#[derive(Config, Debug)]
pub struct ShapeEncoderConfig {
    /// Input side in pixels.
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels after the stem; doubled per stage up to `max_channels`.
    #[config(default = 32)]
    pub channels: usize,
    #[config(default = 64)]
    pub max_channels: usize,
    /// Side of the last feature map before global pooling.
    #[config(default = 4)]
    pub final_size: usize,
    /// Width of the representation returned by [`ShapeEncoder::features`] (what `eval` uses).
    #[config(default = 128)]
    pub feature_dim: usize,
    /// Width of the projection head's output, where the contrastive loss is computed.
    #[config(default = 64)]
    pub projection_dim: usize,
    #[config(default = 0.2)]
    pub leaky_slope: f64,
}

/// The shape encoder: a 4x4 stride-2 stem on the luminance, stages of (stride-2 conv, conv),
/// global mean+max pooling, a linear representation layer and a two-layer projection head
/// (used by the training loss only).
#[derive(Module, Debug)]
pub struct ShapeEncoder {
    stem: ConvBn,
    stages: Vec<DownStage>,
    feature: Linear,
    proj_hidden: Linear,
    proj_out: Linear,
    slope: f64,
}

impl ShapeEncoderConfig {
    fn stack(&self) -> StackShape<'_> {
        StackShape {
            what: "shape encoder",
            in_channels: 1,
            resolution: self.resolution,
            channels: self.channels,
            max_channels: self.max_channels,
            final_size: self.final_size,
        }
    }

    /// Checks the config without building anything.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.channels == 0 || self.feature_dim == 0 || self.projection_dim == 0 {
            return Err(ModelError::BadConfig(
                "shape encoder sizes must be positive".into(),
            ));
        }
        let sizes = [
            ("feature_dim", self.feature_dim, limits::MAX_FEATURES),
            ("projection_dim", self.projection_dim, limits::MAX_FEATURES),
        ];
        let (f, p) = (self.feature_dim as u64, self.projection_dim as u64);
        // The representation layer and the two-layer projection head, with their biases.
        self.stack().validate(&sizes, |c_last| {
            (2 * c_last + 1) * f + (f + 1) * f + (f + 1) * p
        })
    }

    pub fn try_init(&self, device: &Device) -> Result<ShapeEncoder, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<ShapeEncoder, ModelError> {
        self.validate()?;
        let (stem, stages, c_last) = self.stack().build(device)?;
        Ok(ShapeEncoder {
            stem,
            stages,
            feature: LinearConfig::new(2 * c_last, self.feature_dim).init(device),
            proj_hidden: LinearConfig::new(self.feature_dim, self.feature_dim).init(device),
            proj_out: LinearConfig::new(self.feature_dim, self.projection_dim).init(device),
            slope: self.leaky_slope,
        })
    }

    /// Builds the encoder. Panics on an invalid config; use [`Self::try_init`] for untrusted
    /// ones.
    pub fn init(&self, device: &Device) -> ShapeEncoder {
        self.try_init(device).expect("invalid shape encoder config")
    }
}

impl ShapeEncoder {
    /// The representation `eval` measures in.
    /// `x`: `[B, 1, R, R]` luminance in `[-1, 1]` (see [`luma_input`]) -> `[B, feature_dim]`
    /// (the linear layer's output, no activation).
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let h = conv_stack::forward(&self.stem, &self.stages, x, self.slope);
        self.feature.forward(mean_max_pool(h)) // [B, F]
    }

    /// The projection head. `h`: `[B, feature_dim]` -> `[B, projection_dim]` (not normalised;
    /// the contrastive loss compares directions).
    pub fn project(&self, h: Tensor<2>) -> Tensor<2> {
        let h = leaky_relu(
            self.proj_hidden.forward(leaky_relu(h, self.slope)),
            self.slope,
        );
        self.proj_out.forward(h)
    }

    /// `x`: `[B, 1, R, R]` luminance in `[-1, 1]` -> projections `[B, projection_dim]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.project(self.features(x))
    }
}

/// BT.601 luminance of an RGB colour (any scale; the result is on the same scale).
pub fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Features of HWC RGB images (`res`-sided) from `encoder`, in batches of `batch`:
/// `images.len() * feature_dim` values, row-major.
pub fn encoder_features(
    encoder: &ShapeEncoder,
    res: usize,
    images: &[&[u8]],
    batch: usize,
    device: &Device,
) -> Vec<f32> {
    let mut out = Vec::new();
    for chunk in images.chunks(batch.max(1)) {
        let h = encoder.features(luma_input(chunk, res, device));
        out.extend(
            h.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default(),
        );
    }
    out
}

/// HWC RGB bytes (`res * res * 3` each) -> the encoder's input `[B, 1, res, res]`: luminance
/// mapped from `[0, 255]` to `[-1, 1]`.
pub fn luma_input(images: &[&[u8]], res: usize, device: &Device) -> Tensor<4> {
    let mut v = Vec::with_capacity(images.len() * res * res);
    for img in images {
        for p in img.chunks_exact(3).take(res * res) {
            let y = luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            v.push(y / 127.5 - 1.0);
        }
    }
    Tensor::from_data(TensorData::new(v, [images.len(), 1, res, res]), device)
}

/// What the encoder was trained on and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeTraining {
    pub data: String,
    pub steps: u64,
    /// Faces per step (each seen as two views).
    pub batch_size: usize,
    pub seed: u64,
    pub train_images: usize,
    pub seconds: f64,
    pub learning_rate: f64,
    /// NT-Xent temperature.
    pub temperature: f64,
    /// Mean loss over the last logged steps.
    pub final_loss: f64,
    pub augmentation: String,
}

/// Measured on the held-out faces at the end of training: how often a recoloured, shifted and
/// flipped copy of a face finds the face itself as its nearest neighbour among all held-out
/// faces (scaled Euclidean distance in [`ShapeEncoder::features`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeHeldout {
    pub images: usize,
    pub copy_top1: f64,
    pub copy_top5: f64,
}

/// The shape encoder's card: `shape.json` next to `shape.bpk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapeCard {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub resolution: usize,
    /// File name of the weights, relative to the card.
    pub weights: String,
    /// SHA-256 of the weights file; required, checked by [`LoadedShape::from_bytes`].
    pub weights_sha256: String,
    pub encoder: ShapeEncoderConfig,
    pub split: HoldoutSplit,
    pub training: ShapeTraining,
    pub heldout: ShapeHeldout,
}

impl ShapeCard {
    /// A card for `weights` (its checksum is computed here).
    pub fn new(
        name: &str,
        encoder: ShapeEncoderConfig,
        split: HoldoutSplit,
        training: ShapeTraining,
        heldout: ShapeHeldout,
        weights: &[u8],
    ) -> Self {
        Self {
            format: SHAPE_FORMAT.into(),
            version: SHAPE_VERSION,
            name: name.into(),
            resolution: encoder.resolution,
            weights: "shape.bpk".into(),
            weights_sha256: crate::integrity::sha256_hex(weights),
            encoder,
            split,
            training,
            heldout,
        }
    }

    /// Parses and checks a shape encoder card from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::BadCard(format!("not JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(SHAPE_FORMAT) => {}
            Some(other) => {
                return Err(ModelError::BadCard(format!(
                    "this is a '{other}' card, not a shape encoder card (\"format\": \
                     \"{SHAPE_FORMAT}\")"
                )));
            }
            None => {
                return Err(ModelError::BadCard(format!(
                    "missing \"format\": \"{SHAPE_FORMAT}\" (is this a kyara shape encoder card?)"
                )));
            }
        }
        let card: ShapeCard =
            serde_json::from_value(value).map_err(|e| ModelError::BadCard(e.to_string()))?;
        if card.version > SHAPE_VERSION {
            return Err(ModelError::BadCard(format!(
                "shape encoder card version {} is newer than this kyara understands \
                 ({SHAPE_VERSION})",
                card.version
            )));
        }
        check_sha256_field("weights_sha256", Some(&card.weights_sha256))
            .map_err(ModelError::BadCard)?;
        if card.encoder.resolution != card.resolution {
            return Err(ModelError::BadCard(
                "card resolution and encoder resolution differ".into(),
            ));
        }
        if card.split.percent >= 100 {
            return Err(ModelError::BadCard(
                "held-out percentage must be below 100".into(),
            ));
        }
        if card.weights.is_empty() || card.weights.contains(['/', '\\']) || card.weights == ".." {
            return Err(ModelError::BadCard(format!(
                "weights must be a file name next to the card, not '{}'",
                card.weights
            )));
        }
        card.encoder.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("card serialises")
    }
}

/// A shape encoder ready to read faces: its card plus weights, in inference mode.
#[derive(Debug)]
pub struct LoadedShape {
    pub card: ShapeCard,
    pub encoder: ShapeEncoder,
    pub device: Device,
}

impl LoadedShape {
    /// Checks `weights` (burnpack bytes) against the card's SHA-256, builds the encoder the card
    /// describes and loads them into it. A flipped bit, a truncated file or another network's
    /// weights are an error, never a panic.
    pub fn from_bytes(
        card: ShapeCard,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if weights.is_empty() {
            return Err(ModelError::BadWeights("the weights file is empty".into()));
        }
        check_sha256(&card.weights, &weights, &card.weights_sha256)
            .map_err(ModelError::BadWeights)?;
        let encoder = card.encoder.try_init(device)?;
        let encoder = load_weights(encoder, weights)?;
        Ok(Self {
            card,
            encoder,
            device: device.clone(),
        })
    }

    /// Features of HWC RGB images at the card's resolution: `images.len() * feature_dim`
    /// values, row-major, computed in batches of `batch`.
    pub fn features(&self, images: &[&[u8]], batch: usize) -> Vec<f32> {
        encoder_features(
            &self.encoder,
            self.card.resolution,
            images,
            batch,
            &self.device,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ShapeEncoderConfig {
        ShapeEncoderConfig::new()
            .with_resolution(16)
            .with_channels(4)
            .with_max_channels(8)
            .with_final_size(2)
            .with_feature_dim(6)
            .with_projection_dim(5)
    }

    #[test]
    fn shapes_of_every_output() {
        let device = Device::flex();
        let e = tiny().init(&device);
        let x = Tensor::<4>::zeros([3, 1, 16, 16], &device);
        assert_eq!(e.features(x.clone()).dims(), [3, 6]);
        assert_eq!(e.forward(x).dims(), [3, 5]);
        assert!(tiny().with_final_size(3).validate().is_err());
        assert!(tiny().with_max_channels(2).validate().is_err());
    }

    #[test]
    fn luma_input_ignores_nothing_but_hue_weights() {
        let device = Device::flex();
        // A white and a black pixel map to 1 and -1; pure green is brighter than pure blue.
        let img = [255u8, 255, 255, 0, 0, 0, 0, 255, 0, 0, 0, 255];
        let x = luma_input(&[&img], 2, &device)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] + 1.0).abs() < 1e-5,
            "{x:?}"
        );
        assert!(x[2] > x[3], "{x:?}");
    }

    #[test]
    fn cards_round_trip_and_a_flipped_byte_is_refused() {
        let device = Device::flex();
        let weights = crate::card::weights_bytes(tiny().init(&device)).unwrap();
        let card = ShapeCard::new(
            "s",
            tiny(),
            HoldoutSplit::new(10),
            ShapeTraining::default(),
            ShapeHeldout::default(),
            &weights,
        );
        let back = ShapeCard::from_json(&card.to_json()).unwrap();
        assert_eq!(back.weights_sha256, card.weights_sha256);
        let loaded = LoadedShape::from_bytes(back.clone(), weights.clone(), &device).unwrap();
        let img = vec![100u8; 16 * 16 * 3];
        assert_eq!(loaded.features(&[&img, &img, &img], 2).len(), 3 * 6);

        // A flipped byte, a cut file, an empty file: errors with a message.
        let mut flipped = weights.clone();
        flipped[40] ^= 1;
        let e = LoadedShape::from_bytes(back.clone(), flipped, &device).unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        let half = weights[..weights.len() / 2].to_vec();
        assert!(LoadedShape::from_bytes(back.clone(), half, &device).is_err());
        let e = LoadedShape::from_bytes(back.clone(), Vec::new(), &device).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        // Weights of another architecture with a matching checksum still do not load.
        let other = crate::card::weights_bytes(tiny().with_channels(8).init(&device)).unwrap();
        let mut wrong = back.clone();
        wrong.weights_sha256 = crate::integrity::sha256_hex(&other);
        assert!(LoadedShape::from_bytes(wrong, other, &device).is_err());

        // Bad cards.
        let e = ShapeCard::from_json(r#"{"format": "kyara-tagger", "version": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a shape encoder card"), "{e}");
        assert!(ShapeCard::from_json("{").is_err());
        let mut no_sum: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        no_sum.as_object_mut().unwrap().remove("weights_sha256");
        assert!(ShapeCard::from_json(&no_sum.to_string()).is_err());
        let mut bad_sum = card.clone();
        bad_sum.weights_sha256 = "abc".into();
        assert!(ShapeCard::from_json(&bad_sum.to_json()).is_err());
        let mut escape = card.clone();
        escape.weights = "../x.bpk".into();
        assert!(ShapeCard::from_json(&escape.to_json()).is_err());
        let mut res = card;
        res.resolution = 32;
        assert!(ShapeCard::from_json(&res.to_json()).is_err());
    }
}
