//! `tagger train` and `tag`: training the tag classifier, and tagging a folder of images with
//! it.

use std::path::PathBuf;

use anyhow::Result;
use burn::prelude::*;
use clap::{Args, Subcommand};
use shared_model::tagger::TaggerConfig;

use super::common::{load_data, parse_batch, parse_lr, parse_probability};
use crate::tagger::tag::{TagOptions, tag_folder};
use crate::tagger::{TaggerTrainOptions, accuracy_lines, load_tagger, train_tagger};

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

/// The tagger's image side: smaller sizes than the generator's are allowed.
fn parse_resolution(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (8..=1024).contains(&n) && n.is_power_of_two() => Ok(n),
        _ => Err(format!(
            "'{s}' is not a resolution (a power of two from 8 to 1024, e.g. 64)"
        )),
    }
}

pub(super) fn tagger(a: TaggerArgs) -> Result<()> {
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
    say!(
        "tagger '{}' written to {} ({:.0} s of training)",
        card.name,
        a.out.display(),
        card.training.seconds
    );
    say!("held-out accuracy:");
    for l in accuracy_lines(&card.heldout_accuracy) {
        say!("{l}");
    }
    Ok(())
}

pub(super) fn tag(a: TagArgs) -> Result<()> {
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
        note!("skipped unreadable image {u}");
    }
    if s.written {
        say!(
            "tagged {} images ({} with no tag above {}), kept {} existing rows: {}",
            s.tagged,
            s.empty,
            a.threshold,
            s.kept,
            a.data.join("metadata.csv").display()
        );
    } else if s.kept == 0 && s.unreadable.is_empty() {
        say!(
            "nothing to tag: {} holds no images (.png, .jpg, .jpeg, .webp or .bmp files)",
            a.data.display()
        );
    } else {
        say!(
            "nothing to tag: all {} images already have tags (use --overwrite to tag again)",
            s.kept
        );
    }
    Ok(())
}
