//! The training config: everything that defines a run. It is written into the run folder before
//! the first step ([`RunDir::create`](super::RunDir::create)) and read back on resume, so a run
//! always continues with the settings it started with.
//!
//! Every default is written here, once: the command line only overrides the settings it is
//! given (`trainer train --help` reads the defaults it shows from [`TrainConfig::defaults`]).

use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use shared_model::{
    DcganDiscriminatorConfig, DcganGeneratorConfig, DiscriminatorSpec, GeneratorSpec, TagVocab,
};

use super::losses::{LossKind, PairWeights};
use super::recipe::Recipe;
pub use kernels::precision::Precision;

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
    /// The generator's and the critic's Adam optimisers (one setting for both).
    #[config(default = "OptimizerConfig::new()")]
    pub optimizer: OptimizerConfig,
    #[config(default = 0)]
    pub seed: u64,
    /// The adversarial loss. Hinge is the default: at the same budget (32,000 images, seed 0)
    /// it drew faces that follow their hair tags (93.6 %) where the reference `wgan-gp` drew
    /// blobs (27.6 %, 46.7 % with the drift penalty); docs/quality.md has the table.
    #[config(default = "LossKind::Hinge")]
    pub loss: LossKind,
    /// Weights of the critic's real, generated and wrong-tag terms (those of the loss).
    #[config(default = "PairWeights::default()")]
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
    /// What the run adds to its adversarial loss: loss terms, augmentations of what the critic
    /// sees, a schedule of the condition, each one piece of [`super::recipe`], in order. The
    /// drift penalty by default. Configs written before recipes had `drift`, `r1_gamma` and
    /// `r1_every` at the top level; they read as the same recipe.
    #[config(default = "Recipe::default()")]
    pub recipe: Recipe,
    /// Probability of StyleGAN2's style-mixing regularisation in a batch of fakes (families
    /// with styles only): from a random crossover layer on, the styles come from a second
    /// latent with the same tags.
    #[config(default = 0.9)]
    pub style_mixing: f64,
    /// EMA half-life of the generator weights, in images (stylegan2-ada's ema_kimg * 1000).
    #[config(default = 10000.0)]
    pub ema_half_life: f64,
    /// Early in training the half-life is at most `ema_rampup * images_seen`.
    #[config(default = 0.05)]
    pub ema_rampup: f64,
    /// Random horizontal flips of the real images.
    #[config(default = true)]
    pub flip: bool,
    /// Operand precision of the convolutions' GEMMs in training steps: `fp32`, or `bf16` (bf16
    /// operands, fp32 sums; CPUs with AVX-512 BF16 only). Weights, optimiser state, batch-norm
    /// statistics, losses, penalties, samples, evaluations and the exported model stay fp32.
    #[config(default = "Precision::Fp32")]
    pub precision: Precision,
    #[config(default = 10)]
    pub log_every: u64,
    #[config(default = 200)]
    pub sample_every: u64,
    #[config(default = 200)]
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk (the newest ones).
    #[config(default = 2)]
    pub keep_checkpoints: usize,
    /// Health check: a loss or critic score whose size exceeds this ends training as diverged,
    /// before a checkpoint can hold it (`--lr 0.99` reached ~1e28; healthy runs stay below 1e2).
    #[config(default = 1e8)]
    pub diverge_at: f64,
}

/// Settings of Adam (Kingma & Ba 2015), used for the generator and the critic alike. In a run's
/// config they are the `"optimizer"` object.
#[derive(Config, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// Learning rate (constant: no schedule).
    #[config(default = 2e-4)]
    pub lr: f64,
    /// Decay of the first-moment (mean) estimate.
    #[config(default = 0.5)]
    pub beta1: f32,
    /// Decay of the second-moment (variance) estimate.
    #[config(default = 0.999)]
    pub beta2: f32,
    /// Added to the root of the second moment before dividing by it.
    #[config(default = 1e-8)]
    pub epsilon: f32,
}

