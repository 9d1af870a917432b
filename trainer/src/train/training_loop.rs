//! The training loop: steps until the config's total, writing the run folder as it goes (the
//! log, sample sheets, checkpoints) and calling an optional hook after every step.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Result, bail};

use super::{RunDir, StepStats, Trainer};
use crate::data::Dataset;
use crate::fsutil::{png_bytes, sheet};

/// Options of [`run_training`] that are not part of the run's identity.
pub struct RunOptions {
    pub progress: bool,
}

/// Trains until `cfg.steps`, writing the run folder `run`. A trainer restored from a
/// checkpoint ([`Trainer::load_checkpoint`]) continues where it stopped.
/// One beyond this gets a warning (a default run's critic reached ~1e3 before the drift
/// penalty; healthy runs stay below 1e2).
const DRIFTING: f32 = 1e4;

/// The collapse detector of the health check: `Some(description)` when every face of a sample
/// grid is the same picture to the byte (a diverged generator draws one white or black face for
/// every seed and tag; a healthy one, even untrained, never repeats a face exactly).
pub fn all_the_same(tiles: &[Vec<u8>]) -> Option<String> {
    let (first, rest) = tiles.split_first()?;
    if rest.is_empty() || rest.iter().any(|t| t != first) {
        return None;
    }
    let px = first;
    let mean = px.iter().map(|&v| u64::from(v)).sum::<u64>() as f64 / px.len().max(1) as f64;
    Some(format!("mean value {mean:.0} of 255"))
}

pub fn run_training(
    trainer: Trainer,
    data: &Dataset,
    run: &Path,
    opts: &RunOptions,
) -> Result<Trainer> {
    run_training_with(trainer, data, run, opts, None)
}

/// Runs after a training step (see [`run_training_with`]).
pub type StepHook<'a> = &'a dyn Fn(&Trainer) -> Result<()>;

/// [`run_training`] with a hook that runs after every step (once its checkpoint, if any, is
/// written), e.g. the `--eval-every` evaluation.
pub fn run_training_with(
    mut trainer: Trainer,
    data: &Dataset,
    run: &Path,
    opts: &RunOptions,
    after_step: Option<StepHook>,
) -> Result<Trainer> {
    let run = RunDir::new(run);
    let total = trainer.cfg.steps;
    let start_step = trainer.state.step;
    if start_step == 0 {
        // A sheet of what the model should learn.
        let n = 32.min(data.len());
        let reals: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                data.image(i * data.len() / n)
                    .chunks(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect()
            })
            .collect();
        run.write_reals(&png_bytes(&sheet(&reals, data.resolution, 8))?)?;
    }
    let bar = indicatif::ProgressBar::new(total);
    if !opts.progress {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}  ETA {eta}",
        )
        .expect("template"),
    );
    bar.set_position(start_step);
    run.forget_after(start_step)?;
    let mut stats_file = run.open_stats()?;
    let mut tick_start = Instant::now();
    let mut tick_images = 0u64;
    let mut acc = StepStats::default();
    let mut acc_n = 0u32;
    // Sum and count of each recipe term since the last log line.
    let mut terms: BTreeMap<&'static str, (f32, u32)> = BTreeMap::new();
    let mut warned = false;
    while trainer.state.step < total {
        let t0 = Instant::now();
        let s = trainer.step(data);
        trainer.state.seconds += t0.elapsed().as_secs_f64();
        let worst = [s.loss_d, s.loss_g, s.d_real, s.d_fake, s.d_wrong]
            .iter()
            .fold(0f32, |m, v| {
                if v.is_finite() {
                    m.max(v.abs())
                } else {
                    f32::INFINITY
                }
            });
        if f64::from(worst) > trainer.cfg.diverge_at {
            bail!(
                "training diverged at step {} (loss_d {}, loss_g {}, critic scores {} / {} / {} \
                 on real / generated / wrong-tag pairs); the last checkpoint is intact",
                trainer.state.step,
                s.loss_d,
                s.loss_g,
                s.d_real,
                s.d_fake,
                s.d_wrong
            );
        }
        if worst > DRIFTING && f64::from(worst) <= trainer.cfg.diverge_at && !warned {
            warned = true;
            note!(
                "warning: at step {} the critic's scores or the losses reached {worst:.3e}: \
                 training is probably diverging (a lower --lr, or --drift for wgan-gp)",
                trainer.state.step
            );
        }
        tick_images += trainer.cfg.batch_size as u64;
        acc.loss_d += s.loss_d;
        acc.loss_g += s.loss_g;
        acc.d_real += s.d_real;
        acc.d_fake += s.d_fake;
        acc.d_wrong += s.d_wrong;
        acc.gp += s.gp;
        for &(name, v) in &s.terms {
            let e = terms.entry(name).or_default();
            e.0 += v;
            e.1 += 1;
        }
        acc_n += 1;
        let step = trainer.state.step;
        bar.set_position(step);
        if step.is_multiple_of(trainer.cfg.log_every) || step == total {
            let secs = tick_start.elapsed().as_secs_f64();
            let ips = tick_images as f64 / secs.max(1e-9);
            let n = acc_n as f32;
            let mut line = serde_json::json!({
                "step": step,
                "images_seen": trainer.state.images_seen,
                "loss_d": acc.loss_d / n,
                "loss_g": acc.loss_g / n,
                "d_real": acc.d_real / n,
                "d_fake": acc.d_fake / n,
                "d_wrong": acc.d_wrong / n,
                "gp": acc.gp / n,
                "images_per_s": ips,
                "seconds_per_step": secs / n as f64,
                "train_seconds": trainer.state.seconds,
            });
            for (name, (sum, count)) in &terms {
                line[*name] = serde_json::json!(sum / *count as f32);
            }
            writeln!(stats_file, "{line}")?;
            bar.set_message(format!(
                "D {:.3}  G {:.3}  {:.1} img/s",
                acc.loss_d / n,
                acc.loss_g / n,
                ips
            ));
            if !opts.progress {
                note!(
                    "step {step}/{total}  D {:.3}  G {:.3}  {:.1} img/s",
                    acc.loss_d / n,
                    acc.loss_g / n,
                    ips
                );
            }
            acc = StepStats::default();
            acc_n = 0;
            terms.clear();
            tick_images = 0;
            tick_start = Instant::now();
        }
        if step.is_multiple_of(trainer.cfg.sample_every) || step == total {
            let tiles = trainer.sample_grid(8, 8)?;
            run.write_sample(step, &png_bytes(&sheet(&tiles, data.resolution, 8))?)?;
            if let Some(face) = all_the_same(&tiles) {
                bail!(
                    "training collapsed at step {step}: all {} faces of the sample sheet are \
                     the same picture ({face}); nothing was checkpointed from it, the last \
                     checkpoint is intact (resume with a lower --lr, or from an earlier run)",
                    tiles.len()
                );
            }
        }
        if step.is_multiple_of(trainer.cfg.checkpoint_every) || step == total {
            trainer.save_checkpoint(&run)?;
        }
        if let Some(hook) = after_step {
            hook(&trainer)?;
        }
    }
    bar.finish();
    Ok(trainer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collapse_detector_fires_only_on_one_repeated_face() {
        let white = vec![255u8; 48];
        assert!(
            all_the_same(&vec![white.clone(); 64])
                .unwrap()
                .contains("255")
        );
        let mut varied = vec![white.clone(); 64];
        varied[63][7] = 254;
        assert_eq!(all_the_same(&varied), None);
        assert_eq!(all_the_same(&[white]), None, "one face is no evidence");
        assert_eq!(all_the_same(&[]), None);
    }
}
