//! `trainer interpolate`: a strip of faces between two (seed, tags) endpoints. The latent moves
//! along the great circle between the endpoints' latents (spherical interpolation keeps its
//! norm typical of a Gaussian), the tag condition moves linearly. The end frames are exactly the
//! faces `trainer generate` draws for the endpoints.

use anyhow::{Context, Result, bail};
use shared_model::card::LoadedModel;
use shared_model::sample::FaceRequest;

/// One end of an interpolation: `SEED` or `SEED:TAGS`, e.g. `42:blonde hair, blue eyes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub seed: u64,
    pub tags: String,
}

pub fn parse_endpoint(s: &str) -> Result<Endpoint> {
    let (seed, tags) = s.split_once(':').unwrap_or((s, ""));
    let seed = seed.trim().parse::<u64>().with_context(|| {
        format!(
            "'{s}' is not an endpoint: expected SEED or SEED:TAGS, e.g. '42:blonde hair, blue eyes'"
        )
    })?;
    Ok(Endpoint {
        seed,
        tags: tags.to_string(),
    })
}

/// Spherical interpolation between `a` and `b` at `t` in `[0, 1]`; linear when they are
/// (anti)parallel or zero.
pub fn slerp(a: &[f32], b: &[f32], t: f64) -> Vec<f32> {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let cos = if na > 0.0 && nb > 0.0 {
        (dot / (na * nb)).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let theta = cos.acos();
    let (wa, wb) = if theta.sin().abs() < 1e-6 {
        (1.0 - t, t)
    } else {
        (
            ((1.0 - t) * theta).sin() / theta.sin(),
            (t * theta).sin() / theta.sin(),
        )
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect()
}

/// The `steps` requests of the strip (the first and last are the endpoints' own requests).
pub fn strip_requests(
    model: &LoadedModel,
    from: &Endpoint,
    to: &Endpoint,
    steps: usize,
) -> Result<Vec<FaceRequest>> {
    if steps < 2 {
        bail!("--steps must be at least 2 (the two endpoints)");
    }
    let vocab = &model.card.vocab;
    let latent = model.card.generator.latent_dim();
    let a = FaceRequest::new(vocab, latent, from.seed, &from.tags).context("--from")?;
    let b = FaceRequest::new(vocab, latent, to.seed, &to.tags).context("--to")?;
    let mut out = Vec::with_capacity(steps);
    for k in 0..steps {
        if k == 0 {
            out.push(a.clone());
        } else if k + 1 == steps {
            out.push(b.clone());
        } else {
            let t = k as f64 / (steps - 1) as f64;
            let c =
                a.c.iter()
                    .zip(&b.c)
                    .map(|(x, y)| ((1.0 - t) * f64::from(*x) + t * f64::from(*y)) as f32)
                    .collect();
            out.push(FaceRequest {
                seed: a.seed,
                tags: Vec::new(),
                z: slerp(&a.z, &b.z, t),
                c,
            });
        }
    }
    Ok(out)
}

/// The strip's faces (RGBA, one per step), each drawn on its own like `trainer generate` does.
pub fn interpolate(
    model: &LoadedModel,
    from: &Endpoint,
    to: &Endpoint,
    steps: usize,
) -> Result<Vec<Vec<u8>>> {
    Ok(strip_requests(model, from, to, steps)?
        .iter()
        .map(|r| model.generate_request(r))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("42:blonde hair, blue eyes").unwrap(),
            Endpoint {
                seed: 42,
                tags: "blonde hair, blue eyes".into()
            }
        );
        assert_eq!(parse_endpoint("7").unwrap().tags, "");
        for bad in ["", "x:red hair", "-1", ":red hair"] {
            let e = parse_endpoint(bad).unwrap_err().to_string();
            assert!(e.contains("not an endpoint"), "{e}");
        }
    }

    #[test]
    fn slerp_hits_the_ends_and_keeps_the_norm() {
        let a = [1.0f32, 0.0, 0.0];
        let b = [0.0f32, 2.0, 0.0];
        assert_eq!(slerp(&a, &b, 0.0), a);
        let mid = slerp(&[1.0, 0.0], &[0.0, 1.0], 0.5);
        let n = (mid[0].powi(2) + mid[1].powi(2)).sqrt();
        assert!((n - 1.0).abs() < 1e-6, "{n}");
        assert_eq!(slerp(&a, &a, 0.3), a);
    }
}
