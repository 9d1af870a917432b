//! Issue 31 through the CLI: an output never lands on what the command was not asked to write
//! (its own inputs, a card, another of its outputs, a link, a FIFO, another model), `directions`
//! keeps the directions it did not compute, inputs are files of bounded size, and the numbers of a
//! face recipe stay within what the card allows. The models are made in code (no training).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use shared_model::arch::{FamilyOptions, configure};
use shared_model::card::TrainingInfo;
use shared_model::{Direction, ModelCard, Space, TagVocab};

use crate::fixtures::*;

/// An untrained model of `arch` (16 px, hair and eyes tags) exported into `dir/name`, with
/// `directions` in its card.
fn model_in(dir: &Path, name: &str, arch: &str, directions: Vec<Direction>) -> PathBuf {
    let sets: Vec<Vec<String>> = HAIR
        .iter()
        .flat_map(|(h, _)| EYES.iter().map(|(e, _)| vec![h.to_string(), e.to_string()]))
        .collect();
    let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
    let opts = FamilyOptions {
        latent_dim: Some(8),
        g_channels: Some(8),
        g_blocks: Some(1),
        d_channels: Some(8),
        ..Default::default()
    };
    let (g, _) = configure(arch, vocab.len(), 16, &opts).unwrap();
    let mut card = ModelCard::new(name, vocab, g, TrainingInfo::default());
    card.directions = directions;
    let device = Device::flex();
    let generator =
        shared_model::rng::seeded(&device, 7, || card.generator.try_init(&device)).unwrap();
    let out = dir.join(name);
    trainer::model_io::export::write_model(&out, &mut card, generator).unwrap();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn refused(args: &[&str], says: &[&str]) -> String {
    let o = trainer(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {e}");
    for want in says {
        assert!(e.contains(want), "{args:?}: expected “{want}” in: {e}");
    }
    e
}

fn ok(args: &[&str]) -> String {
    let o = trainer(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stderr(&o)
}

fn card_json(model: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(model.join("model.json")).unwrap()).unwrap()
}

/// The cases of the issue where an output was renamed over a card or another output: each is
/// refused before anything is written, naming the option, and the card stays byte for byte.
#[test]
fn outputs_never_land_on_a_card_or_on_another_output() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let m = model_in(t, "m", "resnet-cgan", vec![]);
    let card = std::fs::read(m.join("model.json")).unwrap();
    let card_path = m.join("model.json");
    let k6 = t.join("k6");
    refused(
        &[
            "convert",
            "--model",
            s(&m),
            "--out",
            s(&k6),
            "--json",
            s(&k6.join("model.json")),
            "--check-seeds",
            "0",
        ],
        &["--json", "also written by --out"],
    );
    assert!(!k6.join("model.json").exists(), "nothing was written");
    let g = t.join("g");
    refused(
        &[
            "generate",
            "--model",
            s(&m),
            "--seeds",
            "0-1",
            "--out",
            s(&g),
            "--sheet",
            s(&card_path),
        ],
        &["--sheet", "the model card of --model"],
    );
    assert!(!g.exists(), "no face was written either");
    refused(
        &[
            "interpolate",
            "--model",
            s(&m),
            "--from",
            "1",
            "--to",
            "2",
            "--out",
            s(&card_path),
        ],
        &["--out", "the model card of --model"],
    );
    // Another model's card is no output either, even with --force.
    let other = model_in(t, "other", "resnet-cgan", vec![]);
    refused(
        &[
            "interpolate",
            "--model",
            s(&m),
            "--from",
            "1",
            "--to",
            "2",
            "--force",
            "--out",
            s(&other.join("model.json")),
        ],
        &["is a model card"],
    );
    // The sheet on one of the faces of the same command.
    refused(
        &[
            "generate",
            "--model",
            s(&m),
            "--seeds",
            "0-3",
            "--out",
            s(&g),
            "--sheet",
            s(&g.join("seed0000.png")),
        ],
        &["--sheet", "also written by --out"],
    );
    assert_eq!(std::fs::read(&card_path).unwrap(), card);
}

/// Writing over an existing output takes `--force` (generate's sheet, interpolate, convert's
/// report); a link or a FIFO given as an output is refused even then, and stays what it was.
#[test]
fn existing_outputs_need_force_and_links_and_fifos_stay() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let m = model_in(t, "m", "resnet-cgan", vec![]);
    let sheet = t.join("sheet.png");
    let gen_args = |out: &str, force: bool| {
        let mut a = vec![
            "generate".to_string(),
            "--model".into(),
            s(&m).into(),
            "--seeds".into(),
            "0-1".into(),
            "--out".into(),
            s(&t.join(out)).into(),
            "--sheet".into(),
            s(&sheet).into(),
        ];
        if force {
            a.push("--force".into());
        }
        a
    };
    let args = gen_args("g1", false);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let args = gen_args("g2", false);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &["--sheet", "exists; give --force to replace it"],
    );
    let args = gen_args("g2", true);
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let strip = t.join("strip.png");
    let interp = |force: bool| {
        let mut a = vec![
            "interpolate",
            "--model",
            s(&m),
            "--from",
            "1",
            "--to",
            "2",
            "--out",
            s(&strip),
        ];
        if force {
            a.push("--force");
        }
        trainer(&a)
    };
    assert!(interp(false).status.success());
    let o = interp(false);
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
    assert!(stderr(&o).contains("give --force"), "{}", stderr(&o));
    assert!(interp(true).status.success());

    #[cfg(unix)]
    {
        let target = t.join("report-target.json");
        std::fs::write(&target, "keep").unwrap();
        let link = t.join("report.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let convert = |json: &Path| {
            trainer(&[
                "convert",
                "--model",
                s(&m),
                "--out",
                s(&t.join("c")),
                "--check-seeds",
                "0",
                "--force",
                "--json",
                s(json),
            ])
        };
        let o = convert(&link);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let fifo = t.join("report.fifo");
        if std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success())
        {
            let o = convert(&fifo);
            assert_eq!(o.status.code(), Some(1));
            assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
            use std::os::unix::fs::FileTypeExt;
            assert!(
                std::fs::symlink_metadata(&fifo)
                    .unwrap()
                    .file_type()
                    .is_fifo()
            );
        }
    }
}

