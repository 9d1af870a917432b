//! The run folder, the only place that knows its file names. It looks like stylegan2-ada's:
//! ```text
//! OUT/NNNNN-<data name>/         one run; NNNNN counts up from the highest number in OUT
//!   config.json                  the resolved TrainConfig, written before the first step
//!   stats.jsonl                  one JSON line per log tick (losses, critic scores, images/s)
//!   reals.png                    a sheet of training images
//!   samples/step-NNNNNN.png      EMA generator on a fixed latent x tag grid
//!   metric-<name>.jsonl          one JSON line per evaluation during training
//!   checkpoints/step-NNNNNN/     generator, discriminator, EMA generator, both Adam states,
//!                                and state.json (step, images seen, PRNG, spectral norm);
//!                                sha256.json: the SHA-256 of each, checked when read
//!   checkpoints/latest           name of the newest complete checkpoint
//! ```
//! A checkpoint is written into a temporary folder and renamed into place before `latest`
//! names it, so `latest` only ever names complete checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use shared_model::card::{LoadedModel, TrainingInfo};
use shared_model::integrity::sha256_hex;
use shared_model::{ModelCard, SplitMix64};

use super::TrainConfig;
use super::spectral::SpectralNorm;
use crate::fsutil::write_atomic;

const CONFIG: &str = "config.json";
const STATS: &str = "stats.jsonl";
const REALS: &str = "reals.png";
const SAMPLES: &str = "samples";
const CHECKPOINTS: &str = "checkpoints";
const LATEST: &str = "latest";
const LOCK: &str = "lock";
/// The checksums of a checkpoint's files (`{"generator.bpk": "<sha256 hex>", ...}`).
const MANIFEST: &str = "sha256.json";

/// The lock of a run folder, held by the trainer writing into it (released when dropped, or
/// by the system when the process ends, killed or not).
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Name of the sample sheet and of the checkpoint of a step.
fn step_name(step: u64) -> String {
    format!("step-{step:06}")
}

