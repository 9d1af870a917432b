//! `dataset build` (illustrations -> face crops dataset) and `dataset scenes` (test pictures
//! with known faces).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use crate::dataset::scenes::{make_scenes, write_scenes};
use crate::dataset::{AutoTag, BuildOptions, Cascade, DetectParams, FaceSource, build_dataset};

#[derive(Args, Debug)]
pub struct DatasetArgs {
    #[command(subcommand)]
    pub command: DatasetCommand,
}

#[derive(Subcommand, Debug)]
pub enum DatasetCommand {
    /// Build a training set from a folder of illustrations: detect and crop faces, drop
    /// duplicates, keep the tags (writes metadata.csv + faces/).
    Build(DatasetBuildArgs),
    /// Write test scenes: face crops enlarged and pasted at known places on larger canvases
    /// (PNG files + truth.json), for measuring the face detector.
    Scenes(ScenesArgs),
}

fn parse_scale_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 1.0 && v <= 4.0 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a scale factor (a number above 1, at most 4)"
        )),
    }
}

fn parse_colour(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=255.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a colour distance (0 to 255)")),
    }
}

fn parse_margin(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=2.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a margin (a fraction of the box, 0 to 2)"
        )),
    }
}

#[derive(Args, Debug)]
pub struct DatasetBuildArgs {
    /// Folder of illustrations (searched recursively; tags from its metadata.csv or .txt
    /// sidecars are kept).
    #[arg(long)]
    pub from: PathBuf,
    /// Output dataset folder (must be empty or absent unless --force).
    #[arg(long)]
    pub out: PathBuf,
    /// OpenCV LBP cascade XML, e.g. lbpcascade_animeface.xml (from the nagadomi/lbpcascade_animeface
    /// repository on GitHub).
    #[arg(long, required_unless_present = "whole_images")]
    pub cascade: Option<PathBuf>,
    /// The inputs are face crops already: no detection, every image is one face (deduplicate,
    /// resize and keep tags only).
    #[arg(long, conflicts_with = "cascade")]
    pub whole_images: bool,
    /// Side of the written faces, pixels.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(8..=1024))]
    pub resolution: u32,
    /// Added on every side of a detected box, as a fraction of its side (0.25: the crop is 1.5x
    /// the box). 0 frames faces as anime-faces-64 is framed (its crops are ~1.04x the
    /// cascade's box), which the shipped tagger and models were trained on.
    #[arg(long, default_value_t = 0.0, value_parser = parse_margin)]
    pub margin: f32,
    /// Faces whose box is smaller than this many source pixels are skipped (and counted).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_face: u32,
    /// Near duplicates: crops whose 64-bit dHash differs in at most this many bits from a kept
    /// face's (and whose colours are within --near-colour) are dropped. "off" keeps them.
    #[arg(long, default_value = "4", value_parser = parse_near)]
    pub near_distance: NearDistance,
    /// Near duplicates: the largest mean difference of the 8x8 colour thumbnails, levels of
    /// 0-255.
    #[arg(long, default_value_t = 16.0, value_parser = parse_colour)]
    pub near_colour: f32,
    /// Detector: ratio between successive scales.
    #[arg(long, default_value_t = 1.1, value_parser = parse_scale_factor)]
    pub scale_factor: f64,
    /// Detector: a face needs more than this many overlapping raw hits.
    #[arg(long, default_value_t = 5)]
    pub min_neighbors: usize,
    /// Detector: smallest window searched, pixels.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
    pub min_size: u32,
    /// Tag the faces whose illustration has no tags with this tagger (as `trainer tag`); the
    /// lowest probability among a face's chosen tags goes to metadata.csv's tag_confidence.
    #[arg(long)]
    pub tagger: Option<PathBuf>,
    /// With --tagger: probability from which a tag is written.
    #[arg(long, default_value_t = 0.5, value_parser = super::common::parse_probability)]
    pub tag_threshold: f32,
    /// Build into a non-empty --out (its faces/ and the files a build writes are replaced).
    #[arg(long)]
    pub force: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `--near-distance`: a bit count, or off.
#[derive(Debug, Clone, Copy)]
pub struct NearDistance(pub Option<u32>);

fn parse_near(s: &str) -> Result<NearDistance, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(NearDistance(None));
    }
    match s.parse::<u32>() {
        Ok(v) if v <= 64 => Ok(NearDistance(Some(v))),
        _ => Err(format!(
            "'{s}' is not a near-duplicate distance (0 to 64 bits, or off)"
        )),
    }
}

