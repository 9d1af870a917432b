//! `shape train` and `shape check`: the colour-blind shape encoder that `eval` measures in
//! beside the tagger, and the held-out checks of what its features see.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use clap::{Args, Subcommand};
use shared_model::sample::{FaceRequest, to_rgba};
use shared_model::shape::ShapeEncoderConfig;
use shared_model::tagger::HoldoutSplit;

use super::common::{load_data, parse_batch, parse_lr};
use crate::fsutil::{png_bytes, sheet, write_atomic};
use crate::model_io::load_model_or_run;
use crate::shape::augment::Augment;
use crate::shape::{
    CopyCheck, DEFAULT_SHAPE, ShapeTrainOptions, copies_of, copy_check, load_shape,
    neighbour_tiles, to_matrix, train_shape,
};
use crate::tagger::{heldout_mask, load_tagger, read_images};

#[derive(Args, Debug)]
pub struct ShapeArgs {
    #[command(subcommand)]
    pub command: ShapeCommand,
}

#[derive(Subcommand, Debug)]
pub enum ShapeCommand {
    /// Train the colour-blind shape encoder (self-supervised, NT-Xent); writes shape.json +
    /// shape.bpk.
    Train(ShapeTrainArgs),
    /// Measure on held-out faces how the encoder's features and the tagger's find recoloured,
    /// shifted, mirrored copies and how far apart they put different faces with the same tags.
    Check(ShapeCheckArgs),
}

#[derive(Args, Debug)]
pub struct ShapeTrainArgs {
    /// Dataset folder (metadata.csv or .txt sidecars).
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for shape.json and shape.bpk.
    #[arg(long)]
    pub out: PathBuf,
    /// Training steps.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// Faces per step (each seen as two views, so 2x this many images per step).
    #[arg(long, default_value_t = 64, value_parser = parse_batch)]
    pub batch: usize,
    /// Seed of initialisation, data order and augmentations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Peak learning rate (Adam; warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3, value_parser = parse_lr)]
    pub lr: f64,
    /// NT-Xent temperature.
    #[arg(long, default_value_t = 0.2, value_parser = parse_temperature)]
    pub temperature: f64,
    /// Percentage of images held out (by file-name hash, the tagger's rule: keep it equal to
    /// the tagger's so eval's held-out faces were seen by neither network).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub holdout: u32,
    /// Image side the encoder reads (data of other sizes is resized).
    #[arg(long, default_value_t = 64, value_parser = super::common::parse_resolution)]
    pub resolution: usize,
    /// Channels after the stem (doubled per stage up to 2x this).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(2..=512))]
    pub channels: u64,
    /// Print a progress line every N steps.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_every: u64,
}

#[derive(Args, Debug)]
pub struct ShapeCheckArgs {
    /// Shape encoder card (shape.json) or the folder holding it.
    #[arg(long, default_value = DEFAULT_SHAPE)]
    pub encoder: PathBuf,
    /// Tagger card (tagger.json) or the folder holding it: the contrast.
    #[arg(long, default_value = "models/tagger64")]
    pub tagger: PathBuf,
    /// Dataset folder the encoder was trained on; its held-out faces are searched.
    #[arg(long)]
    pub data: PathBuf,
    /// Seed of the copies' colours and shifts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a neighbour sheet of held-out faces here: per row a query, its 6 nearest held-out
    /// faces in shape features, a gap, its 6 nearest in tagger features. It holds images of the
    /// data set: keep it out of the repository.
    #[arg(long)]
    pub sheet: Option<PathBuf>,
    /// With --generated-sheet: the model whose faces make a publishable neighbour sheet.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Write the neighbour sheet of generated faces here (4 seeds per tag set of the data).
    #[arg(long, requires = "model")]
    pub generated_sheet: Option<PathBuf>,
    /// Query rows per sheet.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub queries: u64,
}

fn parse_temperature(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 10.0 => Ok(t),
        _ => Err(format!("'{s}' is not a temperature (a number in (0, 10])")),
    }
}

pub(super) fn shape(a: ShapeArgs) -> Result<()> {
    match a.command {
        ShapeCommand::Train(a) => shape_train(a),
        ShapeCommand::Check(a) => shape_check(a),
    }
}

