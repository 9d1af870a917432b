//! The measuring tools end to end through the CLI: tagger training, auto-tagging, `eval`,
//! `interpolate` and `train --eval-every`, on small drawn fixtures.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use shared_model::SplitMix64;

use crate::fixtures::*;

/// `n` 16x16 faces like [`tiny_dataset`]'s, but each one different: the face is shifted by up to
/// 2 pixels, the eyes are 2x2 blocks, and every pixel carries noise. Returns the folder.
pub fn varied_dataset(dir: &Path, name: &str, n: usize, with_metadata: bool) -> PathBuf {
    let root = dir.join(name);
    std::fs::create_dir_all(root.join("images")).unwrap();
    let mut csv = String::from("file_name,tags\n");
    for i in 0..n {
        let (hair, hc) = HAIR[i % HAIR.len()];
        let (eyes, ec) = EYES[(i / HAIR.len()) % EYES.len()];
        let mut rng = SplitMix64::new(1000 + i as u64);
        let dx = rng.below(5) as i32 - 2;
        let dy = rng.below(5) as i32 - 2;
        let img = RgbImage::from_fn(16, 16, |x, y| {
            let (fx, fy) = (x as i32 - dx, y as i32 - dy);
            let base = if fy < 5 || !(2..=13).contains(&fx) {
                hc
            } else if (8..=9).contains(&fy) && ((4..=5).contains(&fx) || (10..=11).contains(&fx)) {
                ec
            } else {
                [250, 225, 205]
            };
            let mut px = [0u8; 3];
            for k in 0..3 {
                let noise = rng.below(25) as i32 - 12;
                px[k] = (base[k] as i32 + noise).clamp(0, 255) as u8;
            }
            Rgb(px)
        });
        let file = format!("images/{i}.png");
        img.save(root.join(&file)).unwrap();
        csv.push_str(&format!("{file},\"{hair}, {eyes}\"\n"));
    }
    if with_metadata {
        std::fs::write(root.join("metadata.csv"), csv).unwrap();
    }
    root
}

