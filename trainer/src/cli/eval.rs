//! `eval`: scores a model (or a run folder) with a trained tagger against held-out reals, and
//! in a shape encoder's colour-blind features beside the tagger's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::Args;

use super::common::load_data;
use crate::eval::{EvalContext, report_table, write_sheets};
use crate::fsutil::write_atomic;
use crate::model_io::load_model_or_run;
use crate::shape::{DEFAULT_SHAPE, load_shape};
use crate::tagger::load_tagger;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model card (model.json), the folder holding it, or a run folder.
    #[arg(long)]
    pub model: PathBuf,
    /// Tagger card (tagger.json) or the folder holding it.
    #[arg(long)]
    pub tagger: PathBuf,
    /// Shape encoder card (shape.json) or its folder: FD, KID, precision/recall and diversity
    /// are also measured in its colour-blind features. Default: models/shape64, left out with a
    /// note when it is not there.
    #[arg(long, conflicts_with = "no_shape")]
    pub shape: Option<PathBuf>,
    /// Measure in the tagger's features only.
    #[arg(long)]
    pub no_shape: bool,
    /// Dataset folder: its tag combinations are drawn, its held-out images are the reference.
    #[arg(long)]
    pub data: PathBuf,
    /// Faces per tag combination.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub per_combo: u64,
    /// First seed (faces use seed + combination * per-combo + j).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Folder for good.png / bad.png sheets (highest / lowest tagger confidence) and sheets.csv,
    /// and diversity.png: seeds 0-15 of the data's four most common tag sets, each above 16 real
    /// faces with the same tags (rows named in diversity.csv).
    #[arg(long)]
    pub sheets: Option<PathBuf>,
    /// Faces per sheet.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub sheet_size: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replace an existing --json file.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn eval(a: EvalArgs) -> Result<()> {
    if let Some(p) = &a.json {
        crate::fsutil::Outputs::new()
            .model_input(&a.model)
            .input("the tagger (--tagger)", &a.tagger)
            .input("the data folder (--data)", &a.data)
            .check("--json", p, a.force)?;
    }
    let device = Device::flex();
    let tagger = load_tagger(&a.tagger, &device)?;
    let model = load_model_or_run(&a.model, &device)?;
    let data = load_data(&a.data, tagger.card.resolution)?;
    let mut ctx = EvalContext::new(tagger, &data, &a.data, a.per_combo as usize, a.seed)?;
    let res = data.resolution;
    let mut shape_used: Option<String> = None;
    match (&a.shape, a.no_shape) {
        (_, true) => note!("shape features: left out (--no-shape)"),
        (Some(p), false) => {
            let encoder = load_shape(p, &device)?;
            ctx = ctx
                .with_shape(encoder, &data)
                .with_context(|| format!("shape encoder {}", p.display()))?;
            shape_used = Some(p.display().to_string());
        }
        (None, false) => {
            let p = Path::new(DEFAULT_SHAPE);
            if !p.join("shape.json").is_file() {
                note!(
                    "shape features: left out (no shape encoder at {DEFAULT_SHAPE}; pass --shape)"
                );
            } else {
                let encoder = load_shape(p, &device)?;
                if encoder.card.resolution == res {
                    ctx = ctx
                        .with_shape(encoder, &data)
                        .with_context(|| format!("shape encoder {DEFAULT_SHAPE}"))?;
                    shape_used = Some(DEFAULT_SHAPE.to_string());
                } else {
                    note!(
                        "shape features: left out ({DEFAULT_SHAPE} reads {} px, the tagger {res} \
                         px; pass --shape)",
                        encoder.card.resolution
                    );
                }
            }
        }
    }
    note!(
        "drawing {} faces ({} tag combinations x {}) ...",
        ctx.combos() * ctx.per_combo,
        ctx.combos(),
        ctx.per_combo
    );
    let generate = |z, c| {
        model
            .generator
            .forward(shared_model::GeneratorInput::new(z, c))
    };
    let (vocab, latent_dim) = (&model.card.vocab, model.card.generator.latent_dim());
    let (report, faces) = ctx.evaluate(vocab, latent_dim, &generate, &model.device)?;
    say!("{}", report_table(&report).trim_end());
    if let Some(p) = &a.json {
        let json = serde_json::json!({
            "model": a.model.display().to_string(),
            "tagger": a.tagger.display().to_string(),
            "shape": shape_used,
            "data": a.data.display().to_string(),
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            "report": report,
        });
        write_atomic(p, serde_json::to_string_pretty(&json)?.as_bytes())?;
        note!("wrote {}", p.display());
    }
    if let Some(dir) = &a.sheets {
        write_sheets(&faces, dir, a.sheet_size as usize)?;
        ctx.write_diversity_sheet(dir, vocab, latent_dim, &generate, &model.device)?;
        note!(
            "wrote good.png, bad.png, sheets.csv, diversity.png (with real faces of the data), \
             diversity-generated.png and diversity.csv to {}",
            dir.display()
        );
    }
    Ok(())
}
