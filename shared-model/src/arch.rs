//! The architecture families behind one interface: a generator spec (what a run config and a
//! model card carry) builds an [`AnyGenerator`]; a discriminator spec builds an
//! [`AnyDiscriminator`]. The trainer, the exporter and the page only see these.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::cgan::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
use crate::dcgan::{
    DcganDiscriminator, DcganDiscriminatorConfig, DcganGenerator, DcganGeneratorConfig,
};
use crate::weights::{WeightsDtype, load_weights, weights_bytes, weights_bytes_as};

/// Name of the conditional residual family in cards and configs.
pub const ARCH_RESNET: &str = "resnet-cgan";
/// Name of the DCGAN family.
pub const ARCH_DCGAN: &str = "dcgan";

/// A generator architecture and its config. Serialised with an `"arch"` field beside the
/// config's own fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "arch")]
pub enum GeneratorSpec {
    #[serde(rename = "resnet-cgan")]
    Resnet(GeneratorConfig),
    #[serde(rename = "dcgan")]
    Dcgan(DcganGeneratorConfig),
}

/// A discriminator architecture and its config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "arch")]
pub enum DiscriminatorSpec {
    #[serde(rename = "resnet-cgan")]
    Resnet(DiscriminatorConfig),
    #[serde(rename = "dcgan")]
    Dcgan(DcganDiscriminatorConfig),
}

impl GeneratorSpec {
    pub fn arch(&self) -> &'static str {
        match self {
            Self::Resnet(_) => ARCH_RESNET,
            Self::Dcgan(_) => ARCH_DCGAN,
        }
    }

    pub fn latent_dim(&self) -> usize {
        match self {
            Self::Resnet(c) => c.latent_dim,
            Self::Dcgan(c) => c.latent_dim,
        }
    }

    pub fn num_tags(&self) -> usize {
        match self {
            Self::Resnet(c) => c.num_tags,
            Self::Dcgan(c) => c.num_tags,
        }
    }

    pub fn resolution(&self) -> usize {
        match self {
            Self::Resnet(c) => c.resolution,
            Self::Dcgan(c) => c.resolution,
        }
    }

    /// Whether the generator reads the tag vector at all.
    pub fn conditional(&self) -> bool {
        match self {
            Self::Resnet(_) => true,
            Self::Dcgan(c) => c.conditional,
        }
    }

    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            Self::Resnet(c) => c.validate(),
            Self::Dcgan(c) => c.validate(),
        }
    }

    pub fn try_init(&self, device: &Device) -> Result<AnyGenerator, ModelError> {
        Ok(match self {
            Self::Resnet(c) => AnyGenerator::Resnet(c.try_init(device)?),
            Self::Dcgan(c) => AnyGenerator::Dcgan(c.try_init(device)?),
        })
    }

    /// Parses the config of the named architecture from JSON (the model card keeps the name and
    /// the config in separate fields).
    pub fn from_arch_json(arch: &str, config: serde_json::Value) -> Result<Self, ModelError> {
        let bad = |e: serde_json::Error| ModelError::BadCard(format!("generator config: {e}"));
        match arch {
            ARCH_RESNET => Ok(Self::Resnet(serde_json::from_value(config).map_err(bad)?)),
            ARCH_DCGAN => Ok(Self::Dcgan(serde_json::from_value(config).map_err(bad)?)),
            other => Err(ModelError::BadCard(format!(
                "unknown architecture '{other}' (known: {ARCH_RESNET}, {ARCH_DCGAN})"
            ))),
        }
    }

    /// The config alone, as JSON (without the arch name).
    pub fn config_json(&self) -> serde_json::Value {
        match self {
            Self::Resnet(c) => serde_json::to_value(c),
            Self::Dcgan(c) => serde_json::to_value(c),
        }
        .expect("configs serialise")
    }
}

impl DiscriminatorSpec {
    pub fn arch(&self) -> &'static str {
        match self {
            Self::Resnet(_) => ARCH_RESNET,
            Self::Dcgan(_) => ARCH_DCGAN,
        }
    }

    pub fn conditional(&self) -> bool {
        match self {
            Self::Resnet(_) => true,
            Self::Dcgan(c) => c.conditional,
        }
    }

    pub fn feature_dim(&self) -> Result<usize, ModelError> {
        match self {
            Self::Resnet(c) => c.feature_dim(),
            Self::Dcgan(c) => c.feature_dim(),
        }
    }

    pub fn try_init(&self, device: &Device) -> Result<AnyDiscriminator, ModelError> {
        Ok(match self {
            Self::Resnet(c) => AnyDiscriminator::Resnet(c.try_init(device)?),
            Self::Dcgan(c) => AnyDiscriminator::Dcgan(c.try_init(device)?),
        })
    }
}

/// A generator of any family.
// One value per model, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyGenerator {
    Resnet(Generator),
    Dcgan(DcganGenerator),
}

impl AnyGenerator {
    /// - `z`: `[B, latent_dim]` latent vectors
    /// - `c`: `[B, num_tags]` tag condition (real values allowed; ignored if unconditional)
    /// - returns `[B, 3, resolution, resolution]` RGB in `[-1, 1]`
    pub fn forward(&self, z: Tensor<2>, c: Tensor<2>) -> Tensor<4> {
        match self {
            Self::Resnet(g) => g.forward(z, c),
            Self::Dcgan(g) => g.forward(z, c),
        }
    }
}

