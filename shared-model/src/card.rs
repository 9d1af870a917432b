//! The model card: the JSON that travels with exported weights. It carries the architecture
//! config, the tag vocabulary and what the model was trained on, so a loader never re-enters
//! shapes by hand.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::arch::{AnyGenerator, GeneratorSpec};
use crate::integrity::{
    CardSeal, check_sha256_field, check_weights_sha256, sha256_hex, tags_sha256,
};
pub use crate::weights::{WeightsDtype, load_weights, weights_bytes};
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
    /// How the float weights are stored (`"weights_dtype"`; absent in older cards: f32). The
    /// loader reads either kind whatever the card says; this is for people and tools.
    pub weights_dtype: WeightsDtype,
    /// SHA-256 of the weights file (`"weights_sha256"`, hex; absent in cards written before
    /// checksums). [`LoadedModel::from_bytes`] refuses weights that do not match it.
    pub weights_sha256: Option<String>,
    /// SHA-256 of the tag list in its order (`"tags_sha256"`, see
    /// [`crate::integrity::tags_sha256`]; absent in older cards). [`ModelCard::from_json`]
    /// refuses a card whose tags were reordered or renamed: the weights would draw wrong tags.
    pub tags_sha256: Option<String>,
    /// The card sealed whole (`"seal"`; absent in cards written before it): one checksum over
    /// everything that changes what a face looks like, see [`ModelCard::seal_parts`].
    /// [`ModelCard::from_json`] refuses a card edited after it was sealed, naming the part.
    pub seal: Option<CardSeal>,
    pub vocab: TagVocab,
    pub generator: GeneratorSpec,
    pub training: TrainingInfo,
    /// Named directions in the latent space (`"directions"`; absent in most cards). A face spec
    /// steps along them by name ([`crate::face::FaceSpec::directions`]).
    pub directions: Vec<Direction>,
}

/// A named direction: `z + amount * vector` (or `w + amount * vector` for a direction in the
/// style space) moves a face along it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Direction {
    pub name: String,
    /// `latent_dim` values (`style_dim` in the style space).
    pub vector: Vec<f32>,
    /// Which space the vector lives in (`"z"` when absent).
    #[serde(default, skip_serializing_if = "Space::is_z")]
    pub space: Space,
    /// A slider's sensible range `-range..=range` (where the faces stay faces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<f64>,
    /// How it was found and what it does, for people (e.g. its effect on the tagger's scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

impl Direction {
    /// A direction in the latent `z`.
    pub fn in_z(name: impl Into<String>, vector: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            vector,
            space: Space::Z,
            range: None,
            about: None,
        }
    }
}

/// The space a [`Direction`] moves in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// The latent `z` a seed draws.
    #[default]
    Z,
    /// The style `w` of the families that have one (added to it after truncation).
    W,
}

impl Space {
    fn is_z(&self) -> bool {
        *self == Space::Z
    }
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
    #[serde(default)]
    weights_dtype: WeightsDtype,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weights_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seal: Option<CardSeal>,
    vocab: TagVocab,
    generator: serde_json::Value,
    training: TrainingInfo,
    // Written only when there are some, so cards without directions keep their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    directions: Vec<Direction>,
}

impl TryFrom<RawCard> for ModelCard {
    type Error = String;

    fn try_from(raw: RawCard) -> Result<Self, String> {
        check_weights_name(&raw.weights)?;
        check_sha256_field("weights_sha256", raw.weights_sha256.as_deref())?;
        check_sha256_field("tags_sha256", raw.tags_sha256.as_deref())?;
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
            weights_dtype: raw.weights_dtype,
            weights_sha256: raw.weights_sha256,
            tags_sha256: raw.tags_sha256,
            seal: raw.seal,
            vocab: raw.vocab,
            training: raw.training,
            directions: raw.directions,
        })
    }
}

