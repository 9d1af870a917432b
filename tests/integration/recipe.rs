//! The recipe of a face through the CLI: `generate --link` / `--spec` and `interpolate` draw what
//! the web facade (the page's code) draws for the same spec; `convert` keeps a card's latent
//! directions.

use std::path::Path;

use shared_model::FaceSpec;

use crate::fixtures::*;

/// Adds a latent direction (a fixed vector of the tiny models' 8 values) to an exported card.
fn add_direction(model: &Path) -> serde_json::Value {
    let path = model.join("model.json");
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let dirs = serde_json::json!([{
        "name": "test tilt",
        "vector": [0.5, -0.25, 1.0, 0.0, -1.0, 0.75, 0.125, -0.5]
    }]);
    card["directions"] = dirs.clone();
    std::fs::write(&path, serde_json::to_string_pretty(&card).unwrap()).unwrap();
    reseal(&path);
    dirs
}

fn facade(model: &Path) -> web::Facade {
    let card = std::fs::read_to_string(model.join("model.json")).unwrap();
    let weights = std::fs::read(weights_file(model)).unwrap();
    web::Facade::load(&card, &weights).unwrap()
}

fn png(path: &Path) -> Vec<u8> {
    image::open(path).unwrap().to_rgba8().into_raw()
}

const LINK: &str = "#model=model&seed=5&tags=blue_hair&s=blue_hair:1.3,green_eyes:0.4&v=9:0.5,10:1.2&d=test_tilt:1.5";

#[test]
fn generate_link_draws_what_the_page_draws() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    add_direction(&model);
    let web = facade(&model);

    let out = tmp.path().join("link");
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--link",
        LINK,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("note:"), "{}", stderr(&o));
    let link = web.read_link(LINK);
    assert!(link.problems.is_empty(), "{:?}", link.problems);
    let face = web.face(&link.spec).unwrap();
    assert_eq!(
        png(&out.join("seed0005.png")),
        face.rgba,
        "CLI and page differ"
    );
    let meta = std::fs::read_to_string(out.join("metadata.csv")).unwrap();
    assert!(
        meta.contains(&format!("seed0005.png,\"{}\"", face.inputs.tags.join(", "))),
        "{meta}"
    );
    // Every part of the link shows in the pixels: leaving one out draws another face.
    for part in [
        "&s=blue_hair:1.3,green_eyes:0.4",
        "&v=9:0.5,10:1.2",
        "&d=test_tilt:1.5",
    ] {
        let without = web.read_link(&LINK.replace(part, ""));
        assert_ne!(web.face(&without.spec).unwrap().rgba, face.rgba, "{part}");
    }

    // The same text in a file; a link without a seed takes --seeds.
    let spec_file = tmp.path().join("face.txt");
    std::fs::write(&spec_file, format!("{LINK}\n")).unwrap();
    let out2 = tmp.path().join("spec");
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--spec",
        spec_file.to_str().unwrap(),
        "--out",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png(&out2.join("seed0005.png")), face.rgba);
    let out3 = tmp.path().join("seeds");
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--link",
        &LINK.replace("&seed=5", ""),
        "--seeds",
        "5,6",
        "--out",
        out3.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png(&out3.join("seed0005.png")), face.rgba);
    assert!(out3.join("seed0006.png").is_file());
}

