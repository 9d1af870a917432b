//! The architecture families, declared once.
//!
//! A family is one file in `arch/` implementing [`Family`] (its name, its generator and critic
//! configs and modules, the sizes every caller needs, and its defaults for a tag count and a
//! resolution) plus one line in the [`families!`] list at the bottom of this file. That list
//! produces everything else: [`GeneratorSpec`] and [`DiscriminatorSpec`] (what run configs and
//! model cards carry, serialised with an `"arch"` field), the modules [`AnyGenerator`] and
//! [`AnyDiscriminator`] (enums, as Burn's `Module` derive needs), every dispatch between them, the
//! list of names [`NAMES`], the one-line descriptions [`ABOUT`], and card parsing. The trainer,
//! the exporter, the benchmarks, the tests and the page only see these.
//!
//! Callers never match on a family: a new family needs no edit outside its file and its line.

use std::fmt::Debug;

use burn::module::Module;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ModelError;
use crate::weights::{WeightsDtype, load_weights, weights_bytes, weights_bytes_as};

/// What every caller needs to know about a generator without knowing its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorSizes {
    /// Length of the latent vector `z` a seed turns into.
    pub latent_dim: usize,
    /// Length of the tag-condition vector `c` (the vocabulary size).
    pub num_tags: usize,
    /// Side of the square RGB output in pixels.
    pub resolution: usize,
    /// Whether the generator reads `c` at all.
    pub conditional: bool,
    /// Style inputs of the synthesis network ([`GeneratorInput::mix`] picks a crossover among
    /// them); 0 for families without styles.
    pub styles: usize,
    /// Length of the style vector `w` (0 without styles).
    pub style_dim: usize,
}

/// One batch of generator inputs. Built with [`GeneratorInput::new`]; families that need more
/// than `(z, c)` (per-seed noise maps, a truncation towards a mean style, style mixing) read the
/// other fields, which the rest ignore.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GeneratorInput {
    /// `[B, latent_dim]` latent vectors.
    pub z: Tensor<2>,
    /// `[B, num_tags]` tag condition (multi-hot; real values allowed; ignored if unconditional).
    pub c: Tensor<2>,
    /// One seed per image for the noise maps of families that have them (the face pipeline
    /// passes the face's seed). Without them, a hash of each latent picks its noise.
    pub noise_seeds: Option<Vec<u64>>,
    /// Truncation psi towards the mean style of each image's tags (1 = none).
    pub truncation: f64,
    /// Styles of the layers from a crossover on taken from other latents and tags.
    pub mix: Option<StyleMix>,
    /// `[B, style_dim]` added to every style after truncation (steps along style-space
    /// directions).
    pub style_offset: Option<Tensor<2>>,
}

/// Style mixing: layers `from_layer..` (of [`GeneratorSizes::styles`]) take the styles of `z`
/// with tags `c` (both `[B, _]`, as the input's).
#[derive(Debug, Clone)]
pub struct StyleMix {
    pub z: Tensor<2>,
    pub c: Tensor<2>,
    pub from_layer: usize,
}

impl GeneratorInput {
    pub fn new(z: Tensor<2>, c: Tensor<2>) -> Self {
        Self {
            z,
            c,
            noise_seeds: None,
            truncation: 1.0,
            mix: None,
            style_offset: None,
        }
    }

    pub fn with_style_offset(mut self, offset: Tensor<2>) -> Self {
        self.style_offset = Some(offset);
        self
    }

    pub fn with_noise_seeds(mut self, seeds: Vec<u64>) -> Self {
        self.noise_seeds = Some(seeds);
        self
    }

    pub fn with_truncation(mut self, psi: f64) -> Self {
        self.truncation = psi;
        self
    }

    pub fn with_mix(mut self, mix: StyleMix) -> Self {
        self.mix = Some(mix);
        self
    }

    /// Batch size.
    pub fn batch(&self) -> usize {
        self.z.dims()[0]
    }
}

