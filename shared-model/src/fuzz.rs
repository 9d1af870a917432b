//! Fuzz targets for what kyara reads from outside: model cards with their weights (the page
//! and the widget load models other sites host) and permalinks (anyone can craft a link). Each
//! takes arbitrary bytes and must return without panicking, hanging or allocating beyond the
//! size limits; where a property holds for every input, it asserts it. `fuzz/` runs them
//! under libFuzzer (`cargo fuzz run <target>`, see `docs/reliability.md`); the property tests
//! below run each over thousands of mutated inputs in every `cargo test`.

use burn::prelude::*;

use crate::card::{LoadedModel, ModelCard};
use crate::face::{FaceSpec, parse};

/// Networks larger than this are validated but not built by [`card_and_weights`]: every size
/// in the card's generator config must be at most this (the limits themselves are checked by
/// [`ModelCard::from_json`] on every input; building a 1 GiB network would only slow the fuzzer).
pub const BUILD_SIZES_UP_TO: u64 = 128;

/// Splits an input into a card and weights: `[n: u16 LE][n bytes][the rest]`.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.len() < 2 {
        return (data, &[]);
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    data[2..].split_at(n)
}

/// Joins a card and weights into one input of [`card_and_weights`] (for seed corpora).
pub fn join(card: &[u8], weights: &[u8]) -> Vec<u8> {
    let n = card.len().min(usize::from(u16::MAX));
    let mut out = (n as u16).to_le_bytes().to_vec();
    out.extend_from_slice(&card[..n]);
    out.extend_from_slice(weights);
    out
}

/// How far an input of [`card_and_weights`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reached {
    /// The card was refused.
    BadCard,
    /// The card was read; its network is too large to build here.
    Large,
    /// The weights were refused.
    BadWeights,
    /// The model loaded and drew a face.
    Drew,
}

/// Reads a card and weights as the page does; a model that loads must draw a face of the
/// card's size for a seed.
pub fn card_and_weights(data: &[u8]) -> Reached {
    let (card, weights) = split(data);
    let Ok(card) = ModelCard::from_json(&String::from_utf8_lossy(card)) else {
        return Reached::BadCard;
    };
    if !small(&card) {
        return Reached::Large;
    }
    let device = Device::flex();
    let Ok(model) = LoadedModel::from_bytes(card, weights.to_vec(), &device) else {
        return Reached::BadWeights;
    };
    let r = model.card.resolution;
    let face = model
        .draw(&FaceSpec::new(7, ""))
        .expect("a model that loads draws a seed with no tags");
    assert_eq!(face.rgba.len(), r * r * 4, "a face has the card's size");
    Reached::Drew
}

/// Whether every number in the card's generator config is at most [`BUILD_SIZES_UP_TO`].
fn small(card: &ModelCard) -> bool {
    fn all_small(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n
                .as_f64()
                .is_some_and(|x| x.abs() <= BUILD_SIZES_UP_TO as f64),
            serde_json::Value::Array(a) => a.iter().all(all_small),
            serde_json::Value::Object(o) => o.values().all(all_small),
            _ => true,
        }
    }
    card.resolution as u64 <= BUILD_SIZES_UP_TO && all_small(&card.generator.config_json())
}

/// Reads a permalink, alone and against `card`. A link the page writes means the same face when
/// read back: written from what was read, it reads back as the same spec (a direction step of 0
/// counts as none: the page writes a step that rounds to 0 as `name:0`, as it always has, and
/// leaves a step of exactly 0 out), and written again it is the same text.
pub fn permalink(data: &[u8], card: Option<&ModelCard>) {
    let text = String::from_utf8_lossy(data);
    let read = parse(&text, card);
    let once = read.spec.to_link();
    let again = parse(&once, card).spec;
    let twice = again.to_link();
    let steps = |s: &FaceSpec| {
        let mut s = s.clone();
        s.directions.retain(|_, v| *v != 0.0);
        s.to_link()
    };
    let back = parse(&twice, card).spec;
    assert_eq!(
        steps(&back),
        steps(&again),
        "the permalink {text:?} does not read back as written"
    );
    assert_eq!(
        back.to_link(),
        twice,
        "the permalink {text:?} is not a fixed point of writing and reading"
    );
    if let Some(card) = card {
        let _ = card.face_inputs(&read.spec);
        let _ = FaceSpec::from_link_strict(&text, Some(card));
    }
}

