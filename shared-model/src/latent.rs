//! Latent arithmetic, defined once: variations, steps along a direction, and the interpolations of a
//! transition. The page, the widget and the trainer all go through these (via [`crate::face`]), so
//! the same recipe gives the same generator inputs, bit for bit, natively and in WebAssembly.

use crate::SplitMix64;

/// A variation of latent `z`: `(z + strength * n) / sqrt(1 + strength^2)` with `n` the normal
/// deviates of `seed`, so the result keeps unit variance. `strength = 0` returns `z`.
pub fn vary(z: &[f32], seed: u64, strength: f32) -> Vec<f32> {
    let n = SplitMix64::new(seed).normals(z.len());
    let scale = 1.0 / (1.0 + strength * strength).sqrt();
    z.iter()
        .zip(n)
        .map(|(a, b)| (a + strength * b) * scale)
        .collect()
}

/// Moves `z` by `amount` along `direction` (`z + amount * direction`, computed in f64 and rounded
/// once). Both have the latent's length.
pub fn step(z: &mut [f32], direction: &[f32], amount: f64) {
    assert_eq!(z.len(), direction.len(), "direction of another length");
    for (x, d) in z.iter_mut().zip(direction) {
        *x = (f64::from(*x) + amount * f64::from(*d)) as f32;
    }
}

/// Spherical interpolation between two latents (`t = 0` gives `a`, `t = 1` gives `b`); it keeps
/// the norm a Gaussian latent has, so the faces in between stay as sharp as the ends.
/// Falls back to linear interpolation for (nearly) parallel or zero vectors.
///
/// `acos` and `sin` are `libm`'s pure-Rust ones (as in [`crate::rng`]), so the frames' inputs do not
/// depend on the platform's maths library (glibc natively, another port in WebAssembly).
pub fn slerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp of vectors of different lengths");
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| {
        v.iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt()
    };
    let (na, nb) = (norm(a), norm(b));
    let cos = if na > 0.0 && nb > 0.0 {
        (dot / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let omega = libm::acos(cos);
    let sin = libm::sin(omega);
    let (wa, wb) = if sin.abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            libm::sin((1.0 - t) * omega) / sin,
            libm::sin(t * omega) / sin,
        )
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect()
}

/// Linear interpolation `(1 - t) a + t b` (for condition vectors), computed in f64.
pub fn lerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "lerp of vectors of different lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| ((1.0 - t) * f64::from(*x) + t * f64::from(*y)) as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_keeps_zero_strength_and_is_reproducible() {
        let a = SplitMix64::new(1).normals(64);
        assert_eq!(vary(&a, 7, 0.0), a);
        let v = vary(&a, 7, 0.5);
        assert_ne!(v, a);
        assert_eq!(v, vary(&a, 7, 0.5));
        assert_ne!(v, vary(&a, 8, 0.5), "the seed of a variation matters");
        // The published formula, written out for one value.
        let n = SplitMix64::new(7).normals(64);
        assert_eq!(v[3], (a[3] + 0.5 * n[3]) * (1.0 / (1.0f32 + 0.25).sqrt()));
    }

    #[test]
    fn slerp_hits_the_ends_and_keeps_the_norm() {
        let a = SplitMix64::new(1).normals(64);
        let b = SplitMix64::new(2).normals(64);
        assert_eq!(slerp(&a, &b, 0.0), a, "t = 0 is exactly a");
        assert_eq!(slerp(&a, &b, 1.0), b, "t = 1 is exactly b");
        let norm = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().sqrt();
        let mid = slerp(&a, &b, 0.5);
        assert!(
            norm(&mid) > 0.9 * norm(&a).min(norm(&b)),
            "slerp keeps the norm"
        );
        let m = slerp(&[1.0, 0.0], &[0.0, 1.0], 0.5);
        assert!((m[0].hypot(m[1]) - 1.0).abs() < 1e-6, "{m:?}");
        let p = [1.0f32, 0.0, 0.0];
        assert_eq!(slerp(&p, &p, 0.3), p, "parallel vectors");
        assert_eq!(
            slerp(&[0.0, 0.0], &[2.0, 0.0], 0.5),
            [1.0, 0.0],
            "zero vector"
        );
    }

    #[test]
    fn lerp_and_step() {
        assert_eq!(lerp(&[0.0, 1.0], &[1.0, 1.0], 0.25), vec![0.25, 1.0]);
        let (a, b) = ([0.3f32, 1.45], [1.0f32, -0.2]);
        assert_eq!(lerp(&a, &b, 0.0), a);
        assert_eq!(lerp(&a, &b, 1.0), b, "the ends are exact");
        let mut z = vec![1.0f32, 2.0];
        step(&mut z, &[0.5, -1.0], 2.0);
        assert_eq!(z, [2.0, 0.0]);
    }
}
