//! `train`: a new run from a dataset, or `--resume` of a run folder.
//!
//! The options that set a training-config setting are `Option`s: given, they override the
//! config's default ([`TrainArgs::apply`]); `--help` shows those defaults, read from the config
//! itself ([`show_config_defaults`]), so each default is written once, in [`TrainConfig`].

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{Args, ValueEnum};
use shared_model::arch::{self, FamilyOptions};
use shared_model::{DiscriminatorSpec, GeneratorSpec, TagVocab};

use super::common::{
    DeviceArg, device_for, load_data, parse_batch, parse_beta, parse_diverge_at, parse_gp_weight,
    parse_half_life, parse_lr, parse_precision, parse_probability_f64, parse_resolution,
};
use crate::data::{CacheStatus, Dataset, OnBadEntry, default_cache_dir, load_dataset_cached};
use crate::eval::TrainEval;
use crate::tagger::load_tagger;
use crate::train::losses::{LossKind, PairWeights};
use crate::train::recipe::{Drift, R1};
use crate::train::{
    Checkpoint, PieceSpec, Precision, Recipe, RunDir, RunOptions, TrainConfig, Trainer,
    check_batch_fits, run_training_with,
};

/// `--arch`: the names of the architecture families, each with its one-line description.
pub(super) fn arch_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(
        arch::ABOUT
            .iter()
            .map(|(name, about)| PossibleValue::new(name).help(about)),
    )
}