/// A generator module of some family.
pub trait GeneratorModule {
    /// `input` -> `[B, 3, resolution, resolution]` RGB in `[-1, 1]`.
    fn generate(&self, input: GeneratorInput) -> Tensor<4>;

    /// The styles `w` (`[B, style_dim]`, truncated, offset) of `input`, for families that have
    /// them.
    fn style(&self, _input: &GeneratorInput) -> Option<Tensor<2>> {
        None
    }

    /// The weights of every style affine layer, each `[style_dim, channels]` as applied (gains
    /// included): what closed-form factorisation (SeFa) decomposes. Empty without styles.
    fn style_weights(&self) -> Vec<Tensor<2>> {
        Vec::new()
    }
}

/// A critic module of some family, split as features + tag-projection score, so the trainer can
/// score one image batch against its true and its wrong tags from one feature pass.
///
/// The contract allows features that are **not per sample**: a critic may mix statistics of the
/// whole batch into every sample's features (StyleGAN2's minibatch standard deviation). Callers
/// therefore pass whole batches (never split one batch into pieces and compare), and gradient
/// penalties differentiate the batch as a whole (see the trainer's `gradient_penalty`).
pub trait DiscriminatorModule {
    /// `x`: `[B, 3, R, R]` -> features `[B, F]`.
    fn features(&self, x: Tensor<4>) -> Tensor<2>;
    /// `h`: `[B, F]`, `c`: `[B, num_tags]` -> scores `[B]`.
    fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1>;
}

/// The knobs `trainer train` offers for every family; a family maps them onto its configs
/// ([`Family::configure`]) and refuses those it has no use for, with a message saying why.
/// Anything else in a family's configs is set by name with `set_generator` / `set_discriminator`
/// (`trainer train --g KEY=VALUE`, `--d KEY=VALUE`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FamilyOptions {
    pub latent_dim: Option<usize>,
    pub g_channels: Option<usize>,
    pub g_blocks: Option<usize>,
    pub d_channels: Option<usize>,
    /// Ignore the tags (generator and critic).
    pub unconditional: bool,
    /// `(field, value)` overrides of the generator config, applied after the knobs above.
    pub set_generator: Vec<(String, String)>,
    /// `(field, value)` overrides of the critic config.
    pub set_discriminator: Vec<(String, String)>,
}

/// A config type a family can use: serialisable (run configs and model cards carry it) and
/// cloneable.
pub trait FamilyConfig: Serialize + DeserializeOwned + Clone + Debug {}
impl<T: Serialize + DeserializeOwned + Clone + Debug> FamilyConfig for T {}

/// An architecture family: a generator and its critic.
pub trait Family {
    /// The name in `--arch`, run configs and model cards (`"arch"`). Never change it: cards
    /// already written carry it.
    const NAME: &'static str;
    /// One line for `--help`: what the generator and the critic are.
    const ABOUT: &'static str;

    type GeneratorConfig: FamilyConfig;
    type DiscriminatorConfig: FamilyConfig;
    /// Fields added to the generator config after cards and runs were written, each with the
    /// value (JSON text) that those older files were made with; a config that lacks one reads
    /// it. Append; never remove.
    const GENERATOR_ADDED: &'static [(&'static str, &'static str)] = &[];
    /// The same for the critic config.
    const DISCRIMINATOR_ADDED: &'static [(&'static str, &'static str)] = &[];
    type Generator: Module + GeneratorModule + Debug;
    type Discriminator: Module + DiscriminatorModule + Debug;

    fn generator_sizes(config: &Self::GeneratorConfig) -> GeneratorSizes;
    /// Checks a generator config (from a card, a run or the CLI) before anything is allocated.
    fn validate_generator(config: &Self::GeneratorConfig) -> Result<(), ModelError>;
    fn init_generator(
        config: &Self::GeneratorConfig,
        device: &Device,
    ) -> Result<Self::Generator, ModelError>;