/// One run folder (which need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Reserves the next numbered run folder in `out` (created if missing), named after the
    /// data: `OUT/NNNNN-<data_name>`, made empty here. The folder is claimed by creating it,
    /// which succeeds for one process only, so two runs started at once into the same `out` get
    /// different folders. [`RunDir::create`] then writes the config into it.
    pub fn next_in(out: &Path, data_name: &str) -> Result<Self> {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
        for _ in 0..1000 {
            let mut max = None;
            let entries =
                std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(n) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
                    max = Some(max.map_or(n, |m: u32| m.max(n)));
                }
            }
            let id = max.map_or(0, |m| m + 1);
            let root = out.join(format!("{id:05}-{data_name}"));
            match std::fs::create_dir(&root) {
                Ok(()) => return Ok(Self::new(root)),
                // Another run took this number first: count again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", root.display()));
                }
            }
        }
        anyhow::bail!(
            "could not claim a run folder in {} (other runs keep taking them)",
            out.display()
        )
    }

    /// Removes a reserved run folder that is still empty (a run that failed before its first
    /// file); anything else is left alone.
    pub fn release(&self) {
        let _ = std::fs::remove_dir(&self.root);
    }

    /// Whether `path` holds a run (its config file), as opposed to e.g. an exported model.
    /// Takes the run folder's lock (an OS file lock on `lock` inside it), so that two trainers
    /// never write one folder: a second `train --resume` of a run in training is refused
    /// instead of interleaving two runs' checkpoints.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.root.join(LOCK);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another trainer is using the run folder {} (wait for it to stop, or resume \
                 another run)",
                self.root.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    pub fn is_run(path: &Path) -> bool {
        path.join(CONFIG).is_file()
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Makes the folder and writes `cfg` into it: the first file of every run.
    pub fn create(&self, cfg: &TrainConfig) -> Result<()> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        self.write_config(cfg)
    }

    /// Replaces the run's config (atomically), e.g. with a new step total on resume.
    pub fn write_config(&self, cfg: &TrainConfig) -> Result<()> {
        write_atomic(&self.root.join(CONFIG), cfg.to_json().as_bytes())
    }

    /// Reads the run's config (older layouts included, see [`TrainConfig::from_json`]).
    pub fn config(&self) -> Result<TrainConfig> {
        let path = self.root.join(CONFIG);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{} is not a run folder (no {CONFIG})", self.root.display())
        })?;
        TrainConfig::from_json(&text)
            .with_context(|| format!("{} is not a valid run config", path.display()))
    }

    /// Drops the lines of the training log and of every metric log whose `"step"` is past
    /// `step` (what a run stopped after its last checkpoint had logged: resumed from that
    /// checkpoint, it logs those steps again). Each file is rewritten atomically, and only when
    /// it has such lines.
    pub fn forget_after(&self, step: u64) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Ok(());
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_log = name == STATS || (name.starts_with("metric-") && name.ends_with(".jsonl"));
            if !is_log {
                continue;
            }
            let path = e.path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let past = |line: &str| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                    .is_some_and(|s| s > step)
            };
            if text.lines().any(past) {
                let kept: String = text
                    .lines()
                    .filter(|l| !past(l))
                    .map(|l| format!("{l}\n"))
                    .collect();
                write_atomic(&path, kept.as_bytes())?;
            }
        }
        Ok(())
    }

    /// The training log, opened for appending (the run folder is made if missing).
    pub fn open_stats(&self) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("cannot create {}", self.root.display()))?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join(STATS))
            .with_context(|| format!("cannot open {STATS}"))
    }

    /// Writes the sheet of training images.
    pub fn write_reals(&self, png: &[u8]) -> Result<()> {
        write_atomic(&self.root.join(REALS), png)
    }

    /// Writes the sample sheet of `step`.
    pub fn write_sample(&self, step: u64, png: &[u8]) -> Result<()> {
        let path = self
            .root
            .join(SAMPLES)
            .join(format!("{}.png", step_name(step)));
        write_atomic(&path, png)
    }

    /// The file that [`RunDir::append_metric`] appends the lines of metric `name` to.
    pub fn metric_file(&self, name: &str) -> PathBuf {
        self.root.join(format!("metric-{name}.jsonl"))
    }

    /// Appends one JSON line to the log of metric `name`.
    pub fn append_metric(&self, name: &str, line: &serde_json::Value) -> Result<()> {
        let path = self.metric_file(name);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(f, "{line}")?;
        Ok(())
    }

    /// The newest complete checkpoint.
    pub fn latest_checkpoint(&self) -> Result<Checkpoint> {
        let root = self.root.join(CHECKPOINTS);
        let latest = root.join(LATEST);
        let name = std::fs::read_to_string(&latest).with_context(|| {
            format!(
                "{} has no checkpoint yet (no {})",
                self.root.display(),
                latest.display()
            )
        })?;
        let name = name.trim();
        // `latest` names a folder beside it, never a path: `../../other/checkpoints/step-6` (or
        // an absolute path) once resumed another run's weights.
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\'])
            && !name.starts_with(".tmp-");
        if !plain {
            bail!(
                "{} names '{name}', which is not a checkpoint of this run: it must be the name \
                 of a folder in {} (e.g. step-000006); refusing to load weights from elsewhere",
                latest.display(),
                root.display()
            );
        }
        let dir = root.join(name);
        if !dir.is_dir() {
            bail!(
                "{} names {} which does not exist",
                latest.display(),
                dir.display()
            );
        }
        // A link in place of the folder may lead out of the run just the same.
        if let (Ok(real), Ok(real_root)) = (dir.canonicalize(), root.canonicalize())
            && real.parent() != Some(real_root.as_path())
        {
            bail!(
                "{} is a link to {}, outside the run's {}: refusing to load another run's \
                 weights",
                dir.display(),
                real.display(),
                root.display()
            );
        }
        Ok(Checkpoint { dir })
    }

    /// The complete checkpoints, newest first: the one `latest` names, then the older ones by
    /// step (what a resume falls back to when the newest does not load).
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        let latest = self.latest_checkpoint()?;
        let root = self.root.join(CHECKPOINTS);
        let mut older: Vec<PathBuf> = std::fs::read_dir(&root)
            .with_context(|| format!("cannot list {}", root.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                // Real folders only: a link may lead to another run's checkpoint.
                std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
                    && *p != latest.dir
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
            })
            .collect();
        older.sort();
        Ok(std::iter::once(latest)
            .chain(older.into_iter().rev().map(Checkpoint::at))
            .collect())
    }

    /// Writes the checkpoint of `step` (every part of it, each synced to disk) into a temporary
    /// folder, renames it into place, points `latest` at it and removes all but the newest
    /// `keep` checkpoints (at least one).
    pub fn save_checkpoint(
        &self,
        step: u64,
        parts: &[(Part, &[u8])],
        keep: usize,
    ) -> Result<Checkpoint> {
        let root = self.root.join(CHECKPOINTS);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("cannot create {}", root.display()))?;
        let name = step_name(step);
        // Half-written checkpoints of killed trainers (the run lock says none is writing now).
        let list =
            || std::fs::read_dir(&root).with_context(|| format!("cannot list {}", root.display()));
        for e in list()?.flatten() {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        let tmp = root.join(format!(".tmp-{name}"));
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        // A read-only folder or a full disk names the file it stopped at.
        let write = |file: &str, bytes: &[u8]| -> Result<()> {
            let path = tmp.join(file);
            let mut f = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            f.write_all(bytes)
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))
        };
        let mut manifest = serde_json::Map::new();
        for (part, bytes) in parts {
            write(part.file_name(), bytes)?;
            manifest.insert(part.file_name().into(), sha256_hex(bytes).into());
        }
        write(
            MANIFEST,
            serde_json::Value::Object(manifest).to_string().as_bytes(),
        )?;
        let dest = root.join(&name);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::rename(&tmp, &dest)
            .with_context(|| format!("cannot finish checkpoint {}", dest.display()))?;
        write_atomic(&root.join(LATEST), name.as_bytes())?;
        // Keep the newest few.
        let mut old: Vec<PathBuf> = list()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_dir()
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("step-"))
            })
            .collect();
        old.sort();
        let keep = keep.max(1);
        if old.len() > keep {
            for p in &old[..old.len() - keep] {
                let _ = std::fs::remove_dir_all(p);
            }
        }
        Ok(Checkpoint { dir: dest })
    }

    /// The newest checkpoint's EMA generator, ready to draw, with the card an export of it would
    /// carry (f32 weights, named after the run folder): what `generate`, `interpolate` and
    /// `eval` use when given a run folder, and what `export` writes.
    pub fn load_model(&self, device: &Device) -> Result<LoadedModel> {
        let cfg = self.config()?;
        let ckpt = self.latest_checkpoint()?;
        let state = ckpt.state()?;
        let g = cfg.generator.try_init(device)?;
        // A broken checkpoint is an error here, before anything is drawn or written.
        let ema = Part::GeneratorEma;
        let g = g
            .load_bytes(ckpt.read(ema)?)
            .with_context(|| ckpt.file(ema).display().to_string())?;
        let name = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        let card = ModelCard::new(
            &name,
            cfg.vocab.clone(),
            cfg.generator.clone(),
            TrainingInfo {
                data: cfg.data_name.clone(),
                steps: state.step,
                images_seen: state.images_seen,
                loss: serde_json::to_value(cfg.loss)?
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                seconds: state.seconds,
            },
        );
        Ok(LoadedModel {
            card,
            generator: g,
            device: device.clone(),
        })
    }
}

