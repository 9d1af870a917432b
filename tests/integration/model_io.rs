//! Weights round trips and the native/web pixel agreement.

use burn::prelude::*;
use shared_model::ResnetCganGeneratorConfig;
use shared_model::card::{load_weights, weights_bytes};
use shared_model::rng::seeded;

use crate::fixtures::*;

fn tiny_g() -> ResnetCganGeneratorConfig {
    ResnetCganGeneratorConfig::new(5)
        .with_latent_dim(8)
        .with_resolution(16)
        .with_init_size(8)
        .with_channels(8)
        .with_res_blocks(1)
}

#[test]
fn save_load_gives_identical_output() {
    let device = Device::flex();
    let (g, z) = seeded(&device, 1, || {
        (
            tiny_g().init(&device),
            Tensor::<2>::random(
                [2, 8],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            ),
        )
    });
    let c = Tensor::<2>::from_floats(
        [[1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]],
        &device,
    );
    let before = g.forward(z.clone(), c.clone()).into_data();
    let bytes = weights_bytes(g).unwrap();
    // A differently initialised model must become the same one.
    let fresh = seeded(&device, 2, || tiny_g().init(&device));
    let fresh_out = fresh.forward(z.clone(), c.clone()).into_data();
    assert_ne!(before, fresh_out);
    let loaded = load_weights(fresh, bytes).unwrap();
    assert_eq!(before, loaded.forward(z, c).into_data());
}

#[test]
fn export_then_web_facade_draws_the_same_pixels_as_trainer_generate() {
    for (label, name, flags) in family_variants() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tiny_run_with(tmp.path(), 2, &flags);
        let model_dir = export_tiny(tmp.path(), &run);
        let card = std::fs::read_to_string(model_dir.join("model.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&card).unwrap();
        assert_eq!(v["arch"], name, "{label}");
        web_matches_native(tmp.path(), &model_dir, !label.ends_with("unconditional"));
    }
}

fn web_matches_native(tmp: &std::path::Path, model_dir: &std::path::Path, conditional: bool) {
    let faces = tmp.join("faces-out");
    let o = trainer(&[
        "generate",
        "--model",
        model_dir.to_str().unwrap(),
        "--tags",
        "blue hair",
        "--seeds",
        "7,42",
        "--out",
        faces.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    let card = std::fs::read_to_string(model_dir.join("model.json")).unwrap();
    let weights = std::fs::read(weights_file(model_dir)).unwrap();
    let web = web::Facade::load(&card, &weights).unwrap();
    for seed in [7u64, 42] {
        let native = image::open(faces.join(format!("seed{seed:04}.png")))
            .unwrap()
            .to_rgba8()
            .into_raw();
        let browser_path = web.generate(seed, "blue hair").unwrap();
        assert_eq!(native.len(), 16 * 16 * 4);
        assert_eq!(
            native, browser_path,
            "seed {seed}: web facade and trainer generate differ"
        );
    }
    // The tags written next to the images are the resolved ones the facade reports.
    let meta = std::fs::read_to_string(faces.join("metadata.csv")).unwrap();
    let resolved = web.resolve_tags(42, "blue hair").unwrap().join(", ");
    assert!(
        meta.contains(&format!("seed0042.png,\"{resolved}\"")),
        "{meta}"
    );
    // Different seeds give different faces; tags change the face.
    assert_ne!(
        web.generate(7, "blue hair").unwrap(),
        web.generate(42, "blue hair").unwrap()
    );
    // Tags change the face exactly when the model is conditional.
    assert_eq!(
        web.generate(7, "blue hair").unwrap() != web.generate(7, "red hair").unwrap(),
        conditional
    );
}

#[test]
fn facade_rejects_bad_bytes_and_tags_with_clear_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model_dir = export_tiny(tmp.path(), &run);
    let card = std::fs::read_to_string(model_dir.join("model.json")).unwrap();
    let weights = std::fs::read(weights_file(&model_dir)).unwrap();

    let truncated = &weights[..weights.len() / 2];
    let e = web::Facade::load(&card, truncated)
        .err()
        .expect("truncated weights must fail")
        .to_string();
    assert!(e.contains("weights"), "{e}");
    let e = web::Facade::load(&card, b"\x89PNG\r\n\x1a\nnot weights")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("weights"), "{e}");
    let e = web::Facade::load(&card, &[]).err().unwrap().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = web::Facade::load("{\"hello\": 1}", &weights)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("kyara model card"), "{e}");
    let e = web::Facade::load("not json", &weights)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not JSON"), "{e}");
    // A card whose architecture does not match the weights.
    let mut v: serde_json::Value = serde_json::from_str(&card).unwrap();
    v["generator"]["channels"] = serde_json::json!(16);
    // Sealed, the page refuses the edited card as such (the seal is checked in shared code).
    let e = web::Facade::load(&v.to_string(), &weights)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("edited after it was sealed") && e.contains("architecture config"),
        "{e}"
    );
    // Unsealed (a card from before the seal), the weights do not fit it.
    v.as_object_mut().unwrap().remove("seal");
    let e = web::Facade::load(&v.to_string(), &weights)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("do not fit"), "{e}");

    let web = web::Facade::load(&card, &weights).unwrap();
    let e = web.generate(1, "green hair").unwrap_err().to_string();
    assert!(
        e.contains("unknown tag 'green hair'") && e.contains("red hair"),
        "{e}"
    );
    let e = web
        .generate(1, "red hair, blue hair")
        .unwrap_err()
        .to_string();
    assert!(e.contains("exclusive group 'hair'"), "{e}");
}