    /// Whether the critic reads the tags.
    fn discriminator_conditional(config: &Self::DiscriminatorConfig) -> bool;
    /// Length `F` of the critic's features.
    fn feature_dim(config: &Self::DiscriminatorConfig) -> Result<usize, ModelError>;
    fn init_discriminator(
        config: &Self::DiscriminatorConfig,
        device: &Device,
    ) -> Result<Self::Discriminator, ModelError>;

    /// The family's configs for a data set of `num_tags` tags at `resolution` pixels: its
    /// defaults, with the common knobs of `options` applied (not the by-name overrides, which
    /// [`configure`] applies for every family alike).
    fn configure(
        num_tags: usize,
        resolution: usize,
        options: &FamilyOptions,
    ) -> Result<(Self::GeneratorConfig, Self::DiscriminatorConfig), ModelError>;
}

/// Upper bounds of a network's sizes. Cards come from other sites (the widget loads models
/// they host) and configs from disk or the command line: a size beyond these is an error before
/// anything is allocated, never an abort. Far above anything kyara trains (anime64: 64 channels,
/// 4 blocks, 8.8 M parameters).
pub mod limits {
    /// Channels of any layer.
    pub const MAX_CHANNELS: usize = 4096;
    /// Residual blocks of one trunk.
    pub const MAX_BLOCKS: usize = 64;
    /// Latent size.
    pub const MAX_LATENT: usize = 4096;
    /// Tags of a vocabulary.
    pub const MAX_TAGS: usize = 4096;
    /// Width of a feature or projection layer (the tagger's, the shape encoder's).
    pub const MAX_FEATURES: usize = 65_536;
    /// Image side in pixels.
    pub const MAX_RESOLUTION: usize = 1024;
    /// Parameters of one network: 2^28, 1 GiB as float32.
    pub const MAX_PARAMS: u64 = 1 << 28;
}

/// Checks each `(name, value, max)` of `what`'s config, then its parameter count (computed by
/// `params` only once the sizes are in bounds, so it cannot overflow).
pub(crate) fn check_sizes(
    what: &str,
    sizes: &[(&str, usize, usize)],
    params: impl FnOnce() -> u64,
) -> Result<(), ModelError> {
    for &(name, value, max) in sizes {
        if value > max {
            return Err(ModelError::BadConfig(format!(
                "{what} {name} = {value} is more than kyara allows ({max})"
            )));
        }
    }
    let n = params();
    if n > limits::MAX_PARAMS {
        return Err(ModelError::BadConfig(format!(
            "the {what} would have {n} parameters, more than kyara allows ({})",
            limits::MAX_PARAMS
        )));
    }
    Ok(())
}

/// The error for a common knob a family does not have.
pub fn unsupported(family: &str, option: &str, why: &str) -> ModelError {
    ModelError::BadConfig(format!("{option} does not apply to --arch {family}: {why}"))
}

/// Sets `field` of a config to `value` through its JSON form: `value` is read as JSON
/// (`6`, `0.5`, `true`, `"prelu"`) or else taken as a string (`prelu`). Unknown fields are an
/// error naming the known ones, and so is a value the config cannot hold.
fn set_field<C: FamilyConfig>(
    config: &C,
    what: &str,
    field: &str,
    value: &str,
) -> Result<C, ModelError> {
    let mut json = serde_json::to_value(config).expect("configs serialise");
    let obj = json.as_object_mut().expect("configs are JSON objects");
    if !obj.contains_key(field) {
        let mut known: Vec<&str> = obj.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(ModelError::BadConfig(format!(
            "the {what} config has no field '{field}' (it has: {})",
            known.join(", ")
        )));
    }
    let parsed = serde_json::from_str(value).unwrap_or_else(|_| value.into());
    obj.insert(field.into(), parsed);
    serde_json::from_value(json)
        .map_err(|e| ModelError::BadConfig(format!("{what} config: {field} = {value}: {e}")))
}