fn shape_train(a: ShapeTrainArgs) -> Result<()> {
    let data = load_data(&a.data, a.resolution)?;
    let ch = a.channels as usize;
    let config = ShapeEncoderConfig::new()
        .with_resolution(a.resolution)
        .with_channels(ch)
        .with_max_channels(2 * ch)
        .with_final_size(4.min(a.resolution / 2));
    config.validate()?;
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "shape".into());
    let opts = ShapeTrainOptions {
        steps: a.steps,
        batch: a.batch,
        seed: a.seed,
        lr: a.lr,
        temperature: a.temperature,
        holdout: a.holdout,
        augment: Augment::default(),
        config,
        name,
        log_every: a.log_every,
    };
    let card = train_shape(&data, &a.data, &a.out, &opts)?;
    say!(
        "shape encoder '{}' written to {} ({:.0} s of training, final loss {:.4})",
        card.name,
        a.out.display(),
        card.training.seconds,
        card.training.final_loss
    );
    say!(
        "held-out: a recoloured, shifted, mirrored copy finds its own face first in {:.1} % of \
         {} faces (top 5: {:.1} %)",
        100.0 * card.heldout.copy_top1,
        card.heldout.images,
        100.0 * card.heldout.copy_top5
    );
    Ok(())
}

fn check_line(name: &str, c: &CopyCheck) -> String {
    format!(
        "  {name:<8} {:>7.1} % {:>7.1} % {:>10.3} {:>12} {:>11}",
        100.0 * c.top1,
        100.0 * c.top5,
        c.copy_distance,
        c.same_tags_distance
            .map_or("-".into(), |d| format!("{d:.3}")),
        c.separation.map_or("-".into(), |d| format!("{d:.2}x")),
    )
}

