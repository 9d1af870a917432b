//! A tiny portable PRNG: the same seed gives the same numbers on every platform (x86_64, wasm32),
//! which is what makes "seed 42" mean the same face in `trainer generate` and in the page.
//!
//! SplitMix64 (Steele, Lea & Flood 2014) is used because its whole state is one `u64`: a training
//! checkpoint stores it exactly and a resumed run continues the very same stream. Normal deviates
//! come from Box-Muller with `libm`'s pure-Rust `log`/`cos`, so no platform libm can change a bit.

/// SplitMix64 generator; `state` is public so checkpoints can save and restore it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix64 {
    pub state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), by rejection so there is no modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let zone = u64::MAX - (u64::MAX % n);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % n;
            }
        }
    }

    /// Standard normal deviate (Box-Muller; one value per call, deterministic everywhere).
    pub fn normal(&mut self) -> f32 {
        // 1 - u keeps the argument of log in (0, 1].
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        (r * libm::cos(2.0 * core::f64::consts::PI * u2)) as f32
    }

    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normal()).collect()
    }
}

/// Burn's initialisers draw from one random stream per backend, shared by every thread of the
/// process. This lock is held while a thread seeds that stream and draws from it, so that what a
/// seed initialises does not depend on what other threads do meanwhile (tests run side by side).
static BACKEND_STREAM: std::sync::Mutex<()> = std::sync::Mutex::new(());

std::thread_local! {
    /// Whether this thread holds [`BACKEND_STREAM`] (the lock is taken once per thread).
    static HOLDS_STREAM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, which draws from the backend's random stream (`Tensor::random`, module
/// initialisers), while no other thread that goes through here touches that stream. Every
/// network's `try_init` goes through here; calls nest.
pub fn backend_stream<R>(f: impl FnOnce() -> R) -> R {
    if HOLDS_STREAM.get() {
        return f();
    }
    // A panic inside `f` leaves the stream as consistent as any draw does.
    let _held = BACKEND_STREAM.lock().unwrap_or_else(|e| e.into_inner());
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            HOLDS_STREAM.set(false);
        }
    }
    HOLDS_STREAM.set(true);
    let _release = Release;
    f()
}

/// `m` with every parameter's initial values drawn now. Burn draws a parameter's values at its
/// first use, which may be long after [`seeded`] returned; this draws them while it holds the
/// stream.
pub fn drawn<M: burn::module::Module>(m: M) -> M {
    struct Draw;
    impl burn::module::ModuleVisitor for Draw {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::Tensor<D>>) {
            p.val();
        }
        fn visit_int<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::Tensor<D, burn::tensor::Int>>,
        ) {
            p.val();
        }
        fn visit_bool<const D: usize>(
            &mut self,
            p: &burn::module::Param<burn::Tensor<D, burn::tensor::Bool>>,
        ) {
            p.val();
        }
    }
    backend_stream(|| m.visit(&mut Draw));
    m
}

/// What `build` returns, with every parameter's initial values drawn, all while this thread
/// holds the stream: a network leaves here with nothing left to draw later, when another thread
/// may have seeded the stream. Every network's `try_init` builds through here.
pub fn initialised<M: burn::module::Module, E>(
    build: impl FnOnce() -> Result<M, E>,
) -> Result<M, E> {
    backend_stream(|| build().map(drawn))
}

/// Seeds the backend's random stream with `seed` and runs `f` (networks' `try_init`, which draw
/// every value at once, or other draws) on it, as one step that no other thread going through
/// this module can interleave with: the same seed gives the same weights every time.
pub fn seeded<R>(device: &burn::tensor::Device, seed: u64, f: impl FnOnce() -> R) -> R {
    backend_stream(|| {
        device.seed(seed);
        f()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed gives the same weights while another thread initialises networks of its own from
    /// the same stream (before the lock, tests running side by side got other weights now and
    /// then, and resumed runs differed from uninterrupted ones).
    #[test]
    fn a_seed_gives_the_same_weights_whatever_other_threads_draw() {
        let cfg = crate::TaggerConfig::new(6)
            .with_resolution(16)
            .with_channels(4)
            .with_max_channels(8)
            .with_final_size(2)
            .with_feature_dim(6);
        let device = burn::tensor::Device::flex();
        /// Every float parameter's values, in visit order.
        struct Values(Vec<f32>);
        impl burn::module::ModuleVisitor for Values {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<burn::Tensor<D>>) {
                self.0.extend(p.val().into_data().iter::<f32>());
            }
        }
        let weights = || {
            let t = seeded(&device, 7, || cfg.try_init(&device)).unwrap();
            let mut v = Values(Vec::new());
            burn::module::Module::visit(&t, &mut v);
            v.0
        };
        let first = weights();
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
        let (stop, others) = (AtomicBool::new(false), AtomicUsize::new(0));
        std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(Relaxed) {
                    cfg.try_init(&device).unwrap();
                    others.fetch_add(1, Relaxed);
                }
            });
            // Until the other thread has initialised 200 networks meanwhile.
            let mut i = 0;
            while others.load(Relaxed) < 200 && i < 100_000 {
                if weights() != first {
                    stop.store(true, Relaxed);
                    panic!("draw {i} of seed 7 gave other weights");
                }
                i += 1;
            }
            stop.store(true, Relaxed);
        });
    }

    #[test]
    fn reference_values_are_stable() {
        // First outputs of SplitMix64 seeded with 0, as published with the algorithm.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut r = SplitMix64::new(7);
        let xs = r.normals(200_000);
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SplitMix64::new(3);
        let mut seen = [0usize; 5];
        for _ in 0..1000 {
            seen[r.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 150), "{seen:?}");
    }
}