/// Fills the `added` fields (name, JSON text) that `config` lacks: files written before a field
/// existed read the value they were made with. The trainer's run configs use it too.
pub fn fill_added(mut config: serde_json::Value, added: &[(&str, &str)]) -> serde_json::Value {
    if let Some(obj) = config.as_object_mut() {
        for (field, value) in added {
            if !obj.contains_key(*field) {
                let v = serde_json::from_str(value).expect("an added field's value is JSON");
                obj.insert((*field).into(), v);
            }
        }
    }
    config
}

fn bad_card(e: serde_json::Error) -> ModelError {
    ModelError::BadCard(format!("generator config: {e}"))
}

/// Declares the families. Each entry is `module::FamilyType`: it declares the module
/// (`arch/module.rs`) and gives the enum variant its name.
macro_rules! families {
    ($($module:ident :: $family:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every family's name, in the order of the list (the first is the default).
        pub const NAMES: &[&str] = &[$(<$module::$family as Family>::NAME),+];
        /// `(name, one-line description)` of every family, for `--help`.
        pub const ABOUT: &[(&str, &str)] =
            &[$((<$module::$family as Family>::NAME, <$module::$family as Family>::ABOUT)),+];

        /// A generator family and its config. In JSON: the config's fields plus `"arch"`.
        #[derive(Debug, Clone)]
        pub enum GeneratorSpec {
            $($family(<$module::$family as Family>::GeneratorConfig),)+
        }

        /// A critic family and its config. In JSON: the config's fields plus `"arch"`.
        #[derive(Debug, Clone)]
        pub enum DiscriminatorSpec {
            $($family(<$module::$family as Family>::DiscriminatorConfig),)+
        }

        /// A generator of any family.
        // One value per model, built once: the size difference between variants costs nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum AnyGenerator {
            $($family(<$module::$family as Family>::Generator),)+
        }

        /// A critic of any family (see [`DiscriminatorModule`] for the contract).
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum AnyDiscriminator {
            $($family(<$module::$family as Family>::Discriminator),)+
        }

        impl GeneratorSpec {
            pub fn arch(&self) -> &'static str {
                match self {
                    $(Self::$family(_) => <$module::$family as Family>::NAME,)+
                }
            }

            pub fn sizes(&self) -> GeneratorSizes {
                match self {
                    $(Self::$family(c) => <$module::$family as Family>::generator_sizes(c),)+
                }
            }

            pub fn validate(&self) -> Result<(), ModelError> {
                match self {
                    $(Self::$family(c) => <$module::$family as Family>::validate_generator(c),)+
                }
            }

            /// A fresh network, every weight drawn now: the backend stream's next draws (seed
            /// it with [`crate::rng::seeded`] for the same weights every time).
            pub fn try_init(&self, device: &Device) -> Result<AnyGenerator, ModelError> {
                crate::rng::initialised(|| Ok(match self {
                    $(Self::$family(c) => AnyGenerator::$family(
                        <$module::$family as Family>::init_generator(c, device)?,
                    ),)+
                }))
            }

            /// Parses the config of the named family from JSON (a model card keeps the name
            /// and the config in separate fields).
            pub fn from_arch_json(
                arch: &str,
                config: serde_json::Value,
            ) -> Result<Self, ModelError> {
                $(if arch == <$module::$family as Family>::NAME {
                    let config =
                        fill_added(config, <$module::$family as Family>::GENERATOR_ADDED);
                    return Ok(Self::$family(serde_json::from_value(config).map_err(bad_card)?));
                })+
                Err(unknown_arch(arch))
            }

            /// The config alone, as JSON (without the family name).
            pub fn config_json(&self) -> serde_json::Value {
                match self {
                    $(Self::$family(c) => serde_json::to_value(c),)+
                }
                .expect("configs serialise")
            }

            fn set(&self, field: &str, value: &str) -> Result<Self, ModelError> {
                Ok(match self {
                    $(Self::$family(c) => Self::$family(set_field(c, "generator", field, value)?),)+
                })
            }
        }

        impl DiscriminatorSpec {
            pub fn arch(&self) -> &'static str {
                match self {
                    $(Self::$family(_) => <$module::$family as Family>::NAME,)+
                }
            }

            pub fn conditional(&self) -> bool {
                match self {
                    $(Self::$family(c) =>
                        <$module::$family as Family>::discriminator_conditional(c),)+
                }
            }

            pub fn feature_dim(&self) -> Result<usize, ModelError> {
                match self {
                    $(Self::$family(c) => <$module::$family as Family>::feature_dim(c),)+
                }
            }

            /// A fresh network, every weight drawn now: the backend stream's next draws (seed
            /// it with [`crate::rng::seeded`] for the same weights every time).
            pub fn try_init(&self, device: &Device) -> Result<AnyDiscriminator, ModelError> {
                crate::rng::initialised(|| Ok(match self {
                    $(Self::$family(c) => AnyDiscriminator::$family(
                        <$module::$family as Family>::init_discriminator(c, device)?,
                    ),)+
                }))
            }

            pub fn from_arch_json(
                arch: &str,
                config: serde_json::Value,
            ) -> Result<Self, ModelError> {
                let bad = |e: serde_json::Error| {
                    ModelError::BadConfig(format!("discriminator config: {e}"))
                };
                $(if arch == <$module::$family as Family>::NAME {
                    let config =
                        fill_added(config, <$module::$family as Family>::DISCRIMINATOR_ADDED);
                    return Ok(Self::$family(serde_json::from_value(config).map_err(bad)?));
                })+
                Err(unknown_arch(arch))
            }

            pub fn config_json(&self) -> serde_json::Value {
                match self {
                    $(Self::$family(c) => serde_json::to_value(c),)+
                }
                .expect("configs serialise")
            }

            fn set(&self, field: &str, value: &str) -> Result<Self, ModelError> {
                Ok(match self {
                    $(Self::$family(c) =>
                        Self::$family(set_field(c, "discriminator", field, value)?),)+
                })
            }
        }

        /// The generator and critic specs of family `arch` for a data set of `num_tags` tags
        /// at `resolution` pixels, with `options` applied (common knobs first, then the
        /// by-name overrides). Both specs are validated.
        pub fn configure(
            arch: &str,
            num_tags: usize,
            resolution: usize,
            options: &FamilyOptions,
        ) -> Result<(GeneratorSpec, DiscriminatorSpec), ModelError> {
            let (mut g, mut d) = 'found: {
                $(if arch == <$module::$family as Family>::NAME {
                    let (g, d) =
                        <$module::$family as Family>::configure(num_tags, resolution, options)?;
                    break 'found (GeneratorSpec::$family(g), DiscriminatorSpec::$family(d));
                })+
                return Err(unknown_arch(arch));
            };
            for (field, value) in &options.set_generator {
                g = g.set(field, value)?;
            }
            for (field, value) in &options.set_discriminator {
                d = d.set(field, value)?;
            }
            g.validate()?;
            d.feature_dim()?;
            Ok((g, d))
        }

        impl GeneratorModule for AnyGenerator {
            fn generate(&self, input: GeneratorInput) -> Tensor<4> {
                match self {
                    $(Self::$family(g) => g.generate(input),)+
                }
            }

            fn style(&self, input: &GeneratorInput) -> Option<Tensor<2>> {
                match self {
                    $(Self::$family(g) => g.style(input),)+
                }
            }

            fn style_weights(&self) -> Vec<Tensor<2>> {
                match self {
                    $(Self::$family(g) => g.style_weights(),)+
                }
            }
        }

        impl AnyGenerator {
            /// Loads burnpack bytes saved by [`Self::to_bytes`] or [`Self::to_bytes_as`] (f16
            /// tensors are widened to f32, so the generator always computes in f32). Files hold
            /// the family's own module (tensor names without an enum-variant prefix), so cards
            /// and weights from before the families existed load unchanged, and the card's
            /// `arch` says which family to build.
            pub fn load_bytes(self, bytes: Vec<u8>) -> Result<Self, ModelError> {
                Ok(match self {
                    $(Self::$family(g) => Self::$family(load_weights(g, bytes)?),)+
                })
            }

            /// The parameters as burnpack bytes with float weights stored as `dtype` (see
            /// [`crate::weights`]); [`Self::load_bytes`] reads either.
            pub fn to_bytes_as(self, dtype: WeightsDtype) -> Result<Vec<u8>, ModelError> {
                match self {
                    $(Self::$family(g) => weights_bytes_as(g, dtype),)+
                }
            }
        }

        impl DiscriminatorModule for AnyDiscriminator {
            fn features(&self, x: Tensor<4>) -> Tensor<2> {
                match self {
                    $(Self::$family(d) => d.features(x),)+
                }
            }

            fn score(&self, h: Tensor<2>, c: Tensor<2>) -> Tensor<1> {
                match self {
                    $(Self::$family(d) => d.score(h, c),)+
                }
            }
        }

        impl AnyDiscriminator {
            /// Loads burnpack bytes saved by [`Self::to_bytes`] (no enum-variant prefix).
            pub fn load_bytes(self, bytes: Vec<u8>) -> Result<Self, ModelError> {
                Ok(match self {
                    $(Self::$family(d) => Self::$family(load_weights(d, bytes)?),)+
                })
            }

            pub fn to_bytes(self) -> Result<Vec<u8>, ModelError> {
                match self {
                    $(Self::$family(d) => weights_bytes(d),)+
                }
            }
        }
    };
}

