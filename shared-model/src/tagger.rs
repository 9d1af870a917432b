//! The tagger: a small CNN that reads a face and says which tags it shows. kyara uses it to
//! label untagged datasets (`trainer tag`), to score generated faces for the tags they were
//! asked for (label accuracy) and as the feature network of FD/KID/precision/recall (there are
//! no pretrained Inception weights here, and Inception features know little about anime faces).
//!
//! Outputs follow the vocabulary: a softmax over each exclusive group ("hair", "eyes") and an
//! independent sigmoid for every free tag. The card (`format: "kyara-tagger"`) carries the
//! config, the vocabulary, the rule that split the data into training and held-out images, and
//! the accuracy measured on the held-out part.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use kernels::act::leaky_relu;

use serde::{Deserialize, Serialize};

use crate::arch::limits;
use crate::card::load_weights;
use crate::conv_stack::{self, ConvBn, DownStage, StackShape};
use crate::integrity::{
    CardSeal, TAGGER_SEAL_WORDS, check_sha256_field, check_weights_sha256, tags_sha256,
};
use crate::{ModelError, TagVocab};

pub const TAGGER_FORMAT: &str = "kyara-tagger";
pub const TAGGER_VERSION: u32 = 1;

/// Tagger architecture.
#[derive(Config, Debug)]
pub struct TaggerConfig {
    /// Number of outputs (the vocabulary size).
    pub num_tags: usize,
    /// Input side in pixels.
    #[config(default = 64)]
    pub resolution: usize,
    /// Channels after the stem; doubled per stage up to `max_channels`.
    #[config(default = 32)]
    pub channels: usize,
    #[config(default = 96)]
    pub max_channels: usize,
    /// Side of the last feature map before global pooling.
    #[config(default = 4)]
    pub final_size: usize,
    /// Width of the embedding returned by [`Tagger::features`].
    #[config(default = 128)]
    pub feature_dim: usize,
    #[config(default = 0.2)]
    pub leaky_slope: f64,
}

/// The tagger network: a stride-2 stem, stages of (stride-2 conv, conv), global mean+max pooling,
/// a feature layer and a linear head over the vocabulary.
#[derive(Module, Debug)]
pub struct Tagger {
    stem: ConvBn,
    stages: Vec<DownStage>,
    feature: Linear,
    head: Linear,
    slope: f64,
}

impl TaggerConfig {
    fn stack(&self) -> StackShape<'_> {
        StackShape {
            what: "tagger",
            in_channels: 3,
            resolution: self.resolution,
            channels: self.channels,
            max_channels: self.max_channels,
            final_size: self.final_size,
        }
    }

    /// Checks the config without building anything.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.num_tags == 0 || self.channels == 0 || self.feature_dim == 0 {
            return Err(ModelError::BadConfig(
                "tagger sizes must be positive".into(),
            ));
        }
        let sizes = [
            ("num_tags", self.num_tags, limits::MAX_TAGS),
            ("feature_dim", self.feature_dim, limits::MAX_FEATURES),
        ];
        let (f, t) = (self.feature_dim as u64, self.num_tags as u64);
        // The feature layer over mean + max pooling, then the head, with their biases.
        self.stack()
            .validate(&sizes, |c_last| (2 * c_last + 1) * f + (f + 1) * t)
    }

    pub fn try_init(&self, device: &Device) -> Result<Tagger, ModelError> {
        crate::rng::initialised(|| self.build(device))
    }

    fn build(&self, device: &Device) -> Result<Tagger, ModelError> {
        self.validate()?;
        let (stem, stages, c_last) = self.stack().build(device)?;
        Ok(Tagger {
            stem,
            stages,
            feature: LinearConfig::new(2 * c_last, self.feature_dim).init(device),
            head: LinearConfig::new(self.feature_dim, self.num_tags).init(device),
            slope: self.leaky_slope,
        })
    }

    /// Builds the tagger. Panics on an invalid config; use [`Self::try_init`] for untrusted ones.
    pub fn init(&self, device: &Device) -> Tagger {
        self.try_init(device).expect("invalid tagger config")
    }
}

