//! The CLI on bad input: non-zero exit, a message naming the problem, nothing half-written.

use crate::fixtures::*;

#[test]
fn help_explains_the_commands() {
    let o = trainer(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for word in ["train", "generate", "export", "--data"] {
        assert!(out.contains(word), "help lacks {word}: {out}");
    }
}

#[test]
fn nonsense_values_are_rejected_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path(), 3);
    let d = data.to_str().unwrap();
    let cases: [(&[&str], &str); 11] = [
        (
            &["train", "--data", d, "--out", "x", "--batch", "abc"],
            "batch",
        ),
        (
            &["train", "--data", d, "--out", "x", "--resolution", "100"],
            "resolution",
        ),
        (
            &["train", "--data", d, "--out", "x", "--lr=-1"],
            "learning rate",
        ),
        (
            &["train", "--data", d, "--out", "x", "--device", "tpu"],
            "tpu",
        ),
        (
            &["train", "--data", d, "--out", "x", "--gp-weight=-1"],
            "penalty weight",
        ),
        (
            &["train", "--data", d, "--out", "x", "--loss", "wgan"],
            "wgan",
        ),
        (
            &[
                "generate", "--model", "m", "--seeds", "banana", "--out", "x",
            ],
            "'banana' is not a seed",
        ),
        (
            &["train", "--data", d, "--out", "x", "--arch", "stylegan9"],
            "stylegan9",
        ),
        // A family's config fields by name: a misspelt one is named with the real ones.
        (
            &["train", "--data", d, "--out", "x", "--g", "res_blokcs=2"],
            "no field 'res_blokcs' (it has: activation, channels",
        ),
        (
            &["train", "--data", d, "--out", "x", "--d", "leaky_slope"],
            "is not KEY=VALUE",
        ),
        (
            &["train", "--data", d, "--out", "x", "--unconditional"],
            "resnet-cgan is always conditional",
        ),
    ];
    for (args, needle) in cases {
        let o = trainer(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(!tmp.path().join("x").exists());
}

#[test]
fn bad_dataset_entries_are_named_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path(), 6);
    // Corrupt one image (truncate it), point a row at a missing file, add a non-image and an empty tag list.
    let png = std::fs::read(data.join("images/1.png")).unwrap();
    std::fs::write(data.join("images/1.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(data.join("images/notes.txt"), "hello").unwrap();
    let mut csv = std::fs::read_to_string(data.join("metadata.csv")).unwrap();
    csv.push_str("images/gone.png,\"red hair, green eyes\"\nimages/notes.txt,\"red hair, green eyes\"\nimages/0.png,\n");
    std::fs::write(data.join("metadata.csv"), csv).unwrap();
    let runs = tmp.path().join("runs");
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        runs.to_str().unwrap(),
        "--steps",
        "1",
        "--quiet",
        "--strict",
    ];
    args.extend(TINY);

    let o = trainer(&args);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("images/1.png")
            && e.contains("metadata.csv line 3")
            && e.contains("not a readable image"),
        "{e}"
    );
    assert!(!runs.exists(), "a failed load must not create a run");

    // Without --strict the bad entries are skipped, counted and named, and training runs.
    args.retain(|a| *a != "--strict");
    let o = trainer(&args);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("skipped 4 bad entries"), "{e}");
    assert!(
        e.contains("gone.png") && e.contains("file not found"),
        "{e}"
    );
    assert!(e.contains("notes.txt") && e.contains("line 9"), "{e}");
    assert!(e.contains("line 10") && e.contains("empty tag list"), "{e}");
}

#[test]
fn missing_dataset_folder_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let o = trainer(&[
        "train",
        "--data",
        "/definitely/not/here",
        "--out",
        tmp.path().join("r").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/definitely/not/here") && stderr(&o).contains("does not exist"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn generate_rejects_unknown_tags_and_bad_weights_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);

    let out = tmp.path().join("out");
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--tags",
        "green hair",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("unknown tag 'green hair'")
            && e.contains("blonde hair")
            && e.contains("purple eyes"),
        "{e}"
    );
    assert!(
        files_under(&out).is_empty(),
        "nothing may be written on error"
    );

    // Truncated weights.
    let w = std::fs::read(weights_file(&model)).unwrap();
    std::fs::write(weights_file(&model), &w[..w.len() - 100]).unwrap();
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains(".bpk"), "{}", stderr(&o));
    assert!(files_under(&out).is_empty());

    // A foreign file as the card.
    std::fs::write(model.join("model.json"), "{\"name\": \"some other tool\"}").unwrap();
    let o = trainer(&[
        "generate",
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("kyara model card"), "{}", stderr(&o));
}

