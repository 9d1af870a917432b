//! kyara's networks, defined once.
//!
//! Everything that must agree between the native trainer and the browser lives here:
//! the architecture families ([`arch`]: one file each in `arch/`, one line in its list), the tag vocabulary ([`vocab`]), the portable PRNG that turns a
//! seed into a latent ([`rng`]), the model card that travels with exported weights ([`card`]) and the checksums binding it to
//! them ([`integrity`]), the
//! weights' storage format, float32 or float16 ([`weights`]),
//! the seed + tags -> pixels pipeline ([`sample`]), the colour-blind shape encoder that
//! `eval` measures in beside the tagger ([`shape`]), the whole recipe of a face with its permalink
//! ([`face`]) and the latent arithmetic it uses ([`latent`]). The trainer adds losses and
//! optimisation; the `web` crate adds the JavaScript boundary. Neither re-declares a layer. The CPU
//! kernels the layers run on (convolutions, batch norm, activations) live a layer below, in the
//! `kernels` crate.

pub mod arch;
pub mod card;
pub mod conv_stack;
pub mod error;
pub mod face;
pub mod fuzz;
pub mod integrity;
pub mod latent;
pub mod rng;
pub mod sample;
pub mod shape;
pub mod tagger;
pub mod vocab;
pub mod weights;

pub use arch::dcgan::{DcganDiscriminatorConfig, DcganGeneratorConfig};
pub use arch::resnet_cgan::{ResnetCganDiscriminatorConfig, ResnetCganGeneratorConfig};
pub use arch::stylegan2::Stylegan2GeneratorConfig;
pub use arch::{
    AnyDiscriminator, AnyGenerator, DiscriminatorModule, DiscriminatorSpec, FamilyOptions,
    GeneratorInput, GeneratorModule, GeneratorSizes, GeneratorSpec, StyleMix,
};
pub use card::{Direction, ModelCard, Space};
pub use error::ModelError;
pub use face::{FaceSpec, Fuse, Permalink};
pub use rng::SplitMix64;
pub use shape::{LoadedShape, ShapeCard, ShapeEncoder, ShapeEncoderConfig};
pub use tagger::{LoadedTagger, Tagger, TaggerCard, TaggerConfig};
pub use vocab::TagVocab;
pub use weights::WeightsDtype;