/// Global mean and max pooling side by side: `[B, C, S, S]` -> `[B, 2C]` (the tagger's and the
/// shape encoder's head).
pub(crate) fn mean_max_pool(h: Tensor<4>) -> Tensor<2> {
    let [b, c, hh, ww] = h.dims();
    let flat = h.reshape([b, c, hh * ww]); // [B, C, S*S]
    let mean = flat.clone().mean_dim(2).reshape([b, c]);
    let max = flat.max_dim(2).reshape([b, c]);
    Tensor::cat(vec![mean, max], 1)
}

impl Tagger {
    /// The embedding used for FD, KID and precision/recall.
    /// `x`: `[B, 3, R, R]` RGB in `[-1, 1]` -> `[B, feature_dim]` (after a leaky ReLU).
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let h = conv_stack::forward(&self.stem, &self.stages, x, self.slope);
        leaky_relu(self.feature.forward(mean_max_pool(h)), self.slope) // [B, F]
    }

    /// Head over features. `h`: `[B, feature_dim]` -> logits `[B, num_tags]`.
    pub fn head(&self, h: Tensor<2>) -> Tensor<2> {
        self.head.forward(h)
    }

    /// `x`: `[B, 3, R, R]` RGB in `[-1, 1]` -> logits `[B, num_tags]`. Turn them into
    /// probabilities with [`tag_probabilities`].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.head(self.features(x))
    }
}

