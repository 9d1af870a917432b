//! Writing files so that a crash or a kill never leaves half a file behind: everything goes to
//! a temporary file in the same folder, is flushed to disk, then renamed over the target.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically (temp file in the same folder + fsync + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, bytes, &|_| Ok(()))
}

/// [`write_atomic`] that runs `before_rename` on the finished temporary file just before it
/// replaces `path`; an error there leaves `path` untouched and removes the temporary file.
pub fn write_atomic_with(
    path: &Path,
    bytes: &[u8],
    before_rename: &dyn Fn(&Path) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create folder {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Temp files are created private (0600); the result should be readable like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = tmp
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    before_rename(tmp.path())?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the finished file to {}", path.display()))?;
    Ok(())
}

/// RGBA or RGB pixels -> PNG bytes.
pub fn png_bytes(img: &image::RgbaImage) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("cannot encode PNG")?;
    Ok(out.into_inner())
}

/// Lays out equally sized RGBA tiles (`side` pixels each) in a grid with `cols` columns and a
/// 2-pixel gutter.
pub fn sheet(tiles: &[Vec<u8>], side: usize, cols: usize) -> image::RgbaImage {
    let gap = 2usize;
    let cols = cols.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols);
    let w = cols * side + (cols + 1) * gap;
    let h = rows * side + (rows + 1) * gap;
    let mut img = image::RgbaImage::from_pixel(w as u32, h as u32, image::Rgba([24, 24, 28, 255]));
    for (i, tile) in tiles.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let (x0, y0) = (gap + c * (side + gap), gap + r * (side + gap));
        for y in 0..side {
            for x in 0..side {
                let p = (y * side + x) * 4;
                img.put_pixel(
                    (x0 + x) as u32,
                    (y0 + y) as u32,
                    image::Rgba([tile[p], tile[p + 1], tile[p + 2], tile[p + 3]]),
                );
            }
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn sheet_places_tiles() {
        let red = [255u8, 0, 0, 255].repeat(4);
        let blue = [0u8, 0, 255, 255].repeat(4);
        let img = sheet(&[red, blue], 2, 2);
        assert_eq!(img.dimensions(), (2 * 2 + 3 * 2, 2 + 2 * 2));
        assert_eq!(img.get_pixel(2, 2).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(6, 2).0, [0, 0, 255, 255]);
    }
}
