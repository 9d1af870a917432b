//! Temp-dir helpers and a tiny tagged dataset drawn in code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::{Rgb, RgbImage};

pub const HAIR: [(&str, [u8; 3]); 3] = [
    ("red hair", [220, 40, 40]),
    ("blue hair", [40, 60, 220]),
    ("blonde hair", [240, 220, 90]),
];
pub const EYES: [(&str, [u8; 3]); 2] = [
    ("green eyes", [30, 200, 60]),
    ("purple eyes", [150, 40, 200]),
];

/// Writes `n` 16x16 "faces" (hair-coloured top, skin, two eye dots) with an imagefolder
/// `metadata.csv`, and returns the folder.
pub fn tiny_dataset(dir: &Path, n: usize) -> PathBuf {
    let root = dir.join("faces");
    std::fs::create_dir_all(root.join("images")).unwrap();
    let mut csv = String::from("file_name,tags\n");
    for i in 0..n {
        let (hair, hc) = HAIR[i % HAIR.len()];
        let (eyes, ec) = EYES[(i / HAIR.len()) % EYES.len()];
        let img = RgbImage::from_fn(16, 16, |x, y| {
            if y < 5 || !(2..=13).contains(&x) {
                Rgb(hc)
            } else if y == 8 && (x == 5 || x == 10) {
                Rgb(ec)
            } else {
                Rgb([250, 225, 205])
            }
        });
        let name = format!("images/{i}.png");
        img.save(root.join(&name)).unwrap();
        csv.push_str(&format!("{name},\"{hair}, {eyes}\"\n"));
    }
    std::fs::write(root.join("metadata.csv"), csv).unwrap();
    root
}

/// Runs the real `trainer` binary (its dataset cache in a temporary folder, not the user's).
pub fn trainer(args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    trainer_with_cache(args, cache.path())
}

/// Runs the real `trainer` binary with its dataset cache in `cache`.
pub fn trainer_with_cache(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kyara-trainer"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("KYARA_CACHE_DIR", cache)
        .output()
        .expect("run trainer")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every family in the list, each with `--arch NAME`, plus an `--unconditional` variant for the
/// families that have one: `(label, family name, extra train flags)`.
pub fn family_variants() -> Vec<(String, &'static str, Vec<&'static str>)> {
    use shared_model::arch::{self, FamilyOptions};
    let mut out = Vec::new();
    for name in arch::NAMES {
        out.push((name.to_string(), *name, vec!["--arch", name]));
        let unconditional = FamilyOptions {
            unconditional: true,
            ..Default::default()
        };
        if arch::configure(name, 3, 16, &unconditional).is_ok() {
            out.push((
                format!("{name}-unconditional"),
                *name,
                vec!["--arch", name, "--unconditional"],
            ));
        }
    }
    out
}

/// The small architecture flags every CLI training test uses.
pub const TINY: [&str; 12] = [
    "--resolution",
    "16",
    "--g-channels",
    "8",
    "--g-blocks",
    "1",
    "--d-channels",
    "8",
    "--latent-dim",
    "8",
    "--batch",
    "4",
];

/// `train` of `data` into `runs` for `steps` steps, quiet, with the [`TINY`] architecture.
pub fn tiny_train_args<'a>(data: &'a Path, runs: &'a Path, steps: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        runs.to_str().unwrap(),
        "--steps",
        steps,
        "--quiet",
    ];
    args.extend(TINY);
    args
}

/// Trains a tiny run through the CLI and returns its folder.
pub fn tiny_run(dir: &Path, steps: u32) -> PathBuf {
    tiny_run_with(dir, steps, &[])
}

/// `tiny_run` with extra `train` arguments.
pub fn tiny_run_with(dir: &Path, steps: u32, extra: &[&str]) -> PathBuf {
    let data = tiny_dataset(dir, 12);
    let runs = dir.join("runs");
    let steps = steps.to_string();
    let mut args = tiny_train_args(&data, &runs, &steps);
    args.extend(["--checkpoint-every", "2", "--sample-every", "2"]);
    args.extend(extra);
    let o = trainer(&args);
    assert!(o.status.success(), "train failed: {}", stderr(&o));

    first_run(&runs)
}

/// The (first) run folder `trainer train --out RUNS` made.
pub fn first_run(runs: &Path) -> PathBuf {
    std::fs::read_dir(runs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path()
}

/// Exports a run's model into `dir/model` through the CLI and returns that folder.
pub fn export_tiny(dir: &Path, run: &Path) -> PathBuf {
    let model_dir = dir.join("model");
    let o = trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        model_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    model_dir
}

/// Files (recursively) under a folder.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The weights file an exported model's card names (exports name it after its content).
pub fn weights_file(model_dir: &Path) -> PathBuf {
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    model_dir.join(card["weights"].as_str().unwrap())
}

/// Reseals the model card at `path` as it now is (for a test that edits a card on purpose, as
/// `trainer seal --force` does): an edited sealed card is refused on load.
pub fn reseal(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut card = shared_model::ModelCard::from_json_unsealed(&text).unwrap();
    card.reseal();
    std::fs::write(path, card.to_json()).unwrap();
}
