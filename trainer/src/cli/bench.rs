//! `bench`: times training steps and generator forwards (or single layers) on synthetic data.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::common::{DeviceArg, device_for, parse_batch, parse_precision, parse_resolution};
use super::train::arch_parser;
use crate::fsutil::write_atomic;
use crate::train::Precision;
use crate::train::losses::LossKind;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Images per training step.
    #[arg(long, default_value_t = 64, value_parser = parse_batch)]
    pub batch: usize,
    /// Timed steps per case (the median is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub steps: u64,
    /// Untimed warm-up steps per case.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=100))]
    pub warmup: u64,
    #[arg(long, default_value_t = 64, value_parser = parse_resolution)]
    pub resolution: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Time single layers (forward, forward + backward) instead of whole steps.
    #[arg(long)]
    pub ops: bool,
    /// Only these architectures (repeat or comma-separate; default: all).
    #[arg(long, value_parser = arch_parser(), value_delimiter = ',')]
    pub arch: Vec<String>,
    /// Only these losses (repeat or comma-separate; default: all, each also with spectral norm
    /// for hinge).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub loss: Vec<LossKind>,
    /// GEMM precisions to time (repeat or comma-separate: fp32, bf16; bf16 needs AVX-512 BF16).
    /// Steps run once per precision; `--ops` takes the first.
    #[arg(long, value_parser = parse_precision, value_delimiter = ',', default_value = "fp32")]
    pub precision: Vec<Precision>,
    /// With `--ops`: only the layers whose name contains this text (e.g. `conv_transpose2d`).
    #[arg(long, requires = "ops")]
    pub only: Option<String>,
}

pub(super) fn bench(a: BenchArgs) -> Result<()> {
    let device = device_for(a.device)?;
    if a.ops {
        let precision = a.precision.first().copied().unwrap_or_default();
        let report = kernels::bench::run(a.batch, 10, a.only.as_deref(), precision, &device);
        say!("{}", kernels::bench::markdown(&report));
        if let Some(path) = a.json {
            write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
        }
        return Ok(());
    }
    let opts = crate::bench::BenchOptions {
        batch: a.batch,
        warmup: a.warmup as usize,
        steps: a.steps as usize,
        resolution: a.resolution,
        forward_batches: vec![1, 16, 64],
        archs: a
            .arch
            .iter()
            .map(|x| {
                shared_model::arch::NAMES
                    .iter()
                    .find(|n| *n == x)
                    .copied()
                    .expect("clap checks the name")
            })
            .collect(),
        losses: a.loss.clone(),
        precisions: a.precision.clone(),
        peak_sizes: vec![512, 1024, 2048],
    };
    let report = crate::bench::run(&opts, &device)?;
    say!("{}", crate::bench::markdown(&report));
    if let Some(path) = a.json {
        write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}
