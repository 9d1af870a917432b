//! Evaluation during training (`trainer train --eval-every K --tagger T`): every K steps (and
//! at the last) the EMA generator is evaluated and one JSON line is appended to the run's
//! tagger-eval metric log ([`RunDir::append_metric`]).
//!
//! When the shipped shape encoder (`models/shape64`, relative to the working folder) is there
//! and reads the tagger's resolution, the lines also carry the figures in its features
//! (`report.shape`); [`TrainEval::with_shape`] picks another one.

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use shared_model::shape::LoadedShape;
use shared_model::tagger::LoadedTagger;

use super::EvalContext;
use crate::data::Dataset;
use crate::shape::{DEFAULT_SHAPE, load_shape};
use crate::train::{RunDir, Trainer};

/// Name of the metric the hook appends to.
pub const METRIC: &str = "tagger-eval";

/// The evaluation hook of a training run.
pub struct TrainEval {
    ctx: EvalContext,
    every: u64,
    run: RunDir,
}

impl TrainEval {
    /// Evaluates with `tagger` against `data` (loaded from `data_dir` at the tagger's
    /// resolution), `per_combo` faces per tag combination, every `every` steps of `run`.
    pub fn new(
        tagger: LoadedTagger,
        data: &Dataset,
        data_dir: &Path,
        run: &RunDir,
        every: u64,
        per_combo: usize,
    ) -> Result<Self> {
        if every == 0 {
            bail!("--eval-every must be at least 1");
        }
        let mut ctx = EvalContext::new(tagger, data, data_dir, per_combo, 0)
            .context("preparing --eval-every")?;
        let default = Path::new(DEFAULT_SHAPE);
        if default.join("shape.json").is_file() {
            match load_shape(default, &Device::flex()) {
                Ok(e) if e.card.resolution == data.resolution => {
                    ctx = ctx
                        .with_shape(e, data)
                        .context("preparing --eval-every in shape features")?;
                }
                Ok(e) => note!(
                    "eval: shape features left out ({DEFAULT_SHAPE} reads {} px, the data is {} \
                     px)",
                    e.card.resolution,
                    data.resolution
                ),
                Err(e) => note!("eval: shape features left out ({e:#})"),
            }
        }
        Ok(Self {
            ctx,
            every,
            run: run.clone(),
        })
    }

    /// Measures in `encoder`'s features too (replacing the default one). `data` is the data
    /// given to [`TrainEval::new`].
    pub fn with_shape(mut self, encoder: LoadedShape, data: &Dataset) -> Result<Self> {
        self.ctx = self.ctx.with_shape(encoder, data)?;
        Ok(self)
    }

    /// Runs after every step; evaluates on multiples of `every` and at the last step.
    pub fn after_step(&self, t: &Trainer) -> Result<()> {
        let step = t.state.step;
        if !(step.is_multiple_of(self.every) || step == t.cfg.steps) {
            return Ok(());
        }
        let (report, _) = self.ctx.evaluate(
            &t.cfg.vocab,
            t.cfg.generator.latent_dim(),
            &|z, c| t.g_ema.forward(shared_model::GeneratorInput::new(z, c)),
            &Device::flex(),
        )?;
        let line = serde_json::json!({
            "step": step,
            "images_seen": t.state.images_seen,
            "train_seconds": t.state.seconds,
            "report": report,
        });
        self.run.append_metric(METRIC, &line)?;
        note!(
            "eval at step {step}: label accuracy {:.1} %, FD {:.3} (floor {:.3}), KID {:.4}, \
             recall {:.3}, diversity {}",
            100.0 * report.label_accuracy.all,
            report.generated_vs_heldout.fd,
            report.real_train_vs_heldout.fd,
            report.generated_vs_heldout.kid,
            report.generated_vs_heldout.recall,
            report
                .diversity
                .map_or("-".to_string(), |d| format!("{:.3} of real", d.ratio))
        );
        if let Some(sh) = &report.shape {
            note!(
                "  in shape features: FD {:.3} (floor {:.3}), recall {:.3}, diversity {}",
                sh.generated_vs_heldout.fd,
                sh.real_train_vs_heldout.fd,
                sh.generated_vs_heldout.recall,
                sh.diversity
                    .map_or("-".to_string(), |d| format!("{:.3} of real", d.ratio))
            );
        }
        Ok(())
    }
}
