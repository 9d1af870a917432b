//! The `trainer` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Parser, Subcommand, ValueEnum};
use shared_model::{
    DcganDiscriminatorConfig, DcganGeneratorConfig, DiscriminatorConfig, DiscriminatorSpec,
    GeneratorConfig, GeneratorSpec, WeightsDtype,
};

use crate::data::{CacheStatus, OnBadEntry, default_cache_dir, load_dataset_cached};
use crate::fsutil::write_atomic;
use crate::losses::{LossKind, PairWeights};
use crate::train::{
    RunOptions, TrainConfig, Trainer, latest_checkpoint, load_run_config, run_training_with,
};

/// kyara's trainer: train a tag-conditional anime face generator, draw faces, export for the web page.
///
/// A typical session:
///
///   trainer train --data ../shared/data/anime-faces-64 --out runs --steps 2000
///
///   trainer generate --model runs/00000-anime-faces-64 --tags "blonde hair, blue eyes" --seeds 0-15 --out faces
///
///   trainer export --run runs/00000-anime-faces-64 --out www/models/anime64
///
///   trainer convert --model www/models/anime64 --precision f16 --out www/models/anime64
#[derive(Parser, Debug)]
#[command(name = "trainer", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a conditional GAN on a folder of tagged faces (or resume a run).
    Train(TrainArgs),
    /// Draw faces for given tags and seeds into PNG files (plus metadata.csv).
    Generate(GenerateArgs),
    /// Export a run's EMA generator (weights + model card) for the web page.
    Export(ExportArgs),
    /// Rewrite an exported model with its weights at another precision (no retraining).
    Convert(ConvertArgs),
    /// Time training steps (every arch x loss) and generator forwards on synthetic data.
    Bench(BenchArgs),
    /// Train the tagger (tag classifier) used by `tag` and `eval`.
    Tagger(crate::cli_eval::TaggerArgs),
    /// Write metadata.csv for a folder of untagged images with a trained tagger.
    Tag(crate::cli_eval::TagArgs),
    /// Score a model: label accuracy, FD, KID, precision/recall vs held-out reals and the
    /// real-vs-real floor.
    Eval(crate::cli_eval::EvalArgs),
    /// Draw a strip of faces between two SEED:TAGS endpoints.
    Interpolate(crate::cli_eval::InterpolateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// Pure-Rust CPU backend (Burn Flex).
    Cpu,
    /// GPU through wgpu (Vulkan/Metal/DX12).
    Wgpu,
}

/// How exported weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Half precision: half the bytes; loaders widen it to f32 and compute in f32
    /// (BatchNorm stays f32).
    F16,
    /// Single precision: exactly the trained values.
    F32,
    /// Linear layers' weights as 8-bit integers with a scale per output, the rest as f16.
    Int8,
}

impl From<PrecisionArg> for WeightsDtype {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F16 => WeightsDtype::F16,
            PrecisionArg::F32 => WeightsDtype::F32,
            PrecisionArg::Int8 => WeightsDtype::Int8,
        }
    }
}