impl AnyGenerator {
    /// Loads burnpack bytes saved by [`Self::to_bytes`] or [`Self::to_bytes_as`] (f16 tensors
    /// are widened to f32, so the generator always computes in f32). Files hold the family's own module
    /// (tensor names without an enum-variant prefix), so cards and weights from before the
    /// families existed load unchanged, and the card's `arch` says which family to build.
    pub fn load_bytes(self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        Ok(match self {
            Self::Resnet(g) => Self::Resnet(load_weights(g, bytes)?),
            Self::Dcgan(g) => Self::Dcgan(load_weights(g, bytes)?),
        })
    }

    /// The parameters as float32 burnpack bytes (see [`Self::load_bytes`]).
    pub fn to_bytes(self) -> Result<Vec<u8>, ModelError> {
        self.to_bytes_as(WeightsDtype::F32)
    }

    /// The parameters as burnpack bytes with float weights stored as `dtype` (see
    /// [`crate::weights`]); [`Self::load_bytes`] reads either.
    pub fn to_bytes_as(self, dtype: WeightsDtype) -> Result<Vec<u8>, ModelError> {
        match self {
            Self::Resnet(g) => weights_bytes_as(g, dtype),
            Self::Dcgan(g) => weights_bytes_as(g, dtype),
        }
    }
}

impl AnyDiscriminator {
    /// Loads burnpack bytes saved by [`Self::to_bytes`] (no enum-variant prefix in the names).
    pub fn load_bytes(self, bytes: Vec<u8>) -> Result<Self, ModelError> {
        Ok(match self {
            Self::Resnet(d) => Self::Resnet(load_weights(d, bytes)?),
            Self::Dcgan(d) => Self::Dcgan(load_weights(d, bytes)?),
        })
    }

    pub fn to_bytes(self) -> Result<Vec<u8>, ModelError> {
        match self {
            Self::Resnet(d) => weights_bytes(d),
            Self::Dcgan(d) => weights_bytes(d),
        }
    }
}

/// A discriminator (critic) of any family, split as features + tag-projection score.
// One value per model, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum AnyDiscriminator {
    Resnet(Discriminator),
    Dcgan(DcganDiscriminator),
}

impl AnyDiscriminator {
    /// `x`: `[B, 3, R, R]` -> features `[B, F]`.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        match self {
            Self::Resnet(d) => d.features(x),
            Self::Dcgan(d) => d.features(x),
        }
    }

    /// `h`: `[B, F]`, `c`: `[B, num_tags]` -> scores `[B]`.
    pub fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
        match self {
            Self::Resnet(d) => d.score(h, c),
            Self::Dcgan(d) => d.score(h, c),
        }
    }

    /// `x`: `[B, 3, R, R]`, `c`: `[B, num_tags]` -> scores `[B]`.
    pub fn forward(&self, x: Tensor<4>, c: Tensor<2>) -> Tensor<1> {
        self.score(self.features(x), c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip_through_json_with_their_arch() {
        let specs = [
            GeneratorSpec::Resnet(GeneratorConfig::new(4)),
            GeneratorSpec::Dcgan(DcganGeneratorConfig::new(4).with_conditional(false)),
        ];
        for spec in specs {
            let json = serde_json::to_value(&spec).unwrap();
            assert_eq!(json["arch"], spec.arch());
            let back: GeneratorSpec = serde_json::from_value(json).unwrap();
            assert_eq!(back.arch(), spec.arch());
            assert_eq!(back.conditional(), spec.conditional());
            let again = GeneratorSpec::from_arch_json(spec.arch(), spec.config_json()).unwrap();
            assert_eq!(
                serde_json::to_value(&again).unwrap(),
                serde_json::to_value(&spec).unwrap()
            );
        }
        let d = DiscriminatorSpec::Dcgan(DcganDiscriminatorConfig::new(4));
        let back: DiscriminatorSpec =
            serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back.arch(), ARCH_DCGAN);
        assert!(GeneratorSpec::from_arch_json("stylegan9", serde_json::json!({})).is_err());
    }

    #[test]
    fn any_modules_dispatch_to_their_family() {
        let device = Device::flex();
        for spec in [
            GeneratorSpec::Resnet(
                GeneratorConfig::new(2)
                    .with_latent_dim(4)
                    .with_resolution(16)
                    .with_init_size(8)
                    .with_channels(4)
                    .with_min_channels(4),
            ),
            GeneratorSpec::Dcgan(
                DcganGeneratorConfig::new(2)
                    .with_latent_dim(4)
                    .with_resolution(16)
                    .with_channels(4),
            ),
        ] {
            let g = spec.try_init(&device).unwrap();
            let out = g.forward(
                Tensor::zeros([2, 4], &device),
                Tensor::ones([2, 2], &device),
            );
            assert_eq!(out.dims(), [2, 3, 16, 16], "{}", spec.arch());
        }
    }
}