/// Trains a small tagger on a varied fixture through the CLI; returns (data, tagger folder).
fn trained_tagger(dir: &Path) -> (PathBuf, PathBuf) {
    let data = varied_dataset(dir, "faces", 96, true);
    let out = dir.join("tagger");
    let o = trainer(&[
        "tagger",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--steps",
        "120",
        "--batch",
        "16",
        "--resolution",
        "16",
        "--channels",
        "8",
        "--holdout",
        "30",
        "--max-shift",
        "2",
        "--log-every",
        "40",
    ]);
    assert!(o.status.success(), "tagger train failed: {}", stderr(&o));
    (data, out)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn tagger_learns_the_fixture_and_tags_an_untagged_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, tagger) = trained_tagger(tmp.path());
    let card = json(&tagger.join("tagger.json"));
    assert_eq!(card["format"], "kyara-tagger");
    assert_eq!(card["split"]["percent"], 30);
    let acc = &card["heldout_accuracy"];
    let held = acc["images"].as_u64().unwrap();
    assert!(held >= 15, "{acc}");
    for g in ["hair", "eyes"] {
        let a = acc["groups"][g].as_f64().unwrap();
        assert!(a >= 0.95, "held-out {g} accuracy {a}: {acc}");
    }
    assert!(tagger.join("tagger.bpk").is_file());

    // Auto-tagging new, untagged faces of the same kind gets their tags right.
    let fresh = varied_dataset(tmp.path(), "fresh", 24, false);
    let o = trainer(&[
        "tag",
        "--tagger",
        tagger.to_str().unwrap(),
        "--data",
        fresh.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "tag failed: {}", stderr(&o));
    let text = std::fs::read_to_string(fresh.join("metadata.csv")).unwrap();
    let truth = {
        let tmp2 = tempfile::tempdir().unwrap();
        let d = varied_dataset(tmp2.path(), "fresh", 24, true);
        std::fs::read_to_string(d.join("metadata.csv")).unwrap()
    };
    let rows = |t: &str| -> std::collections::BTreeMap<String, String> {
        t.lines()
            .skip(1)
            .map(|l| {
                let (f, tags) = l.split_once(',').unwrap();
                let mut tags: Vec<String> = tags
                    .trim_matches('"')
                    .split(", ")
                    .map(str::to_string)
                    .collect();
                tags.sort();
                (f.to_string(), tags.join(", "))
            })
            .collect()
    };
    let (got, want) = (rows(&text), rows(&truth));
    assert_eq!(got.len(), 24, "{text}");
    let right = want.iter().filter(|(f, t)| got.get(*f) == Some(t)).count();
    assert!(right >= 22, "{right}/24 right:\n{text}");

    // Tagging again keeps every row as it is.
    let o = trainer(&[
        "tag",
        "--tagger",
        tagger.to_str().unwrap(),
        "--data",
        fresh.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_eq!(
        std::fs::read_to_string(fresh.join("metadata.csv")).unwrap(),
        text
    );
}

/// Exports a tiny generator trained on the varied fixture for a few steps.
fn tiny_model(dir: &Path, data: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let runs = dir.join("runs");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        runs.to_str().unwrap(),
        "--steps",
        "2",
        "--quiet",
    ];
    args.extend(TINY);
    args.extend(extra);
    let o = trainer(&args);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let run = first_run(&runs);
    let model = export_tiny(dir, &run);
    (run, model)
}

#[test]
fn eval_reports_every_figure_with_its_floor_and_writes_sheets() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, tagger) = trained_tagger(tmp.path());
    let (_, model) = tiny_model(tmp.path(), &data, &[]);
    let report = tmp.path().join("eval.json");
    let sheets = tmp.path().join("sheets");
    let o = trainer(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--tagger",
        tagger.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--per-combo",
        "5",
        "--json",
        report.to_str().unwrap(),
        "--sheets",
        sheets.to_str().unwrap(),
        "--sheet-size",
        "8",
    ]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "label accuracy",
        "hair",
        "eyes",
        "FD",
        "KID",
        "real train vs held-out",
    ] {
        assert!(table.contains(needle), "table lacks {needle}: {table}");
    }
    let r = json(&report)["report"].clone();
    assert_eq!(r["combos"], 6);
    assert_eq!(r["per_combo"], 5);
    assert_eq!(r["generated"], 30);
    for key in ["label_accuracy", "tagger_on_heldout_reals"] {
        for g in ["hair", "eyes"] {
            let a = r[key]["groups"][g].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{key}.{g} = {a}");
        }
        let all = r[key]["all"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&all));
    }
    // The tagger reads the held-out reals well: the ceiling of label accuracy.
    assert!(
        r["tagger_on_heldout_reals"]["all"].as_f64().unwrap() >= 0.9,
        "{r}"
    );
    let made = &r["generated_vs_heldout"];
    let floor = &r["real_train_vs_heldout"];
    for d in [made, floor] {
        assert!(d["fd"].as_f64().unwrap() >= 0.0, "{d}");
        assert!(d["kid"].as_f64().unwrap().is_finite(), "{d}");
        for k in ["precision", "recall"] {
            let v = d[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
        assert_eq!(d["n"], made["n"], "sets of equal size");
    }
    // Two training steps make noise; real faces are far closer to real faces.
    assert!(
        made["fd"].as_f64().unwrap() > floor["fd"].as_f64().unwrap(),
        "{made} vs {floor}"
    );
    for f in ["good.png", "bad.png", "sheets.csv", "diversity.csv"] {
        assert!(sheets.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(sheets.join("sheets.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 8);
    // Within-tag-set diversity: measured on every combination (5 faces each side at most).
    let div = &r["diversity"];
    let ratio = div["ratio"].as_f64().unwrap();
    assert!(ratio.is_finite() && ratio >= 0.0, "{div}");
    assert!(div["combos"].as_u64().unwrap() >= 1, "{div}");
    assert!(div["heldout_reals"].as_f64().unwrap() > 0.0, "{div}");
    assert!(table.contains("within-tag-set diversity"), "{table}");
    // The diversity sheet: 4 tag sets, each a row of 16 seeds over a row of 16 reals (16 px
    // tiles, 2 px apart and around).
    let sheet = image::open(sheets.join("diversity.png")).unwrap().to_rgb8();
    assert_eq!(sheet.dimensions(), (16 * 18 + 2, 2 * 4 * 18 + 2));
    let rows = std::fs::read_to_string(sheets.join("diversity.csv")).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 4, "{rows}");
    // The rows to publish: the generated ones alone, the same tiles.
    let published = image::open(sheets.join("diversity-generated.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(published.dimensions(), (16 * 18 + 2, 4 * 18 + 2));
    assert_eq!(
        image::imageops::crop_imm(&published, 2, 2 + 18, 16, 16).to_image(),
        image::imageops::crop_imm(&sheet, 2, 2 + 2 * 18, 16, 16).to_image()
    );
    // Its first real tile is a real face of the first set's tags, pixel for pixel.
    let first_real = rows.lines().nth(2).unwrap();
    assert!(first_real.starts_with("1,real,"), "{rows}");
    let tags = first_real.split('"').nth(1).unwrap();
    let tile = image::imageops::crop_imm(&sheet, 2, 2 + 18, 16, 16).to_image();
    let meta = std::fs::read_to_string(data.join("metadata.csv")).unwrap();
    let same_tags: Vec<&str> = meta
        .lines()
        .skip(1)
        .filter(|l| {
            let mut a: Vec<&str> = l.split('"').nth(1).unwrap().split(", ").collect();
            let mut b: Vec<&str> = tags.split(", ").collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        })
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert!(
        same_tags
            .iter()
            .any(|f| image::open(data.join(f)).unwrap().to_rgb8() == tile),
        "the first real tile of '{tags}' is none of its {} real faces",
        same_tags.len()
    );
}

#[test]
fn eval_measures_in_a_shape_encoders_features_too() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, tagger) = trained_tagger(tmp.path());
    let (_, model) = tiny_model(tmp.path(), &data, &[]);
    let enc = tmp.path().join("shape");
    let o = trainer(&[
        "shape",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        enc.to_str().unwrap(),
        "--steps",
        "3",
        "--batch",
        "8",
        "--resolution",
        "16",
        "--channels",
        "4",
        "--holdout",
        "30",
    ]);
    assert!(o.status.success(), "shape train failed: {}", stderr(&o));
    let card = json(&enc.join("shape.json"));
    assert_eq!(card["format"], "kyara-shape-encoder");
    assert_eq!(card["split"]["percent"], 30);
    assert_eq!(card["weights_sha256"].as_str().unwrap().len(), 64);
    let report = tmp.path().join("eval.json");
    let run_eval = |extra: &[&str]| {
        let mut args = vec![
            "eval",
            "--model",
            model.to_str().unwrap(),
            "--tagger",
            tagger.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--per-combo",
            "4",
            "--json",
            report.to_str().unwrap(),
            "--force",
        ];
        args.extend(extra);
        trainer(&args)
    };
    let o = run_eval(&["--shape", enc.to_str().unwrap()]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("shape features (encoder 'shape'"), "{table}");
    let j = json(&report);
    assert_eq!(j["shape"], enc.to_str().unwrap());
    let sh = &j["report"]["shape"];
    for key in ["generated_vs_heldout", "real_train_vs_heldout"] {
        for f in ["fd", "kid", "precision", "recall"] {
            assert!(sh[key][f].as_f64().unwrap().is_finite(), "{sh}");
        }
    }
    assert!(sh["diversity"]["ratio"].as_f64().is_some(), "{sh}");
    // The tagger's figures are all still there.
    assert!(j["report"]["generated_vs_heldout"]["fd"].is_number());
    assert!(j["report"]["diversity"]["ratio"].is_number());

    // --no-shape leaves them out and says so; a damaged encoder is refused by name.
    let o = run_eval(&["--no-shape"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(json(&report)["report"]["shape"].is_null());
    assert!(String::from_utf8_lossy(&o.stdout).contains("shape features: not measured"));
    let w = enc.join("shape.bpk");
    let mut bytes = std::fs::read(&w).unwrap();
    bytes[64] ^= 1;
    std::fs::write(&w, bytes).unwrap();
    let o = run_eval(&["--shape", enc.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));
}

#[test]
fn interpolation_strip_ends_are_the_generated_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    let strip = tmp.path().join("strip.png");
    let o = trainer(&[
        "interpolate",
        "--model",
        model.to_str().unwrap(),
        "--from",
        "3:red hair, green eyes",
        "--to",
        "9:blue hair, purple eyes",
        "--steps",
        "5",
        "--out",
        strip.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "interpolate failed: {}", stderr(&o));
    let strip = image::open(&strip).unwrap().to_rgba8();
    // Sheet layout: 16-pixel tiles, 2-pixel gutters, one row of 5.
    assert_eq!(strip.dimensions(), (5 * 16 + 6 * 2, 16 + 2 * 2));
    let tile = |k: u32| image::imageops::crop_imm(&strip, 2 + k * 18, 2, 16, 16).to_image();
    for (k, seed, tags) in [
        (0, "3", "red hair, green eyes"),
        (4, "9", "blue hair, purple eyes"),
    ] {
        let out = tmp.path().join(format!("gen{seed}"));
        let o = trainer(&[
            "generate",
            "--model",
            model.to_str().unwrap(),
            "--tags",
            tags,
            "--seeds",
            seed,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let face = image::open(out.join(format!("seed000{seed}.png")))
            .unwrap()
            .to_rgba8();
        assert!(tile(k) == face, "strip end {k} differs from seed {seed}");
    }
    // The middle differs from both ends.
    assert!(tile(2) != tile(0) && tile(2) != tile(4));
}

#[test]
fn train_eval_every_appends_metric_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, tagger) = trained_tagger(tmp.path());
    let (run, _) = tiny_model(
        tmp.path(),
        &data,
        &[
            "--eval-every",
            "1",
            "--tagger",
            tagger.to_str().unwrap(),
            "--eval-per-combo",
            "3",
        ],
    );
    let text = std::fs::read_to_string(run.join("metric-tagger-eval.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["step"], 2);
    assert!(lines[1]["report"]["generated_vs_heldout"]["fd"].is_number());
}

#[test]
fn measuring_commands_reject_bad_input_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = varied_dataset(tmp.path(), "faces", 6, true);
    let d = data.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["tag", "--tagger", "t", "--data", d, "--threshold", "2"],
            "not a probability",
        ),
        (
            &[
                "interpolate",
                "--model",
                "m",
                "--from",
                "banana",
                "--to",
                "1",
                "--out",
                "x.png",
            ],
            "not an endpoint",
        ),
        (
            &[
                "eval",
                "--model",
                "m",
                "--tagger",
                "t",
                "--data",
                d,
                "--per-combo",
                "0",
            ],
            "per-combo",
        ),
        (
            &["tag", "--tagger", d, "--data", d],
            "cannot read tagger card",
        ),
        (
            &["train", "--data", d, "--out", "x", "--eval-every", "5"],
            "--tagger",
        ),
    ];
    for (args, needle) in cases {
        let o = trainer(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // A model card is not a tagger card; a truncated tagger is a clear error.
    let (_, model) = tiny_model(
        tmp.path(),
        &varied_dataset(tmp.path(), "more", 12, true),
        &[],
    );
    let o = trainer(&[
        "tag",
        "--tagger",
        model.join("model.json").to_str().unwrap(),
        "--data",
        d,
    ]);
    assert!(stderr(&o).contains("not a tagger card"), "{}", stderr(&o));
    let (_, tagger) = trained_tagger(&tmp.path().join("t"));
    let w = tagger.join("tagger.bpk");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 3]).unwrap();
    let before = std::fs::read_to_string(data.join("metadata.csv")).unwrap();
    let o = trainer(&[
        "tag",
        "--tagger",
        tagger.to_str().unwrap(),
        "--data",
        d,
        "--overwrite",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("weights"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(data.join("metadata.csv")).unwrap(),
        before
    );
    assert!(!tmp.path().join("x").exists());
}