/// A card's `weights` must name a file beside the card: a plain file name, no folders, no
/// `..`, no absolute path (a card is not trusted to point anywhere else: `convert` once wrote
/// over the file a card named elsewhere, and the widget loads cards other sites host).
fn check_weights_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', ':', '\0'])
        && !name.starts_with('.');
    if plain {
        Ok(())
    } else {
        Err(format!(
            "weights must be the name of a file beside the card (e.g. generator.bpk), not '{name}'"
        ))
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
            weights_dtype: card.weights_dtype,
            weights_sha256: card.weights_sha256,
            tags_sha256: card.tags_sha256,
            seal: card.seal,
            vocab: card.vocab,
            training: card.training,
            directions: card.directions,
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
            weights_dtype: WeightsDtype::F32,
            weights_sha256: None,
            tags_sha256: None,
            seal: None,
            vocab,
            generator,
            training,
            directions: Vec::new(),
        }
    }

    /// Records the checksums of `weights` (the bytes of the weights file) and of the tag list
    /// in the card, and seals the card whole ([`ModelCard::reseal`]): what a loader checks.
    pub fn seal(&mut self, weights: &[u8]) {
        self.weights_sha256 = Some(sha256_hex(weights));
        self.reseal();
    }

    /// Seals the card as it is now (its tag list's checksum and [`ModelCard::seal`]'s whole-card
    /// seal), keeping `weights_sha256`: for a card that kyara changed without touching the
    /// weights (`directions`, `seal`).
    pub fn reseal(&mut self) {
        self.tags_sha256 = Some(tags_sha256(&self.vocab.tags));
        self.seal = Some(CardSeal::of(&self.seal_parts()));
    }

    /// What the seal covers, as the four parts of [`crate::integrity::SEAL_PARTS`], each a JSON
    /// value taken from the card as it is written (so a part reads the same from the file as
    /// from memory):
    /// - `config`: `{"arch", "resolution", "generator"}`;
    /// - `vocab`: `"vocab"` whole (tags in order, groups, free tags);
    /// - `directions`: `"directions"` (`[]` when absent), each without its `"about"`;
    /// - `files`: `{"format", "version", "weights", "weights_dtype", "weights_sha256",
    ///   "tags_sha256"}` (`null` for a checksum the card lacks).
    ///
    /// Not sealed: `"name"`, `"training"`, the directions' `"about"` (words for people) and the
    /// seal itself. Each part's checksum is the SHA-256 of its
    /// [`crate::integrity::canonical_json`].
    pub fn seal_parts(&self) -> [serde_json::Value; 4] {
        let mut raw = self.clone();
        raw.seal = None;
        let v = serde_json::to_value(RawCard::from(raw)).unwrap_or_default();
        let pick = |keys: &[&str]| crate::integrity::pick_fields(&v, keys);
        let mut directions = v
            .get("directions")
            .cloned()
            .unwrap_or(serde_json::Value::Array(Vec::new()));
        if let Some(list) = directions.as_array_mut() {
            for d in list {
                if let Some(d) = d.as_object_mut() {
                    d.remove("about");
                }
            }
        }
        [
            pick(&["arch", "resolution", "generator"]),
            v.get("vocab").cloned().unwrap_or_default(),
            directions,
            pick(&[
                "format",
                "version",
                "weights",
                "weights_dtype",
                "weights_sha256",
                "tags_sha256",
            ]),
        ]
    }

    /// Checks the card against its seal, when it has one.
    fn check_seal(&self) -> Result<(), ModelError> {
        match &self.seal {
            Some(seal) => seal
                .check(&self.seal_parts(), &crate::integrity::MODEL_SEAL_WORDS)
                .map_err(ModelError::BadCard),
            None => Ok(()),
        }
    }

    /// Checks the bytes of the weights file against the card's `weights_sha256`, when it has
    /// one.
    pub fn check_weights(&self, weights: &[u8]) -> Result<(), ModelError> {
        check_weights_sha256(&self.weights, weights, self.weights_sha256.as_deref())
            .map_err(ModelError::BadWeights)
    }

    /// Parses and checks a card from JSON text, its seal included.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        Self::parse(text, true)
    }

    /// [`ModelCard::from_json`] without the check of the whole-card seal (the checksums of the
    /// tag list and of the weights still hold): for `trainer seal --force`, which reseals a card
    /// that was edited on purpose.
    pub fn from_json_unsealed(text: &str) -> Result<Self, ModelError> {
        Self::parse(text, false)
    }

    fn parse(text: &str, sealed: bool) -> Result<Self, ModelError> {
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
        if let Some(sum) = &card.tags_sha256
            && *sum != tags_sha256(&card.vocab.tags)
        {
            return Err(ModelError::BadCard(
                "its tag list does not match its tags_sha256: the tags were reordered, renamed, \
                 added or removed after export, and the weights would draw the wrong tags"
                    .into(),
            ));
        }
        // Before the checks of the parts: an edited card is named as such, not by the first
        // of its consequences that a check below happens to catch.
        if sealed {
            card.check_seal()?;
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
        card.validate_directions()?;
        Ok(card)
    }

    fn validate_directions(&self) -> Result<(), ModelError> {
        let sizes = self.generator.sizes();
        for (i, d) in self.directions.iter().enumerate() {
            let (dim, what) = match d.space {
                Space::Z => (sizes.latent_dim, "the latent has"),
                Space::W => (sizes.style_dim, "the style has"),
            };
            if dim == 0 {
                return Err(ModelError::BadCard(format!(
                    "direction '{}' is in the style space, which this generator does not have",
                    d.name
                )));
            }
            if let Some(r) = d.range
                && !(r.is_finite() && r > 0.0)
            {
                return Err(ModelError::BadCard(format!(
                    "direction '{}' has range {r}, not a positive number",
                    d.name
                )));
            }
            if crate::vocab::normalize_tag(&d.name).is_empty() {
                return Err(ModelError::BadCard(format!("direction {i} has no name")));
            }
            if self.directions[..i]
                .iter()
                .any(|o| crate::face::same_name(&o.name, &d.name))
            {
                return Err(ModelError::BadCard(format!(
                    "direction '{}' is listed twice",
                    d.name
                )));
            }
            if d.vector.len() != dim {
                return Err(ModelError::BadCard(format!(
                    "direction '{}' has {} values, {what} {dim}",
                    d.name,
                    d.vector.len()
                )));
            }
            if d.vector.iter().any(|v| !v.is_finite()) {
                return Err(ModelError::BadCard(format!(
                    "direction '{}' holds a value that is not a finite number",
                    d.name
                )));
            }
        }
        Ok(())
    }

    /// The latent direction called `name` (compared as tags are: case, `_` and spaces aside).
    pub fn direction(&self, name: &str) -> Option<&Direction> {
        self.directions
            .iter()
            .find(|d| crate::face::same_name(&d.name, name))
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
    /// Truncated, corrupt or foreign bytes are an error, never a panic; so are bytes that do not
    /// match the card's checksum ([`ModelCard::check_weights`]).
    pub fn from_bytes(
        card: ModelCard,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        card.check_weights(&weights)?;
        let generator = card.generator.try_init(device)?;
        let generator = generator.load_bytes(weights)?;
        Ok(Self {
            card,
            generator,
            device: device.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DcganGeneratorConfig;

    fn card() -> ModelCard {
        let sets = [vec!["a hair".to_string()], vec!["b hair".to_string()]];
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        let g = GeneratorSpec::Dcgan(DcganGeneratorConfig::new(vocab.len()));
        ModelCard::new("t", vocab, g, TrainingInfo::default())
    }

    #[test]
    fn weights_dtype_is_recorded_and_defaults_to_f32() {
        let mut c = card();
        assert_eq!(c.weights_dtype, WeightsDtype::F32);
        c.weights_dtype = WeightsDtype::F16;
        let json = c.to_json();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["weights_dtype"], "f16");
        assert_eq!(
            ModelCard::from_json(&json).unwrap().weights_dtype,
            WeightsDtype::F16
        );
        // Cards written before the field existed are f32.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("weights_dtype");
        let back = ModelCard::from_json(&old.to_string()).unwrap();
        assert_eq!(back.weights_dtype, WeightsDtype::F32);
        let mut bogus = v;
        bogus["weights_dtype"] = serde_json::json!("f8");
        let e = ModelCard::from_json(&bogus.to_string()).unwrap_err();
        assert!(e.to_string().contains("f8"), "{e}");
    }

    #[test]
    fn weights_must_be_a_file_beside_the_card() {
        let v: serde_json::Value = serde_json::from_str(&card().to_json()).unwrap();
        for good in ["generator.bpk", "generator-00ff.bpk", "w"] {
            let mut c = v.clone();
            c["weights"] = serde_json::json!(good);
            assert_eq!(ModelCard::from_json(&c.to_string()).unwrap().weights, good);
        }
        for bad in [
            "",
            "..",
            "/etc/passwd",
            "/dev/zero",
            "../x.bpk",
            "a/b.bpk",
            "a\\b",
            ".hidden",
            "C:x",
        ] {
            let mut c = v.clone();
            c["weights"] = serde_json::json!(bad);
            let e = ModelCard::from_json(&c.to_string())
                .unwrap_err()
                .to_string();
            assert!(e.contains("beside the card"), "{bad}: {e}");
        }
    }

    #[test]
    fn directions_travel_with_the_card_only_when_there_are_some() {
        let mut c = card();
        let plain = c.to_json();
        assert!(!plain.contains("directions"), "{plain}");
        assert_eq!(ModelCard::from_json(&plain).unwrap().to_json(), plain);
        let dim = c.generator.latent_dim();
        c.directions = vec![Direction::in_z("head tilt", vec![0.25; dim])];
        let json = c.to_json();
        let back = ModelCard::from_json(&json).unwrap();
        assert_eq!(back.directions, c.directions);
        assert_eq!(back.to_json(), json, "byte-stable");
        assert_eq!(back.direction("Head_Tilt").unwrap().name, "head tilt");
        assert!(back.direction("nod").is_none());
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["directions"][0]["vector"] = serde_json::json!([1.0, 2.0]);
        let e = ModelCard::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'head tilt' has 2 values"), "{e}");
        let twice = serde_json::json!([
            { "name": "tilt", "vector": vec![0.0; dim] },
            { "name": "Tilt", "vector": vec![0.0; dim] }
        ]);
        v["directions"] = twice;
        let e = ModelCard::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    /// A card binds its weights and its tag order (the issue: flipped bits loaded silently, and
    /// a card whose tags were reordered loaded and drew the wrong tags).
    #[test]
    fn a_sealed_card_refuses_changed_weights_and_reordered_tags() {
        let device = Device::flex();
        let mut c = card();
        c.generator = GeneratorSpec::Dcgan(
            DcganGeneratorConfig::new(c.vocab.len())
                .with_resolution(16)
                .with_channels(8),
        );
        c.resolution = 16;
        let weights = c.generator.try_init(&device).unwrap().to_bytes().unwrap();
        c.seal(&weights);
        let json = c.to_json();
        let back = ModelCard::from_json(&json).unwrap();
        assert_eq!(back.weights_sha256, c.weights_sha256);
        assert!(LoadedModel::from_bytes(back.clone(), weights.clone(), &device).is_ok());

        let mut flipped = weights.clone();
        let at = flipped.len() - 9;
        flipped[at] ^= 0x10;
        let e = LoadedModel::from_bytes(back.clone(), flipped, &device).unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
        let cut = weights[..weights.len() / 2].to_vec();
        assert!(LoadedModel::from_bytes(back, cut, &device).is_err());

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["vocab"]["tags"].as_array_mut().unwrap().reverse();
        let e = ModelCard::from_json(&v.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tags_sha256"), "{e}");

        // Older cards (no checksums) still load; a malformed checksum is refused.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old.as_object_mut().unwrap().remove("weights_sha256");
        old.as_object_mut().unwrap().remove("tags_sha256");
        old.as_object_mut().unwrap().remove("seal");
        let old = ModelCard::from_json(&old.to_string()).unwrap();
        assert!(LoadedModel::from_bytes(old, weights, &device).is_ok());
        v["weights_sha256"] = serde_json::json!("1234");
        assert!(ModelCard::from_json(&v.to_string()).is_err());
    }

    /// A card is sealed whole (issue 31: `lr_mul` 10 -> 1, `mapping_lr_mul` 0.01 -> 1,
    /// `vocab.groups: []` and a `w` direction relabelled `z` all loaded and drew wrong faces).
    /// Each edit is refused naming the part; words for people and the JSON's spelling are not
    /// sealed; cards without a seal load as before.
    #[test]
    fn a_card_is_sealed_whole() {
        let sets = [
            vec!["a hair".to_string(), "x eyes".to_string()],
            vec!["b hair".to_string(), "y eyes".to_string()],
        ];
        let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
        assert!(!vocab.groups.is_empty());
        let g = GeneratorSpec::Stylegan2(
            crate::Stylegan2GeneratorConfig::new(vocab.len())
                .with_latent_dim(8)
                .with_w_dim(8)
                .with_resolution(8)
                .with_channels(8)
                .with_min_channels(8),
        );
        let mut c = ModelCard::new("t", vocab, g, TrainingInfo::default());
        let mut d = Direction::in_z("smile", vec![0.5; 8]);
        d.space = Space::W;
        d.about = Some("found by SeFa".into());
        c.directions.push(d);
        c.seal(b"weights");
        let json = c.to_json();
        let sealed = ModelCard::from_json(&json).unwrap();
        assert_eq!(sealed.seal, c.seal);
        assert_eq!(sealed.to_json(), json, "byte-stable");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let refused = |edit: &dyn Fn(&mut serde_json::Value), says: &str| {
            let mut e = v.clone();
            edit(&mut e);
            let err = ModelCard::from_json(&e.to_string())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(says) && err.contains("edited after it was sealed"),
                "{err}"
            );
            // ... and `seal --force` may read it back to reseal it.
            assert!(ModelCard::from_json_unsealed(&e.to_string()).is_ok());
        };
        refused(
            &|c| c["generator"]["lr_mul"] = 1.0.into(),
            "architecture config",
        );
        refused(&|c| c["generator"]["mapping_lr_mul"] = 1.0.into(), "lr_mul");
        refused(
            &|c| c["vocab"]["groups"] = serde_json::json!([]),
            "vocabulary",
        );
        refused(&|c| c["directions"][0]["space"] = "z".into(), "directions");
        refused(&|c| c["directions"][0]["range"] = 9.0.into(), "directions");
        refused(&|c| c["weights_dtype"] = "f16".into(), "weights_dtype");
        // A forged part sum does not pass either.
        let mut forged = v.clone();
        forged["generator"]["lr_mul"] = 1.0.into();
        let edited = ModelCard::from_json_unsealed(&forged.to_string()).unwrap();
        forged["seal"]["config"] = CardSeal::of(&edited.seal_parts()).config.into();
        let e = ModelCard::from_json(&forged.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("seal.sha256"), "{e}");
        // Not sealed: the name, the training notes, the directions' words, the JSON's layout.
        let mut words = v.clone();
        words["name"] = "renamed".into();
        words["training"]["data"] = "elsewhere".into();
        words["directions"][0]["about"] = "a smile".into();
        assert!(ModelCard::from_json(&words.to_string()).is_ok());
        assert!(ModelCard::from_json(&v.to_string()).is_ok(), "compact JSON");
        // A card written before the seal loads as before; resealed, it is sealed again.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("seal");
        old["generator"]["lr_mul"] = 1.0.into();
        let mut old = ModelCard::from_json(&old.to_string()).unwrap();
        assert!(old.seal.is_none());
        old.reseal();
        assert!(ModelCard::from_json(&old.to_json()).is_ok());
        assert_ne!(old.seal, c.seal);
    }
}
