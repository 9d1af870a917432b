//! The decoded-dataset cache file: a JSON header line, then the RGB bytes of every decodable
//! entry in listing order.

use super::Entry;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

// 2: truncated JPEGs are skipped (cache 1 may hold them as grey tiles).
const FORMAT: &str = "kyara-dataset-cache-2";

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    resolution: usize,
    fingerprint: String,
    entries: usize,
    /// `(entry index, problem)` of the entries that have no pixels.
    errors: Vec<(usize, String)>,
}

pub(super) struct CacheFile {
    pub path: PathBuf,
    pub fingerprint: String,
}

fn hash_hex(f: impl FnOnce(&mut std::collections::hash_map::DefaultHasher)) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    f(&mut h);
    format!("{:016x}", h.finish())
}

/// The cache file for `dir` at `resolution` (one per folder and resolution) and the
/// fingerprint its contents must carry for this listing; or why there is none.
pub(super) fn file_for(
    cache_dir: &Path,
    dir: &Path,
    resolution: usize,
    entries: &[Entry],
) -> Result<CacheFile, String> {
    let abs = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let fingerprint = hash_hex(|h| {
        abs.hash(h);
        resolution.hash(h);
        for e in entries {
            e.file.hash(h);
            let meta = std::fs::metadata(&e.file).ok();
            meta.as_ref().map(|m| m.len()).hash(h);
            meta.and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .hash(h);
            match &e.tags {
                Ok(t) => t.hash(h),
                Err(m) => m.hash(h),
            }
        }
    });
    let name: String = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::create_dir_all(cache_dir)
        .map_err(|e| format!("cannot create '{}': {e}", cache_dir.display()))?;
    let path = cache_dir.join(format!(
        "{name}-{resolution}px-{}.bin",
        hash_hex(|h| abs.hash(h))
    ));
    Ok(CacheFile { path, fingerprint })
}

/// The cached pixels (or problems) of `entries` entries, if `path` holds exactly them.
pub(super) fn read(
    path: &Path,
    fingerprint: &str,
    resolution: usize,
    entries: usize,
) -> Option<super::Decoded> {
    let file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    // A header is a few bytes per bad entry; anything longer is not ours.
    (&mut r).take(64 << 20).read_until(b'\n', &mut line).ok()?;
    let header: Header = serde_json::from_slice(&line).ok()?;
    let image = resolution * resolution * 3;
    let good = entries.checked_sub(header.errors.len())?;
    if header.format != FORMAT
        || header.resolution != resolution
        || header.fingerprint != fingerprint
        || header.entries != entries
        || len != line.len() as u64 + (good * image) as u64
    {
        return None;
    }
    let mut problems = vec![None; entries];
    for (i, problem) in header.errors {
        // Each index once, in range.
        if problems.get(i)?.is_some() {
            return None;
        }
        problems[i] = Some(problem);
    }
    let mut pixels = vec![0u8; good * image];
    r.read_exact(&mut pixels).ok()?;
    Some(super::Decoded { pixels, problems })
}

/// Stores `decoded` at `path` (a temporary file renamed into place).
pub(super) fn write(
    path: &Path,
    fingerprint: &str,
    resolution: usize,
    decoded: &super::Decoded,
) -> std::io::Result<()> {
    let header = Header {
        format: FORMAT.into(),
        resolution,
        fingerprint: fingerprint.into(),
        entries: decoded.problems.len(),
        errors: decoded
            .problems
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|e| (i, e.clone())))
            .collect(),
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        serde_json::to_writer(&mut w, &header)?;
        w.write_all(b"\n")?;
        w.write_all(&decoded.pixels)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
