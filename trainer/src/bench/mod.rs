//! `trainer bench`: seconds per training step for every architecture x loss, and generator
//! forward times, on synthetic data (so it needs no dataset and measures only compute).
//!
//! Numbers come from wall-clock time of whole steps (one D and one G update) after warm-up
//! steps; the median of the timed steps is reported. Run it on a quiet machine.

use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use kernels::bench::{kernel_gemm_gflops, matmul_gflops, median};
use serde::Serialize;
use shared_model::arch::{self, FamilyOptions};
use shared_model::{DiscriminatorSpec, GeneratorInput, GeneratorSpec, SplitMix64, TagVocab};

use crate::data::Dataset;
use crate::train::losses::{LossKind, PairWeights};
use crate::train::{Precision, TrainConfig, Trainer};

/// What to measure.
pub struct BenchOptions {
    pub batch: usize,
    pub warmup: usize,
    pub steps: usize,
    pub resolution: usize,
    /// Generator forward batch sizes.
    pub forward_batches: Vec<usize>,
    /// Architectures to run, by `GeneratorSpec::arch` name (empty = all).
    pub archs: Vec<&'static str>,
    /// Losses to run (empty = all).
    pub losses: Vec<LossKind>,
    /// GEMM precisions of the training steps, each a row of its own (empty = fp32).
    pub precisions: Vec<Precision>,
    /// Sizes `n` of the `n x n` matmuls that measure the machine's peak (empty = none).
    pub peak_sizes: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub arch: String,
    pub loss: String,
    pub spectral_norm: bool,
    /// The GEMM precision of the step (`fp32`, `bf16`).
    pub precision: String,
    pub batch: usize,
    pub g_params: usize,
    pub d_params: usize,
    /// Median seconds per step (one D + one G update).
    pub seconds_per_step: f64,
    pub images_per_second: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardRow {
    pub arch: String,
    pub batch: usize,
    /// Median milliseconds per generator forward (inference mode).
    pub ms: f64,
    pub ms_per_image: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub threads: usize,
    /// Best GFLOP/s of a square f32 matmul on this device (0 if not measured): what the steps'
    /// GFLOP/s are set against.
    pub peak_gflops: f64,
    /// Best GFLOP/s of the same products through the kernels' GEMM, per precision timed.
    pub kernel_peak_gflops: Vec<(String, f64)>,
    pub steps: Vec<StepRow>,
    pub forward: Vec<ForwardRow>,
}

/// A synthetic dataset shaped like anime-faces-64: 12 hair and 10 eye colours.
pub fn synthetic_dataset(n: usize, resolution: usize, seed: u64) -> Dataset {
    let hair: Vec<String> = (0..12).map(|i| format!("c{i} hair")).collect();
    let eyes: Vec<String> = (0..10).map(|i| format!("c{i} eyes")).collect();
    let mut rng = SplitMix64::new(seed);
    let tags: Vec<Vec<String>> = (0..n)
        .map(|i| vec![hair[i % 12].clone(), eyes[(i / 12) % 10].clone()])
        .collect();
    let pixels = (0..n * resolution * resolution * 3)
        .map(|_| rng.below(256) as u8)
        .collect();
    let vocab = TagVocab::from_tag_sets(tags.iter().map(|t| t.as_slice()));
    Dataset {
        name: "synthetic".into(),
        resolution,
        pixels,
        files: (0..n).map(|i| format!("{i}.png").into()).collect(),
        tags,
        vocab,
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}

/// Every family the bench compares, at its CLI defaults.
fn archs(t: usize, r: usize) -> Result<Vec<(GeneratorSpec, DiscriminatorSpec)>> {
    arch::NAMES
        .iter()
        .map(|name| Ok(arch::configure(name, t, r, &FamilyOptions::default())?))
        .collect()
}

struct Count(usize);
impl burn::module::ModuleVisitor for Count {
    fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
        self.0 += p.val().shape().num_elements();
    }
}
fn params<M: Module>(m: &M) -> usize {
    let mut c = Count(0);
    m.visit(&mut c);
    c.0
}

/// Runs the benchmark on `device`, printing progress lines to stderr.
pub fn run(opts: &BenchOptions, device: &Device) -> Result<BenchReport> {
    let data = synthetic_dataset(512, opts.resolution, 1);
    let t = data.vocab.len();
    let mut steps = Vec::new();
    let mut forward = Vec::new();
    for (g, d) in archs(t, opts.resolution)? {
        if !opts.archs.is_empty() && !opts.archs.contains(&g.arch()) {
            continue;
        }
        let cases = [
            (LossKind::Hinge, false),
            (LossKind::NonSaturating, false),
            (LossKind::WganGp, false),
            (LossKind::Hinge, true),
        ];
        let precisions = if opts.precisions.is_empty() {
            vec![Precision::Fp32]
        } else {
            opts.precisions.clone()
        };
        let cases = cases
            .into_iter()
            .filter(|(loss, _)| opts.losses.is_empty() || opts.losses.contains(loss))
            .flat_map(|(loss, sn)| precisions.iter().map(move |p| (loss, sn, *p)));
        for (loss, sn, precision) in cases {
            let cfg = TrainConfig::new(
                g.clone(),
                d.clone(),
                data.vocab.clone(),
                "synthetic".into(),
                "synthetic".into(),
            )
            .with_batch_size(opts.batch)
            .with_loss(loss)
            .with_pair_weights(if loss == LossKind::WganGp {
                PairWeights::reference_wgan()
            } else {
                PairWeights::default()
            })
            .with_spectral_norm(sn)
            .with_precision(precision);
            let mut trainer = Trainer::new(cfg, &data, device)?;
            for _ in 0..opts.warmup {
                trainer.step(&data);
            }
            let times: Vec<f64> = (0..opts.steps)
                .map(|_| {
                    let t0 = Instant::now();
                    let s = trainer.step(&data);
                    // The step's statistics were read back, so its work has finished.
                    let _ = s.loss_g;
                    t0.elapsed().as_secs_f64()
                })
                .collect();
            let sps = median(times);
            let row = StepRow {
                arch: g.arch().into(),
                loss: serde_json::to_value(loss)?
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                spectral_norm: sn,
                precision: precision.name().into(),
                batch: opts.batch,
                g_params: params(&trainer.g),
                d_params: params(&trainer.d),
                seconds_per_step: sps,
                images_per_second: opts.batch as f64 / sps,
            };
            note!(
                "{} {}{} {}: {:.3} s/step",
                row.arch,
                row.loss,
                if sn { " +SN" } else { "" },
                row.precision,
                sps
            );
            steps.push(row);
        }
        let generator = g.try_init(device)?;
        for &b in &opts.forward_batches {
            let l = g.latent_dim();
            let z = shared_model::rng::backend_stream(|| {
                Tensor::<2>::random([b, l], burn::tensor::Distribution::Normal(0.0, 1.0), device)
            });
            let c = Tensor::<2>::ones([b, t], device);
            let run_once = || {
                let t0 = Instant::now();
                let out = generator.forward(GeneratorInput::new(z.clone(), c.clone()));
                let _ = out.into_data();
                t0.elapsed().as_secs_f64() * 1e3
            };
            for _ in 0..opts.warmup.max(1) {
                run_once();
            }
            let reps = if b <= 16 { 20 } else { 5 };
            let ms = median((0..reps).map(|_| run_once()).collect());
            note!("{} forward batch {b}: {ms:.2} ms", g.arch());
            forward.push(ForwardRow {
                arch: g.arch().into(),
                batch: b,
                ms,
                ms_per_image: ms / b as f64,
            });
        }
    }
    // After the steps, so a slow peak measurement can't warm or cool them.
    let best = |v: &[(usize, f64)]| v.iter().map(|m| m.1).fold(0.0, f64::max);
    let peak = matmul_gflops(&opts.peak_sizes, 5, device);
    let mut kernel_peak_gflops = Vec::new();
    if !opts.peak_sizes.is_empty() {
        for p in opts.precisions.iter().copied().chain([Precision::Fp32]) {
            if !kernel_peak_gflops.iter().any(|(n, _)| n == p.name()) {
                let g = kernel_gemm_gflops(&opts.peak_sizes, 5, p);
                kernel_peak_gflops.push((p.name().to_string(), best(&g)));
            }
        }
    }
    Ok(BenchReport {
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        peak_gflops: best(&peak),
        kernel_peak_gflops,
        steps,
        forward,
    })
}

/// The report as Markdown tables.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = String::from(
        "| arch | loss | precision | batch | G params | D params | s/step | images/s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in &r.steps {
        s.push_str(&format!(
            "| {} | {}{} | {} | {} | {} | {} | {:.3} | {:.1} |\n",
            row.arch,
            row.loss,
            if row.spectral_norm { " + SN" } else { "" },
            row.precision,
            row.batch,
            row.g_params,
            row.d_params,
            row.seconds_per_step,
            row.images_per_second
        ));
    }
    if r.peak_gflops > 0.0 {
        s.push_str(&format!("\nmatmul peak: {:.1} GFLOP/s\n", r.peak_gflops));
    }
    for (p, g) in &r.kernel_peak_gflops {
        s.push_str(&format!("kernels' GEMM peak at {p}: {g:.1} GFLOP/s\n"));
    }
    s.push_str("\n| arch | G forward batch | ms | ms/image |\n|---|---|---|---|\n");
    for row in &r.forward {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} |\n",
            row.arch, row.batch, row.ms, row.ms_per_image
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_dataset_is_well_formed() {
        let d = synthetic_dataset(120, 8, 3);
        assert_eq!(d.len(), 120);
        assert_eq!(d.pixels.len(), 120 * 8 * 8 * 3);
        assert_eq!(d.vocab.groups.len(), 2);
        assert_eq!(d.vocab.len(), 22);
    }

    #[test]
    fn filters_pick_the_cases() {
        let opts = BenchOptions {
            batch: 2,
            warmup: 0,
            steps: 1,
            resolution: 16,
            forward_batches: vec![1],
            archs: vec!["dcgan"],
            losses: vec![LossKind::Hinge],
            precisions: vec![],
            peak_sizes: vec![32],
        };
        let r = run(&opts, &Device::flex()).unwrap();
        let cases: Vec<(&str, &str, bool)> = r
            .steps
            .iter()
            .map(|s| (s.arch.as_str(), s.loss.as_str(), s.spectral_norm))
            .collect();
        assert_eq!(cases, [("dcgan", "hinge", false), ("dcgan", "hinge", true)]);
        assert!(r.steps.iter().all(|s| s.seconds_per_step > 0.0));
        assert_eq!(r.forward.len(), 1);
        assert_eq!(r.forward[0].arch, "dcgan");
        assert!(r.peak_gflops > 0.0);
    }
}
