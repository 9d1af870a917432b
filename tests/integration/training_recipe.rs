//! The pieces of a training recipe (trainer/src/train/recipe/): each trains with finite
//! losses, logs its term, and resumes exactly; the condition ramp hides the tags until it
//! starts; `--recipe` reaches the run's config and nonsense is refused.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use trainer::data::{OnBadEntry, load_dataset};
use trainer::train::recipe::NAMES;
use trainer::train::{
    PieceSpec, Recipe, RunDir, TrainConfig, Trainer, latest_checkpoint, load_run_config,
};

use crate::fixtures::*;

/// Each float tensor of a module, flattened, in visit order.
struct Tensors(Vec<Vec<f32>>);
impl ModuleVisitor for Tensors {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(
            p.val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap(),
        );
    }
}
fn tensors<M: Module>(m: &M) -> Vec<Vec<f32>> {
    let mut t = Tensors(Vec::new());
    m.visit(&mut t);
    t.0
}

/// Every piece with settings that make it act within a few steps of a batch of 4.
fn every_piece() -> Vec<PieceSpec> {
    NAMES
        .iter()
        .map(|name| match *name {
            "r1" => PieceSpec::parse("r1:gamma=1,every=1").unwrap(),
            "condition-ramp" => PieceSpec::parse("condition-ramp:start=0,end=16").unwrap(),
            other => PieceSpec::parse(other).unwrap(),
        })
        .collect()
}

/// The name a piece logs in stats.jsonl, if it adds a loss term.
fn term_name(p: &PieceSpec) -> Option<&'static str> {
    match p.name() {
        "drift" | "r1" | "consistency" => Some(p.name()),
        "mode-seeking" => Some("mode_seeking"),
        _ => None,
    }
}

#[test]
fn every_piece_trains_logs_its_term_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 1);
    let base = load_run_config(&run).unwrap().with_batch_size(4);
    let data = load_dataset(Path::new(&base.data), 16, OnBadEntry::Fail, &|_, _| {}).unwrap();
    let dev = Device::flex();
    let plain = {
        let mut t = Trainer::new(base.clone().with_recipe(Recipe(vec![])), &data, &dev).unwrap();
        t.step(&data);
        t.step(&data);
        tensors(&t.g)
    };
    for piece in every_piece() {
        let what = piece.name();
        let cfg: TrainConfig = base.clone().with_recipe(Recipe(vec![piece.clone()]));
        // Uninterrupted: 4 steps.
        let mut a = Trainer::new(cfg.clone(), &data, &dev).unwrap();
        for i in 0..4 {
            let s = a.step(&data);
            for v in [s.loss_d, s.loss_g, s.d_real, s.d_fake, s.d_wrong] {
                assert!(v.is_finite(), "{what}: {s:?}");
            }
            if let Some(name) = term_name(&piece) {
                let v = s.terms.iter().find(|(n, _)| *n == name);
                assert!(v.is_some_and(|(_, v)| v.is_finite()), "{what}: {s:?}");
            }
            if i == 1 {
                assert_ne!(tensors(&a.g), plain, "{what} changed nothing");
            }
        }
        // Interrupted after 2 steps: checkpoint, a new trainer loads it, 2 more steps.
        let dir = tmp.path().join(format!("resume-{what}"));
        let rd = RunDir::new(&dir);
        rd.create(&cfg).unwrap();
        let mut b = Trainer::new(cfg.clone(), &data, &dev).unwrap();
        b.step(&data);
        b.step(&data);
        b.save_checkpoint(&rd).unwrap();
        let mut c = Trainer::new(cfg.clone(), &data, &dev).unwrap();
        c.load_checkpoint(&latest_checkpoint(&dir).unwrap())
            .unwrap();
        c.step(&data);
        c.step(&data);
        assert_eq!(
            tensors(&a.g),
            tensors(&c.g),
            "{what}: generator after resume"
        );
        assert_eq!(tensors(&a.d), tensors(&c.d), "{what}: critic after resume");
        assert_eq!(
            a.state.rng, c.state.rng,
            "{what}: random stream after resume"
        );
    }
}

/// Before the ramp starts the critic's tag projection gets no gradient (it is multiplied by
/// 0), so it stays as initialised; without the ramp, or once it has begun, it moves.
#[test]
fn the_condition_ramp_hides_the_tags_until_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 1);
    let base = load_run_config(&run).unwrap().with_batch_size(4);
    let data = load_dataset(Path::new(&base.data), 16, OnBadEntry::Fail, &|_, _| {}).unwrap();
    // The critic tensors (index, length) that two steps left as initialised.
    let still = |recipe: Recipe| {
        let mut t = Trainer::new(base.clone().with_recipe(recipe), &data, &Device::flex()).unwrap();
        let before = tensors(&t.d);
        t.step(&data);
        t.step(&data);
        before
            .iter()
            .zip(tensors(&t.d))
            .enumerate()
            .filter(|(_, (a, b))| **a == *b)
            .map(|(i, (a, _))| (i, a.len()))
            .collect::<Vec<_>>()
    };
    let late = PieceSpec::parse("condition-ramp:start=1000000,end=2000000").unwrap();
    let early = PieceSpec::parse("condition-ramp:start=0,end=64").unwrap();
    let plain = still(Recipe(vec![]));
    let hidden = still(Recipe(vec![late]));
    // (The hinge loss's gradient of the score's bias is 1 - 0.75 - 0.25 = 0 while every pair is
    // inside the margin, so a plain run may leave that one still; the ramp's zero weight of
    // the wrong pairs moves it.)
    let kept: Vec<_> = hidden.iter().filter(|h| !plain.contains(h)).collect();
    assert_eq!(
        kept.len(),
        1,
        "the tag projection alone stays too: {hidden:?} against {plain:?}"
    );
    let ramping = still(Recipe(vec![early]));
    assert!(
        !ramping.contains(kept[0]),
        "once ramping, the projection moves: {ramping:?}"
    );
}

#[test]
fn recipe_options_reach_the_run_config_and_nonsense_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run_with(
        tmp.path(),
        1,
        &[
            "--recipe",
            "diffaugment:cutout=0.25",
            "--recipe",
            "mode-seeking",
            "--drift",
            "0.01",
        ],
    );
    let cfg = load_run_config(&run).unwrap();
    let names: Vec<&str> = cfg.recipe.0.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["drift", "diffaugment", "mode-seeking"]);
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    assert!(text.contains("\"cutout\": 0.25"), "{text}");
    assert!(text.contains("\"weight\": 0.01"), "{text}");
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    assert!(stats.contains("\"mode_seeking\""), "{stats}");

    let data = tiny_dataset(tmp.path(), 12);
    let runs = tmp.path().join("bad");
    for (piece, says) in [
        ("diffusion", "the pieces are: drift, r1, diffaugment"),
        ("diffaugment:shift=2", "has no setting 'shift'"),
        ("consistency:weight=-3", "weight = -3"),
        ("condition-ramp:start=9,end=3", "must come after"),
    ] {
        let mut args = tiny_train_args(&data, &runs, "1");
        args.extend(["--recipe", piece]);
        let o = trainer(&args);
        assert!(!o.status.success(), "{piece} accepted");
        assert!(stderr(&o).contains(says), "{piece}: {}", stderr(&o));
        assert!(!runs.exists(), "{piece}: a run folder was made");
    }
    // A run config whose recipe makes no sense does not load.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["recipe"][0]["weight"] = serde_json::json!(-1.0);
    let e = TrainConfig::from_json(&v.to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("drift") && e.contains("weight"), "{e}");
}
