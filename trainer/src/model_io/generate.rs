//! `trainer generate`: faces for given seeds and tags (or a page's permalink), as PNGs plus a
//! `metadata.csv` that any evaluator can score.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use shared_model::card::LoadedModel;
use shared_model::{FaceSpec, ModelCard};

use crate::fsutil::{png_bytes, sheet, write_atomic};

/// Parses a seed list: `42`, `0-15`, `1,5,9-11`.
pub fn parse_seeds(spec: &str) -> Result<Vec<u64>> {
    const MAX: usize = 100_000;
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| -> Result<u64> {
            s.trim().parse::<u64>().with_context(|| {
                format!("'{s}' is not a seed (seeds are whole numbers >= 0, e.g. 42 or 0-15)")
            })
        };
        match part.split_once('-') {
            // `-1`: a negative number, not a range with its start left out.
            Some((a, _)) if a.trim().is_empty() => {
                bail!("'{part}' is not a seed (seeds are whole numbers >= 0, e.g. 42 or 0-15)")
            }
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    bail!("seed range '{part}' runs backwards");
                }
                if (b - a) as usize >= MAX {
                    bail!("seed range '{part}' is too long (at most {MAX} seeds)");
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
        if out.len() > MAX {
            bail!("too many seeds (at most {MAX})");
        }
    }
    if out.is_empty() {
        bail!("no seeds given (e.g. --seeds 0-15)");
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = out.iter().find(|s| !seen.insert(**s)) {
        bail!("seed {twice} is given more than once in '{spec}' (each seed draws one face)");
    }
    Ok(out)
}

/// Loads a model from its card file (or a folder holding `model.json`); the weights file is the
/// one the card names, next to it.
pub fn load_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    let card_path = crate::fsutil::card_in(path, "model.json")?;
    let text =
        crate::fsutil::read_text_bounded(&card_path, crate::fsutil::MAX_CARD_BYTES, "model card")?;
    let card = ModelCard::from_json(&text).with_context(|| format!("{}", card_path.display()))?;
    let weights_path = card_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&card.weights);
    let weights = read_weights(&weights_path)?;
    LoadedModel::from_bytes(card, weights, device)
        .with_context(|| format!("{}", weights_path.display()))
}

/// Weights files larger than this are refused before reading (2^28 parameters, the size limit
/// of a network, as float32, plus room for the container).
pub const MAX_WEIGHTS_BYTES: u64 = (1 << 30) + (1 << 20);

/// Reads a weights file: a regular file (not a device or a pipe, e.g. `/dev/zero` behind a
/// link) of at most [`MAX_WEIGHTS_BYTES`].
pub fn read_weights(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read weights {}", path.display()))?;
    if !meta.is_file() {
        bail!("weights {} are not a regular file", path.display());
    }
    if meta.len() > MAX_WEIGHTS_BYTES {
        bail!(
            "weights {} are {} bytes, more than any kyara model ({MAX_WEIGHTS_BYTES})",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))
}

/// File name of a seed's image.
pub fn seed_file(seed: u64) -> String {
    format!("seed{seed:04}.png")
}

/// The face spec and seeds to draw: the page's permalink `link` (read strictly: a part that cannot
/// be used is an error) or the plain `tags`; the link's seed, or `seeds` (default 0-15).
pub fn spec_and_seeds(
    model: &LoadedModel,
    tags: &str,
    link: Option<&str>,
    seeds: Option<Vec<u64>>,
) -> Result<(FaceSpec, Vec<u64>)> {
    let Some(link) = link else {
        let seeds = match seeds {
            Some(s) => s,
            None => parse_seeds("0-15")?,
        };
        return Ok((FaceSpec::new(0, tags), seeds));
    };
    let spec = FaceSpec::from_link_strict(link, Some(&model.card))?;
    let seeds = match (spec.seed, seeds) {
        (Some(s), None) => vec![s],
        (Some(s), Some(_)) => bail!("the link gives the seed ({s}); leave out --seeds"),
        (None, Some(s)) => s,
        (None, None) => parse_seeds("0-15")?,
    };
    Ok((spec, seeds))
}

/// Generates every seed, then writes all files (each atomically). Returns the written paths.
pub fn generate(
    model: &LoadedModel,
    tags: &str,
    seeds: &[u64],
    out: &Path,
    sheet_path: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    generate_spec(model, &FaceSpec::new(0, tags), seeds, out, sheet_path)
}

/// [`generate`] of a whole face spec (its seed replaced by each of `seeds`).
pub fn generate_spec(
    model: &LoadedModel,
    spec: &FaceSpec,
    seeds: &[u64],
    out: &Path,
    sheet_path: Option<&Path>,
) -> Result<Vec<PathBuf>> {
    let mut faces = Vec::with_capacity(seeds.len());
    let mut csv = String::from("file_name,tags\n");
    for &seed in seeds {
        let face = model.draw(&FaceSpec {
            seed: Some(seed),
            ..spec.clone()
        })?;
        csv.push_str(&format!(
            "{},\"{}\"\n",
            seed_file(seed),
            face.inputs.tags.join(", ")
        ));
        faces.push(face.rgba);
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let r = model.card.resolution as u32;
    let mut written = Vec::new();
    for (seed, rgba) in seeds.iter().zip(&faces) {
        let img =
            image::RgbaImage::from_raw(r, r, rgba.clone()).context("face has the wrong size")?;
        let p = out.join(seed_file(*seed));
        write_atomic(&p, &png_bytes(&img)?)?;
        written.push(p);
    }
    let meta = out.join("metadata.csv");
    write_atomic(&meta, csv.as_bytes())?;
    written.push(meta);
    if let Some(sp) = sheet_path {
        let cols = (faces.len() as f64).sqrt().ceil() as usize;
        write_atomic(sp, &png_bytes(&sheet(&faces, r as usize, cols))?)?;
        written.push(sp.to_path_buf());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_specs() {
        assert_eq!(parse_seeds("42").unwrap(), vec![42]);
        assert_eq!(parse_seeds("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_seeds("1, 5,7-8").unwrap(), vec![1, 5, 7, 8]);
        for bad in ["", "x", "5-2", "-1", "1-", "0-99999999999", "1,1", "0-3,2"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
        // The messages of the second fresh round (issue 31): `-1` once read as "'' is not a
        // seed", and `1,1,1` as an output written twice.
        let e = parse_seeds("-1").unwrap_err().to_string();
        assert!(e.starts_with("'-1' is not a seed"), "{e}");
        let e = parse_seeds("1,1,1").unwrap_err().to_string();
        assert!(e.contains("seed 1 is given more than once"), "{e}");
    }
}
