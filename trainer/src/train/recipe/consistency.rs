//! Balanced consistency regularisation (bCR; Zhao, Singh et al. 2021).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use shared_model::SplitMix64;

use super::{CriticView, Piece, Term, check_range, cutout, translate};

/// `weight * (E[(D(x,c) - D(T(x),c))^2] + E[(D(G,c) - D(T(G),c))^2])`: the critic must score an
/// image and an augmented copy of it alike, for real and generated images (the generated ones
/// detached). `T` is a fresh translation and cutout ([`super::DiffAugment`]'s, without colour
/// ops); the first score is the one the critic's loss used. Costs one more critic pass over both
/// batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Consistency {
    pub weight: f64,
    pub translation: f64,
    pub cutout: f64,
}

impl Default for Consistency {
    /// The paper's lambda 10 for real and generated images.
    fn default() -> Self {
        Self {
            weight: 10.0,
            translation: 0.125,
            cutout: 0.5,
        }
    }
}

impl Piece for Consistency {
    fn about(&self) -> &'static str {
        "consistency (bCR): the critic scores an image and a shifted, cut-out copy alike"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("weight", self.weight, 0.0, 1e6)?;
        check_range("translation", self.translation, 0.0, 0.5)?;
        check_range("cutout", self.cutout, 0.0, 1.0)
    }

    fn critic_term(&self, v: &CriticView, rng: &mut SplitMix64) -> Option<Term> {
        if self.weight <= 0.0 {
            return None;
        }
        let mut t = |x: &Tensor<4>| {
            let x = translate(x.clone(), self.translation, rng);
            cutout(x, self.cutout, rng)
        };
        let (real_t, fake_t) = (t(v.real_raw), t(v.fake_raw));
        // Each batch through the critic on its own, as the loss saw it (a minibatch-stddev
        // critic must not mix real and generated images in one group).
        let sr = v.critic.forward(real_t, v.cond.clone());
        let sf = v.critic.forward(fake_t, v.cond.clone());
        let penalty =
            (v.s_real.clone() - sr).square().mean() + (v.s_fake.clone() - sf).square().mean();
        Some(Term::weighted("consistency", penalty, self.weight))
    }
}