/// Architecture family of `trainer train --arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// Residual generator with pixel-shuffle upsampling + residual projection critic (the reference design).
    ResnetCgan,
    /// DCGAN: transposed convolutions + batch norm + ReLU; strided-convolution critic.
    Dcgan,
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
    /// Total training steps (one D and one G update each); with --resume, the new total.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: Option<u64>,
    /// Images per step.
    #[arg(long, default_value_t = 32, value_parser = parse_batch)]
    pub batch: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Seed of initialisation and of the training data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Architecture family.
    #[arg(long, value_enum, default_value_t = ArchArg::ResnetCgan)]
    pub arch: ArchArg,
    /// Ignore the tags (DCGAN only): G draws from noise alone and the critic scores images only.
    #[arg(long)]
    pub unconditional: bool,
    /// Adversarial loss. Conditional models also show D real images with wrong tags (negative
    /// samples); wgan-gp uses the reference weights -2 E[real] + 1.5 E[fake] + 0.5 E[wrong].
    #[arg(long, value_enum, default_value_t = LossKind::WganGp)]
    pub loss: LossKind,
    /// Spectral normalisation of every critic weight (power iteration, one step per update).
    #[arg(long)]
    pub spectral_norm: bool,
    /// EMA half-life of the generator weights, in images.
    #[arg(long, default_value_t = 10000.0, value_parser = parse_half_life)]
    pub ema_half_life: f64,
    /// Discriminator (critic) updates per generator update, each on a fresh batch.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub n_critic: u64,
    /// Weight (lambda) of the gradient penalty of --loss wgan-gp.
    #[arg(long, default_value_t = 20.0, value_parser = parse_gp_weight)]
    pub gp_weight: f64,
    /// Image side in pixels (64, 128, ...); other sizes in the data are resized.
    #[arg(long, default_value_t = 64, value_parser = parse_resolution)]
    pub resolution: usize,
    /// Generator channels: the residual trunk's (default 64), or DCGAN's last hidden map's,
    /// doubled per stage towards 4x4 (default 32).
    #[arg(long, value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub g_channels: Option<u64>,
    /// Generator residual blocks (default 4; DCGAN: 0, blocks run at 16x16).
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub g_blocks: Option<u64>,
    /// Discriminator channels of the first stage, doubled per stage.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub d_channels: u64,
    /// Size of the latent vector (noise), e.g. 64, 96 or 128.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub latent_dim: u64,
    /// Learning rate of both Adam optimisers (beta1 0.5, beta2 0.999).
    #[arg(long, default_value_t = 2e-4, value_parser = parse_lr)]
    pub lr: f64,
    /// Write a sample sheet every N steps.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_every: u64,
    /// Write a checkpoint every N steps.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_every: u64,
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

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Model card (model.json) or the folder holding it.
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated tags, e.g. "blonde hair, blue eyes"; open groups are drawn per seed.
    #[arg(long, default_value = "")]
    pub tags: String,
    /// Seeds: 42, 0-15 or 1,5,9-11 [default: the link's seed, else 0-15].
    #[arg(long)]
    pub seeds: Option<String>,
    /// A permalink of the page, e.g. '#model=anime64&seed=42&tags=blonde_hair&s=blonde_hair:1.2&v=7:0.35'
    /// (or the whole URL): draws the same pixels as the page (tags, strengths, variations, directions).
    #[arg(long, conflicts_with_all = ["tags", "spec"])]
    pub link: Option<String>,
    /// A file holding a permalink (the same text as --link).
    #[arg(long, conflicts_with = "tags")]
    pub spec: Option<PathBuf>,
    /// Output folder for seedNNNN.png files and metadata.csv.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write all faces as one sheet to this PNG.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run folder to export (its newest checkpoint's EMA generator).
    #[arg(long)]
    pub run: PathBuf,
    /// Output folder, e.g. www/models/anime64.
    #[arg(long)]
    pub out: PathBuf,
    /// Model name in the card (default: the output folder's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Storage precision of the weights.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Model card (model.json) or the folder holding it.
    #[arg(long)]
    pub model: PathBuf,
    /// Output folder (may be the model's own folder: the files are replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Storage precision of the written weights.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F16)]
    pub precision: PrecisionArg,
    /// Seeds whose faces are compared between the source and the written model.
    #[arg(long, default_value = "0-63")]
    pub check_seeds: String,
    /// Also write the report (sizes, pixel differences) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Images per training step.
    #[arg(long, default_value_t = 64, value_parser = parse_batch)]
    pub batch: usize,
    /// Timed steps per case (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub steps: u64,
    /// Untimed warm-up steps per case.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub warmup: u64,
    #[arg(long, default_value_t = 64, value_parser = parse_resolution)]
    pub resolution: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Time single layers (forward, forward + backward) instead of whole steps.
    #[arg(long)]
    pub ops: bool,
    /// Only these architectures (repeat or comma-separate; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub arch: Vec<ArchArg>,
    /// Only these losses (repeat or comma-separate; default: all, each also with spectral norm
    /// for hinge).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub loss: Vec<LossKind>,
    /// With `--ops`: only the layers whose name contains this text (e.g. `conv_transpose2d`).
    #[arg(long, requires = "ops")]
    pub only: Option<String>,
}

