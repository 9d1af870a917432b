"""Merges `trainer bench --json` and `bench/reference/bench_torch.py --json` into one Markdown table
with kyara/PyTorch ratios, after checking that both sides built networks of the same size.
With `--ops`, merges `trainer bench --ops --json` and `bench/reference/ops_torch.py --json` instead.

    python3 bench/compare.py kyara.json torch.json
    python3 bench/compare.py kyara.1.json torch.1.json kyara.2.json torch.2.json ...
    python3 bench/compare.py --ops kyara_ops.json torch_ops.json

With several pairs (rounds, each kyara then PyTorch), the first pair's tables come first, then the
range over the rounds of each side's time and of the ratio taken within each round.
"""

import json
import statistics
import sys


def key(r, precision=None):
    """A step row's case: architecture, loss, spectral norm, GEMM precision (rows written before
    precisions existed are fp32); `precision` overrides the row's."""
    return r["arch"], r["loss"], r["spectral_norm"], precision or r.get("precision", "fp32")


def matches(k_rows, tk):
    """`(kyara row, PyTorch row, label)` for every like-for-like case, plus kyara's bf16 rows against
    PyTorch's fp32 ones (the speed-up over the framework's default)."""
    for r in k_rows:
        p = tk.get(key(r))
        if p is not None:
            yield r, p, key(r)[3]
        if key(r)[3] == "bf16" and key(r, "fp32") in tk:
            yield r, tk[key(r, "fp32")], "kyara bf16 / PyTorch fp32"


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


def span(v, fmt):
    """`min–max` of `v` (one value if they are equal)."""
    lo, hi = fmt.format(min(v)), fmt.format(max(v))
    return lo if lo == hi else f"{lo}–{hi}"


def over_rounds(pairs):
    """Per case: each side's range over the rounds, and the range and median of the per-round ratios."""
    cases = {}
    for k, t in pairs:
        tk = {key(r): r for r in t["steps"]}
        for r, p, label in matches(k["steps"], tk):
            cases.setdefault(("step",) + key(r)[:3] + (label,), []).append((r["seconds_per_step"], p["seconds_per_step"]))
        fk = {(r["arch"], r["batch"]): r for r in t["forward"]}
        for r in k["forward"]:
            p = fk.get((r["arch"], r["batch"]))
            if p:
                cases.setdefault(("forward", r["arch"], r["batch"]), []).append((r["ms"], p["ms"]))
    out = [
        "",
        f"Over {len(pairs)} rounds (each: kyara, then PyTorch):",
        "",
        "| case | kyara | PyTorch | kyara / PyTorch per round | median ratio |",
        "|---|---|---|---|---|",
    ]
    for case, v in cases.items():
        if case[0] == "step":
            name, unit, fmt = f"{case[1]} {case[2]}{' + SN' if case[3] else ''} step ({case[4]})", " s", "{:.3f}"
        else:
            name, unit, fmt = f"{case[1]} forward batch {case[2]}", " ms", "{:.2f}"
        ratios = sorted(a / b for a, b in v)
        med = statistics.median(ratios)
        out.append(
            f"| {name} | {span([a for a, _ in v], fmt)}{unit} | {span([b for _, b in v], fmt)}{unit} | "
            f"{span(ratios, '{:.2f}')}x | {med:.2f}x |"
        )
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--ops":
        return ops(json.load(open(sys.argv[2])), json.load(open(sys.argv[3])))
    files = sys.argv[1:]
    if not files or len(files) % 2 or "--ops" in files:
        sys.exit("usage: compare.py [--ops] KYARA_JSON TORCH_JSON [KYARA_JSON TORCH_JSON ...]")
    pairs = [(json.load(open(a)), json.load(open(b))) for a, b in zip(files[::2], files[1::2])]
    k, t = pairs[0]
    tk = {key(r): r for r in t["steps"]}
    out = [
        f"kyara threads: {k['threads']}, PyTorch {t['torch']} threads: {t['threads']}",
        "",
        "| arch | loss | precision | batch | G params | D params | kyara s/step | PyTorch s/step | kyara / PyTorch "
        "| GFLOP/step | GFLOP/s kyara / PyTorch (% of own fp32 peak) | at kyara's fp32 peak / PyTorch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    bad = []
    for r, p, label in matches(k["steps"], tk):
        # Burn counts batch-norm running statistics with the parameters; PyTorch keeps them as buffers.
        for side in ("g", "d"):
            torch_total = p[f"{side}_params"] + p[f"{side}_buffers"]
            if r[f"{side}_params"] != torch_total:
                bad.append(f"{r['arch']} {side.upper()}: kyara {r[f'{side}_params']} vs PyTorch {torch_total}")
        sn = " + SN" if r["spectral_norm"] else ""
        out.append(
            f"| {r['arch']} | {r['loss']}{sn} | {label} | {r['batch']} | {r['g_params']} | {r['d_params']} | "
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
    if len(pairs) > 1:
        out += over_rounds(pairs)
    print("\n".join(out))
    if bad:
        sys.exit("parameter counts differ:\n  " + "\n  ".join(sorted(set(bad))))


if __name__ == "__main__":
    main()
