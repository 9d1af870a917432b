//! `trainer export`: the EMA generator of a run, as weights plus a model card, for the page.

use std::path::Path;

use anyhow::{Context, Result};
use burn::prelude::*;
use shared_model::ModelCard;
use shared_model::card::TrainingInfo;

use crate::fsutil::write_atomic;
use crate::train::{TrainState, latest_checkpoint, load_run_config};

/// Writes `OUT/generator.bpk` and `OUT/model.json` (weights first, card last, each atomic) from
/// the run's newest checkpoint. Returns the card.
pub fn export(run: &Path, out: &Path, name: &str) -> Result<ModelCard> {
    let cfg = load_run_config(run)?;
    let ckpt = latest_checkpoint(run)?;
    let state: TrainState = serde_json::from_slice(
        &std::fs::read(ckpt.join("state.json"))
            .with_context(|| format!("{} is incomplete", ckpt.display()))?,
    )
    .with_context(|| format!("{}/state.json is not valid", ckpt.display()))?;
    let device = Device::flex();
    let g = cfg.generator.try_init(&device)?;
    let bytes = std::fs::read(ckpt.join("generator_ema.bpk"))
        .with_context(|| format!("cannot read {}/generator_ema.bpk", ckpt.display()))?;
    // Load before writing: a broken checkpoint must not produce an export.
    let g = g
        .load_bytes(bytes)
        .with_context(|| format!("{}/generator_ema.bpk", ckpt.display()))?;
    let card = ModelCard::new(
        name,
        cfg.vocab.clone(),
        cfg.generator.clone(),
        TrainingInfo {
            data: cfg.data_name.clone(),
            steps: state.step,
            images_seen: state.images_seen,
            loss: serde_json::to_value(cfg.loss)?
                .as_str()
                .unwrap_or("")
                .to_string(),
            seconds: state.seconds,
        },
    );
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join(&card.weights), &g.to_bytes()?)?;
    write_atomic(&out.join("model.json"), card.to_json().as_bytes())?;
    Ok(card)
}