pub(crate) fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (2..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a batch size (a whole number from 2 to 4096)"
        )),
    }
}

fn parse_resolution(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (16..=1024).contains(&n) && n.is_power_of_two() => Ok(n),
        _ => Err(format!(
            "'{s}' is not a resolution (a power of two from 16 to 1024, e.g. 64)"
        )),
    }
}

pub(crate) fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a learning rate (a number between 0 and 1, e.g. 2e-4)"
        )),
    }
}

fn parse_gp_weight(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1e4).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a penalty weight (a number from 0 to 10000, e.g. 20)"
        )),
    }
}

fn parse_half_life(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a half-life (a positive number of images, e.g. 10000)"
        )),
    }
}

fn device_for(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => Device::wgpu_options().init().map_err(|e| {
            anyhow::anyhow!(
                "--device wgpu: no usable GPU adapter ({e}); check the GPU driver and Vulkan \
                 loader, or use --device cpu"
            )
        }),
        #[cfg(not(feature = "wgpu"))]
        DeviceArg::Wgpu => bail!(
            "this trainer was built without the GPU backend; --device wgpu needs a build with \
             the `wgpu` feature (see the README); use --device cpu"
        ),
    }
}

fn next_run_dir(out: &Path, data_name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut max = None;
    for e in std::fs::read_dir(out)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
            max = Some(max.map_or(n, |m: u32| m.max(n)));
        }
    }
    let id = max.map_or(0, |m| m + 1);
    Ok(out.join(format!("{id:05}-{data_name}")))
}