impl OptimizerConfig {
    /// A fresh optimiser (no moments yet); the learning rate is passed to each step.
    pub fn init(&self) -> ModuleOptimizer {
        AdamConfig::new()
            .with_beta_1(self.beta1)
            .with_beta_2(self.beta2)
            .with_epsilon(self.epsilon)
            .init()
    }
}

impl TrainConfig {
    /// A config with every setting at its default, on a placeholder model (no tags) and no
    /// data: where `trainer train --help` reads the defaults it shows. Not for training.
    pub fn defaults() -> Self {
        Self::new(
            GeneratorSpec::Dcgan(DcganGeneratorConfig::new(0)),
            DiscriminatorSpec::Dcgan(DcganDiscriminatorConfig::new(0)),
            TagVocab::from_tag_sets(std::iter::empty()),
            String::new(),
            String::new(),
        )
    }

    /// The config as the JSON text of a run folder's config file.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a training config serialises")
    }

    /// Parses a run folder's config file. Files written before the optimizer settings were
    /// nested (`"lr"`, `"beta1"`, `"beta2"` at the top level) are read as if they were nested.
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        nest_flat_optimizer(&mut value);
        let mut value = shared_model::arch::fill_added(value, &ADDED);
        Recipe::migrate_flat(&mut value);
        let cfg: Self = serde_json::from_value(value)?;
        let custom = <serde_json::Error as serde::de::Error>::custom;
        cfg.recipe.validate().map_err(custom)?;
        // As `--diverge-at` is read: `-1` once made every step look diverged.
        if !(cfg.diverge_at.is_finite() && DIVERGE_AT_RANGE.contains(&cfg.diverge_at)) {
            return Err(custom(format!(
                "diverge_at = {} is not a divergence threshold: it must be a number from 1 to \
                 1e30 (e.g. 1e8, the default); a loss or critic score beyond it stops training \
                 as diverged",
                cfg.diverge_at
            )));
        }
        Ok(cfg)
    }
}

/// The divergence thresholds a config or `--diverge-at` may give.
pub const DIVERGE_AT_RANGE: std::ops::RangeInclusive<f64> = 1.0..=1e30;

/// Settings added after run folders were written, each with the value (JSON text) those runs
/// were trained with, so that they resume as they started. Append; never remove. (`drift`,
/// `r1_gamma` and `r1_every` then move into the recipe, [`Recipe::migrate_flat`].)
const ADDED: [(&str, &str); 6] = [
    ("drift", "0.0"),
    ("r1_gamma", "0.0"),
    ("r1_every", "16"),
    ("style_mixing", "0.9"),
    ("diverge_at", "1e8"),
    ("precision", "\"fp32\""),
];

/// The optimizer keys that configs once held at their top level.
const FLAT_OPTIMIZER_KEYS: [&str; 3] = ["lr", "beta1", "beta2"];

