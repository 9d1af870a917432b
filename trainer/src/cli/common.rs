//! What several subcommands share: the compute device, the weights precision, value parsers
//! that name the option they reject, and dataset loading with progress lines.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use clap::ValueEnum;
use kernels::precision::Precision;
use shared_model::WeightsDtype;

use crate::data::{Dataset, OnBadEntry, load_dataset};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceArg {
    /// Pure-Rust CPU backend (Burn Flex).
    Cpu,
    /// GPU through wgpu (Vulkan/Metal/DX12).
    Wgpu,
}

pub(super) fn device_for(arg: DeviceArg) -> Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::flex()),
        #[cfg(feature = "wgpu")]
        DeviceArg::Wgpu => Device::wgpu_options().init().map_err(|e| {
            anyhow::anyhow!(
                "--device wgpu: no usable GPU adapter ({e}); check the GPU driver and Vulkan \
                 loader, or use --device cpu"
            )
        }),
        #[cfg(not(feature = "wgpu"))]
        DeviceArg::Wgpu => anyhow::bail!(
            "this trainer was built without the GPU backend; --device wgpu needs a build with \
             the `wgpu` feature (see the README); use --device cpu"
        ),
    }
}

/// How exported weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    /// Half precision: half the bytes; loaders widen it to f32 and compute in f32
    /// (BatchNorm stays f32).
    F16,
    /// Single precision: exactly the trained values.
    F32,
    /// Linear layers' weights as 8-bit integers with a scale per output, the rest as f16.
    Int8,
}

impl From<PrecisionArg> for WeightsDtype {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F16 => WeightsDtype::F16,
            PrecisionArg::F32 => WeightsDtype::F32,
            PrecisionArg::Int8 => WeightsDtype::Int8,
        }
    }
}

pub(super) fn parse_batch(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (2..=4096).contains(&n) => Ok(n),
        _ => Err(format!(
            "'{s}' is not a batch size (a whole number from 2 to 4096)"
        )),
    }
}

pub(super) fn parse_resolution(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (16..=1024).contains(&n) && n.is_power_of_two() => Ok(n),
        _ => Err(format!(
            "'{s}' is not a resolution (a power of two from 16 to 1024, e.g. 64)"
        )),
    }
}

pub(super) fn parse_lr(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a learning rate (a number between 0 and 1, e.g. 2e-4)"
        )),
    }
}

pub(super) fn parse_beta(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if x.is_finite() && (0.0..1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not an Adam decay (a number from 0 up to but not including 1, e.g. 0.99)"
        )),
    }
}

pub(super) fn parse_gp_weight(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1e4).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a penalty weight (a number from 0 to 10000, e.g. 20)"
        )),
    }
}

pub(super) fn parse_diverge_at(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (1.0..=1e30).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a divergence threshold (a number from 1 to 1e30, e.g. 1e8)"
        )),
    }
}

pub(super) fn parse_half_life(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a half-life (a positive number of images, e.g. 10000)"
        )),
    }
}

/// `--precision`: `fp32`, or `bf16` where this CPU computes it.
pub(super) fn parse_precision(s: &str) -> Result<Precision, String> {
    let p: Precision = s.parse()?;
    if !p.supported() {
        let why = kernels::precision::bf16_missing().unwrap_or_default();
        return Err(format!("{p} is not available: {why}; use fp32"));
    }
    Ok(p)
}

pub(super) fn parse_probability(s: &str) -> Result<f32, String> {
    parse_probability_f64(s).map(|x| x as f32)
}

/// A probability kept as written (a run config stores `0.9`, not its f32 neighbour).
pub(super) fn parse_probability_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "'{s}' is not a probability (a number from 0 to 1, e.g. 0.5)"
        )),
    }
}

/// Loads a dataset for measuring (bad entries skipped and counted), with progress lines.
pub(super) fn load_data(dir: &Path, res: usize) -> Result<Dataset> {
    note!("loading {} ...", dir.display());
    let data = load_dataset(dir, res, OnBadEntry::Skip, &|_, _| {})?;
    if !data.skipped.is_empty() {
        note!("skipped {} bad entries", data.skipped.len());
    }
    for w in &data.warnings {
        note!("warning: {w}");
    }
    Ok(data)
}