/// Vocabulary positions of each exclusive group's tags, in group order.
pub fn group_indices(vocab: &TagVocab) -> Vec<Vec<usize>> {
    vocab
        .groups
        .iter()
        .map(|g| {
            g.tags
                .iter()
                .filter_map(|t| vocab.index_of(t))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Vocabulary positions of the free tags.
pub fn free_indices(vocab: &TagVocab) -> Vec<usize> {
    vocab
        .free
        .iter()
        .filter_map(|t| vocab.index_of(t))
        .collect()
}

/// Probabilities of one row of logits (`vocab.len()` values): a softmax within each exclusive
/// group (so a group's probabilities sum to 1) and a sigmoid for every free tag.
pub fn tag_probabilities(vocab: &TagVocab, logits: &[f32]) -> Vec<f32> {
    let mut p = vec![0.0f32; logits.len()];
    for idx in group_indices(vocab) {
        let max = idx
            .iter()
            .map(|&i| logits[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = idx.iter().map(|&i| (logits[i] - max).exp()).collect();
        let sum: f32 = exps.iter().sum();
        for (&i, e) in idx.iter().zip(exps) {
            p[i] = e / sum;
        }
    }
    for i in free_indices(vocab) {
        p[i] = 1.0 / (1.0 + (-logits[i]).exp());
    }
    p
}

/// The most probable tag of each group plus every free tag with probability >= `threshold`;
/// a group's tag is left out when even its best tag is below `threshold`. `probs` is one row
/// from [`tag_probabilities`].
pub fn predicted_tags(vocab: &TagVocab, probs: &[f32], threshold: f32) -> Vec<String> {
    let mut out = Vec::new();
    for idx in group_indices(vocab) {
        if let Some(&best) = idx.iter().max_by(|&&a, &&b| probs[a].total_cmp(&probs[b]))
            && probs[best] >= threshold
        {
            out.push(vocab.tags[best].clone());
        }
    }
    for i in free_indices(vocab) {
        if probs[i] >= threshold {
            out.push(vocab.tags[i].clone());
        }
    }
    out
}

/// How the data was split into training and held-out images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutSplit {
    /// Human-readable statement of the rule.
    pub rule: String,
    /// Percentage of images held out (the hash bucket threshold).
    pub percent: u32,
}

impl HoldoutSplit {
    pub fn new(percent: u32) -> Self {
        Self {
            rule: format!(
                "an image is held out when fnv1a64(key) % 100 < {percent}; key = its file name \
                 relative to the data folder ('/' separated), or for images whose decoded pixels \
                 equal other images', the smallest of those file names (so duplicates never \
                 straddle the split)"
            ),
            percent,
        }
    }

    /// Whether the image with split key `key` is held out.
    pub fn is_heldout(&self, key: &str) -> bool {
        fnv1a64(key.as_bytes()) % 100 < u64::from(self.percent)
    }
}

/// 64-bit FNV-1a, a fixed hash anyone can recompute.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Held-out accuracy of a tagger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaggerAccuracy {
    /// Group name -> fraction of held-out images whose group tag is the most probable one.
    pub groups: std::collections::BTreeMap<String, f64>,
    /// Fraction of (image, free tag) decisions right at probability 0.5; `None` without free tags.
    pub free: Option<f64>,
    /// Fraction of images with every group and free tag right.
    pub all: f64,
    /// Number of held-out images.
    pub images: usize,
}

/// What the tagger was trained on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaggerTraining {
    pub data: String,
    pub steps: u64,
    pub batch_size: usize,
    pub seed: u64,
    pub train_images: usize,
    pub seconds: f64,
    pub augmentation: String,
}

/// The tagger's card: `tagger.json` next to `tagger.bpk`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaggerCard {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub resolution: usize,
    /// File name of the weights, relative to the card.
    pub weights: String,
    /// SHA-256 of the weights file (absent in cards written before checksums); checked by
    /// [`LoadedTagger::from_bytes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// SHA-256 of the tag list in its order ([`crate::integrity::tags_sha256`]; absent in cards
    /// written before it): output `i` of the tagger scores tag `i`, so a reordered list would
    /// name every score wrong (and `directions --tagger` write directions under wrong names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_sha256: Option<String>,
    /// The card sealed whole (absent in cards written before it), see
    /// [`TaggerCard::seal_parts`]: the vocabulary's groups decide how scores are read (one
    /// tag per exclusive group), so a card with its groups removed once tagged nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<CardSeal>,
    pub vocab: TagVocab,
    pub tagger: TaggerConfig,
    pub split: HoldoutSplit,
    pub training: TaggerTraining,
    pub heldout_accuracy: TaggerAccuracy,
}

impl TaggerCard {
    pub fn new(
        name: &str,
        vocab: TagVocab,
        tagger: TaggerConfig,
        split: HoldoutSplit,
        training: TaggerTraining,
        heldout_accuracy: TaggerAccuracy,
    ) -> Self {
        Self {
            format: TAGGER_FORMAT.into(),
            version: TAGGER_VERSION,
            name: name.into(),
            resolution: tagger.resolution,
            weights: "tagger.bpk".into(),
            weights_sha256: None,
            tags_sha256: None,
            seal: None,
            vocab,
            tagger,
            split,
            training,
            heldout_accuracy,
        }
    }

    /// Parses and checks a tagger card from JSON text, its seal included.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        Self::parse(text, true)
    }

    /// [`TaggerCard::from_json`] without the check of the whole-card seal (the checksums of
    /// the tag list and of the weights still hold): for `trainer seal --force`.
    pub fn from_json_unsealed(text: &str) -> Result<Self, ModelError> {
        Self::parse(text, false)
    }

    fn parse(text: &str, sealed: bool) -> Result<Self, ModelError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::BadCard(format!("not JSON: {e}")))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(TAGGER_FORMAT) => {}
            Some(other) => {
                return Err(ModelError::BadCard(format!(
                    "this is a '{other}' card, not a tagger card (\"format\": \"{TAGGER_FORMAT}\")"
                )));
            }
            None => {
                return Err(ModelError::BadCard(format!(
                    "missing \"format\": \"{TAGGER_FORMAT}\" (is this a kyara tagger card?)"
                )));
            }
        }
        let card: TaggerCard =
            serde_json::from_value(value).map_err(|e| ModelError::BadCard(e.to_string()))?;
        if card.version > TAGGER_VERSION {
            return Err(ModelError::BadCard(format!(
                "tagger card version {} is newer than this kyara understands ({TAGGER_VERSION})",
                card.version
            )));
        }
        check_sha256_field("weights_sha256", card.weights_sha256.as_deref())
            .map_err(ModelError::BadCard)?;
        check_sha256_field("tags_sha256", card.tags_sha256.as_deref())
            .map_err(ModelError::BadCard)?;
        if let Some(sum) = &card.tags_sha256
            && *sum != tags_sha256(&card.vocab.tags)
        {
            return Err(ModelError::BadCard(
                "its tag list does not match its tags_sha256: the tags were reordered, renamed, \
                 added or removed after the tagger was trained, and its scores would be read as \
                 the wrong tags"
                    .into(),
            ));
        }
        if let (true, Some(seal)) = (sealed, &card.seal) {
            seal.check(&card.seal_parts(), &TAGGER_SEAL_WORDS)
                .map_err(ModelError::BadCard)?;
        }
        card.vocab.validate()?;
        if card.tagger.num_tags != card.vocab.len() {
            return Err(ModelError::BadCard(format!(
                "tagger has {} outputs but the vocabulary has {} tags",
                card.tagger.num_tags,
                card.vocab.len()
            )));
        }
        if card.tagger.resolution != card.resolution {
            return Err(ModelError::BadCard(
                "card resolution and tagger resolution differ".into(),
            ));
        }
        if card.split.percent >= 100 {
            return Err(ModelError::BadCard(
                "held-out percentage must be below 100".into(),
            ));
        }
        card.tagger.validate()?;
        Ok(card)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("card serialises")
    }

    /// Records the checksums of `weights` (the bytes of the weights file) and of the tag list,
    /// and seals the card whole.
    pub fn seal(&mut self, weights: &[u8]) {
        self.weights_sha256 = Some(crate::integrity::sha256_hex(weights));
        self.tags_sha256 = Some(tags_sha256(&self.vocab.tags));
        self.seal = Some(CardSeal::of(&self.seal_parts()));
    }

    /// What the seal covers, as the parts of [`crate::integrity::SEAL_PARTS`] (as
    /// [`crate::card::ModelCard::seal_parts`] for a model card): `config` is `{"resolution",
    /// "tagger"}`, `vocab` the vocabulary whole, `directions` `[]` (a tagger has none), `files`
    /// `{"format", "version", "weights", "weights_sha256", "tags_sha256"}`. Not sealed: `name`,
    /// `split`, `training` and `heldout_accuracy`, which describe how it was made.
    pub fn seal_parts(&self) -> [serde_json::Value; 4] {
        let mut raw = self.clone();
        raw.seal = None;
        let v = serde_json::to_value(raw).unwrap_or_default();
        let pick = |keys: &[&str]| crate::integrity::pick_fields(&v, keys);
        [
            pick(&["resolution", "tagger"]),
            v.get("vocab").cloned().unwrap_or_default(),
            serde_json::Value::Array(Vec::new()),
            pick(&[
                "format",
                "version",
                "weights",
                "weights_sha256",
                "tags_sha256",
            ]),
        ]
    }
}

