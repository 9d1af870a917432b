//! The measuring commands of the CLI: `tagger train`, `tag`, `eval`, `interpolate`, and the
//! `train --eval-every` hook.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Subcommand};
use shared_model::card::LoadedModel;
use shared_model::tagger::TaggerConfig;

use crate::cli::{parse_batch, parse_lr};
use crate::data::{OnBadEntry, load_dataset};
use crate::eval::{EvalContext, report_table, write_sheets};
use crate::fsutil::{png_bytes, sheet, write_atomic};
use crate::interpolate::{interpolate, parse_endpoint};
use crate::tag::{TagOptions, tag_folder};
use crate::tagger::{TaggerTrainOptions, accuracy_lines, load_tagger, train_tagger};
use crate::train::Trainer;

#[derive(Args, Debug)]
pub struct TaggerArgs {
    #[command(subcommand)]
    pub command: TaggerCommand,
}

#[derive(Subcommand, Debug)]
pub enum TaggerCommand {
    /// Train a tagger (tag classifier) on a tagged dataset; writes tagger.json + tagger.bpk.
    Train(TaggerTrainArgs),
}

#[derive(Args, Debug)]
pub struct TaggerTrainArgs {
    /// Dataset folder (metadata.csv or .txt sidecars).
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for tagger.json and tagger.bpk.
    #[arg(long)]
    pub out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Images per step.
    #[arg(long, default_value_t = 64, value_parser = parse_batch)]
    pub batch: usize,
    /// Seed of initialisation and of the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Peak learning rate (Adam; warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3, value_parser = parse_lr)]
    pub lr: f64,
    /// Percentage of images held out for measuring accuracy (by file-name hash).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub holdout: u32,
    /// Image side the tagger reads (data of other sizes is resized).
    #[arg(long, default_value_t = 64, value_parser = parse_resolution)]
    pub resolution: usize,
    /// Channels after the stem (doubled per stage up to 3x this).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=512))]
    pub channels: u64,
    /// Largest random shift of the augmentation, in pixels.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(0..=32))]
    pub max_shift: u64,
    /// Print a progress line every N steps.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// Tagger card (tagger.json) or the folder holding it.
    #[arg(long)]
    pub tagger: PathBuf,
    /// Folder of images; its metadata.csv is written (existing rows are kept).
    #[arg(long)]
    pub data: PathBuf,
    /// Probability from which a tag is written.
    #[arg(long, default_value_t = 0.5, value_parser = parse_probability)]
    pub threshold: f32,
    /// Tag every image again, replacing the tags of existing rows.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model card (model.json), the folder holding it, or a run folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Tagger card (tagger.json) or the folder holding it.
    #[arg(long)]
    pub tagger: PathBuf,
    /// Dataset folder: its tag combinations are drawn, its held-out images are the reference.
    #[arg(long)]
    pub data: PathBuf,
    /// Faces per tag combination.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub per_combo: u64,
    /// First seed (faces use seed + combination * per-combo + j).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for good.png / bad.png sheets (highest / lowest tagger confidence) and sheets.csv.
    #[arg(long)]
    pub sheets: Option<PathBuf>,
    /// Faces per sheet.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub sheet_size: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    /// Model card (model.json), the folder holding it, or a run folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Start: SEED, SEED:TAGS or a page permalink, e.g. "1:blonde hair, blue eyes" or
    /// "#seed=1&tags=blonde_hair&s=blonde_hair:1.2".
    #[arg(long)]
    pub from: String,
    /// End: SEED, SEED:TAGS or a page permalink.
    #[arg(long)]
    pub to: String,
    /// Faces in the strip, the endpoints included.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=256))]
    pub steps: u64,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_resolution(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (8..=1024).contains(&n) && n.is_power_of_two() => Ok(n),
        _ => Err(format!(
            "'{s}' is not a resolution (a power of two from 8 to 1024, e.g. 64)"
        )),
    }
}

fn parse_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a probability (a number from 0 to 1, e.g. 0.5)"
        )),
    }
}

/// Loads a model card folder/file, or exports a run folder (f32, exactly as trained) to a
/// temporary card first.
pub fn load_model_or_run(path: &Path, device: &Device) -> Result<LoadedModel> {
    if path.join("config.json").is_file() && !path.join("model.json").is_file() {
        let tmp = tempfile::tempdir()?;
        crate::export::export(path, tmp.path(), "run", shared_model::WeightsDtype::F32)?;
        crate::generate::load_model(tmp.path(), device)
    } else {
        crate::generate::load_model(path, device)
    }
}

fn load_data(dir: &Path, res: usize) -> Result<crate::data::Dataset> {
    eprintln!("loading {} ...", dir.display());
    let data = load_dataset(dir, res, OnBadEntry::Skip, &|_, _| {})?;
    if !data.skipped.is_empty() {
        eprintln!("skipped {} bad entries", data.skipped.len());
    }
    Ok(data)
}

pub fn tagger(a: TaggerArgs) -> Result<()> {
    match a.command {
        TaggerCommand::Train(a) => tagger_train(a),
    }
}