/// `KEY=VALUE` of `--g` / `--d`.
fn parse_setting(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().into(), v.trim().into())),
        _ => Err(format!(
            "'{s}' is not KEY=VALUE (a field of the family's config, e.g. res_blocks=6)"
        )),
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Dataset folder: metadata.csv (file_name,tags) + images, or images with .txt tag files.
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// Folder that receives the run folder (NNNNN-<dataset name>).
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue this run folder from its newest checkpoint (exactly where it stopped).
    #[arg(long, conflicts_with = "out")]
    pub resume: Option<PathBuf>,
    /// Total training steps of a new run (one D and one G update each); with --resume, the
    /// run's new total.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Images per step.
    #[arg(long, value_parser = parse_batch)]
    pub batch: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Seed of initialisation and of the training data order.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Architecture family.
    #[arg(long, conflicts_with = "resume", value_parser = arch_parser(), default_value = arch::NAMES[0])]
    pub arch: String,
    /// Ignore the tags (DCGAN only): G draws from noise alone and the critic scores images only.
    #[arg(long, conflicts_with = "resume")]
    pub unconditional: bool,
    /// Set a field of the family's generator config by name, e.g. `--g res_blocks=6` (repeat
    /// for more; the fields are those of the run's config.json `generator`).
    #[arg(long = "g", conflicts_with = "resume", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub set_generator: Vec<(String, String)>,
    /// Set a field of the family's critic config by name, e.g. `--d max_channels=512`.
    #[arg(long = "d", conflicts_with = "resume", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub set_discriminator: Vec<(String, String)>,
    /// Adversarial loss. Conditional models also show D real images with wrong tags (negative
    /// samples); wgan-gp uses the reference weights -2 E[real] + 1.5 E[fake] + 0.5 E[wrong].
    #[arg(long, value_enum)]
    pub loss: Option<LossKind>,
    /// Spectral normalisation of every critic weight (power iteration, one step per update).
    #[arg(long)]
    pub spectral_norm: bool,
    /// EMA half-life of the generator weights, in images.
    #[arg(long, value_parser = parse_half_life)]
    pub ema_half_life: Option<f64>,
    /// Discriminator (critic) updates per generator update, each on a fresh batch.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub n_critic: Option<u64>,
    /// Weight (lambda) of the gradient penalty of --loss wgan-gp.
    #[arg(long, value_parser = parse_gp_weight)]
    pub gp_weight: Option<f64>,
    /// Add a piece to the recipe, or set one it has: `NAME` or `NAME:KEY=VALUE,...` (repeat for
    /// more; e.g. `--recipe diffaugment --recipe mode-seeking:weight=2`). The pieces: drift,
    /// r1, diffaugment, consistency, mode-seeking, condition-ramp (their settings and defaults
    /// are in docs/recipes.md; a wrong one is an error that lists them).
    #[arg(long, value_name = "PIECE", value_parser = PieceSpec::parse)]
    pub recipe: Vec<PieceSpec>,
    /// Leave the default recipe out (the drift penalty): the run's recipe is the --recipe
    /// pieces alone.
    #[arg(long)]
    pub no_default_recipe: bool,
    /// Weight of the drift penalty on the critic's scores, drift * mean E[D^2] over real,
    /// generated and wrong-tag pairs (keeps a Wasserstein critic's output from wandering; 0 = off);
    /// short for `--recipe drift:weight=W`.
    #[arg(long, value_parser = parse_gp_weight)]
    pub drift: Option<f64>,
    /// R1 penalty weight gamma on real images, gamma/2 E[|grad D|^2] (0 = off); e.g. with
    /// --loss non-saturating; short for `--recipe r1:gamma=G`.
    #[arg(long, value_parser = parse_gp_weight)]
    pub r1_gamma: Option<f64>,
    /// Evaluate R1 on every N-th critic update only, weighted by N (lazy regularisation).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000), requires = "r1_gamma")]
    pub r1_every: Option<u64>,
    /// Health check: training stops as diverged when a loss or critic score grows beyond this
    /// size (the checkpoints written so far are kept).
    #[arg(long, value_parser = parse_diverge_at)]
    pub diverge_at: Option<f64>,
    /// Operand precision of the convolutions' GEMMs while training: fp32, or bf16 (bf16
    /// operands summed in fp32; needs a CPU with AVX-512 BF16). Weights, optimiser, losses,
    /// samples, evaluations and the exported model stay fp32.
    #[arg(long, value_parser = parse_precision)]
    pub precision: Option<Precision>,
    /// Probability of style mixing in a batch of fakes (--arch stylegan2; 0 = off).
    #[arg(long, value_parser = parse_probability_f64)]
    pub style_mixing: Option<f64>,
    /// Image side in pixels (64, 128, ...); other sizes in the data are resized.
    #[arg(long, conflicts_with = "resume", default_value_t = 64, value_parser = parse_resolution)]
    pub resolution: usize,
    /// Generator channels: the residual trunk's (default 64), or DCGAN's last hidden map's,
    /// doubled per stage towards 4x4 (default 32).
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub g_channels: Option<u64>,
    /// Generator residual blocks (default 4; DCGAN: 0, blocks run at 16x16; stylegan2: layers
    /// of the mapping network, default 4).
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(0..=64))]
    pub g_blocks: Option<u64>,
    /// Discriminator channels of the first stage, doubled per stage (default 32).
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub d_channels: Option<u64>,
    /// Size of the latent vector (noise), e.g. 64, 96 or 128 (default 128).
    #[arg(long, conflicts_with = "resume", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub latent_dim: Option<u64>,
    /// Learning rate of both Adam optimisers (their other settings are the run config's
    /// "optimizer").
    #[arg(long, value_parser = parse_lr)]
    pub lr: Option<f64>,
    /// Adam's first-moment decay for both optimisers (StyleGAN2 uses 0).
    #[arg(long, value_parser = parse_beta)]
    pub beta1: Option<f32>,
    /// Adam's second-moment decay for both optimisers (StyleGAN2 uses 0.99).
    #[arg(long, value_parser = parse_beta)]
    pub beta2: Option<f32>,
    /// Write a sample sheet every N steps.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: Option<u64>,
    /// Write a checkpoint every N steps.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: Option<u64>,
    /// Fail on the first bad dataset entry instead of skipping and counting.
    #[arg(long)]
    pub strict: bool,
    /// Where decoded datasets are kept between runs (one file per folder and resolution; the
    /// next run of the same, unchanged folder skips decoding). Default: $KYARA_CACHE_DIR, else
    /// $XDG_CACHE_HOME/kyara, else ~/.cache/kyara.
    #[arg(long, conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Decode the dataset's images every run; read and write no cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No progress bar (log lines instead).
    #[arg(long)]
    pub quiet: bool,
    /// Evaluate the EMA generator every N steps (needs --tagger); appends metric-tagger-eval.jsonl.
    #[arg(long, requires = "tagger", value_parser = clap::value_parser!(u64).range(1..))]
    pub eval_every: Option<u64>,
    /// Tagger used by --eval-every.
    #[arg(long, requires = "eval_every")]
    pub tagger: Option<PathBuf>,
    /// Faces per tag combination in --eval-every evaluations.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub eval_per_combo: u64,
}

