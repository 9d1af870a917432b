//! The precision of the GEMMs under kyara's convolutions: fp32 everywhere, or bf16 operands with
//! fp32 accumulation where the CPU has AVX-512 BF16 (`conv/bf16.rs`).
//!
//! It is a setting of the calling thread, for the work it starts: [`with`] runs a closure at a
//! precision, and the kernels hand the setting on to the threads they spread work over, so a
//! training step at bf16 and an inference (or a test) at fp32 can run side by side. Only the
//! GEMMs change: their inputs are rounded to bf16 (to nearest even), products are summed in fp32
//! and everything else (im2col, Winograd transforms, batch norm, activations, the optimiser, the
//! weights) stays fp32. Inference, export and the page never leave fp32.

use std::cell::Cell;
use std::fmt;
use std::str::FromStr;

/// The GEMMs' operand precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Precision {
    /// fp32 operands and accumulation.
    #[default]
    Fp32,
    /// bf16 operands (rounded to nearest even), fp32 accumulation (AVX-512 BF16 only).
    Bf16,
}

impl Precision {
    pub const ALL: [Precision; 2] = [Precision::Fp32, Precision::Bf16];

    /// The name used on the command line and in configs.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Whether this CPU computes at this precision (fp32 always; bf16 with AVX-512 BF16).
    pub fn supported(self) -> bool {
        match self {
            Precision::Fp32 => true,
            Precision::Bf16 => bf16_supported(),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown precision '{s}' (expected fp32 or bf16)"))
    }
}

/// Whether the bf16 GEMM runs here: this build has it (feature `bf16`) and this CPU has AVX-512
/// BF16 (`avx512_bf16` in `/proc/cpuinfo`), detected at run time.
pub fn bf16_supported() -> bool {
    bf16_missing().is_none()
}

/// Why bf16 doesn't run here, for error messages; `None` where it does.
pub fn bf16_missing() -> Option<&'static str> {
    if !cfg!(feature = "bf16") {
        return Some(
            "this build has no bf16 GEMM (it is built with the kernels' `bf16` feature, e.g. \
             `cargo build --release -p trainer --features bf16`)",
        );
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bf16")
    {
        return None;
    }
    Some("this CPU has no AVX-512 BF16 (avx512_bf16 in /proc/cpuinfo)")
}

thread_local! {
    static CURRENT: Cell<Precision> = const { Cell::new(Precision::Fp32) };
}

/// The precision this thread's kernels compute at now (fp32 unless inside [`with`]).
pub fn current() -> Precision {
    CURRENT.with(Cell::get)
}

/// Runs `f` with this thread's kernels at `precision`, then restores the previous setting (also
/// when `f` panics). bf16 on a CPU without AVX-512 BF16 computes in fp32: callers that promise
/// bf16 check [`Precision::supported`] first.
pub fn with<R>(precision: Precision, f: impl FnOnce() -> R) -> R {
    struct Restore(Precision);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(precision)));
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nonsense_is_named() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
            assert_eq!(p.to_string().to_uppercase().parse::<Precision>(), Ok(p));
        }
        let err = "fp16".parse::<Precision>().unwrap_err();
        assert!(err.contains("'fp16'") && err.contains("bf16"), "{err}");
    }

    #[test]
    fn the_setting_is_scoped_and_per_thread() {
        assert_eq!(current(), Precision::Fp32);
        with(Precision::Bf16, || {
            assert_eq!(current(), Precision::Bf16);
            let other = std::thread::spawn(current).join().unwrap();
            assert_eq!(other, Precision::Fp32, "another thread keeps its own");
            with(Precision::Fp32, || assert_eq!(current(), Precision::Fp32));
            assert_eq!(current(), Precision::Bf16, "the inner scope restored it");
        });
        let _ = std::panic::catch_unwind(|| with(Precision::Bf16, || panic!("inside")));
        assert_eq!(current(), Precision::Fp32, "a panic restores it too");
    }
}
