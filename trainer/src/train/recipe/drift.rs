//! ProGAN's drift penalty on the critic's scores.

use serde::{Deserialize, Serialize};
use shared_model::SplitMix64;

use super::{CriticView, Piece, Term, check_range};
use crate::train::losses::drift_penalty;

/// `weight * (E[D(x,c)^2] + E[D(G(z,c),c)^2] + E[D(x,c')^2]) / 3` over the critic's scores of
/// real, generated and wrong-tag pairs (ProGAN's `eps_drift`, there on real scores only). The
/// Wasserstein loss does not see a constant added to every score, and its wrong-tag term is
/// unbounded below: without this the scores wander off (to -1,000 and beyond within 1,000
/// steps). Before recipes it was the run config's `drift` (old configs without it read 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Drift {
    pub weight: f64,
}

impl Default for Drift {
    fn default() -> Self {
        Self { weight: 0.001 }
    }
}

impl Piece for Drift {
    fn about(&self) -> &'static str {
        "drift penalty: weight * mean squared critic score (keeps the scores from wandering)"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("weight", self.weight, 0.0, 1e6)
    }

    fn critic_term(&self, v: &CriticView, _rng: &mut SplitMix64) -> Option<Term> {
        (self.weight > 0.0).then(|| {
            let penalty = drift_penalty(v.s_real.clone(), v.s_fake.clone(), v.s_wrong.cloned());
            Term::weighted("drift", penalty, self.weight)
        })
    }
}