#[test]
fn export_needs_a_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("run")).unwrap();
    let o = trainer(&[
        "export",
        "--run",
        tmp.path().join("run").to_str().unwrap(),
        "--out",
        tmp.path().join("m").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a run folder"), "{}", stderr(&o));
    assert!(!tmp.path().join("m").exists());
}

#[test]
fn a_broken_checkpoint_fails_resume_and_export_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    std::fs::write(
        run.join("checkpoints/step-000002/generator_ema.bpk"),
        b"garbage",
    )
    .unwrap();
    let out = tmp.path().join("m");
    let o = trainer(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("generator_ema.bpk"), "{}", stderr(&o));
    assert!(files_under(&out).is_empty());
}

#[test]
fn wgan_gp_runs_with_the_reference_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run_with(tmp.path(), 2, &["--loss", "wgan-gp"]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["loss"], "wgan-gp");
    assert_eq!(cfg["gp_weight"], 20.0);
    let w = &cfg["pair_weights"];
    assert_eq!(
        (w["real"].as_f64(), w["fake"].as_f64(), w["wrong"].as_f64()),
        (Some(2.0), Some(1.5), Some(0.5))
    );
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    let gp = last["gp"].as_f64().unwrap();
    assert!(gp.is_finite() && gp > 0.0, "{last}");
}

#[test]
fn family_config_fields_are_set_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let flags = [
        "--g",
        "res_blocks=2",
        "--g",
        "activation=prelu",
        "--d",
        "leaky_slope=0.1",
    ];
    let run = tiny_run_with(tmp.path(), 1, &flags);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["generator"]["arch"], "resnet-cgan");
    assert_eq!(
        cfg["generator"]["res_blocks"], 2,
        "--g overrides --g-blocks 1"
    );
    assert_eq!(cfg["generator"]["activation"], "prelu");
    assert_eq!(cfg["discriminator"]["leaky_slope"], 0.1);
}

#[test]
fn a_second_run_reads_the_decoded_images_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path(), 12);
    let (cache, runs) = (tmp.path().join("cache"), tmp.path().join("runs"));
    let mut args = tiny_train_args(&data, &runs, "1");
    let first = trainer_with_cache(&args, &cache);
    let e = stderr(&first);
    assert!(first.status.success(), "{e}");
    assert!(e.contains("decoded images cached in"), "{e}");
    let second = trainer_with_cache(&args, &cache);
    let e = stderr(&second);
    assert!(second.status.success(), "{e}");
    assert!(e.contains("decoded images read from"), "{e}");
    assert!(e.contains("12 images"), "{e}");
    args.push("--no-cache");
    let third = trainer_with_cache(&args, &cache);
    let e = stderr(&third);
    assert!(third.status.success(), "{e}");
    assert!(!e.contains("decoded images"), "{e}");
}

/// A run folder another trainer holds is refused by `train --resume` with a clear message, and
/// nothing in it changes; once the holder is gone the resume goes through.
#[test]
fn a_run_in_training_cannot_be_resumed_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let r = run.to_str().unwrap();
    let stats = std::fs::read(run.join("stats.jsonl")).unwrap();
    let held = trainer::train::RunDir::new(&run).lock().unwrap();
    let o = trainer(&["train", "--resume", r, "--steps", "4", "--quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another trainer"), "{}", stderr(&o));
    assert_eq!(std::fs::read(run.join("stats.jsonl")).unwrap(), stats);
    drop(held);
    let o = trainer(&["train", "--resume", r, "--steps", "4", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `--lr 0.99` (the issue: losses reached ~1e28, every seed drew the same white face, exit 0)
/// stops with a non-zero exit naming the divergence, after a warning, and leaves no checkpoint
/// of the diverged weights.
#[test]
fn a_diverging_run_stops_with_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path(), 12);
    let runs = tmp.path().join("runs");
    let mut args = tiny_train_args(&data, &runs, "200");
    args.extend(["--lr", "0.99", "--checkpoint-every", "1000"]);
    let o = trainer(&args);
    assert!(!o.status.success(), "a diverging run exited 0");
    let err = stderr(&o);
    assert!(err.contains("diverged"), "{err}");
    let run = first_run(&runs);
    assert!(
        !run.join("checkpoints").join("latest").exists(),
        "a diverged run wrote a checkpoint"
    );
}

