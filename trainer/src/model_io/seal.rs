//! `trainer seal`: checks a model or tagger card against its weights and writes it back sealed
//! (the whole-card seal of [`ModelCard::reseal`], the checksums of the tag list and of the
//! weights). For cards written before the seal (the shipped ones were resealed with it) and,
//! with `force`, for a card edited on purpose.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use shared_model::card::{CARD_FORMAT, LoadedModel, ModelCard};
use shared_model::tagger::{LoadedTagger, TAGGER_FORMAT, TaggerCard};

use crate::fsutil::{MAX_CARD_BYTES, read_bounded, read_text_bounded, write_atomic};
use crate::model_io::generate::{MAX_WEIGHTS_BYTES, read_weights};

/// Seals the card at `path` (a card file, or a folder holding `model.json` or `tagger.json`)
/// after checking that its weights load into the network it describes. A model card whose seal
/// no longer matches is refused unless `force` (then it is resealed as it now is). Returns the
/// card's path and what was sealed, for the user.
pub fn seal(path: &Path, force: bool, device: &Device) -> Result<(PathBuf, String)> {
    let card_path = if path.is_dir() {
        let has = |name: &str| path.join(name).exists();
        if has("model.json") || !has("tagger.json") {
            if !has("model.json") && has("shape.json") {
                bail!(
                    "{} holds a shape encoder card (shape.json): `seal` seals model and tagger \
                     cards; a shape encoder's weights are checked against its weights_sha256 \
                     when it loads",
                    path.display()
                );
            }
            path.join("model.json")
        } else {
            path.join("tagger.json")
        }
    } else {
        path.to_path_buf()
    };
    let text = read_text_bounded(&card_path, MAX_CARD_BYTES, "card")?;
    let format = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("format").and_then(|f| f.as_str()).map(String::from));
    let dir = card_path.parent().unwrap_or(Path::new("."));
    let (json, said) = match format.as_deref() {
        Some(TAGGER_FORMAT) => {
            let mut card = parse(
                &text,
                &card_path,
                force,
                TaggerCard::from_json,
                TaggerCard::from_json_unsealed,
            )?;
            let weights_path = dir.join(&card.weights);
            let weights = read_bounded(&weights_path, MAX_WEIGHTS_BYTES, "tagger weights")?;
            LoadedTagger::from_bytes(card.clone(), weights.clone(), device)
                .with_context(|| weights_path.display().to_string())?;
            card.seal(&weights);
            (
                card.to_json(),
                "tagger card: seal, weights_sha256 and tags_sha256",
            )
        }
        Some(CARD_FORMAT) => {
            let mut card = parse(
                &text,
                &card_path,
                force,
                ModelCard::from_json,
                ModelCard::from_json_unsealed,
            )?;
            let weights_path = dir.join(&card.weights);
            let weights = read_weights(&weights_path)?;
            LoadedModel::from_bytes(card.clone(), weights.clone(), device)
                .with_context(|| weights_path.display().to_string())?;
            card.seal(&weights);
            (
                card.to_json(),
                "model card: seal, weights_sha256 and tags_sha256",
            )
        }
        _ => bail!(
            "{} is not a kyara model or tagger card (its \"format\" is neither \
             \"{CARD_FORMAT}\" nor \"{TAGGER_FORMAT}\")",
            card_path.display()
        ),
    };
    write_atomic(&card_path, json.as_bytes())?;
    Ok((card_path, said.to_string()))
}

/// The card in `text`: checked against its seal, or with `force` read without that check. A
/// card that fails only its seal gets the hint to give `--force`.
fn parse<C>(
    text: &str,
    path: &Path,
    force: bool,
    sealed: fn(&str) -> Result<C, shared_model::ModelError>,
    unsealed: fn(&str) -> Result<C, shared_model::ModelError>,
) -> Result<C> {
    match if force { unsealed(text) } else { sealed(text) } {
        Ok(card) => Ok(card),
        Err(e) => {
            let hint = if !force && unsealed(text).is_ok() {
                " (give --force to reseal a card that was edited on purpose)"
            } else {
                ""
            };
            bail!("{}: {e}{hint}", path.display())
        }
    }
}
