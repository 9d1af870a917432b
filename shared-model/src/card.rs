//! The model card: the JSON that travels with exported weights. It carries the architecture
//! config, the tag vocabulary and what the model was trained on, so a loader never re-enters
//! shapes by hand.

use burn::prelude::*;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::arch::{AnyGenerator, GeneratorSpec};
use crate::{ModelError, TagVocab};

pub const CARD_FORMAT: &str = "kyara-model";
pub const CARD_VERSION: u32 = 1;

/// What the model was trained on, for people reading the card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub data: String,
    pub steps: u64,
    pub images_seen: u64,
    pub loss: String,
    #[serde(default)]
    pub seconds: f64,
}

/// A model card. In JSON the architecture family is a top-level `"arch"` field
/// (`"resnet-cgan"`, `"dcgan"`) and `"generator"` holds that family's config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RawCard", into = "RawCard")]
pub struct ModelCard {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub resolution: usize,
    /// File name of the weights, relative to the card.
    pub weights: String,
    pub vocab: TagVocab,
    pub generator: GeneratorSpec,
    pub training: TrainingInfo,
}

/// The card as it is in JSON.
#[derive(Serialize, Deserialize)]
struct RawCard {
    format: String,
    version: u32,
    name: String,
    arch: String,
    resolution: usize,
    weights: String,
    vocab: TagVocab,
    generator: serde_json::Value,
    training: TrainingInfo,
}

impl TryFrom<RawCard> for ModelCard {
    type Error = String;

    fn try_from(raw: RawCard) -> Result<Self, String> {
        let generator =
            GeneratorSpec::from_arch_json(&raw.arch, raw.generator).map_err(|e| match e {
                ModelError::BadCard(m) => m,
                e => e.to_string(),
            })?;
        Ok(Self {
            generator,
            format: raw.format,
            version: raw.version,
            name: raw.name,
            resolution: raw.resolution,
            weights: raw.weights,
            vocab: raw.vocab,
            training: raw.training,
        })
    }
}

impl From<ModelCard> for RawCard {
    fn from(card: ModelCard) -> Self {
        Self {
            arch: card.generator.arch().into(),
            generator: card.generator.config_json(),
            format: card.format,
            version: card.version,
            name: card.name,
            resolution: card.resolution,
            weights: card.weights,
            vocab: card.vocab,
            training: card.training,
        }
    }
}

impl ModelCard {
    pub fn new(
        name: &str,
        vocab: TagVocab,
        generator: GeneratorSpec,
        training: TrainingInfo,
    ) -> Self {
        Self {
            format: CARD_FORMAT.into(),
            version: CARD_VERSION,
            name: name.into(),
            resolution: generator.resolution(),
            weights: "generator.bpk".into(),
            vocab,
            generator,
            training,
        }
    }

    /// Parses and checks a card from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::BadCard(format!("not JSON: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(CARD_FORMAT) {
            return Err(ModelError::BadCard(format!(
                "missing \"format\": \"{CARD_FORMAT}\" (is this a kyara model card?)"
            )));
        }
        let card: ModelCard =
            serde_json::from_value(value).map_err(|e| ModelError::BadCard(e.to_string()))?;
        if card.version > CARD_VERSION {
            return Err(ModelError::BadCard(format!(
                "card version {} is newer than this kyara understands ({CARD_VERSION})",
                card.version
            )));
        }
        card.vocab.validate()?;
        if card.generator.num_tags() != card.vocab.len() {
            return Err(ModelError::BadCard(format!(
                "generator expects {} tags but the vocabulary has {}",
                card.generator.num_tags(),
                card.vocab.len()
            )));
        }
        if card.generator.resolution() != card.resolution {
            return Err(ModelError::BadCard(format!(
                "the card says {} pixels but the generator makes {}",
                card.resolution,
                card.generator.resolution()
            )));
        }
        card.generator.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("card serialises")
    }
}

/// A generator ready to draw: its card plus weights, in inference mode.
#[derive(Debug)]
pub struct LoadedModel {
    pub card: ModelCard,
    pub generator: AnyGenerator,
    pub device: Device,
}

impl LoadedModel {
    /// Builds the generator the card describes and loads `weights` (burnpack bytes) into it.
    /// Truncated, corrupt or foreign bytes are an error, never a panic.
    pub fn from_bytes(
        card: ModelCard,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let generator = card.generator.try_init(device)?;
        let generator = generator.load_bytes(weights)?;
        Ok(Self {
            card,
            generator,
            device: device.clone(),
        })
    }
}

/// Loads burnpack bytes into a module, mapping every failure (including a panic inside the
/// decoder on hostile input) to [`ModelError::BadWeights`].
pub fn load_weights<M: Module>(module: M, weights: Vec<u8>) -> Result<M, ModelError> {
    if weights.is_empty() {
        return Err(ModelError::BadWeights("the weights file is empty".into()));
    }
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(weights))
        .map_err(|e| ModelError::BadWeights(e.to_string()))?;
    module
        .try_load_record(record)
        .map_err(|e| ModelError::BadWeights(e.to_string()))
}

/// Serialises a module's parameters to burnpack bytes.
pub fn weights_bytes<M: Module>(module: M) -> Result<Vec<u8>, ModelError> {
    let bytes = module
        .into_record()
        .into_bytes()
        .map_err(|e| ModelError::BadWeights(e.to_string()))?;
    Ok(bytes.to_vec())
}
