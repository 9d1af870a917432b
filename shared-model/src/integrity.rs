//! Checksums that bind a model's files together: the SHA-256 of a weights file, and of the tag
//! order its condition vector was trained with. A card carries both (written by `export` and
//! `convert`); loading checks them natively and in the page, so a flipped bit, a file cut short,
//! another model's weights or a reordered tag list is an error with a message, never a model that
//! loads and draws the wrong faces. Cards written before the checksums load as before.
//!
//! A card is also sealed whole ([`CardSeal`]): one checksum over everything in it that changes
//! what a face looks like, so an edited `lr_mul`, an emptied group list or a direction moved to
//! another space is refused, naming the part that changed.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The SHA-256 of `bytes` as 64 lower-case hex digits (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

/// The SHA-256 of a tag list in its order: the tags joined by `\n` (tags never hold one).
pub fn tags_sha256(tags: &[String]) -> String {
    sha256_hex(tags.join("\n").as_bytes())
}

/// Whether `text` is spelled like [`sha256_hex`]'s output.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a card's checksum field (`field` names it in the message): absent, or spelled like
/// [`sha256_hex`]'s output.
pub fn check_sha256_field(field: &str, sum: Option<&str>) -> Result<(), String> {
    match sum {
        Some(sum) if !is_sha256_hex(sum) => Err(format!(
            "{field} must be 64 lower-case hex digits (a SHA-256), not '{sum}'"
        )),
        _ => Ok(()),
    }
}

/// Checks the bytes of weights file `what` against a card's `weights_sha256`, when it has one.
/// Empty bytes are said plainly (a download that came back empty, say), not as a checksum.
pub fn check_weights_sha256(
    what: &str,
    bytes: &[u8],
    expected: Option<&str>,
) -> Result<(), String> {
    match expected {
        Some(_) if bytes.is_empty() => Err("the weights file is empty".into()),
        Some(sum) => check_sha256(what, bytes, sum),
        None => Ok(()),
    }
}

/// Checks `bytes` against an expected SHA-256 (`what` names the file in the message).
pub fn check_sha256(what: &str, bytes: &[u8], expected: &str) -> Result<(), String> {
    let actual = sha256_hex(bytes);
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{what} ({} bytes) has SHA-256 {}..., the card expects {}...: the file was cut short, \
             damaged or replaced by another model's after export",
            bytes.len(),
            &actual[..12],
            expected.get(..12).unwrap_or(expected)
        ))
    }
}

/// The canonical text of a JSON value, what the seal hashes: compact (no whitespace), the keys
/// of every object sorted by their UTF-8 bytes, strings escaped as `serde_json` escapes them,
/// numbers as `serde_json` prints them (the shortest text that reads back as the same `f64`).
/// It does not depend on how the value was spelled in the file (key order, spaces, `1.0` or
/// `1.00`), only on the value.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The object of `card`'s fields named by `keys` (a missing one as `null`): one sealed part.
pub fn pick_fields(card: &serde_json::Value, keys: &[&str]) -> serde_json::Value {
    let field = |k: &&str| card.get(*k).cloned().unwrap_or(serde_json::Value::Null);
    serde_json::Value::Object(keys.iter().map(|k| (k.to_string(), field(k))).collect())
}

/// What a card's seal covers, part by part, in the order they enter its checksum. Each part is
/// a JSON value built by the card ([`crate::card::ModelCard::seal_parts`],
/// [`crate::tagger::TaggerCard::seal_parts`]); its SHA-256 is that of its [`canonical_json`].
pub const SEAL_PARTS: [&str; 4] = ["config", "vocab", "directions", "files"];

/// How a refusal of [`CardSeal::check`] reads for one kind of card: what each of [`SEAL_PARTS`]
/// is, and what an edit would do.
#[derive(Debug, Clone, Copy)]
pub struct SealWords {
    pub parts: [&'static str; 4],
    pub consequence: &'static str,
}

/// [`SealWords`] of a model card.
pub const MODEL_SEAL_WORDS: SealWords = SealWords {
    parts: [
        "the architecture config (arch, resolution and every field of \"generator\", e.g. lr_mul)",
        "the vocabulary (its tags in order, its exclusive groups and its free tags)",
        "the directions (each one's name, vector, space and range)",
        "the card's format, version, weights file, weights_dtype and checksums",
    ],
    consequence: "the weights would draw other faces than the model was trained to (a card is \
                  changed by kyara's export, convert, directions or seal, which reseal it)",
};

/// [`SealWords`] of a tagger card.
pub const TAGGER_SEAL_WORDS: SealWords = SealWords {
    parts: [
        "the tagger's config (resolution and every field of \"tagger\")",
        "the vocabulary (its tags in order, its exclusive groups and its free tags)",
        "the directions (a tagger has none)",
        "the card's format, version, weights file and checksums",
    ],
    consequence: "its scores would be read otherwise than it was trained to give them (e.g. \
                  without its exclusive groups, no tag of a group passes the threshold; a \
                  tagger card is written by `tagger train` and `seal`, which seal it)",
};

/// A card's seal (`"seal"` in JSON): `sha256` is the one checksum over the card, the SHA-256 of
/// the text `kyara-seal 1\n` followed by one line `<part> <SHA-256 of the part>\n` for each of
/// [`SEAL_PARTS`] in that order; the parts' own sums are kept beside it so that a refusal can
/// name what changed. `name`, `training` and the directions' `about` are words for people and
/// are not sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSeal {
    pub sha256: String,
    pub config: String,
    pub vocab: String,
    pub directions: String,
    pub files: String,
}