fn tagger_train(a: TaggerTrainArgs) -> Result<()> {
    let data = load_data(&a.data, a.resolution)?;
    let ch = a.channels as usize;
    let config = TaggerConfig::new(data.vocab.len())
        .with_resolution(a.resolution)
        .with_channels(ch)
        .with_max_channels(3 * ch)
        .with_final_size(4.min(a.resolution / 2));
    config.validate()?;
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tagger".into());
    let opts = TaggerTrainOptions {
        steps: a.steps,
        batch: a.batch,
        seed: a.seed,
        lr: a.lr,
        holdout: a.holdout,
        max_shift: a.max_shift as usize,
        config,
        name,
        log_every: a.log_every,
    };
    let card = train_tagger(&data, &a.data, &a.out, &opts)?;
    println!(
        "tagger '{}' written to {} ({:.0} s of training)",
        card.name,
        a.out.display(),
        card.training.seconds
    );
    println!("held-out accuracy:");
    for l in accuracy_lines(&card.heldout_accuracy) {
        println!("{l}");
    }
    Ok(())
}

pub fn tag(a: TagArgs) -> Result<()> {
    let device = Device::flex();
    let tagger = load_tagger(&a.tagger, &device)?;
    let s = tag_folder(
        &tagger,
        &a.data,
        TagOptions {
            threshold: a.threshold,
            overwrite: a.overwrite,
        },
    )?;
    for u in &s.unreadable {
        eprintln!("skipped unreadable image {u}");
    }
    if s.written {
        println!(
            "tagged {} images ({} with no tag above {}), kept {} existing rows: {}",
            s.tagged,
            s.empty,
            a.threshold,
            s.kept,
            a.data.join("metadata.csv").display()
        );
    } else {
        println!(
            "nothing to tag: all {} images already have tags (use --overwrite to tag again)",
            s.kept
        );
    }
    Ok(())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let device = Device::flex();
    let tagger = load_tagger(&a.tagger, &device)?;
    let model = load_model_or_run(&a.model, &device)?;
    let data = load_data(&a.data, tagger.card.resolution)?;
    let ctx = EvalContext::new(tagger, &data, &a.data, a.per_combo as usize, a.seed)?;
    eprintln!(
        "drawing {} faces ({} tag combinations x {}) ...",
        ctx.combos() * ctx.per_combo,
        ctx.combos(),
        ctx.per_combo
    );
    let (report, faces) = ctx.evaluate(
        &model.card.vocab,
        model.card.generator.latent_dim(),
        &|z, c| model.generator.forward(z, c),
        &model.device,
    )?;
    print!("{}", report_table(&report));
    if let Some(p) = &a.json {
        let json = serde_json::json!({
            "model": a.model.display().to_string(),
            "tagger": a.tagger.display().to_string(),
            "data": a.data.display().to_string(),
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            "report": report,
        });
        write_atomic(p, serde_json::to_string_pretty(&json)?.as_bytes())?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(dir) = &a.sheets {
        write_sheets(&faces, dir, a.sheet_size as usize)?;
        eprintln!(
            "wrote good.png, bad.png and sheets.csv to {}",
            dir.display()
        );
    }
    Ok(())
}

pub fn interpolate_cmd(a: InterpolateArgs) -> Result<()> {
    let from = parse_endpoint(&a.from).context("--from")?;
    let to = parse_endpoint(&a.to).context("--to")?;
    let device = Device::flex();
    let model = load_model_or_run(&a.model, &device)?;
    let frames = interpolate(&model, &from, &to, a.steps as usize)?;
    let side = model.card.resolution;
    write_atomic(&a.out, &png_bytes(&sheet(&frames, side, frames.len()))?)?;
    eprintln!("wrote {} faces to {}", frames.len(), a.out.display());
    Ok(())
}

/// The `train --eval-every K --tagger T` hook: every K steps (and at the end) the EMA generator
/// is evaluated and one JSON line is appended to `RUN/metric-tagger-eval.jsonl`.
pub struct TrainEval {
    ctx: EvalContext,
    every: u64,
    file: PathBuf,
}

impl TrainEval {
    pub fn new(
        tagger: &Path,
        data_dir: &Path,
        data: &crate::data::Dataset,
        run: &Path,
        every: u64,
        per_combo: usize,
    ) -> Result<Self> {
        if every == 0 {
            bail!("--eval-every must be at least 1");
        }
        let t = load_tagger(tagger, &Device::flex())?;
        let reloaded;
        let data = if data.resolution == t.card.resolution {
            data
        } else {
            reloaded = load_data(data_dir, t.card.resolution)?;
            &reloaded
        };
        let ctx =
            EvalContext::new(t, data, data_dir, per_combo, 0).context("preparing --eval-every")?;
        Ok(Self {
            ctx,
            every,
            file: run.join("metric-tagger-eval.jsonl"),
        })
    }

    /// Runs after every step; evaluates on multiples of `every` and at the last step.
    pub fn after_step(&self, t: &Trainer) -> Result<()> {
        let step = t.state.step;
        if !(step.is_multiple_of(self.every) || step == t.cfg.steps) {
            return Ok(());
        }
        let (report, _) = self.ctx.evaluate(
            &t.cfg.vocab,
            t.cfg.generator.latent_dim(),
            &|z, c| t.g_ema.forward(z, c),
            &Device::flex(),
        )?;
        let line = serde_json::json!({
            "step": step,
            "images_seen": t.state.images_seen,
            "train_seconds": t.state.seconds,
            "report": report,
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
            .with_context(|| format!("cannot open {}", self.file.display()))?;
        writeln!(f, "{line}")?;
        eprintln!(
            "eval at step {step}: label accuracy {:.1} %, FD {:.3} (floor {:.3}), KID {:.4}",
            100.0 * report.label_accuracy.all,
            report.generated_vs_heldout.fd,
            report.real_train_vs_heldout.fd,
            report.generated_vs_heldout.kid
        );
        Ok(())
    }
}
