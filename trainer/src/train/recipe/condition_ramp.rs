//! Transitional conditioning ("Collapse by Conditioning", Shahbazi et al. 2022).

use serde::{Deserialize, Serialize};

use super::{Piece, check_range};

/// Trains unconditionally first and ramps the tags in: until `start` images the networks see
/// no condition (the generator's tag input and the critic's projection are multiplied by 0,
/// and the wrong-tag pairs weigh nothing), then the factor grows linearly to 1 at `end` images.
/// Conditioning on small data sets collapses each tag set onto a few faces; a generator that
/// first learns the variety of all faces keeps more of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionRamp {
    pub start: u64,
    pub end: u64,
}

impl Default for ConditionRamp {
    fn default() -> Self {
        Self {
            start: 16_000,
            end: 48_000,
        }
    }
}

impl Piece for ConditionRamp {
    fn about(&self) -> &'static str {
        "condition ramp: unconditional until START images, tags ramped in linearly until END"
    }

    fn validate(&self) -> Result<(), String> {
        check_range("start", self.start as f64, 0.0, 1e12)?;
        if self.end <= self.start {
            return Err(format!(
                "end = {} must come after start = {} (images)",
                self.end, self.start
            ));
        }
        Ok(())
    }

    fn condition_scale(&self, images_seen: u64) -> f64 {
        if images_seen <= self.start {
            0.0
        } else if images_seen >= self.end {
            1.0
        } else {
            (images_seen - self.start) as f64 / (self.end - self.start) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_from_zero_to_one_between_its_ends() {
        let r = ConditionRamp {
            start: 100,
            end: 300,
        };
        let s: Vec<f64> = [0, 100, 200, 250, 300, 10_000]
            .iter()
            .map(|&n| r.condition_scale(n))
            .collect();
        assert_eq!(s, vec![0.0, 0.0, 0.5, 0.75, 1.0, 1.0]);
    }
}