fn unknown_arch(arch: &str) -> ModelError {
    ModelError::BadCard(format!(
        "unknown architecture '{arch}' (known: {})",
        NAMES.join(", ")
    ))
}

impl GeneratorSpec {
    pub fn latent_dim(&self) -> usize {
        self.sizes().latent_dim
    }

    pub fn num_tags(&self) -> usize {
        self.sizes().num_tags
    }

    pub fn resolution(&self) -> usize {
        self.sizes().resolution
    }

    /// Whether the generator reads the tag vector at all.
    pub fn conditional(&self) -> bool {
        self.sizes().conditional
    }
}

/// Specs serialise as the config's fields plus `"arch"` (the run config's format).
fn spec_to_json(arch: &str, mut config: serde_json::Value) -> serde_json::Value {
    config
        .as_object_mut()
        .expect("configs are JSON objects")
        .insert("arch".into(), arch.into());
    config
}

fn spec_from_json<E: serde::de::Error>(
    mut value: serde_json::Value,
) -> Result<(String, serde_json::Value), E> {
    let obj = value
        .as_object_mut()
        .ok_or_else(|| E::custom("an architecture spec must be a JSON object"))?;
    match obj.remove("arch") {
        Some(serde_json::Value::String(arch)) => Ok((arch, value)),
        _ => Err(E::custom("missing field `arch`")),
    }
}