/// A tagger ready to read faces: its card plus weights, in inference mode.
#[derive(Debug)]
pub struct LoadedTagger {
    pub card: TaggerCard,
    pub tagger: Tagger,
    pub device: Device,
}

impl LoadedTagger {
    /// Builds the tagger the card describes and loads `weights` (burnpack bytes) into it.
    /// Truncated, corrupt or foreign bytes are an error, never a panic.
    pub fn from_bytes(
        card: TaggerCard,
        weights: Vec<u8>,
        device: &Device,
    ) -> Result<Self, ModelError> {
        check_weights_sha256(&card.weights, &weights, card.weights_sha256.as_deref())
            .map_err(ModelError::BadWeights)?;
        let tagger = card.tagger.try_init(device)?;
        let tagger = load_weights(tagger, weights)?;
        Ok(Self {
            card,
            tagger,
            device: device.clone(),
        })
    }

    /// Reads a batch: `x` `[B, 3, R, R]` in `[-1, 1]` -> (probabilities `B * T` row-major,
    /// features `B * F` row-major).
    pub fn predict(&self, x: Tensor<4>) -> (Vec<f32>, Vec<f32>) {
        let h = self.tagger.features(x);
        let logits = self.tagger.head(h.clone());
        let [b, t] = logits.dims();
        let logits = logits.into_data().convert::<f32>();
        let logits = logits.as_slice::<f32>().expect("f32 data");
        let mut probs = Vec::with_capacity(b * t);
        for row in logits.chunks(t) {
            probs.extend(tag_probabilities(&self.card.vocab, row));
        }
        let feats = h
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap_or_default();
        (probs, feats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::parse_tags;

    fn vocab() -> TagVocab {
        let sets: Vec<Vec<String>> = [
            "red hair, green eyes, smile",
            "blue hair, purple eyes",
            "blonde hair, green eyes",
        ]
        .iter()
        .map(|s| parse_tags(s))
        .collect();
        TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()))
    }

    fn tiny(t: usize) -> TaggerConfig {
        TaggerConfig::new(t)
            .with_resolution(16)
            .with_channels(4)
            .with_max_channels(8)
            .with_final_size(2)
            .with_feature_dim(6)
    }

