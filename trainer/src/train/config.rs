//! The training config: everything that defines a run. It is written into the run folder before
//! the first step ([`RunDir::create`](super::RunDir::create)) and read back on resume, so a run
//! always continues with the settings it started with.

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use shared_model::{DiscriminatorSpec, GeneratorSpec, TagVocab};

use super::losses::{LossKind, PairWeights};

/// Everything that defines a run.
#[derive(Config, Debug)]
pub struct TrainConfig {
    /// Generator architecture (`"arch"`) and its config.
    pub generator: GeneratorSpec,
    /// Discriminator architecture and its config.
    pub discriminator: DiscriminatorSpec,
    /// The tag vocabulary of the training data (stored so a resumed run and the export agree).
    pub vocab: TagVocab,
    /// Dataset folder as given on the command line, and its name.
    pub data: String,
    pub data_name: String,
    #[config(default = 32)]
    pub batch_size: usize,
    /// Total number of steps (one D and one G update each).
    #[config(default = 2000)]
    pub steps: u64,
    #[config(default = 2e-4)]
    pub lr: f64,
    #[config(default = 0.5)]
    pub beta1: f32,
    #[config(default = 0.999)]
    pub beta2: f32,
    #[config(default = 0)]
    pub seed: u64,
    #[config(default = "LossKind::WganGp")]
    pub loss: LossKind,
    #[config(default = "PairWeights::reference_wgan()")]
    pub pair_weights: PairWeights,
    /// Spectral normalisation of every critic weight (see [`crate::train::spectral`]).
    #[config(default = false)]
    pub spectral_norm: bool,
    /// Discriminator updates per generator update.
    #[config(default = 1)]
    pub n_critic: usize,
    /// Weight of the gradient penalty (lambda) with `--loss wgan-gp`.
    #[config(default = 20.0)]
    pub gp_weight: f64,
    /// EMA half-life of the generator weights, in images (stylegan2-ada's ema_kimg * 1000).
    #[config(default = 10000.0)]
    pub ema_half_life: f64,
    /// Early in training the half-life is at most `ema_rampup * images_seen`.
    #[config(default = 0.05)]
    pub ema_rampup: f64,
    /// Random horizontal flips of the real images.
    #[config(default = true)]
    pub flip: bool,
    #[config(default = 10)]
    pub log_every: u64,
    #[config(default = 200)]
    pub sample_every: u64,
    #[config(default = 200)]
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (the newest ones).
    #[config(default = 2)]
    pub keep_checkpoints: usize,
}

impl TrainConfig {
    /// The config as the JSON text of a run folder's config file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a training config serialises")
    }

    /// Parses a run folder's config file.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    /// A fresh Adam optimiser (no moments yet) for either network; the learning rate is passed
    /// to each step.
    pub fn adam(&self) -> ModuleOptimizer {
        AdamConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_epsilon(1e-8)
            .init()
    }
}