impl Serialize for GeneratorSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        spec_to_json(self.arch(), self.config_json()).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for GeneratorSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (arch, config) = spec_from_json(serde_json::Value::deserialize(d)?)?;
        Self::from_arch_json(&arch, config).map_err(serde::de::Error::custom)
    }
}

impl Serialize for DiscriminatorSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        spec_to_json(self.arch(), self.config_json()).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for DiscriminatorSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (arch, config) = spec_from_json(serde_json::Value::deserialize(d)?)?;
        Self::from_arch_json(&arch, config).map_err(serde::de::Error::custom)
    }
}

impl AnyGenerator {
    /// `input` -> `[B, 3, resolution, resolution]` RGB in `[-1, 1]`.
    pub fn forward(&self, input: GeneratorInput) -> Tensor<4> {
        self.generate(input)
    }

    /// The parameters as float32 burnpack bytes (see [`Self::load_bytes`]).
    pub fn to_bytes(self) -> Result<Vec<u8>, ModelError> {
        self.to_bytes_as(WeightsDtype::F32)
    }
}

impl AnyDiscriminator {
    /// `x`: `[B, 3, R, R]`, `c`: `[B, num_tags]` -> scores `[B]`.
    pub fn forward(&self, x: Tensor<4>, c: Tensor<2>) -> Tensor<1> {
        self.score(self.features(x), c)
    }
}