/// `export --out D` and `convert --out D` where D holds a model: refused without `--force` (the
/// issue: another model with 30 directions was silently replaced, its weights deleted), and in
/// place with it. `eval --json` on a card is refused like the other outputs.
#[test]
fn a_folder_holding_a_model_is_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let run = tiny_run(t, 2);
    let theirs = model_in(
        t,
        "theirs",
        "resnet-cgan",
        vec![Direction::in_z("tilt", vec![0.5; 8])],
    );
    let weights = weights_file(&theirs);
    let card = std::fs::read(theirs.join("model.json")).unwrap();
    refused(
        &["export", "--run", s(&run), "--out", s(&theirs)],
        &["--out", "holds a model ('theirs')", "--force"],
    );
    assert!(weights.is_file());
    assert_eq!(std::fs::read(theirs.join("model.json")).unwrap(), card);
    refused(
        &["export", "--run", s(&run), "--out", s(&run)],
        &["is a run folder"],
    );
    refused(
        &["convert", "--model", s(&theirs), "--out", s(&theirs)],
        &["--force"],
    );
    assert_eq!(std::fs::read(theirs.join("model.json")).unwrap(), card);
    ok(&[
        "convert",
        "--model",
        s(&theirs),
        "--out",
        s(&theirs),
        "--precision",
        "f32",
        "--check-seeds",
        "0",
        "--force",
    ]);
    assert_eq!(card_json(&theirs)["weights_dtype"], "f32");
    let mine = t.join("mine");
    ok(&["export", "--run", s(&run), "--out", s(&mine)]);
    ok(&["export", "--run", s(&run), "--out", s(&theirs), "--force"]);
    assert!(!weights.exists(), "replaced with --force");

    // eval's report on a card: refused before anything is measured.
    let data = tiny_dataset(t, 24);
    let tagger = t.join("tagger");
    ok(&[
        "tagger",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&tagger),
        "--steps",
        "1",
        "--batch",
        "4",
        "--resolution",
        "16",
        "--channels",
        "4",
        "--holdout",
        "30",
    ]);
    let card = std::fs::read(mine.join("model.json")).unwrap();
    let eval = |json: &Path, force: bool| {
        let mut a = vec![
            "eval",
            "--model",
            s(&mine),
            "--tagger",
            s(&tagger),
            "--data",
            s(&data),
            "--per-combo",
            "1",
            "--json",
            s(json),
        ];
        if force {
            a.push("--force");
        }
        trainer(&a)
    };
    let o = eval(&mine.join("model.json"), true);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--json"), "{}", stderr(&o));
    assert_eq!(std::fs::read(mine.join("model.json")).unwrap(), card);
    let o = eval(&data.join("metadata.csv"), true);
    assert!(
        stderr(&o).contains("the data folder (--data)"),
        "{}",
        stderr(&o)
    );
}