#[test]
fn generate_link_refuses_what_it_cannot_draw() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    let out = tmp.path().join("out");
    let m = model.to_str().unwrap();
    let o_ = out.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "generate",
                "--model",
                m,
                "--link",
                "#seed=1&tags=zebra_hair",
                "--out",
                o_,
            ],
            "unknown tag “zebra hair”",
        ),
        (
            &[
                "generate",
                "--model",
                m,
                "--link",
                "#seed=1&d=smile:1",
                "--out",
                o_,
            ],
            "unknown latent direction “smile”",
        ),
        (
            &[
                "generate",
                "--model",
                m,
                "--link",
                "#seed=x&v=1:-2",
                "--out",
                o_,
            ],
            "variation “1:-2” is not seed:strength",
        ),
        (
            &[
                "generate", "--model", m, "--link", "#seed=1", "--seeds", "2", "--out", o_,
            ],
            "leave out --seeds",
        ),
        (
            &[
                "generate", "--model", m, "--link", "#seed=1", "--tags", "red hair", "--out", o_,
            ],
            "cannot be used with",
        ),
    ];
    for (args, needle) in cases {
        let o = trainer(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    assert!(
        files_under(&out).is_empty(),
        "nothing may be written on error"
    );
}

#[test]
fn interpolate_frames_are_the_page_transition_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    add_direction(&model);
    let web = facade(&model);
    let (from, to) = (
        "#seed=3&tags=red_hair&s=green_eyes:0.7&v=4:0.35",
        "#seed=9&tags=blue_hair,purple_eyes&d=test_tilt:-2",
    );
    let strip = tmp.path().join("strip.png");
    let o = trainer(&[
        "interpolate",
        "--model",
        model.to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--steps",
        "6",
        "--out",
        strip.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "interpolate failed: {}", stderr(&o));
    let strip = image::open(&strip).unwrap().to_rgba8();
    let tile = |k: u32| {
        image::imageops::crop_imm(&strip, 2 + k * 18, 2, 16, 16)
            .to_image()
            .into_raw()
    };
    let (a, b) = (web.read_link(from).spec, web.read_link(to).spec);
    let frames = web.frames(&a, &b, 6).unwrap();
    for (k, f) in frames.iter().enumerate() {
        assert_eq!(&tile(k as u32), f, "frame {k}");
    }
    assert_eq!(frames[0], web.face(&a).unwrap().rgba);
    assert_eq!(frames[5], web.face(&b).unwrap().rgba);
    // An endpoint the model cannot draw names its side.
    let o = trainer(&[
        "interpolate",
        "--model",
        model.to_str().unwrap(),
        "--from",
        from,
        "--to",
        "#seed=9&d=nod:1",
        "--out",
        tmp.path().join("x.png").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--to") && stderr(&o).contains("nod"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn convert_keeps_the_latent_directions() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    let dirs = add_direction(&model);
    let out = tmp.path().join("converted");
    let o = trainer(&[
        "convert",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["directions"], dirs, "convert dropped the directions");
    // The converted model steps along them as the source does.
    let spec = FaceSpec::from_link("seed=2&d=test_tilt:1.5").spec;
    let (src, conv) = (facade(&model), facade(&out));
    assert_eq!(
        conv.face(&spec).unwrap().inputs,
        src.face(&spec).unwrap().inputs
    );
    // A card without directions stays without the field.
    let mut card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap();
    card.as_object_mut().unwrap().remove("directions");
    std::fs::write(model.join("model.json"), card.to_string()).unwrap();
    reseal(&model.join("model.json"));
    let bare = tmp.path().join("bare");
    let o = trainer(&[
        "convert",
        "--model",
        model.to_str().unwrap(),
        "--out",
        bare.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(bare.join("model.json")).unwrap();
    let mut card: serde_json::Value = serde_json::from_str(&text).unwrap();
    // (The seal names its "directions" part, which is the checksum of none.)
    assert!(card.get("directions").is_none(), "{text}");
    // Directions that do not fit the latent are a clear error, not a panic.
    card["directions"] = serde_json::json!([{ "name": "short", "vector": [1.0, 2.0] }]);
    // Unsealed (as a card from before the seal), so that the directions' own check speaks.
    card.as_object_mut().unwrap().remove("seal");
    std::fs::write(bare.join("model.json"), card.to_string()).unwrap();
    let o = trainer(&[
        "generate",
        "--model",
        bare.to_str().unwrap(),
        "--out",
        tmp.path().join("g").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("direction 'short' has 2 values, the latent has 8"),
        "{}",
        stderr(&o)
    );
}
