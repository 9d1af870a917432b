//! The `trainer` command line: clap's types, one file per subcommand (or family of them), and
//! the dispatch to the stages. The stages (`data`, `train`, `eval`, `tagger`, `model_io`,
//! `bench`) never depend on this module.

mod bench;
mod common;
mod dataset;
mod eval;
mod model_io;
mod shape;
mod tagger;
mod train;

use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use bench::BenchArgs;
pub use common::{DeviceArg, PrecisionArg};
pub use dataset::{DatasetArgs, DatasetBuildArgs, DatasetCommand, ScenesArgs};
pub use eval::EvalArgs;
pub use model_io::{
    ConvertArgs, DirectionsArgs, ExportArgs, GenerateArgs, InterpolateArgs, SealArgs,
};
pub use shape::{ShapeArgs, ShapeCheckArgs, ShapeCommand, ShapeTrainArgs};
pub use tagger::{TagArgs, TaggerArgs, TaggerCommand, TaggerTrainArgs};
pub use train::TrainArgs;

/// kyara's trainer: train a tag-conditional anime face generator, draw faces, export for the web page.
///
/// A typical session:
///
///   trainer dataset build --from my-illustrations --out my-faces --cascade lbpcascade_animeface.xml
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

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a conditional GAN on a folder of tagged faces (or resume a run).
    Train(Box<TrainArgs>),
    /// Draw faces for given tags and seeds into PNG files (plus metadata.csv).
    Generate(GenerateArgs),
    /// Export a run's EMA generator (weights + model card) for the web page.
    Export(ExportArgs),
    /// Rewrite an exported model with its weights at another precision (no retraining).
    Convert(ConvertArgs),
    /// Time training steps (every arch x loss) and generator forwards on synthetic data.
    Bench(BenchArgs),
    /// Train the tagger (tag classifier) used by `tag` and `eval`.
    Tagger(TaggerArgs),
    /// Train or check the colour-blind shape encoder that `eval` measures in beside the tagger.
    Shape(ShapeArgs),
    /// Write metadata.csv for a folder of untagged images with a trained tagger.
    Tag(TagArgs),
    /// Score a model: label accuracy, FD, KID, precision/recall vs held-out reals and the
    /// real-vs-real floor.
    Eval(EvalArgs),
    /// Draw a strip of faces between two SEED:TAGS endpoints.
    Interpolate(InterpolateArgs),
    /// Find named style-space directions (SeFa) of a StyleGAN2-style model for its sliders.
    Directions(DirectionsArgs),
    /// Build a training set from illustrations (face detection, crops, duplicates, tags).
    Dataset(DatasetArgs),
    /// Check a model or tagger card against its weights and write it back sealed (for cards
    /// written before the seal, or with --force one edited on purpose).
    Seal(SealArgs),
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::train(*a),
        Command::Generate(a) => model_io::generate(a),
        Command::Export(a) => model_io::export(a),
        Command::Convert(a) => model_io::convert(a),
        Command::Bench(a) => bench::bench(a),
        Command::Tagger(a) => tagger::tagger(a),
        Command::Shape(a) => shape::shape(a),
        Command::Tag(a) => tagger::tag(a),
        Command::Eval(a) => eval::eval(a),
        Command::Interpolate(a) => model_io::interpolate(a),
        Command::Directions(a) => model_io::directions(a),
        Command::Dataset(a) => dataset::dataset(a),
        Command::Seal(a) => model_io::seal(a),
    }
}

/// [`Cli`]'s clap command, with the defaults the training config gives shown in `train --help`.
pub fn command() -> clap::Command {
    negative_numbers_are_values(Cli::command()).mut_subcommand("train", train::show_config_defaults)
}

/// Lets every option take a negative number as its value, so that `--lr -1` or `--steps -1`
/// reaches the option's own check, which names the range that fits (clap alone reports
/// "unexpected argument '-1'" and suggests `-- -1`, which is wrong here).
fn negative_numbers_are_values(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| {
        let takes_values = a.get_action().takes_values();
        a.allow_negative_numbers(takes_values)
    })
    .mut_subcommands(negative_numbers_are_values)
}

/// Entry point of the binary: clap errors exit 2, failures print the error chain and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches())
        .unwrap_or_else(|e| e.format(&mut command()).exit());
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
