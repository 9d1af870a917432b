//! `trainer interpolate`: a strip of faces between two endpoints, by the transition the page's
//! Transition draws ([`shared_model::card::ModelCard::transition`]): the latent moves along the
//! great circle between the endpoints' latents, the tag condition moves linearly. The end frames
//! are exactly the faces `trainer generate` draws for the endpoints.

use anyhow::{Context, Result};
use shared_model::FaceSpec;
use shared_model::card::LoadedModel;

/// One end of an interpolation: `SEED`, `SEED:TAGS` (e.g. `42:blonde hair, blue eyes`) or a
/// page permalink starting with `#` (e.g. `#seed=42&tags=blonde_hair&s=blonde_hair:1.2`).
pub fn parse_endpoint(s: &str) -> Result<FaceSpec> {
    if s.trim_start().starts_with('#') {
        let spec = FaceSpec::from_link_strict(s, None)?;
        anyhow::ensure!(spec.seed.is_some(), "the link '{s}' has no seed");
        return Ok(spec);
    }
    let (seed, tags) = s.split_once(':').unwrap_or((s, ""));
    let seed = seed.trim().parse::<u64>().with_context(|| {
        format!(
            "'{s}' is not an endpoint: expected SEED, SEED:TAGS or a permalink '#seed=...', e.g. \
             '42:blonde hair, blue eyes'"
        )
    })?;
    Ok(FaceSpec::new(seed, tags))
}

/// The strip's faces (RGBA, one per step), each drawn on its own like `trainer generate` does.
pub fn interpolate(
    model: &LoadedModel,
    from: &FaceSpec,
    to: &FaceSpec,
    steps: usize,
) -> Result<Vec<Vec<u8>>> {
    model.card.face_inputs(from).context("--from")?;
    model.card.face_inputs(to).context("--to")?;
    Ok(model.draw_transition(from, to, steps)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("42:blonde hair, blue eyes").unwrap(),
            FaceSpec::new(42, "blonde hair, blue eyes")
        );
        assert!(parse_endpoint("7").unwrap().tags.is_empty());
        let link = parse_endpoint("#seed=3&tags=red_hair&s=red_hair:0.5").unwrap();
        assert_eq!(link.seed, Some(3));
        assert_eq!(link.strengths["red hair"], 0.5);
        for bad in ["", "x:red hair", "-1", ":red hair"] {
            let e = parse_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains("not an endpoint"), "{e}");
        }
        for bad in ["#tags=red_hair", "#seed=1&v=x"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }
}