/// A small valid model (an 8 px conditional DCGAN, three tags, one latent direction) and its
/// weights, sealed: the seed of the fuzzers' corpora and of the property tests.
pub fn sample_model() -> (ModelCard, Vec<u8>) {
    use crate::card::{Direction, TrainingInfo};
    use crate::{DcganGeneratorConfig, GeneratorSpec, TagVocab};
    let sets = [
        vec!["red hair".to_string(), "blue eyes".to_string()],
        vec!["blonde hair".to_string(), "green eyes".to_string()],
        vec!["smile".to_string()],
    ];
    let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
    let g = GeneratorSpec::Dcgan(
        DcganGeneratorConfig::new(vocab.len())
            .with_resolution(8)
            .with_channels(4)
            .with_latent_dim(8),
    );
    let mut card = ModelCard::new("fuzz", vocab, g, TrainingInfo::default());
    card.directions = vec![Direction::in_z("smile", vec![0.5; 8])];
    let weights = card
        .generator
        .try_init(&Device::flex())
        .and_then(|g| g.to_bytes())
        .expect("the sample model builds");
    card.seal(&weights);
    (card, weights)
}

/// The card of [`sample_model`].
pub fn sample_card() -> ModelCard {
    sample_model().0
}

/// Permalinks the page writes: the seeds of the permalink corpus.
pub const SAMPLE_LINKS: [&str; 4] = [
    "model=anime64&seed=42&tags=blonde_hair,blue_eyes&s=blue_eyes:1.45&v=851501:0.35&d=smile:0.5",
    "seed=18446744073709551615&tags=red_hair&psi=0.7&fuse=9:3&fuse_tags=smile",
    "https://example.org/kyara/#seed=1&tags=red+hair,%20green%20eyes&s=smile:-0.25",
    "",
];

/// The link the permalink fuzzer first failed on (`d=smile0:.000000031` was written as
/// `smile0:0`, which reads back as a step of 0 and is then left out), for the tests.
pub const FOUND_LINK: &str = "seed=model=anime64&seed=42&tags=b20e}es&s=0hair,blue_e.45&v=\u{fffd}00000000\u{fffd}5&d=smile0:.000000031&tag5r";

/// Tools for the property tests: a portable byte mutator in the spirit of libFuzzer's (flip,
/// overwrite, insert, erase, duplicate, splice in an interesting value).
pub mod mutate {
    use crate::SplitMix64;

    const INTERESTING: [&[u8]; 12] = [
        b"0",
        b"-1",
        b"1e9",
        b"99999999999999999999",
        b"NaN",
        b"\"",
        b"{",
        b"}",
        b"%",
        b"%ff",
        b"\xff\xfe",
        b"\0",
    ];

