//! kyara's networks, defined once.
//!
//! Everything that must agree between the native trainer and the browser lives here:
//! the architectures ([`cgan`], [`dcgan`], behind [`arch`]), the tag vocabulary ([`vocab`]), the portable PRNG that turns a
//! seed into a latent ([`rng`]), the model card that travels with exported weights ([`card`]), the
//! weights' storage format, float32 or float16 ([`weights`]) and
//! the seed + tags -> pixels pipeline ([`sample`]). The trainer adds losses and optimisation; the
//! `web` crate adds the JavaScript boundary. Neither re-declares a layer. The CPU kernels the layers
//! run on (convolutions, batch norm, activations) live a layer below, in the `kernels` crate.

pub mod arch;
pub mod card;
pub mod cgan;
pub mod dcgan;
pub mod error;
pub mod rng;
pub mod sample;
pub mod tagger;
pub mod vocab;
pub mod weights;

pub use arch::{
    ARCH_DCGAN, ARCH_RESNET, AnyDiscriminator, AnyGenerator, DiscriminatorSpec, GeneratorSpec,
};
pub use card::ModelCard;
pub use cgan::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
pub use dcgan::{DcganDiscriminatorConfig, DcganGeneratorConfig};
pub use error::ModelError;
pub use rng::SplitMix64;
pub use tagger::{LoadedTagger, Tagger, TaggerCard, TaggerConfig};
pub use vocab::TagVocab;
pub use weights::WeightsDtype;