fn train(a: TrainArgs) -> Result<()> {
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
        eprintln!("loading {} ...", dir.display());
        let (data, cache) =
            load_dataset_cached(dir, res, on_bad, &|_, _| {}, cache_dir.as_deref())?;
        match cache {
            CacheStatus::Off => {}
            CacheStatus::Hit(f) => eprintln!("decoded images read from {}", f.display()),
            CacheStatus::Stored(f) => eprintln!("decoded images cached in {}", f.display()),
            CacheStatus::Unavailable(why) => eprintln!("note: no dataset cache ({why})"),
        }
        if !data.skipped.is_empty() {
            eprintln!("skipped {} bad entries:", data.skipped.len());
            for b in data.skipped.iter().take(10) {
                eprintln!("  {b}");
            }
            if data.skipped.len() > 10 {
                eprintln!("  ... and {} more", data.skipped.len() - 10);
            }
        }
        eprintln!(
            "{} images, {} tags ({} exclusive groups, {} free)",
            data.len(),
            data.vocab.len(),
            data.vocab.groups.len(),
            data.vocab.free.len()
        );
        anyhow::Ok(data)
    };

    if let Some(run) = a.resume {
        let mut cfg = load_run_config(&run)?;
        let ckpt = latest_checkpoint(&run)?;
        if let Some(steps) = a.steps {
            cfg.steps = steps;
        }
        let data_dir = a.data.unwrap_or_else(|| PathBuf::from(&cfg.data));
        let data = load(&data_dir, cfg.generator.resolution())?;
        if data.vocab != cfg.vocab {
            bail!(
                "{} has other tags than the run was trained on",
                data_dir.display()
            );
        }
        let mut trainer = Trainer::new(cfg.clone(), &data, &device)?;
        trainer.load_checkpoint(&ckpt)?;
        eprintln!(
            "resuming {} from step {}",
            run.display(),
            trainer.state.step
        );
        write_atomic(
            &run.join("config.json"),
            serde_json::to_string_pretty(&cfg)?.as_bytes(),
        )?;
        let hook = eval_hook(
            &a.tagger,
            a.eval_every,
            a.eval_per_combo,
            &data_dir,
            &data,
            &run,
        )?;
        let after = |t: &Trainer| hook.as_ref().map_or(Ok(()), |h| h.after_step(t));
        let t = run_training_with(trainer, &data, &run, &RunOptions { progress }, Some(&after))?;
        eprintln!("done: {} steps in {}", t.state.step, run.display());
        return Ok(());
    }

    let data_dir = a.data.expect("clap requires --data");
    let out = a.out.expect("clap requires --out");
    let data = load(&data_dir, a.resolution)?;
    let t = data.vocab.len();
    let (generator, discriminator) = match a.arch {
        ArchArg::ResnetCgan => {
            if a.unconditional {
                bail!("--unconditional needs --arch dcgan (resnet-cgan is always conditional)");
            }
            (
                GeneratorSpec::Resnet(
                    GeneratorConfig::new(t)
                        .with_resolution(a.resolution)
                        .with_channels(a.g_channels.unwrap_or(64) as usize)
                        .with_res_blocks(a.g_blocks.unwrap_or(4) as usize)
                        .with_latent_dim(a.latent_dim as usize),
                ),
                DiscriminatorSpec::Resnet(
                    DiscriminatorConfig::new(t)
                        .with_resolution(a.resolution)
                        .with_channels(a.d_channels as usize),
                ),
            )
        }
        ArchArg::Dcgan => (
            GeneratorSpec::Dcgan(
                DcganGeneratorConfig::new(t)
                    .with_conditional(!a.unconditional)
                    .with_resolution(a.resolution)
                    .with_channels(a.g_channels.unwrap_or(32) as usize)
                    .with_res_blocks(a.g_blocks.unwrap_or(0) as usize)
                    .with_latent_dim(a.latent_dim as usize),
            ),
            DiscriminatorSpec::Dcgan(
                DcganDiscriminatorConfig::new(t)
                    .with_conditional(!a.unconditional)
                    .with_resolution(a.resolution)
                    .with_channels(a.d_channels as usize),
            ),
        ),
    };
    let pair_weights = match (a.loss, a.unconditional) {
        (_, true) => PairWeights::unconditional(),
        (LossKind::WganGp, false) => PairWeights::reference_wgan(),
        (_, false) => PairWeights::default(),
    };
    let cfg = TrainConfig::new(
        generator,
        discriminator,
        data.vocab.clone(),
        data_dir.display().to_string(),
        data.name.clone(),
    )
    .with_batch_size(a.batch)
    .with_steps(a.steps.unwrap_or(2000))
    .with_seed(a.seed)
    .with_loss(a.loss)
    .with_pair_weights(pair_weights)
    .with_spectral_norm(a.spectral_norm)
    .with_ema_half_life(a.ema_half_life)
    .with_gp_weight(a.gp_weight)
    .with_n_critic(a.n_critic as usize)
    .with_lr(a.lr)
    .with_sample_every(a.sample_every)
    .with_checkpoint_every(a.checkpoint_every);
    cfg.generator.validate()?;
    cfg.discriminator.feature_dim()?;
    let run = next_run_dir(&out, &data.name)?;
    let hook = eval_hook(
        &a.tagger,
        a.eval_every,
        a.eval_per_combo,
        &data_dir,
        &data,
        &run,
    )?;
    std::fs::create_dir_all(&run)?;
    write_atomic(
        &run.join("config.json"),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    eprintln!("run folder: {}", run.display());
    let trainer = Trainer::new(cfg, &data, &device)?;
    let after = |t: &Trainer| hook.as_ref().map_or(Ok(()), |h| h.after_step(t));
    let t = run_training_with(trainer, &data, &run, &RunOptions { progress }, Some(&after))?;
    eprintln!("done: {} steps in {}", t.state.step, run.display());
    Ok(())
}

/// The `--eval-every` hook, when asked for.
fn eval_hook(
    tagger: &Option<PathBuf>,
    every: Option<u64>,
    per_combo: u64,
    data_dir: &Path,
    data: &crate::data::Dataset,
    run: &Path,
) -> Result<Option<crate::cli_eval::TrainEval>> {
    match (tagger, every) {
        (Some(t), Some(k)) => Ok(Some(crate::cli_eval::TrainEval::new(
            t,
            data_dir,
            data,
            run,
            k,
            per_combo as usize,
        )?)),
        _ => Ok(None),
    }
}