impl CardSeal {
    /// Seals `parts` (one JSON value per [`SEAL_PARTS`] entry, in its order).
    pub fn of(parts: &[serde_json::Value; 4]) -> Self {
        let sums: Vec<String> = parts
            .iter()
            .map(|p| sha256_hex(canonical_json(p).as_bytes()))
            .collect();
        let mut seal = Self {
            sha256: String::new(),
            config: sums[0].clone(),
            vocab: sums[1].clone(),
            directions: sums[2].clone(),
            files: sums[3].clone(),
        };
        seal.sha256 = seal.whole();
        seal
    }

    fn part_sums(&self) -> [&str; 4] {
        [&self.config, &self.vocab, &self.directions, &self.files]
    }

    /// The one checksum over the part sums (see the type's documentation).
    fn whole(&self) -> String {
        let mut text = String::from("kyara-seal 1\n");
        for (part, sum) in SEAL_PARTS.iter().zip(self.part_sums()) {
            text.push_str(&format!("{part} {sum}\n"));
        }
        sha256_hex(text.as_bytes())
    }

    /// Checks a card (its `parts` now) against this seal; the error names each part that
    /// changed in the card kind's `words`, or says that the seal itself was edited.
    pub fn check(&self, parts: &[serde_json::Value; 4], words: &SealWords) -> Result<(), String> {
        for (field, sum) in [
            "seal.sha256",
            "seal.config",
            "seal.vocab",
            "seal.directions",
            "seal.files",
        ]
        .into_iter()
        .zip([self.sha256.as_str()].into_iter().chain(self.part_sums()))
        {
            check_sha256_field(field, Some(sum))?;
        }
        let now = Self::of(parts);
        let changed: Vec<&str> = words
            .parts
            .iter()
            .zip(self.part_sums().into_iter().zip(now.part_sums()))
            .filter(|(_, (was, is))| was != is)
            .map(|(what, _)| *what)
            .collect();
        if !changed.is_empty() {
            return Err(format!(
                "it was edited after it was sealed: {} no longer match(es) its seal, and {}",
                changed.join("; "),
                words.consequence
            ));
        }
        if self.whole() != self.sha256 {
            return Err(
                "its seal was edited: seal.sha256 is not the checksum of the seal's parts".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_form_ignores_spelling_not_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1.0, 2.50], "a": {"y": "\u00e9", "x": null} }"#)
                .unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":"é"},"b":[1.0,2.5]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"x":null,"y":"é"},"b":[1.0,2.5]}"#
        );
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":"é"},"b":[1.0,2.6]}"#).unwrap();
        assert_ne!(canonical_json(&a), canonical_json(&c));
    }

    #[test]
    fn a_seal_names_the_part_that_changed() {
        let parts = [
            serde_json::json!({"lr_mul": 10.0}),
            serde_json::json!({"tags": ["a"]}),
            serde_json::json!([]),
            serde_json::json!({"format": "x"}),
        ];
        let seal = CardSeal::of(&parts);
        assert!(seal.check(&parts, &MODEL_SEAL_WORDS).is_ok());
        let mut edited = parts.clone();
        edited[0]["lr_mul"] = serde_json::json!(1.0);
        let e = seal.check(&edited, &MODEL_SEAL_WORDS).unwrap_err();
        assert!(
            e.contains("architecture config") && !e.contains("vocabulary"),
            "{e}"
        );
        let mut forged = seal.clone();
        forged.config = CardSeal::of(&edited).config;
        let e = forged.check(&edited, &MODEL_SEAL_WORDS).unwrap_err();
        assert!(e.contains("seal.sha256"), "{e}");
        let mut bad = seal.clone();
        bad.vocab = "nope".into();
        assert!(
            bad.check(&parts, &MODEL_SEAL_WORDS)
                .unwrap_err()
                .contains("seal.vocab")
        );
    }

    #[test]
    fn sha256_matches_the_standard_test_vectors() {
        // FIPS 180-2, appendix B.1 and the empty message.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_sha256_hex(&sha256_hex(b"x")));
        assert!(!is_sha256_hex("ABC"));
        assert!(!is_sha256_hex(&"g".repeat(64)));
    }

    #[test]
    fn the_tag_checksum_depends_on_the_order() {
        let a = vec!["blue eyes".to_string(), "red hair".to_string()];
        let b = vec!["red hair".to_string(), "blue eyes".to_string()];
        assert_ne!(tags_sha256(&a), tags_sha256(&b));
        assert_eq!(tags_sha256(&a), tags_sha256(&a.clone()));
    }

    #[test]
    fn a_changed_byte_fails_the_check_with_a_message() {
        let bytes = vec![7u8; 1000];
        let sum = sha256_hex(&bytes);
        assert!(check_sha256("w.bpk", &bytes, &sum).is_ok());
        let mut flipped = bytes.clone();
        flipped[500] ^= 1;
        let e = check_sha256("w.bpk", &flipped, &sum).unwrap_err();
        assert!(e.contains("w.bpk") && e.contains("1000 bytes"), "{e}");
        assert!(check_sha256("w.bpk", &bytes[..999], &sum).is_err());
    }
}