/// A checkpoint whose file no longer matches its SHA-256 manifest (a flipped bit) is named and
/// passed over: the resume continues from the checkpoint before it; with every checkpoint
/// damaged it fails and says why for each.
#[test]
fn resume_falls_back_past_a_damaged_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 4);
    let r = run.to_str().unwrap();
    let flip = |step: &str| {
        let path = run.join(format!("checkpoints/{step}/generator.bpk"));
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 5;
        bytes[at] ^= 0x04;
        std::fs::write(&path, bytes).unwrap();
    };
    flip("step-000004");
    // What a trainer killed mid-checkpoint leaves behind goes with the next checkpoint.
    let half = run.join("checkpoints/.tmp-step-000005");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("generator.bpk"), b"half").unwrap();
    let o = trainer(&["train", "--resume", r, "--steps", "6", "--quiet"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("step-000004") && e.contains("SHA-256"), "{e}");
    assert!(
        e.contains("older checkpoint") && e.contains("step-000002"),
        "{e}"
    );
    let latest = std::fs::read_to_string(run.join("checkpoints/latest")).unwrap();
    assert_eq!(latest.trim(), "step-000006");
    assert!(
        !half.exists(),
        "a killed trainer's half-written checkpoint stays behind"
    );

    for step in ["step-000006", "step-000004"] {
        if run.join("checkpoints").join(step).is_dir() {
            flip(step);
        }
    }
    let o = trainer(&["train", "--resume", r, "--steps", "8", "--quiet"]);
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(e.contains("no checkpoint of the run can be resumed"), "{e}");
}

/// An export carries the SHA-256 of its weights and of its tag order; a flipped bit in the
/// weights, or a reordered tag list in the card, is refused with a message (it once loaded and
/// drew wrong faces or tags).
#[test]
fn exported_models_refuse_flipped_bits_and_reordered_tags() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let model = export_tiny(tmp.path(), &run);
    let m = model.to_str().unwrap();
    let card_text = std::fs::read_to_string(model.join("model.json")).unwrap();
    let card: serde_json::Value = serde_json::from_str(&card_text).unwrap();
    let weights = std::fs::read(weights_file(&model)).unwrap();
    assert_eq!(
        card["weights_sha256"].as_str().unwrap(),
        shared_model::integrity::sha256_hex(&weights)
    );
    let out = tmp.path().join("faces");
    let generate = |out: &std::path::Path| {
        trainer(&[
            "generate",
            "--model",
            m,
            "--seeds",
            "1",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    assert!(generate(&out).status.success());

    let mut flipped = weights.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    std::fs::write(weights_file(&model), &flipped).unwrap();
    let o = generate(&tmp.path().join("f2"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));
    std::fs::write(weights_file(&model), &weights).unwrap();

    let mut reordered = card.clone();
    reordered["vocab"]["tags"].as_array_mut().unwrap().reverse();
    std::fs::write(model.join("model.json"), reordered.to_string()).unwrap();
    let o = generate(&tmp.path().join("f3"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("tags_sha256"), "{}", stderr(&o));
}

/// The shipped models and the tagger carry the checksums of their weights, and they match; the
/// model cards are sealed whole (the seal checked as every load checks it) and the tagger card
/// carries its tag list's checksum.
#[test]
fn shipped_models_are_sealed() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut cards = vec![repo.join("models/tagger64/tagger.json")];
    for e in std::fs::read_dir(repo.join("www/models"))
        .unwrap()
        .flatten()
    {
        if e.path().join("model.json").is_file() {
            cards.push(e.path().join("model.json"));
        }
    }
    assert!(cards.len() >= 3, "{cards:?}");
    for card_path in cards {
        let card: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&card_path).unwrap()).unwrap();
        let weights = card_path
            .parent()
            .unwrap()
            .join(card["weights"].as_str().unwrap());
        let sum = shared_model::integrity::sha256_hex(&std::fs::read(&weights).unwrap());
        assert_eq!(
            card["weights_sha256"].as_str(),
            Some(sum.as_str()),
            "{card_path:?}"
        );
        let tags: Vec<String> = card["vocab"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            card["tags_sha256"].as_str(),
            Some(shared_model::integrity::tags_sha256(&tags).as_str()),
            "{card_path:?}"
        );
        let text = std::fs::read_to_string(&card_path).unwrap();
        if card["format"] == "kyara-model" {
            assert!(
                card["seal"]["sha256"].is_string(),
                "{card_path:?} is not sealed"
            );
            let parsed = shared_model::ModelCard::from_json(&text)
                .unwrap_or_else(|e| panic!("{card_path:?}: {e}"));
            let mut resealed = parsed.clone();
            resealed.reseal();
            assert_eq!(resealed.seal, parsed.seal, "{card_path:?}");
        } else {
            assert!(
                card["seal"]["sha256"].is_string(),
                "{card_path:?} is not sealed"
            );
            let parsed = shared_model::TaggerCard::from_json(&text)
                .unwrap_or_else(|e| panic!("{card_path:?}: {e}"));
            let mut resealed = parsed.clone();
            resealed.seal(&std::fs::read(&weights).unwrap());
            assert_eq!(resealed.seal, parsed.seal, "{card_path:?}");
        }
    }
}