impl TrainArgs {
    /// `cfg` with the training settings given on the command line; the others keep their values
    /// in `cfg`. The critic's pair weights follow the loss (and the model's conditioning).
    pub fn apply(&self, mut cfg: TrainConfig) -> TrainConfig {
        if let Some(v) = self.steps {
            cfg.steps = v;
        }
        if let Some(v) = self.batch {
            cfg.batch_size = v;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        if let Some(v) = self.loss {
            cfg.loss = v;
        }
        if self.spectral_norm {
            cfg.spectral_norm = true;
        }
        if let Some(v) = self.ema_half_life {
            cfg.ema_half_life = v;
        }
        if let Some(v) = self.n_critic {
            cfg.n_critic = v as usize;
        }
        if let Some(v) = self.gp_weight {
            cfg.gp_weight = v;
        }
        self.apply_recipe(&mut cfg.recipe);
        if let Some(v) = self.style_mixing {
            cfg.style_mixing = v;
        }
        if let Some(v) = self.precision {
            cfg.precision = v;
        }
        if let Some(v) = self.diverge_at {
            cfg.diverge_at = v;
        }
        if let Some(v) = self.lr {
            cfg.optimizer.lr = v;
        }
        if let Some(v) = self.beta1 {
            cfg.optimizer.beta1 = v;
        }
        if let Some(v) = self.beta2 {
            cfg.optimizer.beta2 = v;
        }
        if let Some(v) = self.sample_every {
            cfg.sample_every = v;
        }
        if let Some(v) = self.checkpoint_every {
            cfg.checkpoint_every = v;
        }
        // The pair weights follow the loss when it is given (the config's default weights are
        // those of its default loss).
        if self.loss.is_some() || self.unconditional {
            cfg.pair_weights = match (cfg.loss, self.unconditional) {
                (_, true) => PairWeights::unconditional(),
                (LossKind::WganGp, false) => PairWeights::reference_wgan(),
                (_, false) => PairWeights::default(),
            };
        }
        cfg
    }

    /// The recipe options: `--no-default-recipe`, then each `--recipe` piece, then the
    /// shorthands (`--drift`, `--r1-gamma`, `--r1-every`; 0 removes the piece).
    fn apply_recipe(&self, recipe: &mut Recipe) {
        if self.no_default_recipe {
            *recipe = Recipe(Vec::new());
        }
        for p in &self.recipe {
            recipe.set(p.clone());
        }
        if let Some(weight) = self.drift {
            match weight > 0.0 {
                true => recipe.set(PieceSpec::Drift(Drift { weight })),
                false => recipe.remove("drift"),
            }
        }
        if let Some(gamma) = self.r1_gamma {
            let every = self.r1_every.unwrap_or(R1::default().every);
            match gamma > 0.0 {
                true => recipe.set(PieceSpec::R1(R1 { gamma, every })),
                false => recipe.remove("r1"),
            }
        }
    }

    /// The config a resumed run continues with: `run`'s own, with what may change on resume
    /// ([`RESUME_MAY_CHANGE`]) taken from the command line. An option that would change anything
    /// else is an error naming it: the run would silently become a different one.
    fn resumed(&self, run: TrainConfig) -> Result<TrainConfig> {
        let asked = self.apply(run.clone());
        let (old, new) = (json_object(&run), json_object(&asked));
        let changed: Vec<String> = new
            .iter()
            .filter(|(k, v)| !RESUME_MAY_CHANGE.contains(&k.as_str()) && old.get(*k) != Some(v))
            .map(|(k, v)| format!("{k} (the run has {}, asked {v})", old[k]))
            .collect();
        if !changed.is_empty() {
            bail!(
                "--resume continues a run with the settings it started with; these options would \
                 change them: {}. Start a new run to train with other settings (only --steps, \
                 --sample-every, --checkpoint-every and --diverge-at may change on resume)",
                changed.join(", ")
            );
        }
        Ok(asked)
    }
}

/// Loads the newest checkpoint of `checkpoints` (newest first) that loads whole and finite:
/// one that is damaged (a checksum fails, a file is missing) or holds diverged weights is named
/// and passed over for the one before it. An error when none loads.
fn resume_newest_good(trainer: &mut Trainer, checkpoints: &[Checkpoint]) -> Result<()> {
    let mut problems = Vec::new();
    for ckpt in checkpoints {
        match trainer.load_checkpoint(ckpt.path()) {
            Ok(()) => {
                if !problems.is_empty() {
                    note!(
                        "warning: resuming from the older checkpoint {}",
                        ckpt.path().display()
                    );
                }
                return Ok(());
            }
            Err(e) => {
                note!(
                    "warning: cannot resume from {}: {e:#}",
                    ckpt.path().display()
                );
                problems.push(format!("{}: {e:#}", ckpt.path().display()));
            }
        }
    }
    bail!(
        "no checkpoint of the run can be resumed:\n  {}",
        problems.join("\n  ")
    )
}

/// Training-config settings that `--resume` takes from the command line: how long the run goes
/// and how often it writes samples and checkpoints. Everything else defines the run.
const RESUME_MAY_CHANGE: [&str; 4] = ["steps", "sample_every", "checkpoint_every", "diverge_at"];

fn json_object(cfg: &TrainConfig) -> serde_json::Map<String, serde_json::Value> {
    serde_json::to_value(cfg)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

/// Appends `[default: X]` to the help of every option that overrides a training-config
/// setting, X read from [`TrainConfig::defaults`].
pub(super) fn show_config_defaults(cmd: clap::Command) -> clap::Command {
    let d = TrainConfig::defaults();
    let loss = d
        .loss
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    let shown = [
        ("steps", d.steps.to_string()),
        ("batch", d.batch_size.to_string()),
        ("seed", d.seed.to_string()),
        ("loss", loss),
        ("ema_half_life", d.ema_half_life.to_string()),
        ("n_critic", d.n_critic.to_string()),
        ("gp_weight", d.gp_weight.to_string()),
        ("recipe", d.recipe.to_string()),
        ("drift", drift_default(&d.recipe)),
        ("r1_gamma", "0 (off)".to_string()),
        ("r1_every", R1::default().every.to_string()),
        ("style_mixing", d.style_mixing.to_string()),
        ("precision", d.precision.to_string()),
        ("diverge_at", format!("{:e}", d.diverge_at)),
        ("lr", d.optimizer.lr.to_string()),
        ("beta1", d.optimizer.beta1.to_string()),
        ("beta2", d.optimizer.beta2.to_string()),
        ("sample_every", d.sample_every.to_string()),
        ("checkpoint_every", d.checkpoint_every.to_string()),
    ];
    shown.into_iter().fold(cmd, |cmd, (id, value)| {
        cmd.mut_arg(id, |arg| {
            let with_default =
                |help: &clap::builder::StyledStr| format!("{help} [default: {value}]");
            let (help, long_help) = (
                arg.get_help().map(with_default),
                arg.get_long_help().map(with_default),
            );
            let arg = match help {
                Some(h) => arg.help(h),
                None => arg.help(format!("[default: {value}]")),
            };
            match long_help {
                Some(h) => arg.long_help(h),
                None => arg,
            }
        })
    })
}

/// The default drift weight as `--drift` shows it.
fn drift_default(recipe: &Recipe) -> String {
    match recipe.get("drift") {
        Some(PieceSpec::Drift(d)) => d.weight.to_string(),
        _ => "0 (off)".to_string(),
    }
}

/// The networks `trainer train` builds for a dataset with `num_tags` tags: the family's
/// configs with its size options and by-name settings applied (see `shared_model::arch`).
fn model_specs(a: &TrainArgs, num_tags: usize) -> Result<(GeneratorSpec, DiscriminatorSpec)> {
    let family = FamilyOptions {
        latent_dim: a.latent_dim.map(|v| v as usize),
        g_channels: a.g_channels.map(|v| v as usize),
        g_blocks: a.g_blocks.map(|v| v as usize),
        d_channels: a.d_channels.map(|v| v as usize),
        unconditional: a.unconditional,
        set_generator: a.set_generator.clone(),
        set_discriminator: a.set_discriminator.clone(),
    };
    Ok(arch::configure(&a.arch, num_tags, a.resolution, &family)?)
}

pub(super) fn train(a: TrainArgs) -> Result<()> {
    let device = device_for(a.device)?;
    let progress = !a.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let on_bad = if a.strict {
        OnBadEntry::Fail
    } else {
        OnBadEntry::Skip
    };
    let cache_dir = if a.no_cache {
        None
    } else {
        a.cache_dir.clone().or_else(default_cache_dir)
    };
    let load = |dir: &Path, res: usize| {
        note!("loading {} ...", dir.display());
        let (data, cache) =
            load_dataset_cached(dir, res, on_bad, &|_, _| {}, cache_dir.as_deref())?;
        match cache {
            CacheStatus::Off => {}
            CacheStatus::Hit(f) => note!("decoded images read from {}", f.display()),
            CacheStatus::Stored(f) => note!("decoded images cached in {}", f.display()),
            CacheStatus::Unavailable(why) => note!("note: no dataset cache ({why})"),
        }
        if !data.skipped.is_empty() {
            note!("skipped {} bad entries:", data.skipped.len());
            for b in data.skipped.iter().take(10) {
                note!("  {b}");
            }
            if data.skipped.len() > 10 {
                note!("  ... and {} more", data.skipped.len() - 10);
            }
        }
        for w in &data.warnings {
            note!("warning: {w}");
        }
        note!(
            "{} images, {} tags ({} exclusive groups, {} free)",
            data.len(),
            data.vocab.len(),
            data.vocab.groups.len(),
            data.vocab.free.len()
        );
        anyhow::Ok(data)
    };

    if let Some(path) = &a.resume {
        let run = RunDir::new(path);
        let cfg = a.resumed(run.config()?)?;
        let _lock = run.lock()?;
        let checkpoints = run.checkpoints()?;
        let data_dir = a.data.clone().unwrap_or_else(|| PathBuf::from(&cfg.data));
        let data = load(&data_dir, cfg.generator.resolution())?;
        if data.vocab != cfg.vocab {
            bail!(
                "{}: {}",
                data_dir.display(),
                vocab_difference(&cfg.vocab, &data.vocab)
            );
        }
        let mut trainer = Trainer::new(cfg.clone(), &data, &device)?;
        resume_newest_good(&mut trainer, &checkpoints)?;
        note!(
            "resuming {} from step {}",
            path.display(),
            trainer.state.step
        );
        run.write_config(&cfg)?;
        let hook = eval_hook(&a, &data_dir, &data, &run)?;
        let after = |t: &Trainer| hook.as_ref().map_or(Ok(()), |h| h.after_step(t));
        let t = run_training_with(trainer, &data, path, &RunOptions { progress }, Some(&after))?;
        note!("done: {} steps in {}", t.state.step, path.display());
        return Ok(());
    }

    let data_dir = a.data.clone().expect("clap requires --data");
    let out = a.out.clone().expect("clap requires --out");
    let data = load(&data_dir, a.resolution)?;
    let (generator, discriminator) = model_specs(&a, data.vocab.len())?;
    let cfg = a.apply(TrainConfig::new(
        generator,
        discriminator,
        data.vocab.clone(),
        data_dir.display().to_string(),
        data.name.clone(),
    ));
    cfg.generator.validate()?;
    cfg.discriminator.feature_dim()?;
    check_batch_fits(&cfg, &data, &device)?;
    let run = RunDir::next_in(&out, &data.name)?;
    let hook = eval_hook(&a, &data_dir, &data, &run)
        .and_then(|hook| run.create(&cfg).map(|()| hook))
        .inspect_err(|_| run.release())?;
    let _lock = run.lock()?;
    note!("run folder: {}", run.path().display());
    let trainer = Trainer::new(cfg, &data, &device)?;
    let after = |t: &Trainer| hook.as_ref().map_or(Ok(()), |h| h.after_step(t));
    let t = run_training_with(
        trainer,
        &data,
        run.path(),
        &RunOptions { progress },
        Some(&after),
    )?;
    note!("done: {} steps in {}", t.state.step, run.path().display());
    Ok(())
}

/// The `--eval-every` hook, when asked for: the tagger, and the data at the tagger's resolution.
fn eval_hook(
    a: &TrainArgs,
    data_dir: &Path,
    data: &Dataset,
    run: &RunDir,
) -> Result<Option<TrainEval>> {
    let (Some(tagger), Some(every)) = (&a.tagger, a.eval_every) else {
        return Ok(None);
    };
    let tagger = load_tagger(tagger, &Device::flex())?;
    let reloaded;
    let data = if data.resolution == tagger.card.resolution {
        data
    } else {
        reloaded = load_data(data_dir, tagger.card.resolution)?;
        &reloaded
    };
    let per_combo = a.eval_per_combo as usize;
    TrainEval::new(tagger, data, data_dir, run, every, per_combo).map(Some)
}

/// Why a data set's vocabulary is not the run's (`--resume`): the same tags in another order
/// (the run's `config.json` edited, say: the condition vector would change meaning), other
/// groups, or other tags, named.
fn vocab_difference(run: &TagVocab, data: &TagVocab) -> String {
    let sorted = |v: &TagVocab| {
        let mut t = v.tags.clone();
        t.sort();
        t
    };
    if run.tags != data.tags && sorted(run) == sorted(data) {
        let at = run
            .tags
            .iter()
            .zip(&data.tags)
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return format!(
            "the run's vocabulary (vocab.tags in its config.json) lists the same {} tags as the \
             data but in another order (from position {at}: the run has '{}', the data '{}'): \
             each tag's place in the condition vector would change, so the run cannot resume; \
             was config.json edited?",
            run.tags.len(),
            run.tags[at],
            data.tags[at]
        );
    }
    if run.tags == data.tags {
        return format!(
            "the run's vocabulary (config.json) has other exclusive groups than the data: the \
             run has {:?}, the data {:?}",
            run.groups.iter().map(|g| &g.name).collect::<Vec<_>>(),
            data.groups.iter().map(|g| &g.name).collect::<Vec<_>>()
        );
    }
    let only = |a: &TagVocab, b: &TagVocab| {
        let v: Vec<&str> = a
            .tags
            .iter()
            .filter(|t| !b.tags.contains(t))
            .map(String::as_str)
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "the data has other tags than the run was trained on (only in the data: {}; only in the \
         run: {})",
        only(data, run),
        only(run, data)
    )
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    fn parse(args: &[&str]) -> TrainArgs {
        let mut argv = vec!["trainer", "train", "--data", "d", "--out", "o"];
        argv.extend(args);
        let m = crate::cli::command().try_get_matches_from(argv).unwrap();
        match crate::cli::Cli::from_arg_matches(&m).unwrap().command {
            crate::cli::Command::Train(a) => *a,
            c => panic!("{c:?}"),
        }
    }

    fn parse_resume(args: &[&str]) -> Result<TrainArgs, clap::Error> {
        let mut argv = vec!["trainer", "train", "--resume", "runs/00000-x"];
        argv.extend(args);
        let m = crate::cli::command().try_get_matches_from(argv)?;
        match crate::cli::Cli::from_arg_matches(&m)?.command {
            crate::cli::Command::Train(a) => Ok(*a),
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn resume_refuses_options_that_would_change_the_run() {
        let run = parse(&["--loss", "hinge", "--lr", "1e-3"]).apply(TrainConfig::defaults());
        // How long and how often may change.
        let cfg = parse_resume(&["--steps", "9000", "--sample-every", "7"])
            .unwrap()
            .resumed(run.clone())
            .unwrap();
        assert_eq!((cfg.steps, cfg.sample_every), (9000, 7));
        assert_eq!((cfg.loss, cfg.optimizer.lr), (LossKind::Hinge, 1e-3));
        assert_eq!(cfg.pair_weights, run.pair_weights);
        // Giving the run's own value again is no change.
        assert!(
            parse_resume(&["--loss", "hinge"])
                .unwrap()
                .resumed(run.clone())
                .is_ok()
        );
        for (args, named) in [
            (&["--lr", "0.01"][..], "optimizer"),
            (&["--batch", "8"], "batch_size"),
            (&["--seed", "5"], "seed"),
            (&["--loss", "wgan-gp"], "loss"),
            (&["--drift", "0.5"], "drift"),
        ] {
            let e = parse_resume(args)
                .unwrap()
                .resumed(run.clone())
                .unwrap_err();
            let e = e.to_string();
            assert!(e.contains(named) && e.contains("new run"), "{args:?}: {e}");
        }
        // The network's shape cannot be given at all.
        for args in [
            &["--arch", "dcgan"][..],
            &["--resolution", "128"],
            &["--g-channels", "32"],
            &["--g", "res_blocks=2"],
        ] {
            assert!(parse_resume(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn options_not_given_keep_the_config_defaults() {
        let cfg = parse(&[]).apply(TrainConfig::defaults());
        assert_eq!(cfg.to_json(), TrainConfig::defaults().to_json());
    }

    #[test]
    fn options_given_override_the_config() {
        let a = parse(&[
            "--steps",
            "7",
            "--batch",
            "8",
            "--seed",
            "3",
            "--loss",
            "wgan-gp",
            "--lr",
            "1e-3",
            "--n-critic",
            "2",
            "--gp-weight",
            "5",
            "--ema-half-life",
            "50",
            "--sample-every",
            "4",
            "--checkpoint-every",
            "6",
            "--spectral-norm",
            "--drift",
            "0.01",
            "--r1-gamma",
            "10",
            "--r1-every",
            "4",
            "--beta1",
            "0",
            "--beta2",
            "0.99",
        ]);
        let cfg = a.apply(TrainConfig::defaults());
        assert_eq!(
            cfg.recipe.0,
            vec![
                PieceSpec::Drift(Drift { weight: 0.01 }),
                PieceSpec::R1(R1 {
                    gamma: 10.0,
                    every: 4
                })
            ]
        );
        assert_eq!((cfg.optimizer.beta1, cfg.optimizer.beta2), (0.0, 0.99));
        assert_eq!((cfg.steps, cfg.batch_size, cfg.seed), (7, 8, 3));
        assert_eq!(cfg.loss, LossKind::WganGp);
        assert_eq!(cfg.pair_weights, PairWeights::reference_wgan());
        assert_eq!(cfg.optimizer.lr, 1e-3);
        assert_eq!(
            cfg.optimizer.epsilon,
            TrainConfig::defaults().optimizer.epsilon
        );
        assert_eq!(
            (cfg.n_critic, cfg.gp_weight, cfg.ema_half_life),
            (2, 5.0, 50.0)
        );
        assert_eq!((cfg.sample_every, cfg.checkpoint_every), (4, 6));
        assert!(cfg.spectral_norm);
        let cfg = parse(&["--arch", "dcgan", "--unconditional"]).apply(TrainConfig::defaults());
        assert_eq!(cfg.pair_weights, PairWeights::unconditional());
    }

    #[test]
    fn precision_takes_a_name_and_refuses_what_cannot_run_here() {
        assert_eq!(
            parse(&[]).apply(TrainConfig::defaults()).precision,
            Precision::Fp32
        );
        let cfg = parse(&["--precision", "fp32"]).apply(TrainConfig::defaults());
        assert_eq!(cfg.precision, Precision::Fp32);
        let try_parse = |p: &str| {
            let argv = [
                "trainer",
                "train",
                "--data",
                "d",
                "--out",
                "o",
                "--precision",
                p,
            ];
            crate::cli::command().try_get_matches_from(argv)
        };
        let err = try_parse("fp16").unwrap_err().to_string();
        assert!(err.contains("unknown precision 'fp16'"), "{err}");
        match try_parse("bf16") {
            Ok(_) => assert!(Precision::Bf16.supported()),
            Err(e) => {
                let why = kernels::precision::bf16_missing().expect("bf16 refused: a reason");
                assert!(e.to_string().contains(why), "{e}");
            }
        }
    }

    /// Issue 31's fresh round: `--lr -1` was "unexpected argument '-1' found" with a tip to
    /// write `-- -1`; a negative number now reaches the option's own check.
    #[test]
    fn a_negative_number_is_the_options_value() {
        for opt in ["--lr", "--steps", "--ema-half-life", "--diverge-at"] {
            let argv = ["trainer", "train", "--data", "d", "--out", "o", opt, "-1"];
            let err = crate::cli::command()
                .try_get_matches_from(argv)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("invalid value '-1' for '{opt}")),
                "{opt}: {err}"
            );
        }
        // Other subcommands too.
        let argv = ["trainer", "eval", "--model", "m", "--per-combo", "-3"];
        let err = crate::cli::command()
            .try_get_matches_from(argv)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid value '-3' for '--per-combo"), "{err}");
    }

    #[test]
    fn help_shows_the_config_defaults() {
        crate::cli::command().debug_assert();
        let mut cmd = crate::cli::command();
        let help = cmd
            .find_subcommand_mut("train")
            .unwrap()
            .render_long_help()
            .to_string();
        let d = TrainConfig::defaults();
        for shown in [
            format!("Images per step [default: {}]", d.batch_size),
            format!("[default: {}]", d.steps),
            "[default: hinge]".to_string(),
            format!("[default: {}]", d.optimizer.lr),
            format!("[default: {}]", d.ema_half_life),
        ] {
            assert!(help.contains(&shown), "help lacks {shown}:\n{help}");
        }
        // The top-level command is unchanged by it.
        assert!(
            crate::cli::Cli::command()
                .render_help()
                .to_string()
                .contains("train")
        );
    }

    /// Issue 31: a run whose config.json lists its tags reversed was reported as "the data has
    /// other tags"; the message now says the order differs.
    #[test]
    fn a_reordered_run_vocabulary_is_named_as_such() {
        let sets: Vec<Vec<String>> = [["red hair", "blue eyes"], ["blonde hair", "green eyes"]]
            .iter()
            .map(|s| s.iter().map(|t| t.to_string()).collect())
            .collect();
        let data = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let mut run = data.clone();
        run.tags.reverse();
        let m = vocab_difference(&run, &data);
        assert!(
            m.contains("another order") && m.contains("config.json"),
            "{m}"
        );
        assert!(!m.contains("other tags"), "{m}");
        let mut other = data.clone();
        other.tags[0] = "pink hair".into();
        let m = vocab_difference(&other, &data);
        assert!(m.contains("other tags") && m.contains("pink hair"), "{m}");
        let mut groups = data.clone();
        groups.groups.clear();
        assert!(vocab_difference(&groups, &data).contains("exclusive groups"));
    }
}