    /// A tagger or shape card from elsewhere that claims a huge network is an error before
    /// anything is allocated (networks draw every weight in `try_init`), never an abort.
    #[test]
    fn oversized_tagger_and_shape_configs_are_errors_not_aborts() {
        let device = Device::flex();
        let huge = 1_000_000_000;
        let taggers = [
            tiny(6).with_channels(huge).with_max_channels(huge),
            tiny(6).with_max_channels(huge),
            tiny(huge),
            tiny(6).with_feature_dim(huge),
            tiny(6).with_resolution(1 << 40).with_final_size(1 << 38),
            // Each size allowed, the whole too many parameters (2^28 allowed).
            tiny(6)
                .with_resolution(1024)
                .with_channels(4096)
                .with_max_channels(4096),
        ];
        for cfg in taggers {
            let e = cfg.try_init(&device).unwrap_err().to_string();
            assert!(e.contains("more than kyara allows"), "{e}");
        }
        let shape = || {
            crate::ShapeEncoderConfig::new()
                .with_resolution(16)
                .with_final_size(2)
        };
        for cfg in [
            shape().with_channels(huge).with_max_channels(huge),
            shape().with_feature_dim(huge),
            shape().with_projection_dim(huge),
            shape()
                .with_channels(4096)
                .with_max_channels(4096)
                .with_resolution(1024),
        ] {
            let e = cfg.try_init(&device).unwrap_err().to_string();
            assert!(e.contains("more than kyara allows"), "{e}");
        }
        assert!(tiny(6).try_init(&device).is_ok());
    }

    #[test]
    fn shapes_of_every_output() {
        let device = Device::flex();
        let t = tiny(6).init(&device);
        let x = Tensor::<4>::zeros([3, 3, 16, 16], &device);
        assert_eq!(t.features(x.clone()).dims(), [3, 6]);
        assert_eq!(t.forward(x).dims(), [3, 6]);
    }

