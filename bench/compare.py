"""Merges `trainer bench --json` and `bench/reference/bench_torch.py --json` into one Markdown table
with kyara/PyTorch ratios, after checking that both sides built networks of the same size.
With `--ops`, merges `trainer bench --ops --json` and `bench/reference/ops_torch.py --json` instead.

    python3 bench/compare.py kyara.json torch.json
    python3 bench/compare.py --ops kyara_ops.json torch_ops.json
"""

import json
import sys


def ops(k, t):
    """Per-op table: kyara vs PyTorch for each column, and GFLOP/s against each side's matmul peak."""
    tk = {r["op"]: r for r in t["ops"]}
    out = [
        f"matmul peak (best of n = {', '.join(str(n) for n, _ in k['matmul'])}): "
        f"kyara {k['peak_gflops']:.1f} GFLOP/s, PyTorch {t['peak_gflops']:.1f} GFLOP/s",
        "",
        "| op | input | fwd ms kyara / PyTorch | fwd+bwd ms kyara / PyTorch | input grad ms kyara / PyTorch "
        "| param grads ms kyara / PyTorch | fwd+bwd GFLOP/s kyara / PyTorch (% of own peak) |",
        "|---|---|---|---|---|---|---|",
    ]
    col = lambda a, b: "-" if a is None or b is None else f"{a:.2f} / {b:.2f} ({a / b:.2f}x)"
    for r in k["ops"]:
        # `[Burn op]` rows time Burn's own op for the same layer; PyTorch has one row per layer.
        p = tk.get(r["op"].replace(" [Burn op]", ""))
        if p is None:
            continue
        gf = "-"
        if r.get("forward_flop"):
            f = 3 * r["forward_flop"] / 1e6
            a, b = f / r["forward_backward_ms"], f / p["forward_backward_ms"]
            gf = f"{a:.0f} ({100 * a / k['peak_gflops']:.0f} %) / {b:.0f} ({100 * b / t['peak_gflops']:.0f} %)"
        out.append(
            f"| {r['op']} | {r['input']} | {col(r['forward_ms'], p['forward_ms'])} | "
            f"{col(r['forward_backward_ms'], p['forward_backward_ms'])} | "
            f"{col(r['input_grad_ms'], p['input_grad_ms'])} | {col(r['param_grad_ms'], p['param_grad_ms'])} | {gf} |"
        )
    print("\n".join(out))


def rates(flop, kyara_s, torch_s, k, t):
    """GFLOP, both sides' GFLOP/s (with % of their own matmul peak), and the time that work takes at
    kyara's peak over PyTorch's time: three table cells, `-` where a side lacks the figures."""
    if not flop or not k.get("peak_gflops") or not t.get("peak_gflops"):
        return "- | - | -"
    g = flop / 1e9
    a, b = g / kyara_s, g / torch_s
    return (
        f"{g:.3g} | {a:.0f} ({100 * a / k['peak_gflops']:.0f} %) / {b:.0f} ({100 * b / t['peak_gflops']:.0f} %) | "
        f"{g / k['peak_gflops'] / torch_s:.2f}x"
    )


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--ops":
        return ops(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])))
    if len(sys.argv) != 3:
        sys.exit("usage: compare.py [--ops] KYARA_JSON TORCH_JSON")
    k = json.load(open(sys.argv[1]))
    t = json.load(open(sys.argv[2]))
    key = lambda r: (r["arch"], r["loss"], r["spectral_norm"])
    tk = {key(r): r for r in t["steps"]}
    out = [
        f"kyara threads: {k['threads']}, PyTorch {t['torch']} threads: {t['threads']}",
        "",
        "| arch | loss | batch | G params | D params | kyara s/step | PyTorch s/step | kyara / PyTorch "
        "| GFLOP/step | GFLOP/s kyara / PyTorch (% of own peak) | at kyara's peak / PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    bad = []
    for r in k["steps"]:
        p = tk.get(key(r))
        if p is None:
            continue
        # Burn counts batch-norm running statistics with the parameters; PyTorch keeps them as buffers.
        for side in ("g", "d"):
            torch_total = p[f"{side}_params"] + p[f"{side}_buffers"]
            if r[f"{side}_params"] != torch_total:
                bad.append(f"{r['arch']} {side.upper()}: kyara {r[f'{side}_params']} vs PyTorch {torch_total}")
        sn = " + SN" if r["spectral_norm"] else ""
        out.append(
            f"| {r['arch']} | {r['loss']}{sn} | {r['batch']} | {r['g_params']} | {r['d_params']} | "
            f"{r['seconds_per_step']:.3f} | {p['seconds_per_step']:.3f} | "
            f"{r['seconds_per_step'] / p['seconds_per_step']:.2f}x | "
            f"{rates(p.get('flop_per_step'), r['seconds_per_step'], p['seconds_per_step'], k, t)} |"
        )
    fk = {(r["arch"], r["batch"]): r for r in t["forward"]}
    out += [
        "",
        "| arch | G forward batch | kyara ms | PyTorch ms | kyara / PyTorch | GFLOP "
        "| GFLOP/s kyara / PyTorch (% of own peak) | at kyara's peak / PyTorch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in k["forward"]:
        p = fk.get((r["arch"], r["batch"]))
        if p:
            out.append(
                f"| {r['arch']} | {r['batch']} | {r['ms']:.2f} | {p['ms']:.2f} | {r['ms'] / p['ms']:.2f}x | "
                f"{rates(p.get('flop'), r['ms'] / 1e3, p['ms'] / 1e3, k, t)} |"
            )
    if k.get("peak_gflops") and t.get("peak_gflops"):
        out += [
            "",
            f"matmul peak: kyara {k['peak_gflops']:.1f} GFLOP/s, PyTorch {t['peak_gflops']:.1f} GFLOP/s. "
            "FLOPs are PyTorch's count of one step or forward (`torch.utils.flop_counter`'s formulas: "
            "convolutions and matmuls, backward passes included); "
            "the networks and steps are the same, except that kyara's WGAN-GP penalty runs three critic passes "
            "where PyTorch runs a double backward. Over 100 % of peak means fewer multiplications than a direct "
            "convolution (Winograd). The last column is the ratio kyara would reach doing that work at its "
            "matmul peak.",
        ]
    print("\n".join(out))
    if bad:
        sys.exit("parameter counts differ:\n  " + "\n  ".join(sorted(set(bad))))


if __name__ == "__main__":
    main()
