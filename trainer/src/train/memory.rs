//! Whether a batch size fits in memory, measured before the run starts: a training step's
//! memory grows with the batch (activations, their gradients, the penalty's extra passes), so
//! two short probes at small batches give the cost of one more image, and the asked batch is
//! refused with the largest that fits instead of aborting mid-step (`--batch 4096` once did).
//! Linux only (peak RSS and available memory from `/proc`); elsewhere every batch is accepted.

use anyhow::{Result, bail};
use burn::prelude::*;

use super::{TrainConfig, Trainer};
use crate::data::Dataset;

/// Batches up to this are accepted without probing (a probe would cost more than it saves).
const PROBE_ABOVE: usize = 64;
/// The probes' batch sizes.
const PROBES: [usize; 2] = [8, 16];
/// The share of the memory available at the start that a run may plan to use.
const USABLE: f64 = 0.85;

/// An error naming the largest batch that fits when `cfg.batch_size` would not fit in memory.
pub fn check_batch_fits(cfg: &TrainConfig, data: &Dataset, device: &Device) -> Result<()> {
    if cfg.batch_size <= PROBE_ABOVE {
        return Ok(());
    }
    let (Some(available), Some(_)) = (mem_available(), peak_rss()) else {
        return Ok(());
    };
    let start = current_rss().unwrap_or(0);
    let mut peaks = [0u64; 2];
    for (peak, b) in peaks.iter_mut().zip(PROBES) {
        let mut probe_cfg = cfg.clone();
        probe_cfg.batch_size = b;
        let mut probe = Trainer::new(probe_cfg, data, device)?;
        for _ in 0..2 {
            probe.step(data);
        }
        *peak = peak_rss().unwrap_or(0);
    }
    let per_image = peaks[1].saturating_sub(peaks[0]) / (PROBES[1] - PROBES[0]) as u64;
    let budget = ((start + available) as f64 * USABLE) as u64;
    let need = peaks[1] + per_image * (cfg.batch_size - PROBES[1]) as u64;
    if per_image > 0 && need > budget {
        let fits = PROBES[1] as u64 + budget.saturating_sub(peaks[1]) / per_image;
        bail!(
            "--batch {} needs about {:.1} GiB (measured: {:.1} MiB per image of the batch), more \
             than the {:.1} GiB this machine has available; at most --batch {fits} fits",
            cfg.batch_size,
            gib(need),
            per_image as f64 / f64::from(1u32 << 20),
            gib(start + available)
        );
    }
    Ok(())
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// A `kB` field of a `/proc` file, in bytes.
fn proc_kb(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn mem_available() -> Option<u64> {
    proc_kb("/proc/meminfo", "MemAvailable:")
}

fn peak_rss() -> Option<u64> {
    proc_kb("/proc/self/status", "VmHWM:")
}

fn current_rss() -> Option<u64> {
    proc_kb("/proc/self/status", "VmRSS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_figures_are_read() {
        let (avail, peak, rss) = (mem_available(), peak_rss(), current_rss());
        assert!(avail.is_some_and(|a| a > 1 << 20), "{avail:?}");
        assert!(peak.is_some_and(|p| p >= rss.unwrap()), "{peak:?} {rss:?}");
    }
}
