//! The mode-seeking loss (MSGAN; Mao et al. 2019).

use serde::{Deserialize, Serialize};

use super::{GeneratorView, Piece, Term, check_range};

/// `weight / (mean|G(z1,c) - G(z2,c)| / mean|z1 - z2| + 1e-5)` over pairs of faces with the
/// same tags (the generator's batch is split in halves that share tags): two latents that land
/// on one face cost the generator, so different seeds keep drawing different characters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModeSeeking {
    pub weight: f64,
}

impl Default for ModeSeeking {
    /// The paper's lambda 1.
    fn default() -> Self {
        Self { weight: 1.0 }
    }
}

/// Added to the ratio before inverting it (the paper's `eps`).
const EPS: f64 = 1e-5;

impl Piece for ModeSeeking {
    fn about(&self) -> &'static str {
        "mode seeking (MSGAN): faces of two latents with the same tags must differ"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("weight", self.weight, 0.0, 1e6)
    }

    fn pairs_conditions(&self) -> bool {
        true
    }

    fn generator_term(&self, v: &GeneratorView) -> Option<Term> {
        let b = v.fake.dims()[0] / 2;
        if self.weight <= 0.0 || b == 0 {
            return None;
        }
        let images = (v.fake.clone().slice(0..b) - v.fake.clone().slice(b..2 * b))
            .abs()
            .mean();
        let latents = (v.z.clone().slice(0..b) - v.z.clone().slice(b..2 * b))
            .abs()
            .mean()
            .detach();
        let ratio = images / latents.clamp_min(1e-12);
        let loss = ratio.add_scalar(EPS).recip();
        Some(Term::weighted("mode_seeking", loss, self.weight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    /// Two identical faces for different latents cost far more than two different ones, and
    /// the gradient pushes the faces of a pair apart.
    #[test]
    fn identical_faces_cost_more_and_the_gradient_separates_them() {
        let dev = Device::flex().autodiff();
        let z = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &dev);
        let loss = |a: f32, b: f32| {
            let fake = Tensor::<4>::from_floats([[[[a, a]]], [[[b, b]]]], &dev).require_grad();
            let t = ModeSeeking::default()
                .generator_term(&GeneratorView { z: &z, fake: &fake })
                .unwrap();
            let grads = t.loss.backward();
            let g = fake
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            (t.value, g)
        };
        let (same, _) = loss(0.5, 0.5001);
        let (apart, g) = loss(0.2, 0.8);
        assert!(same > 100.0 * apart, "{same} vs {apart}");
        // d loss / d a > 0 for a < b: descending moves a down, b up (apart).
        assert!(g[0] > 0.0 && g[2] < 0.0, "{g:?}");
    }
}
