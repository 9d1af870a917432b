//! Training on a tiny fixture: parameters move, losses stay finite, checkpoints resume exactly.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use trainer::data::{OnBadEntry, load_dataset};
use trainer::train::losses::LossKind;
use trainer::train::{RunOptions, Trainer, latest_checkpoint, load_run_config, run_training};

use crate::fixtures::*;

struct Flat(Vec<f32>);
impl ModuleVisitor for Flat {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.extend(
            p.val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
}
fn flat<M: Module>(m: &M) -> Vec<f32> {
    let mut f = Flat(Vec::new());
    m.visit(&mut f);
    f.0
}

#[test]
fn a_few_steps_move_parameters_with_finite_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 3);
    let cfg = load_run_config(&run).unwrap();
    let data = load_dataset(Path::new(&cfg.data), 16, OnBadEntry::Fail, &|_, _| {}).unwrap();
    let mut t = Trainer::new(cfg, &data, &Device::flex()).unwrap();
    let (g0, d0, e0) = (flat(&t.g), flat(&t.d), flat(&t.g_ema));
    for _ in 0..3 {
        let s = t.step(&data);
        for v in [s.loss_d, s.loss_g, s.d_real, s.d_fake, s.d_wrong] {
            assert!(v.is_finite(), "{s:?}");
        }
    }
    let moved = |a: &[f32], b: &[f32]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert!(
        moved(&g0, &flat(&t.g)) > g0.len() / 2,
        "generator barely moved"
    );
    assert!(
        moved(&d0, &flat(&t.d)) > d0.len() / 2,
        "discriminator barely moved"
    );
    assert!(
        moved(&e0, &flat(&t.g_ema)) > 0,
        "EMA generator did not follow"
    );

    // The run folder has what it promises.
    for f in [
        "config.json",
        "stats.jsonl",
        "reals.png",
        "samples/step-000002.png",
        "checkpoints/latest",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 3);
    assert!(last["images_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn every_arch_and_loss_trains_with_finite_losses() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, _, flags) in family_variants() {
        let dir = tmp.path().join(&name);
        let run = tiny_run_with(&dir, 1, &flags);
        let base = load_run_config(&run).unwrap();
        let data = load_dataset(Path::new(&base.data), 16, OnBadEntry::Fail, &|_, _| {}).unwrap();
        for (loss, n_critic, spectral_norm) in [
            (LossKind::Hinge, 1, false),
            (LossKind::NonSaturating, 1, false),
            (LossKind::WganGp, 2, false),
            (LossKind::Hinge, 1, true),
        ] {
            let cfg = base
                .clone()
                .with_loss(loss)
                .with_n_critic(n_critic)
                .with_spectral_norm(spectral_norm);
            let what = format!("{name} {loss:?} sn={spectral_norm}");
            let mut t = Trainer::new(cfg, &data, &Device::flex()).unwrap();
            let (g0, d0) = (flat(&t.g), flat(&t.d));
            for _ in 0..2 {
                let s = t.step(&data);
                for v in [s.loss_d, s.loss_g, s.d_real, s.d_fake, s.d_wrong, s.gp] {
                    assert!(v.is_finite(), "{what}: {s:?}");
                }
                // Only WGAN-GP has a penalty, and a random critic's input gradient is not unit-norm.
                assert_eq!(s.gp > 0.0, loss == LossKind::WganGp, "{what}: {s:?}");
            }
            assert_ne!(g0, flat(&t.g), "{what}: generator did not move");
            assert_ne!(d0, flat(&t.d), "{what}: discriminator did not move");
            assert_eq!(t.state.spectral.is_some(), spectral_norm, "{what}");
        }
    }
}

#[test]
fn resumed_run_takes_the_same_next_steps_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    // Uninterrupted: 4 steps, checkpoints at 2 and 4. Spectral norm on, so its power-iteration
    // state must be restored too.
    let run = tiny_run_with(tmp.path(), 4, &["--spectral-norm"]);
    let cfg = load_run_config(&run).unwrap();
    let data = load_dataset(Path::new(&cfg.data), 16, OnBadEntry::Fail, &|_, _| {}).unwrap();
    let full = latest_checkpoint(&run).unwrap();
    assert!(full.ends_with("step-000004"));

    // Interrupted after step 2: a copy of the run whose newest checkpoint is step 2.
    let copy = tmp.path().join("copy");
    std::fs::create_dir_all(copy.join("checkpoints")).unwrap();
    std::fs::copy(run.join("config.json"), copy.join("config.json")).unwrap();
    let src = run.join("checkpoints/step-000002");
    let dst = copy.join("checkpoints/step-000002");
    std::fs::create_dir_all(&dst).unwrap();
    for f in std::fs::read_dir(&src).unwrap().flatten() {
        std::fs::copy(f.path(), dst.join(f.file_name())).unwrap();
    }
    std::fs::write(copy.join("checkpoints/latest"), "step-000002").unwrap();

    let mut t = Trainer::new(cfg.clone(), &data, &Device::flex()).unwrap();
    t.load_checkpoint(&latest_checkpoint(&copy).unwrap())
        .unwrap();
    assert_eq!(t.state.step, 2);
    let t = run_training(t, &data, &copy, &RunOptions { progress: false }).unwrap();
    assert_eq!(t.state.step, 4);

    let resumed = latest_checkpoint(&copy).unwrap();
    {
        let mut a = Trainer::new(cfg.clone(), &data, &Device::flex()).unwrap();
        let mut b = Trainer::new(cfg.clone(), &data, &Device::flex()).unwrap();
        a.load_checkpoint(&full).unwrap();
        b.load_checkpoint(&resumed).unwrap();
        assert_eq!(flat(&a.g), flat(&b.g), "generator differs after resume");
        assert_eq!(flat(&a.d), flat(&b.d), "discriminator differs after resume");
        assert_eq!(
            flat(&a.g_ema),
            flat(&b.g_ema),
            "EMA generator differs after resume"
        );
        assert_eq!(
            (a.state.step, a.state.images_seen, &a.state.rng),
            (b.state.step, b.state.images_seen, &b.state.rng)
        );
        assert!(a.state.spectral.is_some());
        assert_eq!(a.state.spectral, b.state.spectral);
        // The optimiser states agree too: the next step from each is identical.
        let sa = a.step(&data);
        let sb = b.step(&data);
        assert_eq!(sa.loss_d, sb.loss_d);
        assert_eq!(sa.loss_g, sb.loss_g);
        assert_eq!(flat(&a.g), flat(&b.g));
    }
}

/// `trainer train ... 2>&1 | head`: once the reader has gone, the log lines are lost, not the
/// run (writing them once panicked at the next line).
#[test]
fn training_outlives_a_closed_stderr_and_stdout() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    let data = tiny_dataset(tmp.path(), 12);
    let runs = tmp.path().join("runs");
    let mut args = tiny_train_args(&data, &runs, "30");
    args.extend(["--checkpoint-every", "10", "--sample-every", "10"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kyara-trainer"))
        .args(&args)
        .env("KYARA_CACHE_DIR", tmp.path().join("cache"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the first line is written.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let run = first_run(&runs);
    let ckpt = latest_checkpoint(&run).unwrap();
    assert!(ckpt.ends_with("step-000030"), "{}", ckpt.display());
}