/// Moves the top-level optimizer keys of an old config into an `"optimizer"` object (settings
/// those configs did not store, such as `epsilon`, take the defaults they were trained with).
/// A config that already has `"optimizer"` is left as it is.
fn nest_flat_optimizer(config: &mut serde_json::Value) {
    let Some(top) = config.as_object_mut() else {
        return;
    };
    if top.contains_key("optimizer") || !FLAT_OPTIMIZER_KEYS.iter().any(|k| top.contains_key(*k)) {
        return;
    }
    let mut optimizer =
        serde_json::to_value(OptimizerConfig::new()).expect("an optimizer config serialises");
    let nested = optimizer
        .as_object_mut()
        .expect("an optimizer config is an object");
    for key in FLAT_OPTIMIZER_KEYS {
        if let Some(v) = top.remove(key) {
            nested.insert(key.to_string(), v);
        }
    }
    top.insert("optimizer".into(), optimizer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config.json` exactly as `trainer train --data faces --out runs --steps 3 --lr 0.001
    /// --resolution 16 --g-channels 8 --g-blocks 1 --d-channels 8 --latent-dim 8 --batch 4` wrote
    /// it before the optimizer settings were nested.
    const FLAT_CONFIG: &str = include_str!("testdata/flat-optimizer-config.json");

    /// Issue 31: `diverge_at: -1` in a run's config reported a false divergence at the first
    /// step; the value is refused with its range, as `--diverge-at` is.
    #[test]
    fn a_divergence_threshold_out_of_range_is_refused() {
        let mut v: serde_json::Value =
            serde_json::from_str(&TrainConfig::defaults().to_json()).unwrap();
        for bad in [
            serde_json::json!(-1.0),
            serde_json::json!(0.5),
            serde_json::json!(1e31),
        ] {
            v["diverge_at"] = bad.clone();
            let e = TrainConfig::from_json(&v.to_string())
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("diverge_at") && e.contains("from 1 to 1e30"),
                "{bad}: {e}"
            );
        }
        v["diverge_at"] = serde_json::json!(1e4);
        assert_eq!(
            TrainConfig::from_json(&v.to_string()).unwrap().diverge_at,
            1e4
        );
    }

    #[test]
    fn a_config_with_flat_optimizer_settings_still_loads() {
        let cfg = TrainConfig::from_json(FLAT_CONFIG).unwrap();
        assert_eq!(
            cfg.optimizer,
            OptimizerConfig::new()
                .with_lr(0.001)
                .with_beta1(0.5)
                .with_beta2(0.999)
                .with_epsilon(1e-8)
        );
        assert_eq!((cfg.steps, cfg.batch_size), (3, 4));
        assert_eq!(cfg.loss, LossKind::WganGp);
        assert_eq!(
            cfg.recipe,
            Recipe(vec![]),
            "an old run resumes without the drift it never had"
        );
        assert_eq!(TrainConfig::defaults().recipe, Recipe::default());
        assert_eq!(cfg.precision, Precision::Fp32, "old runs computed in fp32");
        assert_eq!(cfg.generator.latent_dim(), 8);
        assert_eq!(cfg.vocab.len(), cfg.generator.num_tags());
        // Written again, the settings are nested and nothing is at the top any more.
        let again: serde_json::Value = serde_json::from_str(&cfg.to_json()).unwrap();
        for key in FLAT_OPTIMIZER_KEYS {
            assert!(again.get(key).is_none(), "{key} still at the top");
        }
        assert_eq!(again["optimizer"]["lr"], 0.001);
        let back = TrainConfig::from_json(&cfg.to_json()).unwrap();
        assert_eq!(back.optimizer, cfg.optimizer);
        assert_eq!(back.to_json(), cfg.to_json());
    }

    #[test]
    fn the_precision_is_written_by_name_and_read_back() {
        let cfg = TrainConfig::defaults().with_precision(Precision::Bf16);
        let v: serde_json::Value = serde_json::from_str(&cfg.to_json()).unwrap();
        assert_eq!(v["precision"], "bf16");
        let back = TrainConfig::from_json(&cfg.to_json()).unwrap();
        assert_eq!(back.precision, Precision::Bf16);
        let mut bad = v.clone();
        bad["precision"] = "fp16".into();
        let err = TrainConfig::from_json(&bad.to_string()).unwrap_err();
        assert!(err.to_string().contains("fp16"), "{err}");
    }

    #[test]
    fn an_optimizer_object_wins_over_stray_flat_keys() {
        let mut v: serde_json::Value =
            serde_json::from_str(&TrainConfig::defaults().to_json()).unwrap();
        v["lr"] = serde_json::json!(0.5);
        let cfg = TrainConfig::from_json(&v.to_string()).unwrap();
        assert_eq!(cfg.optimizer.lr, 2e-4);
    }

    #[test]
    fn a_config_that_is_not_one_is_an_error() {
        for bad in ["", "[]", "{\"lr\": 0.1}", "not json"] {
            assert!(TrainConfig::from_json(bad).is_err(), "{bad}");
        }
    }
}