fn generate(a: GenerateArgs) -> Result<()> {
    let seeds = a
        .seeds
        .as_deref()
        .map(crate::generate::parse_seeds)
        .transpose()?;
    let link = match (&a.link, &a.spec) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read face spec {}", path.display()))?,
        ),
        (None, None) => None,
    };
    // A run folder is accepted too: it is exported to a temporary card first.
    let device = Device::flex();
    let model = crate::cli_eval::load_model_or_run(&a.model, &device)?;
    let what = if a.link.is_some() { "--link" } else { "--spec" };
    let (spec, seeds) = crate::generate::spec_and_seeds(&model, &a.tags, link.as_deref(), seeds)
        .with_context(|| what.to_string())?;
    if let Some(m) = &spec.model {
        let folder = a
            .model
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        if *m != model.card.name && Some(m) != folder.as_ref() {
            eprintln!(
                "note: the link is for model '{m}'; drawing with '{}'",
                model.card.name
            );
        }
    }
    let written =
        crate::generate::generate_spec(&model, &spec, &seeds, &a.out, a.sheet.as_deref())?;
    eprintln!("wrote {} files to {}", written.len(), a.out.display());
    Ok(())
}

fn export(a: ExportArgs) -> Result<()> {
    let name = match a.name {
        Some(n) => n,
        None => a
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    let report = crate::export::export(&a.run, &a.out, &name, a.precision.into())?;
    let card = &report.card;
    eprintln!(
        "exported '{}' ({} steps, {} tags) to {}: weights {} bytes ({})",
        card.name,
        card.training.steps,
        card.vocab.len(),
        a.out.display(),
        report.bytes,
        card.weights_dtype
    );
    if let Some(e) = report.error {
        eprintln!(
            "faces of {} seeds vs f32: max abs difference {} of 255, mean {:.4}",
            e.faces, e.max, e.mean
        );
    }
    Ok(())
}

fn convert(a: ConvertArgs) -> Result<()> {
    let seeds = crate::generate::parse_seeds(&a.check_seeds)?;
    let r = crate::export::convert(&a.model, &a.out, a.precision.into(), &seeds)?;
    eprintln!(
        "{} -> {}: weights {} -> {} bytes ({} -> {}); faces of {} seeds: max abs difference {} \
         of 255, mean {:.4}",
        a.model.display(),
        a.out.display(),
        r.bytes_before,
        r.bytes_after,
        r.from,
        r.to,
        r.error.faces,
        r.error.max,
        r.error.mean
    );
    if let Some(path) = a.json {
        write_atomic(&path, serde_json::to_string_pretty(&r)?.as_bytes())?;
    }
    Ok(())
}

fn bench(a: BenchArgs) -> Result<()> {
    let device = device_for(a.device)?;
    if a.ops {
        let report = crate::bench_ops::run(a.batch, 10, a.only.as_deref(), &device);
        println!("{}", crate::bench_ops::markdown(&report));
        if let Some(path) = a.json {
            write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        }
        return Ok(());
    }
    let opts = crate::bench::BenchOptions {
        batch: a.batch,
        warmup: a.warmup as usize,
        steps: a.steps as usize,
        resolution: a.resolution,
        forward_batches: vec![1, 16, 64],
        archs: a
            .arch
            .iter()
            .map(|x| match x {
                ArchArg::ResnetCgan => shared_model::ARCH_RESNET,
                ArchArg::Dcgan => shared_model::ARCH_DCGAN,
            })
            .collect(),
        losses: a.loss.clone(),
        peak_sizes: vec![512, 1024, 2048],
    };
    let report = crate::bench::run(&opts, &device)?;
    println!("{}", crate::bench::markdown(&report));
    if let Some(path) = a.json {
        write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train(a),
        Command::Generate(a) => generate(a),
        Command::Export(a) => export(a),
        Command::Convert(a) => convert(a),
        Command::Bench(a) => bench(a),
        Command::Tagger(a) => crate::cli_eval::tagger(a),
        Command::Tag(a) => crate::cli_eval::tag(a),
        Command::Eval(a) => crate::cli_eval::eval(a),
        Command::Interpolate(a) => crate::cli_eval::interpolate_cmd(a),
    }
}

/// Entry point of the binary: clap errors exit 2, failures print the error chain and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
