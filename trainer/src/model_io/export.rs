//! `trainer export`: the EMA generator of a run, as weights plus a model card, for the page.
//! `trainer convert`: an exported model with its weights stored at another precision.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use serde::Serialize;
use shared_model::card::LoadedModel;
use shared_model::{AnyGenerator, ModelCard, WeightsDtype};

use super::generate::load_model;
use crate::fsutil::write_atomic;
use crate::train::RunDir;

/// Faces compared between the f32 generator and what was written, when it is not f32.
const CHECK_SEEDS: u64 = 16;

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub card: ModelCard,
    /// Size of the weights file.
    pub bytes: u64,
    /// Faces of the written model against the checkpoint's (f32) ones, unless written as f32.
    pub error: Option<PixelError>,
}

/// Writes the run's newest checkpoint into `OUT` as weights plus `OUT/model.json` (see
/// [`write_model`]), with the weights stored as `dtype`.
pub fn export(run: &Path, out: &Path, name: &str, dtype: WeightsDtype) -> Result<ExportReport> {
    let device = Device::flex();
    // Loaded before anything is written: a broken checkpoint must not produce an export.
    let trained = RunDir::new(run).load_model(&device)?;
    let mut card = trained.card.clone();
    card.name = name.into();
    card.weights_dtype = dtype;
    let bytes = write_model(out, &mut card, trained.generator.clone())?;
    let error = if dtype == WeightsDtype::F32 {
        None
    } else {
        let written =
            load_model(out, &device).with_context(|| format!("reading back {}", out.display()))?;
        Some(pixel_error(
            &trained,
            &written,
            &(0..CHECK_SEEDS).collect::<Vec<_>>(),
        )?)
    };
    Ok(ExportReport { card, bytes, error })
}

/// Writes `generator` into `out`, stored as `card.weights_dtype`: the weights under a name of
/// their own, `generator-<hash of the bytes>.bpk` (set as `card.weights`), then the card as
/// `model.json`, each atomically. Writing the card is the one step that switches models, so a
/// write killed at any point leaves `out` holding the previous model or the new one, whole
/// (with the weights under a fixed name, a kill between the two files left a card naming
/// weights of another model). The card carries the SHA-256 of the weights and of its tag list
/// ([`ModelCard::seal`]), checked on every load. The previous card's weights are removed once the
/// new card is in place. Returns the size of the weights in bytes.
pub fn write_model(out: &Path, card: &mut ModelCard, generator: AnyGenerator) -> Result<u64> {
    let bytes = generator.to_bytes_as(card.weights_dtype)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let card_path = out.join("model.json");
    // Only a card that parses names weights that are ours to remove.
    let previous = std::fs::read_to_string(&card_path)
        .ok()
        .and_then(|text| ModelCard::from_json(&text).ok())
        .map(|c| c.weights);
    card.weights = format!(
        "generator-{:016x}.bpk",
        shared_model::tagger::fnv1a64(&bytes)
    );
    card.seal(&bytes);
    write_atomic(&out.join(&card.weights), &bytes)?;
    write_atomic(&card_path, card.to_json().as_bytes())?;
    if let Some(old) = previous.filter(|old| *old != card.weights) {
        let _ = std::fs::remove_file(out.join(old));
    }
    Ok(bytes.len() as u64)
}

/// How far the faces of a converted model are from the original's, in 8-bit RGB values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PixelError {
    /// Faces compared (one per seed).
    pub faces: usize,
    /// Largest absolute difference of one R, G or B value (0..=255).
    pub max: u8,
    /// Mean absolute difference over all R, G and B values.
    pub mean: f64,
}

/// Compares the faces of `a` and `b` for `seeds` (tags left open: each seed draws its own),
/// alpha excluded. Both models must share a vocabulary and resolution.
pub fn pixel_error(a: &LoadedModel, b: &LoadedModel, seeds: &[u64]) -> Result<PixelError> {
    let (mut max, mut sum, mut n) = (0u8, 0u64, 0u64);
    for &seed in seeds {
        let (fa, _) = a.generate(seed, "")?;
        let (fb, _) = b.generate(seed, "")?;
        anyhow::ensure!(fa.len() == fb.len(), "the two models draw different sizes");
        for (pa, pb) in fa.chunks_exact(4).zip(fb.chunks_exact(4)) {
            for k in 0..3 {
                let d = pa[k].abs_diff(pb[k]);
                max = max.max(d);
                sum += d as u64;
                n += 1;
            }
        }
    }
    Ok(PixelError {
        faces: seeds.len(),
        max,
        mean: if n == 0 { 0.0 } else { sum as f64 / n as f64 },
    })
}

/// What [`convert`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub from: WeightsDtype,
    pub to: WeightsDtype,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Faces of the written model against the source model's.
    pub error: PixelError,
}

/// Rewrites the model at `model` (card file or folder) into `out` with its weights stored as
/// `dtype`, without retraining. `out` may be the model's own folder (the writes are atomic).
/// The written model is loaded back and its faces for `check_seeds` compared with the source's.
pub fn convert(
    model: &Path,
    out: &Path,
    dtype: WeightsDtype,
    check_seeds: &[u64],
) -> Result<ConvertReport> {
    let device = Device::flex();
    let source = load_model(model, &device)?;
    let card_path = if model.is_dir() {
        model.join("model.json")
    } else {
        model.to_path_buf()
    };
    let weights_path = card_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&source.card.weights);
    let bytes_before = std::fs::metadata(&weights_path)
        .with_context(|| format!("cannot read {}", weights_path.display()))?
        .len();
    let mut card = source.card.clone();
    card.weights_dtype = dtype;
    let generator = source.generator.clone();
    let bytes_after = write_model(out, &mut card, generator)?;
    let written =
        load_model(out, &device).with_context(|| format!("reading back {}", out.display()))?;
    let error = pixel_error(&source, &written, check_seeds)?;
    Ok(ConvertReport {
        from: source.card.weights_dtype,
        to: dtype,
        bytes_before,
        bytes_after,
        error,
    })
}