/// A file of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Generator,
    Discriminator,
    /// The EMA of the generator's weights: the one that is exported and drawn with.
    GeneratorEma,
    OptimizerG,
    OptimizerD,
    /// [`TrainState`] as JSON.
    State,
}

impl Part {
    pub fn file_name(self) -> &'static str {
        match self {
            Part::Generator => "generator.bpk",
            Part::Discriminator => "discriminator.bpk",
            Part::GeneratorEma => "generator_ema.bpk",
            Part::OptimizerG => "optim_g.bpk",
            Part::OptimizerD => "optim_d.bpk",
            Part::State => "state.json",
        }
    }
}

/// The part of a checkpoint that is not weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: u64,
    pub images_seen: u64,
    pub rng: SplitMix64,
    pub seconds: f64,
    /// Power-iteration vectors of spectral normalisation, when the run uses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectral: Option<SpectralNorm>,
}

/// One checkpoint folder of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// The checkpoint in folder `dir` (e.g. a path [`RunDir::latest_checkpoint`] gave earlier).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn file(&self, part: Part) -> PathBuf {
        self.dir.join(part.file_name())
    }

    /// Reads one file of the checkpoint, checked against the checkpoint's SHA-256 manifest (a
    /// checkpoint without one is refused: deleting it must not switch the check off).
    pub fn read(&self, part: Part) -> Result<Vec<u8>> {
        let path = self.file(part);
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let expected = self.checksum(part)?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            bail!(
                "{} is damaged: its SHA-256 is {}..., the checkpoint's {MANIFEST} says {}...",
                path.display(),
                &actual[..12],
                expected.get(..12).unwrap_or(&expected)
            );
        }
        Ok(bytes)
    }

    /// The SHA-256 the manifest records for `part`.
    fn checksum(&self, part: Part) -> Result<String> {
        let path = self.dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} has no {MANIFEST} (the SHA-256 of each of its files, which every checkpoint \
                 kyara writes holds): its files cannot be checked, so it is not used",
                self.dir.display()
            ),
            r => r.with_context(|| format!("cannot read {}", path.display()))?,
        };
        let manifest: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid", path.display()))?;
        match manifest.get(part.file_name()) {
            Some(sum) => Ok(sum.clone()),
            None => bail!("{} lists no {}", path.display(), part.file_name()),
        }
    }

    /// The step, images seen and random stream the checkpoint was taken at.
    pub fn state(&self) -> Result<TrainState> {
        let bytes = self
            .read(Part::State)
            .with_context(|| format!("{} is incomplete or damaged", self.dir.display()))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid", self.file(Part::State).display()))
    }
}

