//! `trainer bench --ops`: the layers kyara's networks are made of, timed one at a time at the
//! shapes they run at in a batch-64 training step, forward alone and forward + backward (input and
//! parameter gradients), through these kernels and through Burn's own op.
//! `bench/reference/ops_torch.py` times the same layers in PyTorch, so the per-op ratios show where
//! the framework gap of whole training steps comes from. Also the timing helpers the trainer's
//! whole-step bench shares ([`median`], [`matmul_gflops`]). Feature `bench`.

use std::time::Instant;

use burn::nn::{
    BatchNormConfig, LinearConfig, PaddingConfig2d, PixelShuffleConfig,
    conv::{Conv2dConfig, ConvTranspose2dConfig},
};
use burn::prelude::*;
use serde::Serialize;

use crate::{act, conv, norm};

#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub op: String,
    /// Input shape.
    pub input: Vec<usize>,
    /// Median milliseconds of the forward pass (output read back).
    pub forward_ms: f64,
    /// Median milliseconds of forward + backward (input and parameter gradients read back).
    pub forward_backward_ms: f64,
    /// Forward + the input gradient alone (parameters frozen).
    pub input_grad_ms: f64,
    /// Forward + the parameter gradients alone (input not tracked); `None` for parameter-free ops.
    pub param_grad_ms: Option<f64>,
    /// Multiply-adds x 2 of one forward pass, for convolutions (backward is twice that).
    pub forward_flop: Option<f64>,
}

/// The per-op table plus the machine's measured matmul peaks.
#[derive(Debug, Clone, Serialize)]
pub struct OpsReport {
    /// The GEMM precision the layers ran at (`fp32` or `bf16`).
    pub precision: String,
    /// Best GFLOP/s of a square f32 matmul (Burn on this device), over the sizes tried.
    pub peak_gflops: f64,
    /// `(n, GFLOP/s)` for each `n x n` by `n x n` matmul timed.
    pub matmul: Vec<(usize, f64)>,
    /// `(n, GFLOP/s)` of the same products through the kernels' GEMM at `precision`.
    pub kernel_gemm: Vec<(usize, f64)>,
    /// Best of `kernel_gemm`: what the layers' GFLOP/s are set against.
    pub kernel_peak_gflops: f64,
    pub ops: Vec<OpRow>,
}

/// Median of `v` (mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// GFLOP/s of `n x n` by `n x n` f32 matmuls on `device`, median of `reps`.
pub fn matmul_gflops(sizes: &[usize], reps: usize, device: &Device) -> Vec<(usize, f64)> {
    let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
    sizes
        .iter()
        .map(|&n| {
            let a = Tensor::<2>::random([n, n], dist, device);
            let b = Tensor::<2>::random([n, n], dist, device);
            let ms = time(reps, || {
                let _ = a.clone().matmul(b.clone()).into_data();
            });
            (n, 2.0 * (n as f64).powi(3) / (ms * 1e6))
        })
        .collect()
}

/// GFLOP/s of `n x n` by `n x n` products through the kernels' own GEMM at `precision` (bf16:
/// the operands rounded and packed on every call, as the layers do), median of `reps`.
pub fn kernel_gemm_gflops(
    sizes: &[usize],
    reps: usize,
    precision: crate::precision::Precision,
) -> Vec<(usize, f64)> {
    sizes
        .iter()
        .map(|&n| {
            let fill = |k: usize| {
                (0..n * n)
                    .map(|i| ((i * k) % 17) as f32 / 8.0 - 1.0)
                    .collect()
            };
            let (a, b): (Vec<f32>, Vec<f32>) = (fill(3), fill(5));
            let mut c = vec![0.0; n * n];
            let ms = crate::precision::with(precision, || {
                time(reps, || conv::square_gemm(n, &a, &b, &mut c))
            });
            (n, 2.0 * (n as f64).powi(3) / (ms * 1e6))
        })
        .collect()
}

fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..reps)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// Builds a layer on a device; `params` says whether its parameters take gradients.
type Build<const D: usize, const E: usize> = Box<dyn Fn(&Device, bool) -> Layer<D, E>>;
type Layer<const D: usize, const E: usize> = Box<dyn Fn(Tensor<D>) -> Tensor<E>>;

fn train<M: Module>(m: M, params: bool) -> M {
    if params { m } else { m.no_grad() }
}

/// Times `layer` on a random input of `shape`, on `device` (forward) and its autodiff twin.
fn case<const D: usize, const E: usize>(
    op: &str,
    shape: [usize; D],
    reps: usize,
    device: &Device,
    has_params: bool,
    build: Build<D, E>,
) -> OpRow {
    let dist = burn::tensor::Distribution::Normal(0.0, 1.0);
    let layer = build(device, false);
    let x = Tensor::<D>::random(shape, dist, device);
    let forward_ms = time(reps, || {
        let _ = layer(x.clone()).into_data();
    });
    let ad = device.clone().autodiff();
    let backward = |params: bool, input: bool| {
        let layer = build(&ad, params);
        let x = Tensor::<D>::random(shape, dist, &ad);
        let x = if input { x.require_grad() } else { x };
        time(reps, || {
            let grads = layer(x.clone()).sum().backward();
            let _ = x.grad(&grads).map(|g| g.into_data());
        })
    };
    OpRow {
        op: op.into(),
        input: shape.to_vec(),
        forward_ms,
        forward_backward_ms: backward(true, true),
        input_grad_ms: backward(false, true),
        param_grad_ms: has_params.then(|| backward(true, false)),
        forward_flop: None,
    }
}

/// A convolution row twice: through kyara's kernels (what the networks run) and Burn's own op.
#[allow(clippy::too_many_arguments)]
fn conv_rows(
    rows: &mut Vec<OpRow>,
    op: &str,
    shape: [usize; 4],
    reps: usize,
    device: &Device,
    [ci, co]: [usize; 2],
    [k, s, p]: [usize; 3],
    transpose: bool,
) {
    for burn_op in [false, true] {
        let name = if burn_op {
            format!("{op} [Burn op]")
        } else {
            op.to_string()
        };
        let build: Build<4, 4> = if transpose {
            Box::new(move |d, params| {
                let m = train(
                    ConvTranspose2dConfig::new([ci, co], [k, k])
                        .with_stride([s, s])
                        .with_padding([p, p])
                        .init(d),
                    params,
                );
                if burn_op {
                    Box::new(move |x| m.forward(x))
                } else {
                    Box::new(move |x| conv::conv_transpose2d(&m, x))
                }
            })
        } else {
            Box::new(move |d, params| {
                let m = train(
                    Conv2dConfig::new([ci, co], [k, k])
                        .with_stride([s, s])
                        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                        .init(d),
                    params,
                );
                if burn_op {
                    Box::new(move |x| m.forward(x))
                } else {
                    Box::new(move |x| conv::conv2d(&m, x))
                }
            })
        };
        let [n, _, h, w] = shape;
        let taps = (ci * k * k) as f64;
        let out_plane = if transpose {
            // Every input pixel meets every tap once.
            (h * w * co) as f64
        } else {
            let o = |x: usize| ((x + 2 * p - k) / s + 1) as f64;
            o(h) * o(w) * co as f64
        };
        let flop = 2.0 * n as f64 * out_plane * taps;
        let mut row = case(&name, shape, reps, device, true, build);
        row.forward_flop = Some(flop);
        rows.push(row);
    }
}