/// `directions` puts what it computed into the card by name and keeps the rest (the issue: 28 of
/// the shipped card's 30 directions were deleted); `--replace` drops the old style-space ones.
/// `--name` problems are the option's, not "the model card"'s, and a tag's name is refused.
#[test]
fn directions_keep_what_they_did_not_compute() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let probe = model_in(t, "probe", "stylegan2", vec![]);
    let style_dim = {
        let c = ModelCard::from_json(&std::fs::read_to_string(probe.join("model.json")).unwrap())
            .unwrap();
        c.generator.sizes().style_dim
    };
    let hand = Direction {
        name: "smile".into(),
        vector: vec![0.25; style_dim],
        space: Space::W,
        range: Some(2.0),
        about: Some("given by hand".into()),
    };
    let m = model_in(
        t,
        "m",
        "stylegan2",
        vec![hand.clone(), Direction::in_z("tilt", vec![0.5; 8])],
    );
    let names = |m: &Path| -> Vec<String> {
        card_json(m)["directions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect()
    };
    ok(&["directions", "--model", s(&m), "--sefa", "2"]);
    assert_eq!(names(&m), ["smile", "tilt", "sefa 1", "sefa 2"]);
    assert_eq!(card_json(&m)["directions"][0]["about"], "given by hand");
    // Again, with a name: replaced by name, the rest kept.
    ok(&[
        "directions",
        "--model",
        s(&m),
        "--sefa",
        "1",
        "--name",
        "1=turn",
    ]);
    assert_eq!(names(&m), ["smile", "tilt", "sefa 1", "sefa 2", "turn"]);
    let before = std::fs::read(m.join("model.json")).unwrap();
    for (name, says) in [
        (vec!["--name", "1="], "--name '1=': the name is empty"),
        (
            vec!["--name", "1=a", "--name", "2=a"],
            "--name '2=a': 'a' is already the name of direction 1",
        ),
        (
            vec!["--name", "1=green eyes"],
            "--name '1=green eyes': 'green eyes' is a tag of the model",
        ),
        (vec!["--name", "3=x"], "'3' is not a direction number 1-2"),
    ] {
        let mut args = vec!["directions", "--model", s(&m), "--sefa", "2"];
        args.extend(name);
        let e = refused(&args, &[says]);
        assert!(!e.contains("model card"), "{e}");
    }
    assert_eq!(std::fs::read(m.join("model.json")).unwrap(), before);
    ok(&["directions", "--model", s(&m), "--sefa", "1", "--replace"]);
    assert_eq!(names(&m), ["tilt", "sefa 1"]);
}

/// Numbers of a face recipe beyond the card's ranges are refused with the range, through
/// `--edit` and links alike; `fuse`'s layer must be a crossover layer of the model (the issue:
/// `fuse=9:10` on a 10-style model was a silent no-op while 999 was refused).
#[test]
fn recipe_numbers_stay_within_the_card() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let probe = model_in(t, "probe", "stylegan2", vec![]);
    let c =
        ModelCard::from_json(&std::fs::read_to_string(probe.join("model.json")).unwrap()).unwrap();
    let sizes = c.generator.sizes();
    let m = model_in(
        t,
        "m",
        "stylegan2",
        vec![Direction {
            name: "face outline".into(),
            vector: vec![0.25; sizes.style_dim],
            space: Space::W,
            range: Some(4.0),
            about: None,
        }],
    );
    let out = t.join("o");
    let draw = |extra: &[&str], says: &[&str]| {
        let mut a = vec!["generate", "--model", s(&m), "--out", s(&out)];
        a.extend(extra);
        refused(&a, says)
    };
    draw(
        &["--seeds", "1", "--edit", "face outline=1e30"],
        &["--edit", "face outline", "1e30", "-4 to 4"],
    );
    draw(
        &["--link", "seed=1&d=face_outline:1e308"],
        &["--link", "-4 to 4"],
    );
    draw(
        &["--link", "seed=1&s=red_hair:1e308"],
        &["red hair", "1e308", "-4 to 4"],
    );
    draw(&["--link", "seed=1&v=5:1e308"], &["Variation 5", "0 to 4"]);
    let last = sizes.styles.to_string();
    for layer in [last.as_str(), "999", "0"] {
        draw(
            &["--link", &format!("seed=1&fuse=9:{layer}")],
            &[
                "not a crossover layer",
                &format!("1 to {}", sizes.styles - 1),
            ],
        );
    }
    assert!(!out.exists(), "nothing was written");
    ok(&[
        "generate",
        "--model",
        s(&m),
        "--out",
        s(&out),
        "--link",
        &format!("seed=1&fuse=9:{}&d=face_outline:-4", sizes.styles - 1),
    ]);
}

