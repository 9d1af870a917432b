"""Merges `trainer bench --json` and `bench/reference/bench_torch.py --json` into one Markdown table
with kyara/PyTorch ratios, after checking that both sides built networks of the same size.

    python3 bench/compare.py kyara.json torch.json
"""

import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: compare.py KYARA_JSON TORCH_JSON")
    k = json.load(open(sys.argv[1]))
    t = json.load(open(sys.argv[2]))
    key = lambda r: (r["arch"], r["loss"], r["spectral_norm"])
    tk = {key(r): r for r in t["steps"]}
    out = [
        f"kyara threads: {k['threads']}, PyTorch {t['torch']} threads: {t['threads']}",
        "",
        "| arch | loss | batch | G params | D params | kyara s/step | PyTorch s/step | kyara / PyTorch |",
        "|---|---|---|---|---|---|---|---|",
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
            f"{r['seconds_per_step'] / p['seconds_per_step']:.2f}x |"
        )
    fk = {(r["arch"], r["batch"]): r for r in t["forward"]}
    out += ["", "| arch | G forward batch | kyara ms | PyTorch ms | kyara / PyTorch |", "|---|---|---|---|---|"]
    for r in k["forward"]:
        p = fk.get((r["arch"], r["batch"]))
        if p:
            out.append(f"| {r['arch']} | {r['batch']} | {r['ms']:.2f} | {p['ms']:.2f} | {r['ms'] / p['ms']:.2f}x |")
    print("\n".join(out))
    if bad:
        sys.exit("parameter counts differ:\n  " + "\n  ".join(sorted(set(bad))))


if __name__ == "__main__":
    main()
