//! kyara's networks, defined once.
//!
//! Everything that must agree between the native trainer and the browser lives here:
//! the architectures ([`cgan`], [`dcgan`], behind [`arch`]), the tag vocabulary ([`vocab`]), the portable PRNG that turns a
//! seed into a latent ([`rng`]), the model card that travels with exported weights ([`card`]), the
//! weights' storage format, float32 or float16 ([`weights`]),
//! the seed + tags -> pixels pipeline ([`sample`]), the whole recipe of a face with its permalink
//! ([`face`]) and the latent arithmetic it uses ([`latent`]). The trainer adds losses and optimisation; the
//! `web` crate adds the JavaScript boundary. Neither re-declares a layer.

pub mod arch;
pub mod card;
pub mod cgan;
pub mod dcgan;
pub mod error;
pub mod face;
pub mod fastact;
pub mod fastconv;
pub mod fastnorm;
pub mod latent;
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
pub use face::{FaceSpec, Permalink};
pub use rng::SplitMix64;
pub use tagger::{LoadedTagger, Tagger, TaggerCard, TaggerConfig};
pub use vocab::TagVocab;
pub use weights::WeightsDtype;