/// Inputs are files of bounded size: a data row naming a device or a FIFO is skipped by name
/// (`/dev/zero` once filled the memory, a FIFO hung `train`), `--spec` on a device is refused,
/// and a kohya folder with a link loop is read once (32 images once became 1,312).
#[cfg(unix)]
#[test]
fn inputs_are_regular_files_of_bounded_size() {
    use trainer::data::{OnBadEntry, load_dataset};
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = tiny_dataset(t, 6);
    let fifo = data.join("images/pipe.png");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Should a regression open the FIFO, a writer lets it end instead of hanging.
    let writer = fifo.clone();
    std::thread::spawn(move || {
        let _ = std::fs::write(writer, b"not an image");
    });
    let mut csv = std::fs::read_to_string(data.join("metadata.csv")).unwrap();
    csv.push_str("/dev/null,\"red hair, green eyes\"\nimages/pipe.png,\"red hair, green eyes\"\n");
    std::fs::write(data.join("metadata.csv"), csv).unwrap();
    let d = load_dataset(&data, 16, OnBadEntry::Skip, &|_, _| {}).unwrap();
    assert_eq!(d.len(), 6);
    let problems: Vec<String> = d.skipped.iter().map(|b| b.to_string()).collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    for (p, name) in problems.iter().zip(["/dev/null", "pipe.png"]) {
        assert!(
            p.contains(name) && p.contains("not a regular file"),
            "{problems:?}"
        );
    }

    // A kohya folder with a loop: each image once, the loop named.
    let kohya = t.join("kohya");
    std::fs::create_dir_all(kohya.join("sub")).unwrap();
    for (i, f) in std::fs::read_dir(data.join("images"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .enumerate()
    {
        let dest = kohya.join(if i % 2 == 0 { "" } else { "sub" });
        std::fs::copy(f.path(), dest.join(f.file_name())).unwrap();
        std::fs::write(
            dest.join(f.file_name()).with_extension("txt"),
            "red hair, green eyes",
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("..", kohya.join("sub/up")).unwrap();
    let d = load_dataset(&kohya, 16, OnBadEntry::Skip, &|_, _| {}).unwrap();
    assert_eq!(d.len(), 6, "each image once");
    assert_eq!(d.skipped.len(), 1);
    assert!(
        d.skipped[0].to_string().contains("sub/up") && d.skipped[0].problem.contains("loop"),
        "{}",
        d.skipped[0]
    );

    let m = model_in(t, "m", "resnet-cgan", vec![]);
    refused(
        &[
            "generate",
            "--model",
            s(&m),
            "--spec",
            "/dev/null",
            "--out",
            s(&t.join("o")),
        ],
        &["face spec /dev/null is a device"],
    );
}

/// An edit of a card's JSON.
type CardEdit<'a> = &'a dyn Fn(&mut serde_json::Value);

/// Writes `card` into `dir/model.json` as JSON edited by `edit`.
fn edit_card(dir: &Path, edit: &dyn Fn(&mut serde_json::Value)) {
    let mut v = card_json(dir);
    edit(&mut v);
    std::fs::write(
        dir.join("model.json"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
}

/// Issue 31: a card's checksums covered the weights and the tag list only, so `lr_mul` 10 -> 1,
/// `mapping_lr_mul` 0.01 -> 1, `vocab.groups: []` and a `w` direction relabelled `z` loaded and
/// drew wrong faces. Every card kyara writes (export, convert, directions, seal) is sealed
/// whole; an edit is refused naming what changed; `trainer seal` reseals a card written before
/// the seal, and with --force one edited on purpose.
#[test]
fn a_card_is_sealed_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let m = model_in(t, "m", "stylegan2", vec![]);
    assert!(card_json(&m)["seal"]["sha256"].is_string(), "export seals");
    // `directions` changes the card and reseals it.
    ok(&["directions", "--model", s(&m), "--sefa", "2"]);
    assert_eq!(card_json(&m)["directions"][0]["space"], "w");
    let out = t.join("faces");
    let draw = [
        "generate",
        "--model",
        s(&m),
        "--seeds",
        "1",
        "--out",
        s(&out),
        "--force",
    ];
    ok(&draw);
    let sealed = std::fs::read(m.join("model.json")).unwrap();
    let cases: [(CardEdit, &str); 4] = [
        (
            &|c| c["generator"]["lr_mul"] = 1.0.into(),
            "architecture config",
        ),
        (
            &|c| c["generator"]["mapping_lr_mul"] = 1.0.into(),
            "architecture config",
        ),
        (
            &|c| c["vocab"]["groups"] = serde_json::json!([]),
            "vocabulary",
        ),
        (&|c| c["directions"][0]["space"] = "z".into(), "directions"),
    ];
    for (edit, part) in cases {
        edit_card(&m, edit);
        refused(&draw, &[part, "edited after it was sealed"]);
        refused(
            &[
                "convert",
                "--model",
                s(&m),
                "--out",
                s(&t.join("c")),
                "--check-seeds",
                "0",
            ],
            &[part],
        );
        std::fs::write(m.join("model.json"), &sealed).unwrap();
    }
    // The words for people are not sealed.
    edit_card(&m, &|c| {
        c["name"] = "renamed".into();
        c["directions"][0]["about"] = "a turn of the head".into();
    });
    ok(&draw);
    // `seal` refuses an edited card, unless --force.
    edit_card(&m, &|c| c["generator"]["lr_mul"] = 1.0.into());
    refused(
        &["seal", "--model", s(&m)],
        &["architecture config", "--force"],
    );
    ok(&["seal", "--model", s(&m), "--force"]);
    ok(&draw);
    assert_eq!(card_json(&m)["generator"]["lr_mul"], 1.0);
    // A card written before the seal loads as before, and `seal` seals it.
    std::fs::write(m.join("model.json"), &sealed).unwrap();
    edit_card(&m, &|c| {
        c.as_object_mut().unwrap().remove("seal");
    });
    ok(&draw);
    ok(&["seal", "--model", s(&m)]);
    assert_eq!(std::fs::read(m.join("model.json")).unwrap(), sealed);
    // A shape encoder's folder is named as such (it once read as a missing model.json).
    let shape = t.join("shape");
    std::fs::create_dir(&shape).unwrap();
    std::fs::write(shape.join("shape.json"), "{}").unwrap();
    refused(&["seal", "--model", s(&shape)], &["shape encoder card"]);
}

/// Issue 31: a tagger card with its tag list reversed named every score wrong (`directions
/// --tagger` wrote 12 supervised directions under the wrong names). Tagger cards carry their
/// tag list's checksum, checked on load.
#[test]
fn a_tagger_card_with_its_tags_reordered_is_refused() {
    use shared_model::tagger::{
        HoldoutSplit, TaggerAccuracy, TaggerCard, TaggerConfig, TaggerTraining,
    };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let data = tiny_dataset(t, 6);
    let sets: Vec<Vec<String>> = HAIR
        .iter()
        .flat_map(|(h, _)| EYES.iter().map(|(e, _)| vec![h.to_string(), e.to_string()]))
        .collect();
    let vocab = TagVocab::from_tag_sets(sets.iter().map(|s| s.as_slice()));
    let cfg = TaggerConfig::new(vocab.len())
        .with_resolution(16)
        .with_channels(4)
        .with_max_channels(4)
        .with_final_size(1)
        .with_feature_dim(4);
    let device = Device::flex();
    let weights = shared_model::card::weights_bytes(cfg.init(&device)).unwrap();
    let mut card = TaggerCard::new(
        "t",
        vocab,
        cfg,
        HoldoutSplit::new(10),
        TaggerTraining::default(),
        TaggerAccuracy::default(),
    );
    card.seal(&weights);
    let tagger = t.join("tagger");
    std::fs::create_dir_all(&tagger).unwrap();
    std::fs::write(tagger.join(&card.weights), &weights).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
    assert!(v["tags_sha256"].is_string());
    v["vocab"]["tags"].as_array_mut().unwrap().reverse();
    std::fs::write(tagger.join("tagger.json"), v.to_string()).unwrap();
    std::fs::remove_file(data.join("metadata.csv")).unwrap();
    refused(
        &["tag", "--tagger", s(&tagger), "--data", s(&data)],
        &["tags_sha256", "reordered"],
    );
    assert!(!data.join("metadata.csv").exists());
    // Its exclusive groups removed (the second fresh round: `tag` then wrote no tag at all).
    let mut v: serde_json::Value = serde_json::from_str(&card.to_json()).unwrap();
    v["vocab"]["groups"] = serde_json::json!([]);
    std::fs::write(tagger.join("tagger.json"), v.to_string()).unwrap();
    refused(
        &["tag", "--tagger", s(&tagger), "--data", s(&data)],
        &["the vocabulary", "no longer match(es) its seal"],
    );
    refused(&["seal", "--model", s(&tagger)], &["--force"]);
    assert!(!data.join("metadata.csv").exists());
    std::fs::write(tagger.join("tagger.json"), card.to_json()).unwrap();
    ok(&["tag", "--tagger", s(&tagger), "--data", s(&data)]);
}

/// Issue 31: `convert` of a stylegan2 model to int8 wrote the same bytes as f16 under a card
/// saying int8, and reported success. Its dense layers are int8 now; a DCGAN generator (no
/// dense layer) is refused, with nothing written.
#[test]
fn int8_conversion_quantises_or_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let m = model_in(t, "m", "stylegan2", vec![]);
    let conv = |model: &Path, out: &Path, p: &str| {
        trainer(&[
            "convert",
            "--model",
            s(model),
            "--out",
            s(out),
            "--precision",
            p,
            "--check-seeds",
            "0-1",
        ])
    };
    let (half, int8) = (t.join("half"), t.join("int8"));
    assert!(conv(&m, &half, "f16").status.success());
    let o = conv(&m, &int8, "int8");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(card_json(&int8)["weights_dtype"], "int8");
    let (a, b) = (
        std::fs::read(weights_file(&half)).unwrap(),
        std::fs::read(weights_file(&int8)).unwrap(),
    );
    assert!(b.len() < a.len(), "int8 {} bytes, f16 {}", b.len(), a.len());
    let dtypes = shared_model::weights::stored_dtypes(&b).unwrap();
    assert!(
        dtypes
            .iter()
            .any(|(n, d)| n.starts_with("mapping.") && *d == burn::tensor::DType::I8),
        "{dtypes:?}"
    );
    let d = model_in(t, "d", "dcgan", vec![]);
    let out = t.join("d8");
    refused(
        &[
            "convert",
            "--model",
            s(&d),
            "--out",
            s(&out),
            "--precision",
            "int8",
            "--check-seeds",
            "0",
        ],
        &["int8", "f16"],
    );
    assert!(!out.join("model.json").exists());
}

/// Issue 31's fresh round (cases of our own after the fixes): a folder given for another kind of
/// card is named as such, a spec file of two links and a link repeating a key are refused with
/// their reason (each once went on silently or with a misleading message).
#[test]
fn the_fresh_rounds_cases_say_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let m = model_in(t, "m", "resnet-cgan", vec![]);
    let tagger = t.join("tagger");
    std::fs::create_dir(&tagger).unwrap();
    std::fs::write(tagger.join("tagger.json"), "{}").unwrap();
    let out = t.join("o");
    refused(
        &["generate", "--model", s(&tagger), "--out", s(&out)],
        &["holds a tagger card (tagger.json), not a model card"],
    );
    refused(
        &["tag", "--tagger", s(&m), "--data", s(t)],
        &["holds a model card (model.json), not a tagger card"],
    );
    let spec = t.join("two.link");
    std::fs::write(&spec, "#seed=1&tags=blonde_hair\n#seed=2\n").unwrap();
    refused(
        &[
            "generate",
            "--model",
            s(&m),
            "--spec",
            s(&spec),
            "--out",
            s(&out),
        ],
        &["holds 2 lines", "one permalink"],
    );
    refused(
        &[
            "generate",
            "--model",
            s(&m),
            "--link",
            "seed=1&seed=2",
            "--out",
            s(&out),
        ],
        &["“seed” is given 2 times; the first, “1”, counts"],
    );
    assert!(!out.exists(), "nothing was drawn");
}
