//! Checksums that bind a model's files together: the SHA-256 of a weights file, and of the tag
//! order its condition vector was trained with. A card carries both (written by `export` and
//! `convert`); loading checks them natively and in the page, so a flipped bit, a file cut short,
//! another model's weights or a reordered tag list is an error with a message, never a model that
//! loads and draws the wrong faces. Cards written before the checksums load as before.

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

#[cfg(test)]
mod tests {
    use super::*;

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