#[test]
fn a_run_folder_draws_the_faces_of_its_f32_export() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = tmp.path().join("model-f32");
    let o = trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let draw = |source: &std::path::Path, out: &str| {
        let out = tmp.path().join(out);
        let o = trainer(&[
            "generate",
            "--model",
            source.to_str().unwrap(),
            "--tags",
            "red hair",
            "--seeds",
            "0-3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&out)
            .unwrap()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let from_run = draw(&run, "from-run");
    assert_eq!(from_run.len(), 5, "4 faces and metadata.csv");
    assert_eq!(from_run, draw(&model, "from-export"));
    // Drawing from the run wrote nothing into it.
    assert!(!files_under(&run).iter().any(|f| f.ends_with("model.json")));
}

/// Exporting again into a model's folder switches models with the card alone: the new weights
/// go under a new name first, so a write killed before the card leaves the old model whole
/// (with one fixed name, 6 of 10 kills between the two files left a folder that did not load).
#[test]
fn re_export_switches_models_with_the_card_and_removes_the_old_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    let first = weights_file(&model);
    assert!(first.is_file());
    let first_bytes = std::fs::read(first.clone()).unwrap();
    // What a kill after the weights and before the card leaves: new weights the card does not
    // name. The folder still loads the old model, byte for byte.
    std::fs::write(
        model.join("generator-0123456789abcdef.bpk"),
        b"half a model",
    )
    .unwrap();
    assert_eq!(weights_file(&model), first);
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--seeds",
        "1",
        "--out",
        tmp.path().join("faces").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Export again at another precision: a new name, the old file gone, the card names the new.
    let o = trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--precision",
        "f32",
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let second = weights_file(&model);
    assert_ne!(second, first);
    assert!(second.is_file() && !first.exists());
    assert_ne!(std::fs::read(second).unwrap(), first_bytes);
}

/// `trainer directions` finds closed-form style directions of a StyleGAN2-style model, names
/// them into its card, and `generate --edit` and a permalink's `d=` step along them alike.
#[test]
fn style_directions_are_found_named_and_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run_with(tmp.path(), 2, &["--arch", "stylegan2"]);
    let model_dir = export_tiny(tmp.path(), &run);
    let m = model_dir.to_str().unwrap();
    let sheet = tmp.path().join("sweep.png");
    let o = trainer(&[
        "directions",
        "--model",
        m,
        "--sefa",
        "3",
        "--name",
        "2=tilt",
        "--sheet",
        sheet.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("model.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = card["directions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sefa 1", "tilt", "sefa 3"]);
    assert_eq!(card["directions"][1]["space"], "w");
    assert!(card["directions"][1]["range"].as_f64().unwrap() > 0.0);
    let sweep = image::open(&sheet).unwrap();
    assert!(sweep.width() > 7 * 16 && sweep.height() > 3 * 16);

    let draw = |extra: &[&str], out: &str| {
        let dir = tmp.path().join(out);
        let mut args = vec!["generate", "--model", m, "--out", dir.to_str().unwrap()];
        args.extend(extra);
        let o = trainer(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(dir.join("seed0007.png")).unwrap()
    };
    let plain = draw(&["--seeds", "7"], "plain");
    let edited = draw(&["--seeds", "7", "--edit", "tilt=+2"], "edited");
    let linked = draw(&["--link", "#seed=7&d=tilt:2"], "linked");
    assert_ne!(plain, edited, "a direction changes the face");
    assert_eq!(edited, linked, "--edit and the link's d= are one recipe");
    let o = trainer(&["generate", "--model", m, "--out", "x", "--edit", "smile=1"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no direction 'smile'"),
        "{}",
        stderr(&o)
    );
}