// The list. A new family: its file in `arch/` and one line here.
families! {
    resnet_cgan::ResnetCgan,
    dcgan::Dcgan,
    stylegan2::Stylegan2,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ResnetCganGeneratorConfig;

    /// Every family, at its defaults for a small data set.
    fn all(num_tags: usize, resolution: usize) -> Vec<(GeneratorSpec, DiscriminatorSpec)> {
        NAMES
            .iter()
            .map(|n| configure(n, num_tags, resolution, &FamilyOptions::default()).unwrap())
            .collect()
    }

    /// The sizes of hostile cards (issue: `res_blocks` 1e9, channels or resolution 2^40 or 2^62
    /// aborted on allocation or panicked) are errors before anything is allocated; every
    /// family's defaults are far inside the limits.
    #[test]
    fn oversized_configs_are_errors_not_aborts() {
        for (g, d) in all(22, 64) {
            g.validate().unwrap();
            d.feature_dim().unwrap();
            let fields: Vec<String> = g
                .config_json()
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            for field in [
                "res_blocks",
                "channels",
                "resolution",
                "latent_dim",
                "num_tags",
            ] {
                if !fields.iter().any(|f| f == field) {
                    continue;
                }
                for huge in [1_000_000_000u64, 1 << 40, 1 << 62] {
                    let mut json = g.config_json();
                    json[field] = serde_json::json!(huge);
                    let spec = GeneratorSpec::from_arch_json(g.arch(), json).unwrap();
                    let e = spec.validate().unwrap_err().to_string();
                    assert!(
                        e.contains("more than kyara allows"),
                        "{} {field}: {e}",
                        g.arch()
                    );
                    assert!(spec.try_init(&Device::flex()).is_err());
                }
            }
            // Sizes each in bounds but too many parameters together.
            let mut json = g.config_json();
            json["channels"] = serde_json::json!(4096);
            json["latent_dim"] = serde_json::json!(4096);
            let e = GeneratorSpec::from_arch_json(g.arch(), json)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains("parameters"), "{}: {e}", g.arch());
            for field in ["channels", "resolution", "max_channels"] {
                let mut json = d.config_json();
                if json.get(field).is_none() {
                    continue;
                }
                json[field] = serde_json::json!(1u64 << 40);
                let d = DiscriminatorSpec::from_arch_json(d.arch(), json).unwrap();
                assert!(d.feature_dim().is_err(), "{field}");
                assert!(d.try_init(&Device::flex()).is_err(), "{field}");
            }
        }
    }

    #[test]
    fn names_are_unique_and_about_lists_them() {
        let mut names = NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NAMES.len());
        assert_eq!(ABOUT.iter().map(|(n, _)| *n).collect::<Vec<_>>(), NAMES);
        assert_eq!(NAMES[0], "resnet-cgan", "the default family");
    }

    #[test]
    fn specs_round_trip_through_json_with_their_arch() {
        for (g, d) in all(4, 64) {
            let json = serde_json::to_value(&g).unwrap();
            assert_eq!(json["arch"], g.arch());
            let back: GeneratorSpec = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
            assert_eq!(back.sizes(), g.sizes());
            let again = GeneratorSpec::from_arch_json(g.arch(), g.config_json()).unwrap();
            assert_eq!(serde_json::to_value(&again).unwrap(), json);

            let json = serde_json::to_value(&d).unwrap();
            assert_eq!(json["arch"], d.arch());
            let back: DiscriminatorSpec = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
        }
        // A config written before a field existed reads the value it was made with.
        let mut old = GeneratorSpec::ResnetCgan(ResnetCganGeneratorConfig::new(3)).config_json();
        old.as_object_mut().unwrap().remove("icnr");
        match GeneratorSpec::from_arch_json("resnet-cgan", old).unwrap() {
            GeneratorSpec::ResnetCgan(c) => assert!(!c.icnr),
            other => panic!("{other:?}"),
        }
        assert!(
            ResnetCganGeneratorConfig::new(3).icnr,
            "new runs start with ICNR"
        );
        let e = GeneratorSpec::from_arch_json("stylegan9", serde_json::json!({})).unwrap_err();
        assert!(e.to_string().contains("resnet-cgan, dcgan"), "{e}");
        let e = serde_json::from_value::<GeneratorSpec>(serde_json::json!({"num_tags": 3}));
        assert!(e.unwrap_err().to_string().contains("arch"));
    }

    #[test]
    fn any_modules_dispatch_to_their_family() {
        let device = Device::flex();
        let small = FamilyOptions {
            latent_dim: Some(4),
            g_channels: Some(8),
            d_channels: Some(4),
            ..Default::default()
        };
        for name in NAMES {
            let (g, d) = configure(name, 2, 16, &small).unwrap();
            let sizes = g.sizes();
            assert_eq!(
                (sizes.latent_dim, sizes.num_tags, sizes.resolution),
                (4, 2, 16)
            );
            let generator = g.try_init(&device).unwrap();
            let out = generator.forward(GeneratorInput::new(
                Tensor::zeros([2, 4], &device),
                Tensor::ones([2, 2], &device),
            ));
            assert_eq!(out.dims(), [2, 3, 16, 16], "{name}");
            let critic = d.try_init(&device).unwrap();
            let h = critic.features(out.clone());
            assert_eq!(h.dims(), [2, d.feature_dim().unwrap()], "{name}");
            assert_eq!(
                critic.forward(out, Tensor::ones([2, 2], &device)).dims(),
                [2]
            );
        }
    }

    #[test]
    fn options_are_applied_or_refused_by_name() {
        let opts = FamilyOptions {
            set_generator: vec![("latent_dim".into(), "6".into())],
            set_discriminator: vec![("leaky_slope".into(), "0.1".into())],
            ..Default::default()
        };
        for name in NAMES {
            let (g, d) = configure(name, 3, 32, &opts).unwrap();
            assert_eq!(g.config_json()["latent_dim"], 6, "{name}");
            assert_eq!(d.config_json()["leaky_slope"], 0.1, "{name}");
            assert_eq!(g.resolution(), 32);
        }
        let typo = FamilyOptions {
            set_generator: vec![("res_blokcs".into(), "2".into())],
            ..Default::default()
        };
        let e = configure(NAMES[0], 3, 64, &typo).unwrap_err().to_string();
        assert!(e.contains("res_blokcs") && e.contains("res_blocks"), "{e}");
        let wrong_type = FamilyOptions {
            set_generator: vec![("res_blocks".into(), "many".into())],
            ..Default::default()
        };
        let e = configure(NAMES[0], 3, 64, &wrong_type)
            .unwrap_err()
            .to_string();
        assert!(e.contains("res_blocks = many"), "{e}");
        // A bad combination is caught by the family's own validation.
        let odd = FamilyOptions {
            set_generator: vec![("out_kernel".into(), "4".into())],
            ..Default::default()
        };
        assert!(configure("resnet-cgan", 3, 64, &odd).is_err());
        let e = configure("stylegan9", 3, 64, &FamilyOptions::default()).unwrap_err();
        assert!(e.to_string().contains("stylegan9"));
    }

    #[test]
    fn unconditional_is_a_family_matter() {
        let opts = FamilyOptions {
            unconditional: true,
            ..Default::default()
        };
        let e = configure("resnet-cgan", 3, 64, &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--unconditional") && e.contains("resnet-cgan"),
            "{e}"
        );
        let (g, d) = configure("dcgan", 3, 64, &opts).unwrap();
        assert!(!g.conditional() && !d.conditional());
    }
}
