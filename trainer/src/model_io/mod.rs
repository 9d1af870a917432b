//! Models out of the trainer: drawing faces from a model (`generate`, `interpolate`), writing a
//! run's EMA generator as weights plus a model card for the page (`export`), and rewriting an
//! exported model at another precision (`convert`).
//!
//! A model is an exported card (`model.json` and its weights) or, for drawing, a run folder,
//! whose newest EMA generator loads directly ([`RunDir::load_model`]).

pub mod directions;
pub mod export;
pub mod generate;
pub mod interpolate;
pub mod seal;

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use shared_model::card::LoadedModel;

use crate::train::RunDir;

/// Loads a model card (the file or the folder holding it), or the newest EMA generator of a run
/// folder, exactly as trained (f32).
pub fn load_model_or_run(path: &Path, device: &Device) -> Result<LoadedModel> {
    if RunDir::is_run(path) && !path.join("model.json").is_file() {
        RunDir::new(path).load_model(device)
    } else {
        generate::load_model(path, device)
    }
}