/// Reads the config of the run in `run` (shorthand of [`RunDir::config`]).
pub fn load_run_config(run: &Path) -> Result<TrainConfig> {
    RunDir::new(run).config()
}

/// The folder of the newest complete checkpoint of the run in `run` (shorthand of
/// [`RunDir::latest_checkpoint`]).
pub fn latest_checkpoint(run: &Path) -> Result<PathBuf> {
    Ok(RunDir::new(run).latest_checkpoint()?.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two trainers cannot hold one run folder (the issue: two `train` runs wrote each other's
    /// checkpoints); the lock is free again once its holder is gone.
    #[test]
    fn a_run_folder_has_one_trainer_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let held = run.lock().unwrap();
        let e = run.lock().unwrap_err().to_string();
        assert!(e.contains("another trainer"), "{e}");
        drop(held);
        run.lock().unwrap();
    }

    #[test]
    fn run_folders_are_numbered_after_the_highest() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("runs");
        let first = RunDir::next_in(&out, "faces").unwrap();
        assert_eq!(first.path(), out.join("00000-faces"));
        assert!(first.path().is_dir(), "the folder is claimed");
        for name in ["00007-other", "notes"] {
            std::fs::create_dir_all(out.join(name)).unwrap();
        }
        let next = RunDir::next_in(&out, "faces").unwrap();
        assert_eq!(next.path(), out.join("00008-faces"));
        next.release();
        assert!(!next.path().exists());
        first.create(&TrainConfig::defaults()).unwrap();
        first.release();
        assert!(RunDir::is_run(first.path()), "a folder with files stays");
    }

    #[test]
    fn resuming_forgets_the_log_lines_after_the_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r"));
        run.create(&TrainConfig::defaults()).unwrap();
        let mut f = run.open_stats().unwrap();
        for step in [10, 20, 30, 40] {
            writeln!(f, "{{\"step\":{step},\"loss_d\":1.0}}").unwrap();
        }
        drop(f);
        run.append_metric("tagger-eval", &serde_json::json!({"step": 20}))
            .unwrap();
        run.append_metric("tagger-eval", &serde_json::json!({"step": 40}))
            .unwrap();
        run.forget_after(20).unwrap();
        let stats = std::fs::read_to_string(run.path().join(STATS)).unwrap();
        assert_eq!(
            stats,
            "{\"step\":10,\"loss_d\":1.0}\n{\"step\":20,\"loss_d\":1.0}\n"
        );
        let metric = std::fs::read_to_string(run.metric_file("tagger-eval")).unwrap();
        assert_eq!(metric.lines().count(), 1, "{metric}");
        // Nothing past the step: the files stay as they are.
        run.forget_after(20).unwrap();
        assert_eq!(
            std::fs::read_to_string(run.path().join(STATS)).unwrap(),
            stats
        );
    }

    /// Two runs started at once into one folder once picked the same run folder (1 of 4 tries).
    #[test]
    fn runs_started_together_get_different_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("runs");
        let claimed: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| s.spawn(|| RunDir::next_in(&out, "faces").unwrap().root))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = claimed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 16, "{claimed:?}");
    }

    #[test]
    fn the_config_written_first_reads_back_and_marks_a_run() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path().join("r"));
        assert!(!RunDir::is_run(run.path()));
        let e = run.config().unwrap_err().to_string();
        assert!(e.contains("not a run folder"), "{e}");
        let cfg = TrainConfig::defaults().with_steps(7);
        run.create(&cfg).unwrap();
        assert!(RunDir::is_run(run.path()));
        assert_eq!(run.config().unwrap().to_json(), cfg.to_json());
        // A config with the optimizer settings at the top level (as runs wrote them before
        // they were nested) loads through the run folder too.
        let flat = include_str!("testdata/flat-optimizer-config.json");
        std::fs::write(run.path().join(CONFIG), flat).unwrap();
        assert_eq!(run.config().unwrap().optimizer.lr, 0.001);
        std::fs::write(run.path().join(CONFIG), "{").unwrap();
        let e = format!("{:#}", run.config().unwrap_err());
        assert!(e.contains("not a valid run config"), "{e}");
    }

    #[test]
    fn latest_names_the_newest_complete_checkpoint_and_old_ones_go() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let e = run.latest_checkpoint().unwrap_err().to_string();
        assert!(e.contains("no checkpoint yet"), "{e}");
        for step in [2, 4, 6] {
            let g = format!("g{step}");
            run.save_checkpoint(step, &[(Part::Generator, g.as_bytes())], 2)
                .unwrap();
        }
        let latest = run.latest_checkpoint().unwrap();
        assert!(latest.path().ends_with("checkpoints/step-000006"));
        assert_eq!(latest.read(Part::Generator).unwrap(), b"g6");
        let e = latest.read(Part::Discriminator).unwrap_err().to_string();
        assert!(e.contains("discriminator.bpk"), "{e}");
        let kept: Vec<String> = std::fs::read_dir(tmp.path().join(CHECKPOINTS))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-"))
            .collect();
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(!tmp.path().join("checkpoints/step-000002").exists());
        // `latest` naming a missing folder is an error, not a guess.
        std::fs::write(tmp.path().join("checkpoints/latest"), "step-000002").unwrap();
        let e = run.latest_checkpoint().unwrap_err().to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    /// `latest` pointing out of its run (the issue: `../../other/checkpoints/step-6` or an
    /// absolute path resumed another run's weights) is refused with the reason, and so is a
    /// link in place of a checkpoint folder.
    #[test]
    fn latest_never_leads_out_of_its_run() {
        let tmp = tempfile::tempdir().unwrap();
        let other = RunDir::new(tmp.path().join("other"));
        other
            .save_checkpoint(6, &[(Part::Generator, b"theirs".as_slice())], 2)
            .unwrap();
        let run = RunDir::new(tmp.path().join("mine"));
        run.save_checkpoint(2, &[(Part::Generator, b"mine".as_slice())], 2)
            .unwrap();
        let latest = run.path().join("checkpoints/latest");
        let theirs = tmp.path().join("other/checkpoints/step-000006");
        for name in [
            "../../other/checkpoints/step-000006".to_string(),
            theirs.display().to_string(),
            "..".into(),
        ] {
            std::fs::write(&latest, &name).unwrap();
            let e = run.latest_checkpoint().unwrap_err().to_string();
            assert!(
                e.contains("not a checkpoint of this run") && e.contains("refusing"),
                "{name}: {e}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&theirs, run.path().join("checkpoints/step-000009"))
                .unwrap();
            std::fs::write(&latest, "step-000009").unwrap();
            let e = run.latest_checkpoint().unwrap_err().to_string();
            assert!(e.contains("outside the run"), "{e}");
        }
        std::fs::write(&latest, "step-000002").unwrap();
        assert_eq!(
            run.latest_checkpoint()
                .unwrap()
                .read(Part::Generator)
                .unwrap(),
            b"mine"
        );
    }

    /// A checkpoint whose manifest was deleted is refused: deleting `sha256.json` once switched
    /// the check off.
    #[test]
    fn a_checkpoint_without_its_manifest_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = RunDir::new(tmp.path());
        let ckpt = run
            .save_checkpoint(2, &[(Part::Generator, b"g".as_slice())], 2)
            .unwrap();
        std::fs::remove_file(ckpt.path().join(MANIFEST)).unwrap();
        std::fs::write(ckpt.file(Part::Generator), b"tampered").unwrap();
        let e = ckpt.read(Part::Generator).unwrap_err().to_string();
        assert!(
            e.contains("has no sha256.json") && e.contains("not used"),
            "{e}"
        );
    }
}
