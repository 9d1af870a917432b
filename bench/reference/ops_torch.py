"""The layers of `trainer bench --ops` in PyTorch, same shapes, same timing (median of 10 after one
warm-up; forward, then forward + backward with input and parameter gradients, with the input gradient
alone, and with the parameter gradients alone).

    python3 bench/reference/ops_torch.py --batch 64 --json torch_ops.json
"""

import argparse
import contextlib
import json
import os
import statistics
import time

import torch
import torch.nn as nn


def timed(reps, f):
    f()
    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        ms.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ms)


def matmul_gflops(reps, sizes=(512, 1024, 2048), dtype=torch.float32):
    """`(n, GFLOP/s)` of `n x n` by `n x n` matmuls (f32, or `dtype`), median of `reps`, as
    `trainer bench` measures."""
    out = []
    for n in sizes:
        x, y = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        out.append((n, 2 * n**3 / (timed(reps, lambda: x @ y) * 1e6)))
    return out


def case(op, shape, layer, reps, precision="fp32"):
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else contextlib.nullcontext
    x = torch.randn(*shape)
    with torch.no_grad(), amp():
        fwd = timed(reps, lambda: layer(x))
    xg = torch.randn(*shape, requires_grad=True)

    params = list(layer.parameters())

    def backward(with_params, with_input):
        for p in params:
            p.requires_grad_(with_params)
        x = xg if with_input else x_plain

        def fb():
            layer.zero_grad(set_to_none=True)
            xg.grad = None
            with amp():
                y = layer(x).float().sum()
            y.backward()

        return timed(reps, fb)

    x_plain = torch.randn(*shape)
    row = {
        "op": op,
        "input": list(shape),
        "forward_ms": fwd,
        "forward_backward_ms": backward(True, True),
        "input_grad_ms": backward(False, True),
        "param_grad_ms": backward(True, False) if params else None,
    }
    for p in params:
        p.requires_grad_(True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: the layers under torch.autocast('cpu', dtype=torch.bfloat16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    b, r = a.batch, 10
    matmul = matmul_gflops(r)
    print("matmul GFLOP/s:", ", ".join(f"{n}: {g:.1f}" for n, g in matmul), flush=True)
    matmul_bf16 = matmul_gflops(r, dtype=torch.bfloat16) if a.precision == "bf16" else []
    if matmul_bf16:
        print("bf16 matmul GFLOP/s:", ", ".join(f"{n}: {g:.1f}" for n, g in matmul_bf16), flush=True)
    nn_case = case

    def case(op, shape, layer, reps):  # noqa: F811 (the same, at the chosen precision)
        return nn_case(op, shape, layer, reps, a.precision)

    rows = [
        case("conv2d 3x3 64->64 (G trunk)", (b, 64, 16, 16), nn.Conv2d(64, 64, 3, padding=1), r),
        case("conv2d 3x3 64->128 (G up stage)", (b, 64, 16, 16), nn.Conv2d(64, 128, 3, padding=1), r),
        case("conv2d 4x4 s2 3->32 (D stem)", (b, 3, 64, 64), nn.Conv2d(3, 32, 4, 2, 1), r),
        case("conv2d 3x3 32->64 (D block)", (b, 32, 32, 32), nn.Conv2d(32, 64, 3, padding=1), r),
        case("conv2d 4x4 s2 128->256 (DCGAN D, 4x4 out)", (b, 128, 8, 8), nn.Conv2d(128, 256, 4, 2, 1), r),
        case("conv_transpose2d 4x4 150->256 from 1x1 (DCGAN G project)", (b, 150, 1, 1), nn.ConvTranspose2d(150, 256, 4, 1, 0), r),
        case("conv_transpose2d 4x4 s2 256->128 (DCGAN G)", (b, 256, 8, 8), nn.ConvTranspose2d(256, 128, 4, 2, 1), r),
        case("conv_transpose2d 4x4 s2 64->32 (DCGAN G)", (b, 64, 32, 32), nn.ConvTranspose2d(64, 32, 4, 2, 1), r),
        case("batch_norm 64 (train)", (b, 64, 16, 16), nn.BatchNorm2d(64), r),
        case("leaky_relu 0.2, 64 ch", (b, 64, 32, 32), nn.LeakyReLU(0.2), r),
        case("pixel_shuffle x2, 128 ch", (b, 128, 16, 16), nn.PixelShuffle(2), r),
        case("linear 150->16384 (G dense)", (b, 150), nn.Linear(150, 16384), r),
    ]
    for row in rows:
        print(
            f"{row['op']}: {row['forward_ms']:.2f} / {row['forward_backward_ms']:.2f} / "
            f"{row['input_grad_ms']:.2f} / {row['param_grad_ms'] or 0:.2f} ms",
            flush=True,
        )
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            report = {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "precision": a.precision,
                "matmul": matmul,
                "peak_gflops": max(g for _, g in matmul),
                "matmul_bf16": matmul_bf16,
                "peak_gflops_bf16": max((g for _, g in matmul_bf16), default=0.0),
                "ops": rows,
            }
            json.dump(report, f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