/// The per-op table at batch `b` with the kernels' GEMMs at `precision`, and the matmul peaks.
/// `only`: time just the layers whose name contains this text (the peaks always run).
pub fn run(
    b: usize,
    reps: usize,
    only: Option<&str>,
    precision: crate::precision::Precision,
    device: &Device,
) -> OpsReport {
    let sizes = [512, 1024, 2048];
    let best = |v: &[(usize, f64)]| v.iter().map(|m| m.1).fold(0.0, f64::max);
    let matmul = matmul_gflops(&sizes, reps, device);
    let kernel_gemm = kernel_gemm_gflops(&sizes, reps, precision);
    OpsReport {
        precision: precision.name().into(),
        peak_gflops: best(&matmul),
        kernel_peak_gflops: best(&kernel_gemm),
        matmul,
        kernel_gemm,
        ops: crate::precision::with(precision, || op_rows(b, reps, only, device)),
    }
}

fn op_rows(b: usize, reps: usize, only: Option<&str>, device: &Device) -> Vec<OpRow> {
    let keep = |name: &str| only.is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();
    // (name, input, [c_in, c_out], [kernel, stride, padding], transposed)
    type ConvCase = (&'static str, [usize; 4], [usize; 2], [usize; 3], bool);
    let convs: [ConvCase; 8] = [
        (
            "conv2d 3x3 64->64 (G trunk)",
            [b, 64, 16, 16],
            [64, 64],
            [3, 1, 1],
            false,
        ),
        (
            "conv2d 3x3 64->128 (G up stage)",
            [b, 64, 16, 16],
            [64, 128],
            [3, 1, 1],
            false,
        ),
        (
            "conv2d 4x4 s2 3->32 (D stem)",
            [b, 3, 64, 64],
            [3, 32],
            [4, 2, 1],
            false,
        ),
        (
            "conv2d 3x3 32->64 (D block)",
            [b, 32, 32, 32],
            [32, 64],
            [3, 1, 1],
            false,
        ),
        (
            "conv2d 4x4 s2 128->256 (DCGAN D, 4x4 out)",
            [b, 128, 8, 8],
            [128, 256],
            [4, 2, 1],
            false,
        ),
        (
            "conv_transpose2d 4x4 150->256 from 1x1 (DCGAN G project)",
            [b, 150, 1, 1],
            [150, 256],
            [4, 1, 0],
            true,
        ),
        (
            "conv_transpose2d 4x4 s2 256->128 (DCGAN G)",
            [b, 256, 8, 8],
            [256, 128],
            [4, 2, 1],
            true,
        ),
        (
            "conv_transpose2d 4x4 s2 64->32 (DCGAN G)",
            [b, 64, 32, 32],
            [64, 32],
            [4, 2, 1],
            true,
        ),
    ];
    for (op, shape, ch, ksp, transpose) in convs {
        if !keep(op) {
            continue;
        }
        conv_rows(&mut rows, op, shape, reps, device, ch, ksp, transpose);
    }
    // Batch norm and leaky ReLU: kyara's kernels (what the networks run) and Burn's own op.
    for burn_op in [false, true] {
        let tag = if burn_op { " [Burn op]" } else { "" };
        let name = format!("batch_norm 64 (train){tag}");
        if keep(&name) {
            rows.push(case(
                &name,
                [b, 64, 16, 16],
                reps,
                device,
                true,
                Box::new(move |d, params| {
                    let m = train(BatchNormConfig::new(64).init(d), params);
                    if burn_op {
                        Box::new(move |x| m.forward(x))
                    } else {
                        Box::new(move |x| norm::batch_norm(&m, x))
                    }
                }),
            ));
        }
        let name = format!("leaky_relu 0.2, 64 ch{tag}");
        if keep(&name) {
            rows.push(case(
                &name,
                [b, 64, 32, 32],
                reps,
                device,
                false,
                Box::new(move |_, _| {
                    if burn_op {
                        Box::new(|x| burn::tensor::activation::leaky_relu(x, 0.2))
                    } else {
                        Box::new(|x| act::leaky_relu(x, 0.2))
                    }
                }),
            ));
        }
        let name = format!("pixel_shuffle x2, 128 ch{tag}");
        if keep(&name) {
            rows.push(case(
                &name,
                [b, 128, 16, 16],
                reps,
                device,
                false,
                Box::new(move |_, _| {
                    let m = PixelShuffleConfig::new(2).init();
                    if burn_op {
                        Box::new(move |x| m.forward(x))
                    } else {
                        Box::new(move |x| act::pixel_shuffle(&m, x))
                    }
                }),
            ));
        }
    }
    if keep("linear 150->16384 (G dense)") {
        rows.push(case(
            "linear 150->16384 (G dense)",
            [b, 150],
            reps,
            device,
            true,
            Box::new(|d, params| {
                let m = train(LinearConfig::new(150, 16384).init(d), params);
                Box::new(move |x: Tensor<2>| m.forward(x))
            }),
        ));
    }
    rows
}

pub fn markdown(r: &OpsReport) -> String {
    let mut s = format!(
        "| matmul n x n | Burn f32 GFLOP/s | kernels' GEMM at {} GFLOP/s |\n|---|---|---|\n",
        r.precision
    );
    for ((n, g), (_, k)) in r.matmul.iter().zip(&r.kernel_gemm) {
        s.push_str(&format!("| {n} | {g:.1} | {k:.1} |\n"));
    }
    s.push_str(&format!(
        "\npeaks (best of the above): Burn f32 {:.1} GFLOP/s, kernels' GEMM at {} {:.1} GFLOP/s \
         (the % column)\n\n",
        r.peak_gflops, r.precision, r.kernel_peak_gflops
    ));
    s.push_str(
        "| op | input | forward ms | forward + backward ms | input grad only ms | param grads only ms | fwd GFLOP/s | fwd+bwd GFLOP/s | fwd+bwd % of peak |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let dash = || "-".to_string();
    let peak = r.kernel_peak_gflops.max(1e-9);
    for r in &r.ops {
        let param = r.param_grad_ms.map_or_else(dash, |v| format!("{v:.2}"));
        let gf = |flop: f64, ms: f64| format!("{:.1}", flop / (ms * 1e6));
        let fwd = r.forward_flop.map_or_else(dash, |f| gf(f, r.forward_ms));
        let fb = r
            .forward_flop
            .map_or_else(dash, |f| gf(3.0 * f, r.forward_backward_ms));
        let pct = r.forward_flop.map_or_else(dash, |f| {
            let g = 3.0 * f / (r.forward_backward_ms * 1e6);
            format!("{:.0}", 100.0 * g / peak)
        });
        s.push_str(&format!(
            "| {} | {:?} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |\n",
            r.op,
            r.input,
            r.forward_ms,
            r.forward_backward_ms,
            r.input_grad_ms,
            param,
            fwd,
            fb,
            pct
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn every_op_runs_and_backward_costs_more_than_nothing() {
        let report = run(
            2,
            1,
            None,
            crate::precision::Precision::Fp32,
            &Device::flex(),
        );
        assert!(report.peak_gflops > 0.0 && report.matmul.len() == 3);
        assert!(report.kernel_peak_gflops > 0.0 && report.kernel_gemm.len() == 3);
        assert_eq!(report.ops.len(), 23);
        for r in report.ops {
            assert!(r.forward_ms > 0.0 && r.forward_backward_ms > 0.0, "{r:?}");
            assert!(
                r.input_grad_ms > 0.0 && r.param_grad_ms.is_none_or(|v| v > 0.0),
                "{r:?}"
            );
        }
    }

    #[test]
    fn only_keeps_the_layers_it_names() {
        let report = run(
            2,
            1,
            Some("DCGAN D"),
            crate::precision::Precision::Fp32,
            &Device::flex(),
        );
        let names: Vec<&str> = report.ops.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv2d 4x4 s2 128->256 (DCGAN D, 4x4 out)",
                "conv2d 4x4 s2 128->256 (DCGAN D, 4x4 out) [Burn op]"
            ]
        );
    }
}