    /// `input` changed by 1-4 random edits drawn from `rng`.
    pub fn mutate(input: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
        let mut out = input.to_vec();
        let edits = 1 + rng.next_u64() % 4;
        for _ in 0..edits {
            let at = |rng: &mut SplitMix64, len: usize| (rng.next_u64() as usize) % (len + 1);
            match rng.next_u64() % 6 {
                0 if !out.is_empty() => {
                    let i = at(rng, out.len() - 1);
                    out[i] ^= 1 << (rng.next_u64() % 8);
                }
                1 if !out.is_empty() => {
                    let i = at(rng, out.len() - 1);
                    out[i] = rng.next_u64() as u8;
                }
                2 => {
                    let i = at(rng, out.len());
                    out.insert(i, rng.next_u64() as u8);
                }
                3 if !out.is_empty() => {
                    let i = at(rng, out.len() - 1);
                    let n = (1 + rng.next_u64() as usize % 16).min(out.len() - i);
                    out.drain(i..i + n);
                }
                4 if !out.is_empty() => {
                    let i = at(rng, out.len() - 1);
                    let n = (1 + rng.next_u64() as usize % 16).min(out.len() - i);
                    let piece = out[i..i + n].to_vec();
                    let j = at(rng, out.len());
                    out.splice(j..j, piece);
                }
                _ => {
                    let v = INTERESTING[rng.next_u64() as usize % INTERESTING.len()];
                    let i = at(rng, out.len());
                    out.splice(i..i, v.iter().copied());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::mutate::mutate;
    use super::*;
    use crate::SplitMix64;

    /// The seeds of the fuzzers' corpora draw (or read back) as they should; with
    /// `KYARA_FUZZ_SEEDS=DIR` set they are also written to `DIR/<target>/` (see
    /// docs/reliability.md).
    #[test]
    fn fuzz_seeds_reach_the_end_of_their_targets() {
        let (card, weights) = sample_model();
        let model = join(card.to_json().as_bytes(), &weights);
        assert_eq!(card_and_weights(&model), Reached::Drew);
        let e = card
            .face_inputs(&crate::face::parse(SAMPLE_LINKS[0], Some(&card)).spec)
            .unwrap();
        assert_eq!(e.seed, 42);
        assert_eq!(e.c.len(), card.vocab.len());
        if let Some(dir) = std::env::var_os("KYARA_FUZZ_SEEDS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(dir.join("card_weights")).unwrap();
            std::fs::write(dir.join("card_weights/sample"), &model).unwrap();
            std::fs::create_dir_all(dir.join("permalink")).unwrap();
            for (i, link) in SAMPLE_LINKS.iter().enumerate() {
                std::fs::write(dir.join(format!("permalink/sample{i}")), link).unwrap();
            }
        }
    }

    /// The short run of the card + weights target: mutations of a valid tiny model (card and
    /// weights apart and together). Sealed weights make almost every mutation a checksum
    /// error, so half the inputs drop the checksums to reach the weights parser.
    #[test]
    fn card_and_weights_survive_mutated_models() {
        let (card, weights) = sample_model();
        let sealed = card.to_json();
        let mut open = card.clone();
        open.weights_sha256 = None;
        open.tags_sha256 = None;
        open.seal = None;
        let open = open.to_json();
        assert_eq!(
            card_and_weights(&join(sealed.as_bytes(), &weights)),
            Reached::Drew
        );
        let mut reached = std::collections::BTreeMap::new();
        let mut rng = SplitMix64::new(17);
        for i in 0..1500 {
            let card = if i % 2 == 0 { &sealed } else { &open };
            let (c, w) = match i % 3 {
                0 => (mutate(card.as_bytes(), &mut rng), weights.clone()),
                1 => (card.as_bytes().to_vec(), mutate(&weights, &mut rng)),
                _ => (
                    mutate(card.as_bytes(), &mut rng),
                    mutate(&weights, &mut rng),
                ),
            };
            *reached.entry(card_and_weights(&join(&c, &w))).or_insert(0) += 1;
        }
        // Every stage is reached (a target that never gets past the card tests nothing).
        for stage in [Reached::BadCard, Reached::BadWeights, Reached::Drew] {
            assert!(reached.get(&stage).is_some_and(|&n| n >= 20), "{reached:?}");
        }
        // Raw bytes, unsplit.
        for _ in 0..200 {
            let n = (rng.next_u64() % 300) as usize;
            let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
            card_and_weights(&bytes);
        }
    }

    #[test]
    fn split_and_join_are_inverse() {
        let joined = join(b"{card}", b"weights");
        assert_eq!(split(&joined), (&b"{card}"[..], &b"weights"[..]));
        assert_eq!(split(&[5]), (&[5u8][..], &[][..]));
        assert_eq!(split(&[200, 0, 1, 2]), (&[1u8, 2][..], &[][..]));
    }

    /// The short run of the permalink target, from links the page writes.
    #[test]
    fn permalinks_survive_mutation_and_read_back_as_written() {
        let (card, _) = sample_model();
        permalink(FOUND_LINK.as_bytes(), None);
        permalink(FOUND_LINK.as_bytes(), Some(&card));
        let seeds = SAMPLE_LINKS;
        let mut rng = SplitMix64::new(5);
        for seed in seeds {
            permalink(seed.as_bytes(), None);
            permalink(seed.as_bytes(), Some(&card));
            for _ in 0..600 {
                let m = mutate(seed.as_bytes(), &mut rng);
                permalink(&m, None);
                permalink(&m, Some(&card));
            }
        }
    }
}