#[derive(Args, Debug)]
pub struct ScenesArgs {
    /// Folder of face crops (e.g. ../shared/data/anime-faces-64).
    #[arg(long)]
    pub faces: PathBuf,
    /// Output folder for scene-NNN.png and truth.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of scenes.
    #[arg(long, default_value_t = 12)]
    pub count: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Turn each face by up to this many degrees either way (0: upright, the scenes of
    /// tests/reference/detect_faces.json).
    #[arg(long, default_value_t = 0.0)]
    pub max_rotation: f32,
}

pub fn dataset(args: DatasetArgs) -> Result<()> {
    match args.command {
        DatasetCommand::Build(a) => build(a),
        DatasetCommand::Scenes(a) => scenes(a),
    }
}

fn build(a: DatasetBuildArgs) -> Result<()> {
    let faces = match (&a.cascade, a.whole_images) {
        (_, true) => FaceSource::WholeImage,
        (Some(path), false) => FaceSource::Detect {
            cascade: Box::new(Cascade::load(path)?),
            params: DetectParams {
                scale_factor: a.scale_factor,
                min_neighbors: a.min_neighbors,
                min_size: (a.min_size, a.min_size),
                max_size: None,
                equalize: true,
            },
        },
        (None, false) => bail!("give --cascade FILE (or --whole-images for folders of face crops)"),
    };
    let tagger = match &a.tagger {
        Some(path) => Some(AutoTag {
            tagger: crate::tagger::load_tagger(path, &burn::prelude::Device::flex())?,
            threshold: a.tag_threshold,
        }),
        None => None,
    };
    let opts = BuildOptions {
        tagger,
        from: a.from,
        out: a.out,
        faces,
        resolution: a.resolution,
        margin: a.margin,
        min_face: a.min_face,
        near_distance: a.near_distance.0,
        near_colour: a.near_colour,
        force: a.force,
        progress: !a.quiet,
    };
    let s = build_dataset(&opts)?;
    for u in &s.unreadable {
        note!("skipped: {u}");
    }
    say!(
        "{} illustrations: {} read, {} unreadable, {} exact duplicates (of {} files)",
        s.illustrations,
        s.read,
        s.unreadable.len(),
        s.exact_duplicates,
        s.exact_groups
    );
    let near = match opts.near_distance {
        Some(d) => format!(
            "{} near duplicates (of {} faces, dHash distance <= {d}, colours within {})",
            s.near_duplicates, s.near_groups, opts.near_colour
        ),
        None => "near duplicates kept".to_string(),
    };
    say!(
        "{} faces found: {} smaller than {} px, {near}; {} written to {}",
        s.faces_found,
        s.too_small,
        opts.min_face,
        s.written,
        opts.out.display()
    );
    say!(
        "decoding + detection: {:.1} megapixels in {:.1} s ({:.2} MP/s)",
        s.megapixels,
        s.detect_seconds,
        s.megapixels / s.detect_seconds.max(1e-9)
    );
    if opts.tagger.is_some() {
        say!("{} faces tagged by the tagger", s.tagged);
    }
    if s.untagged > 0 && opts.tagger.is_some() {
        say!(
            "{} faces have no tags (none reached --tag-threshold): `trainer train` skips them",
            s.untagged
        );
    } else if s.untagged > 0 {
        say!(
            "{} faces have no tags (no metadata.csv row or .txt sidecar for their source): \
             `trainer train` skips them; --tagger (or `trainer tag --data {}`) can tag them",
            s.untagged,
            opts.out.display()
        );
    }
    say!(
        "duplicates are listed in {}",
        opts.out.join("duplicates.csv").display()
    );
    Ok(())
}

fn scenes(a: ScenesArgs) -> Result<()> {
    if !(0.0..=45.0).contains(&a.max_rotation) {
        bail!("--max-rotation must be 0 to 45 degrees");
    }
    let scenes = make_scenes(&a.faces, a.count, a.seed, a.max_rotation)?;
    write_scenes(&scenes, a.seed, &a.out)?;
    let faces: usize = scenes.iter().map(|s| s.faces.len()).sum();
    say!(
        "{} scenes with {faces} faces written to {}",
        scenes.len(),
        a.out.display()
    );
    Ok(())
}