    #[test]
    fn probabilities_sum_to_one_per_group() {
        let v = vocab();
        let logits = [3.0, -1.0, 0.5, 2.0, -4.0, 7.0];
        let p = tag_probabilities(&v, &logits);
        for idx in group_indices(&v) {
            let s: f32 = idx.iter().map(|&i| p[i]).sum();
            assert!((s - 1.0).abs() < 1e-6, "{s}");
        }
        let smile = v.index_of("smile").unwrap();
        assert!((p[smile] - 1.0 / (1.0 + (-logits[smile]).exp())).abs() < 1e-7);
        // Large logits do not overflow.
        let p = tag_probabilities(&v, &[1e4, -1e4, 0.0, 500.0, 0.0, -1e4]);
        assert!(p.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn predicted_tags_follow_groups_and_threshold() {
        let v = vocab();
        let mut logits = vec![0.0; v.len()];
        logits[v.index_of("blue hair").unwrap()] = 5.0;
        logits[v.index_of("purple eyes").unwrap()] = 5.0;
        logits[v.index_of("smile").unwrap()] = -5.0;
        let p = tag_probabilities(&v, &logits);
        assert_eq!(predicted_tags(&v, &p, 0.5), ["purple eyes", "blue hair"]);
        logits[v.index_of("smile").unwrap()] = 5.0;
        let p = tag_probabilities(&v, &logits);
        assert!(predicted_tags(&v, &p, 0.5).contains(&"smile".to_string()));
        // A flat group is left out at a high threshold.
        assert!(predicted_tags(&v, &tag_probabilities(&v, &[0.0; 6]), 0.9).is_empty());
    }

    #[test]
    fn split_is_deterministic_and_near_its_percentage() {
        let s = HoldoutSplit::new(10);
        let held = (0..10_000)
            .filter(|i| s.is_heldout(&format!("images/{i}.jpg")))
            .count();
        assert!((800..1200).contains(&held), "{held}");
        assert_eq!(s.is_heldout("images/7.jpg"), s.is_heldout("images/7.jpg"));
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn cards_round_trip_and_bad_ones_are_errors() {
        let device = Device::flex();
        let v = vocab();
        let cfg = tiny(v.len());
        let card = TaggerCard::new(
            "t",
            v.clone(),
            cfg.clone(),
            HoldoutSplit::new(10),
            TaggerTraining::default(),
            TaggerAccuracy::default(),
        );
        let back = TaggerCard::from_json(&card.to_json()).unwrap();
        assert_eq!(back.vocab, v);
        let model_card = r#"{"format": "kyara-model", "version": 1}"#;
        let e = TaggerCard::from_json(model_card).unwrap_err().to_string();
        assert!(e.contains("not a tagger card"), "{e}");
        assert!(TaggerCard::from_json("{").is_err());
        let mut wrong = card.clone();
        wrong.tagger.num_tags = 99;
        assert!(TaggerCard::from_json(&wrong.to_json()).is_err());

        let weights = crate::card::weights_bytes(cfg.init(&device)).unwrap();
        let loaded = LoadedTagger::from_bytes(card.clone(), weights.clone(), &device).unwrap();
        let (p, f) = loaded.predict(Tensor::zeros([2, 3, 16, 16], &device));
        assert_eq!((p.len(), f.len()), (2 * v.len(), 2 * 6));
        let half = weights[..weights.len() / 2].to_vec();
        let e = LoadedTagger::from_bytes(card.clone(), half, &device).unwrap_err();
        assert!(e.to_string().contains("weights"), "{e}");
        // Weights of another architecture do not load either.
        let other = crate::card::weights_bytes(tiny(v.len()).with_channels(8).init(&device));
        assert!(LoadedTagger::from_bytes(card.clone(), other.unwrap(), &device).is_err());
        // A card with the weights' checksum refuses a flipped bit.
        let mut sealed = card;
        sealed.weights_sha256 = Some(crate::integrity::sha256_hex(&weights));
        let sealed = TaggerCard::from_json(&sealed.to_json()).unwrap();
        assert!(LoadedTagger::from_bytes(sealed.clone(), weights.clone(), &device).is_ok());
        let mut flipped = weights;
        flipped[40] ^= 1;
        let e = LoadedTagger::from_bytes(sealed, flipped, &device).unwrap_err();
        assert!(e.to_string().contains("SHA-256"), "{e}");
    }

    /// Issue 31: a tagger card with its tag list reversed named every score wrong (and
    /// `directions --tagger` wrote 12 directions under the wrong names). It carries its tag
    /// list's checksum now; cards without one load as before.
    #[test]
    fn a_tagger_card_binds_its_tag_order() {
        let v = vocab();
        let mut card = TaggerCard::new(
            "t",
            v.clone(),
            tiny(v.len()),
            HoldoutSplit::new(10),
            TaggerTraining::default(),
            TaggerAccuracy::default(),
        );
        card.seal(b"weights");
        let json: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        assert!(TaggerCard::from_json(&json.to_string()).is_ok());
        let mut reversed = json.clone();
        reversed["vocab"]["tags"].as_array_mut().unwrap().reverse();
        let e = TaggerCard::from_json(&reversed.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tags_sha256") && e.contains("reordered"), "{e}");
        let mut old = reversed;
        old.as_object_mut().unwrap().remove("tags_sha256");
        old.as_object_mut().unwrap().remove("seal");
        assert!(TaggerCard::from_json(&old.to_string()).is_ok());
    }

    /// Issue 31's second fresh round: a tagger card with its exclusive groups removed loaded,
    /// and `tag` then wrote no tag at all (its scores are read one tag per group). The card is
    /// sealed whole now; the words about how it was made are not sealed.
    #[test]
    fn a_tagger_card_is_sealed_whole() {
        let v = vocab();
        let mut card = TaggerCard::new(
            "t",
            v.clone(),
            tiny(v.len()),
            HoldoutSplit::new(10),
            TaggerTraining::default(),
            TaggerAccuracy::default(),
        );
        card.seal(b"weights");
        let json: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
        assert!(json["seal"]["sha256"].is_string());
        let mut no_groups = json.clone();
        no_groups["vocab"]["groups"] = serde_json::json!([]);
        let e = TaggerCard::from_json(&no_groups.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the vocabulary") && e.contains("exclusive groups"),
            "{e}"
        );
        assert!(!e.contains("draw"), "a tagger draws no faces: {e}");
        let mut slope = json.clone();
        slope["tagger"]["leaky_slope"] = serde_json::json!(0.5);
        let e = TaggerCard::from_json(&slope.to_string())
            .unwrap_err()
            .to_string();
        assert!(e.contains("the tagger's config"), "{e}");
        assert!(TaggerCard::from_json_unsealed(&slope.to_string()).is_ok());
        let mut renamed = json.clone();
        renamed["name"] = "another name".into();
        assert!(TaggerCard::from_json(&renamed.to_string()).is_ok());
    }
}
