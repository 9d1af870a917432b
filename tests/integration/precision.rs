//! Half-precision weights: `export --precision`, `convert`, and what loaders make of both.

use std::path::{Path, PathBuf};

use crate::fixtures::*;

/// Largest difference of one 8-bit R, G or B value between the faces of f16 and f32 weights
/// that the tests accept. f16 keeps 11 significant bits (relative error <= 2^-11 per weight);
/// measured: 0 or 1 here and for the shipped models (README). shared-model's unit tests show
/// that weights cut to 3 significant bits break such a bound.
const MAX_PIXEL_DIFF: u8 = 2;

fn export_as(dir: &Path, run: &Path, name: &str, precision: Option<&str>) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec![
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    if let Some(p) = precision {
        args.extend(["--precision", p]);
    }
    let o = trainer(&args);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    out
}

fn load(dir: &Path) -> web::Facade {
    let card = std::fs::read_to_string(dir.join("model.json")).unwrap();
    let weights = std::fs::read(weights_file(dir)).unwrap();
    web::Facade::load(&card, &weights).unwrap()
}

fn card_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap()
}

/// (max, mean) absolute difference of R, G, B over the faces of `seeds` (open tags).
fn pixel_diff(a: &web::Facade, b: &web::Facade, seeds: std::ops::Range<u64>) -> (u8, f64) {
    let (mut max, mut sum, mut n) = (0u8, 0u64, 0u64);
    for seed in seeds {
        let fa = a.generate(seed, "").unwrap();
        let fb = b.generate(seed, "").unwrap();
        assert_eq!(fa.len(), fb.len());
        for (pa, pb) in fa.chunks_exact(4).zip(fb.chunks_exact(4)) {
            for k in 0..3 {
                let d = pa[k].abs_diff(pb[k]);
                max = max.max(d);
                sum += d as u64;
                n += 1;
            }
        }
    }
    (max, sum as f64 / n as f64)
}

#[test]
fn f16_export_is_smaller_and_draws_nearly_the_same_faces() {
    for arch in shared_model::arch::NAMES {
        let tmp = tempfile::tempdir().unwrap();
        let run = tiny_run_with(tmp.path(), 2, &["--arch", arch]);
        let full = export_as(tmp.path(), &run, "f32", Some("f32"));
        let half = export_as(tmp.path(), &run, "f16", None); // the default
        assert_eq!(card_json(&full)["weights_dtype"], "f32", "{arch}");
        assert_eq!(card_json(&half)["weights_dtype"], "f16", "{arch}");
        let size = |d: &Path| std::fs::metadata(weights_file(d)).unwrap().len();
        // The tiny test models are mostly container metadata; the half-size figure for real
        // models is checked in shared-model's unit tests.
        assert!(size(&half) < size(&full), "{arch}");

        let (max, mean) = pixel_diff(&load(&full), &load(&half), 0..16);
        assert!(
            max <= MAX_PIXEL_DIFF && mean < 0.5,
            "{arch}: f16 faces differ by max {max}, mean {mean}"
        );
    }
}

#[test]
fn truncated_f16_weights_are_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_as(tmp.path(), &run, "m", Some("f16"));
    let card = std::fs::read_to_string(model.join("model.json")).unwrap();
    let weights = std::fs::read(weights_file(&model)).unwrap();
    for cut in [weights.len() / 2, weights.len() - 1, 40] {
        let e = web::Facade::load(&card, &weights[..cut])
            .err()
            .expect("truncated weights must fail")
            .to_string();
        assert!(e.contains("weights"), "cut at {cut}: {e}");
    }
    std::fs::write(weights_file(&model), &weights[..weights.len() - 64]).unwrap();
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--out",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(".bpk") && e.contains("truncated"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn f32_models_with_cards_from_before_the_field_still_load() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_as(tmp.path(), &run, "m", Some("f32"));
    let before = load(&model).generate(3, "red hair").unwrap();
    let mut card = card_json(&model);
    card.as_object_mut().unwrap().remove("weights_dtype");
    // A card from before the field is from before the seal too.
    card.as_object_mut().unwrap().remove("seal");
    std::fs::write(model.join("model.json"), card.to_string()).unwrap();
    assert_eq!(load(&model).generate(3, "red hair").unwrap(), before);
}

#[test]
fn convert_rewrites_a_model_in_place_and_reports_the_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run_with(tmp.path(), 2, &["--arch", "dcgan"]);
    let model = export_as(tmp.path(), &run, "m", Some("f32"));
    let reference = load(&model);
    let f32_size = std::fs::metadata(weights_file(&model)).unwrap().len();
    let report = tmp.path().join("report.json");
    let o = trainer(&[
        "convert",
        "--model",
        model.join("model.json").to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--check-seeds",
        "0-7",
        "--json",
        report.to_str().unwrap(),
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("max abs difference"), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some("f32"), Some("f16"))
    );
    assert_eq!(r["bytes_before"].as_u64(), Some(f32_size));
    let after = std::fs::metadata(weights_file(&model)).unwrap().len();
    assert_eq!(r["bytes_after"].as_u64(), Some(after));
    assert!(after < f32_size);
    assert_eq!(r["error"]["faces"], 8);
    assert!(
        r["error"]["max"].as_u64().unwrap() <= MAX_PIXEL_DIFF as u64,
        "{r}"
    );
    assert_eq!(card_json(&model)["weights_dtype"], "f16");
    // No temporary files left beside the model.
    let mut names: Vec<_> = std::fs::read_dir(&model)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    // The card and the one weights file it names (the f32 file it replaced is gone).
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], "model.json");
    assert_eq!(
        weights_file(&model).file_name().unwrap().to_str(),
        Some(names[0].as_str())
    );
    let (max, _) = pixel_diff(&reference, &load(&model), 0..8);
    assert!(max <= MAX_PIXEL_DIFF);

    // And back to f32 (the values stay those of f16).
    let back = tmp.path().join("back");
    let o = trainer(&[
        "convert",
        "--model",
        model.to_str().unwrap(),
        "--out",
        back.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(card_json(&back)["weights_dtype"], "f32");
    assert_eq!(
        load(&back).generate(5, "").unwrap(),
        load(&model).generate(5, "").unwrap()
    );
}

#[test]
fn int8_quantises_the_dense_layer_and_still_draws_close_faces() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let full = export_as(tmp.path(), &run, "f32", Some("f32"));
    let half = export_as(tmp.path(), &run, "f16", Some("f16"));
    let int8 = export_as(tmp.path(), &run, "int8", Some("int8"));
    assert_eq!(card_json(&int8)["weights_dtype"], "int8");
    let size = |d: &Path| std::fs::metadata(weights_file(d)).unwrap().len();
    assert!(
        size(&int8) < size(&half),
        "{} vs {}",
        size(&int8),
        size(&half)
    );
    let (max, mean) = pixel_diff(&load(&full), &load(&int8), 0..16);
    assert!(
        max <= 4 && mean < 0.5,
        "int8 faces differ by max {max}, mean {mean}"
    );
}

#[test]
fn nonsense_precisions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["export", "--run", "r", "--out", "o", "--precision", "f8"][..],
        &[
            "convert",
            "--model",
            "m",
            "--out",
            "o",
            "--precision",
            "half",
        ][..],
    ] {
        let o = trainer(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let e = stderr(&o);
        assert!(
            e.contains("invalid value") && e.contains("f16") && e.contains("f32"),
            "{e}"
        );
    }
    // A missing model is an error that names it.
    let o = trainer(&[
        "convert",
        "--model",
        tmp.path().join("nope").to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
    assert!(!tmp.path().join("o").exists());
}