fn shape_check(a: ShapeCheckArgs) -> Result<()> {
    let device = Device::flex();
    let shape = load_shape(&a.encoder, &device)?;
    let tagger = load_tagger(&a.tagger, &device)?;
    let res = shape.card.resolution;
    if tagger.card.resolution != res {
        bail!(
            "the tagger reads {} px, the shape encoder {res} px",
            tagger.card.resolution
        );
    }
    if tagger.card.split.percent != shape.card.split.percent {
        note!(
            "warning: the tagger holds out {} %, the shape encoder {} %: some held-out faces \
             were seen by one of them",
            tagger.card.split.percent,
            shape.card.split.percent
        );
    }
    let data = load_data(&a.data, res)?;
    let split = HoldoutSplit::new(shape.card.split.percent);
    let held: Vec<usize> = heldout_mask(&data, &a.data, &split)
        .iter()
        .enumerate()
        .filter_map(|(i, &h)| h.then_some(i))
        .collect();
    if held.len() < 6 {
        bail!("only {} held-out faces: too few to search", held.len());
    }
    note!(
        "{} held-out faces; features of faces and copies ...",
        held.len()
    );
    let imgs: Vec<&[u8]> = held.iter().map(|&i| data.image(i)).collect();
    let copies = copies_of(&imgs, res, a.seed);
    let copy_refs: Vec<&[u8]> = copies.iter().map(Vec::as_slice).collect();
    let mut tags: Vec<Vec<String>> = held.iter().map(|&i| data.tags[i].clone()).collect();
    for t in &mut tags {
        t.sort();
    }
    let sf = shape.card.encoder.feature_dim;
    let tf = tagger.card.tagger.feature_dim;
    let shape_orig = to_matrix(&shape.features(&imgs, 128), sf);
    let shape_copy = to_matrix(&shape.features(&copy_refs, 128), sf);
    let tv = &tagger.card.vocab;
    let (_, t_orig) = read_images(&tagger.tagger, tv, res, &imgs, &device);
    let (_, t_copy) = read_images(&tagger.tagger, tv, res, &copy_refs, &device);
    let (tagger_orig, tagger_copy) = (to_matrix(&t_orig, tf), to_matrix(&t_copy, tf));
    let s = copy_check(&shape_orig, &shape_copy, Some(&tags));
    let t = copy_check(&tagger_orig, &tagger_copy, Some(&tags));
    say!(
        "{} held-out faces, each searched for with a recoloured (channel permutation + hue \
         rotation + jitter), shifted (1-4 px) and mirrored copy; distances in scaled features",
        held.len()
    );
    say!(
        "  {:<8} {:>9} {:>9} {:>10} {:>12} {:>11}",
        "features",
        "top-1",
        "top-5",
        "copy dist",
        "same-tags",
        "separation"
    );
    say!("{}", check_line("shape", &s));
    say!("{}", check_line("tagger", &t));
    say!(
        "  (same-tags: mean distance between different faces with one tag set, over {} sets; \
         separation = same-tags / copy dist)",
        s.tag_sets
    );
    if let Some(p) = &a.json {
        let json = serde_json::json!({
            "encoder": a.encoder.display().to_string(),
            "tagger": a.tagger.display().to_string(),
            "data": a.data.display().to_string(),
            "seed": a.seed,
            "shape": s,
            "tagger_features": t,
        });
        write_atomic(p, serde_json::to_string_pretty(&json)?.as_bytes())?;
        note!("wrote {}", p.display());
    }
    let queries = a.queries as usize;
    if let Some(p) = &a.sheet {
        // Queries spread over the held-out faces (every n-th, a fixed choice).
        let step = (held.len() / queries).max(1);
        let qs: Vec<usize> = (0..queries)
            .map(|i| i * step)
            .filter(|&q| q < held.len())
            .collect();
        let tiles = neighbour_tiles(&imgs, &shape_orig, &tagger_orig, &qs, 6);
        write_atomic(p, &png_bytes(&sheet(&tiles, res, 14))?)?;
        note!(
            "wrote {} (held-out faces of the data set: do not commit it)",
            p.display()
        );
    }
    if let (Some(model), Some(p)) = (&a.model, &a.generated_sheet) {
        let m = load_model_or_run(model, &device)?;
        let sets: BTreeSet<Vec<String>> = data
            .tags
            .iter()
            .map(|t| {
                let mut t: Vec<String> = t
                    .iter()
                    .filter(|x| m.card.vocab.index_of(x).is_some())
                    .cloned()
                    .collect();
                t.sort();
                t
            })
            .filter(|t| !t.is_empty())
            .collect();
        let latent = m.card.generator.latent_dim();
        let mut reqs = Vec::new();
        for (si, set) in sets.iter().enumerate() {
            for j in 0..4u64 {
                reqs.push(
                    FaceRequest::new(&m.card.vocab, latent, si as u64 * 4 + j, &set.join(", "))
                        .with_context(|| format!("the model cannot draw '{}'", set.join(", ")))?,
                );
            }
        }
        let mut pool: Vec<Vec<u8>> = Vec::with_capacity(reqs.len());
        for chunk in reqs.chunks(64) {
            let b = chunk.len();
            let z: Vec<f32> = chunk.iter().flat_map(|r| r.z.iter().copied()).collect();
            let c: Vec<f32> = chunk.iter().flat_map(|r| r.c.iter().copied()).collect();
            let out = m.generator.forward(shared_model::GeneratorInput::new(
                Tensor::from_data(TensorData::new(z, [b, latent]), &m.device),
                Tensor::from_data(TensorData::new(c, [b, m.card.vocab.len()]), &m.device),
            ));
            if out.dims()[2] != res {
                bail!(
                    "the model draws {} px faces, the encoder reads {res} px",
                    out.dims()[2]
                );
            }
            for rgba in to_rgba(out) {
                pool.push(rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect());
            }
        }
        let refs: Vec<&[u8]> = pool.iter().map(Vec::as_slice).collect();
        let sm = to_matrix(&shape.features(&refs, 128), sf);
        let (_, tfe) = read_images(&tagger.tagger, tv, res, &refs, &device);
        let tm = to_matrix(&tfe, tf);
        let step = (pool.len() / queries).max(1);
        let qs: Vec<usize> = (0..queries)
            .map(|i| i * step)
            .filter(|&q| q < pool.len())
            .collect();
        let tiles = neighbour_tiles(&refs, &sm, &tm, &qs, 6);
        write_atomic(p, &png_bytes(&sheet(&tiles, res, 14))?)?;
        note!(
            "wrote {} ({} generated faces searched; seeds and tags: face k of the sorted tag sets \
             is seed k, tags set k / 4)",
            p.display(),
            pool.len()
        );
    }
    Ok(())
}
