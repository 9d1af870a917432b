"""PyTorch twins of kyara's networks, timed the way `trainer bench` times kyara.

Same layer shapes and parameter counts as shared-model's defaults (the script prints the counts;
bench/compare.py checks them against kyara's), same step: one critic update on a real batch, its
wrong-tag pairs and a detached fake batch, then one generator update through a frozen critic, then
the EMA of the generator. WGAN-GP uses PyTorch's exact double backward. `--precision bf16` runs
the forward passes and losses under `torch.autocast("cpu", dtype=torch.bfloat16)` (PyTorch's mixed
precision: bf16 matmuls and convolutions, fp32 weights and optimiser), as `trainer bench
--precision bf16` runs kyara's GEMMs in bf16.

    python3 bench/reference/bench_torch.py --batch 64 --steps 3 --json out.json
    python3 bench/reference/bench_torch.py --precision fp32,bf16 --json out.json
"""

import argparse
import contextlib
import copy
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from ops_torch import matmul_gflops

T = 22  # 12 hair + 10 eye colours, as in anime-faces-64 and kyara's synthetic bench data
LATENT = 128
RES = 64


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))


class UpStage(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, 4 * c_out, 3, padding=1)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return F.relu(self.bn(F.pixel_shuffle(self.conv(x), 2)))


class ResnetG(nn.Module):
    """shared_model::cgan::Generator with GeneratorConfig defaults."""

    def __init__(self, c=64, s=16, blocks=4, min_c=16):
        super().__init__()
        self.c, self.s = c, s
        self.dense = nn.Linear(LATENT + T, c * s * s)
        self.bn0 = nn.BatchNorm2d(c)
        self.blocks = nn.ModuleList(ResBlock(c) for _ in range(blocks))
        self.bn_trunk = nn.BatchNorm2d(c)
        stages = (RES // s).bit_length() - 1
        chans = [max(c >> (i + 1), min_c) for i in range(stages)]
        ins = [c] + chans[:-1]
        self.ups = nn.ModuleList(UpStage(a, b) for a, b in zip(ins, chans))
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)

    def forward(self, z, c):
        x = self.dense(torch.cat([z, c], 1)).view(-1, self.c, self.s, self.s)
        x = F.relu(self.bn0(x))
        h = x
        for b in self.blocks:
            h = b(h)
        h = F.relu(self.bn_trunk(h) + x)
        for u in self.ups:
            h = u(h)
        return torch.tanh(self.to_rgb(h))


class DownBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x):
        h = self.conv1(F.leaky_relu(x, 0.2))
        h = self.conv2(F.leaky_relu(F.avg_pool2d(h, 2), 0.2))
        return h + self.skip(F.avg_pool2d(x, 2))


class ResnetD(nn.Module):
    """shared_model::cgan::Discriminator with DiscriminatorConfig defaults; `mbstd` > 1 adds the
    minibatch standard deviation layer before the last features (the stylegan2 family's critic)."""

    def __init__(self, c=32, max_c=256, final=4, mbstd=0):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 4, stride=2, padding=1)
        stages = (RES // 2 // final).bit_length() - 1
        ch = [min(c << i, max_c) for i in range(stages + 1)]
        self.blocks = nn.ModuleList(DownBlock(ch[i], ch[i + 1]) for i in range(stages))
        self.mbstd = mbstd
        self.mbstd_conv = nn.Conv2d(ch[-1] + 1, ch[-1], 3, padding=1) if mbstd > 1 else None
        f = sum(ch)
        self.psi = nn.Linear(f, 1)
        self.embed = nn.Linear(T, f, bias=False)

    def minibatch_std(self, x):
        b, c, h, w = x.shape
        g = max(k for k in range(1, min(self.mbstd, b) + 1) if b % k == 0)
        y = x.view(g, b // g, c, h, w)
        std = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # [b/g, c, h, w]
        stat = std.mean((1, 2, 3)).view(1, b // g, 1, 1, 1).expand(g, b // g, 1, h, w).reshape(b, 1, h, w)
        return F.leaky_relu(self.mbstd_conv(torch.cat([x, stat], 1)), 0.2)

    def features(self, x):
        h = self.stem(x)
        pooled = []
        for b in self.blocks:
            pooled.append(F.leaky_relu(h, 0.2).mean((2, 3)))
            h = b(h)
        if self.mbstd_conv is not None:
            h = self.minibatch_std(h)
        pooled.append(F.leaky_relu(h, 0.2).mean((2, 3)))
        return torch.cat(pooled, 1)

    def score(self, h, c):
        return (self.psi(h) + (self.embed(c) * h).sum(1, keepdim=True)).flatten()

    def forward(self, x, c):
        return self.score(self.features(x), c)


class DcganG(nn.Module):
    """shared_model::dcgan::DcganGenerator with DcganGeneratorConfig defaults (conditional)."""

    def __init__(self, c=32):
        super().__init__()
        n = RES.bit_length() - 3
        ch = [c << (n - 1 - i) for i in range(n)]
        self.project = nn.ConvTranspose2d(LATENT + T, ch[0], 4)
        self.bn0 = nn.BatchNorm2d(ch[0])
        self.ups = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(ch[i - 1], ch[i], 4, 2, 1), nn.BatchNorm2d(ch[i]), nn.ReLU())
            for i in range(1, n)
        )
        self.to_rgb = nn.ConvTranspose2d(ch[-1], 3, 4, 2, 1)

    def forward(self, z, c):
        x = torch.cat([z, c], 1)[:, :, None, None]
        h = F.relu(self.bn0(self.project(x)))
        for u in self.ups:
            h = u(h)
        return torch.tanh(self.to_rgb(h))


class DcganD(nn.Module):
    """shared_model::dcgan::DcganDiscriminator with defaults (conditional, projection)."""

    def __init__(self, c=32):
        super().__init__()
        n = RES.bit_length() - 3
        self.convs = nn.ModuleList(
            nn.Conv2d(3 if i == 0 else c << (i - 1), c << i, 4, 2, 1) for i in range(n)
        )
        f = (c << (n - 1)) * 16
        self.psi = nn.Linear(f, 1)
        self.embed = nn.Linear(T, f, bias=False)

    def features(self, x):
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return h.flatten(1)

    def score(self, h, c):
        return (self.psi(h) + (self.embed(c) * h).sum(1, keepdim=True)).flatten()

    def forward(self, x, c):
        return self.score(self.features(x), c)


def norm2(x):
    return x * x.square().mean(1, keepdim=True).add(1e-8).rsqrt()


class EqLinear(nn.Module):
    def __init__(self, i, o, lr_mul=1.0, bias_init=0.0, act=False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) / lr_mul)
        self.bias = nn.Parameter(torch.full([o], bias_init / lr_mul))
        self.gain, self.lr_mul, self.act = lr_mul / i**0.5, lr_mul, act

    def forward(self, x):
        y = F.linear(x, self.weight * self.gain, self.bias * self.lr_mul)
        return F.leaky_relu(y, 0.2) * 2**0.5 if self.act else y


class ModConv(nn.Module):
    """shared_model::arch::stylegan2::ModConv: stylegan2-ada's non-fused modulated conv."""

    def __init__(self, c_in, c_out, k, w_dim, up=False, rgb=False, lr_mul=10.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k) / lr_mul)
        self.affine = EqLinear(w_dim, c_in, lr_mul, 1.0)
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.noise_strength = None if rgb else nn.Parameter(torch.zeros([]))
        self.gain, self.lr_mul, self.rgb, self.up, self.k = lr_mul / (c_in * k * k) ** 0.5, lr_mul, rgb, up, k

    def forward(self, x, w, noise=None):
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        s = self.affine(w) * self.gain
        y = F.conv2d(x * (s * 2**0.5)[:, :, None, None], self.weight, padding=self.k // 2)
        if not self.rgb:
            d = (s.square() @ self.weight.square().sum((2, 3)).t() + 1e-8).rsqrt()
            y = y * d[:, :, None, None]
            if noise is not None:
                y = y + noise * self.noise_strength * self.lr_mul
        y = y + (self.bias * self.lr_mul)[None, :, None, None]
        return y if self.rgb else F.leaky_relu(y, 0.2)


def upsample_bilinear(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class StyleG(nn.Module):
    """shared_model::arch::stylegan2::Stylegan2Generator with its config defaults."""

    def __init__(self, w_dim=128, layers=4, c=128, full=16, min_c=16, lr_mul=10.0):
        super().__init__()
        self.embed = EqLinear(T, w_dim, lr_mul)
        self.mapping = nn.ModuleList(
            EqLinear(LATENT + w_dim if i == 0 else w_dim, w_dim, 0.01 * lr_mul, act=True) for i in range(layers)
        )
        res = [4 << i for i in range(RES.bit_length() - 2)]
        ch = [max(c >> max(0, (r // full).bit_length() - 1), min_c) for r in res]
        self.const = nn.Parameter(torch.randn(ch[0], 4, 4) / lr_mul)
        self.lr_mul, self.res = lr_mul, res
        self.blocks = nn.ModuleList()
        for i, r in enumerate(res):
            blk = nn.Module()
            blk.conv0 = ModConv(ch[i - 1], ch[i], 3, w_dim, up=True, lr_mul=lr_mul) if i else None
            blk.conv1 = ModConv(ch[i], ch[i], 3, w_dim, lr_mul=lr_mul)
            blk.to_rgb = ModConv(ch[i], 3, 1, w_dim, rgb=True, lr_mul=lr_mul)
            self.blocks.append(blk)

    def style(self, z, c):
        x = torch.cat([norm2(z), norm2(self.embed(c))], 1)
        for layer in self.mapping:
            x = layer(x)
        return x

    def forward(self, z, c, mix=None):
        w = self.style(z, c)
        ws = [w] * (2 * len(self.blocks))
        if mix is not None:
            z2, k = mix
            w2 = self.style(z2, c)
            ws = ws[:k] + [w2] * (len(ws) - k)
        b = z.shape[0]
        x = (self.const * self.lr_mul)[None].expand(b, -1, -1, -1)
        img, k = None, 0
        for blk, r in zip(self.blocks, self.res):
            if blk.conv0 is not None:
                x = blk.conv0(x, ws[k], torch.randn(b, 1, r, r))
                k += 1
            x = blk.conv1(x, ws[k], torch.randn(b, 1, r, r))
            k += 1
            rgb = blk.to_rgb(x, ws[k])
            img = rgb if img is None else upsample_bilinear(img) + rgb
        return img


def d_loss(kind, real, fake, wrong):
    if kind == "hinge":
        return F.relu(1 - real).mean() + 0.75 * F.relu(1 + fake).mean() + 0.25 * F.relu(1 + wrong).mean()
    if kind == "non-saturating":
        return F.softplus(-real).mean() + 0.75 * F.softplus(fake).mean() + 0.25 * F.softplus(wrong).mean()
    return -2 * real.mean() + 1.5 * fake.mean() + 0.5 * wrong.mean()


def g_loss(kind, fake):
    if kind == "non-saturating":
        return F.softplus(-fake).mean()
    return -fake.mean()


def one_hot_conds(b, gen):
    c = torch.zeros(b, T)
    hair = torch.randint(0, 12, (b,), generator=gen)
    eyes = torch.randint(12, 22, (b,), generator=gen)
    c[torch.arange(b), hair] = 1
    c[torch.arange(b), eyes] = 1
    return c


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs (2 x multiply-adds) of the convolutions and matmuls run inside it, with
    PyTorch's own formulas (`torch.utils.flop_counter`), backward passes included. (`FlopCounterMode`
    itself tracks modules with hooks that `autograd.grad` rejects.)"""

    def __init__(self):
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.flops += formula(*args, **kwargs, out_val=out)
        return out


def count(m):
    params = sum(p.numel() for p in m.parameters())
    buffers = sum(b.numel() for n, b in m.named_buffers() if "num_batches" not in n)
    return params, buffers


def make(arch):
    if arch == "resnet-cgan":
        return ResnetG(), ResnetD()
    if arch == "stylegan2":
        return StyleG(), ResnetD(mbstd=4)
    return DcganG(), DcganD()


def g_inputs(arch, batch, cond, gen):
    """The generator's inputs for a batch of fakes, as kyara's trainer draws them (stylegan2:
    style mixing with probability 0.9 from a random crossover layer)."""
    z = torch.randn(batch, LATENT, generator=gen)
    if arch == "stylegan2" and float(torch.rand([], generator=gen)) < 0.9:
        k = 1 + int(torch.randint(0, 2 * (RES.bit_length() - 2) - 1, [], generator=gen))
        return z, cond, (torch.randn(batch, LATENT, generator=gen), k)
    return z, cond


def autocast(precision):
    """The mixed-precision context of `precision`: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def bench_steps(arch, kind, sn, batch, warmup, steps, precision="fp32"):
    torch.manual_seed(0)
    g, d = make(arch)
    counts = (count(g), count(d))
    if sn:
        for m in list(d.modules()):
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.utils.parametrizations.spectral_norm(m)
    g_ema = copy.deepcopy(g).eval()
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(1)
    data = torch.randint(0, 256, (512, 3, RES, RES), dtype=torch.uint8, generator=gen)

    def step():
        idx = torch.randint(0, 512, (batch,), generator=gen)
        real = data[idx].float() / 127.5 - 1
        cond = one_hot_conds(batch, gen)
        wrong = one_hot_conds(batch, gen)
        with torch.no_grad(), autocast(precision):
            fake = g(*g_inputs(arch, batch, cond, gen)).float()
        with autocast(precision):
            h = d.features(real)
            loss = d_loss(kind, d.score(h, cond), d(fake, cond), d.score(h, wrong)).float()
        if kind == "wgan-gp":
            a = torch.rand(batch, 1, 1, 1, generator=gen)
            x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
            with autocast(precision):
                out = d(x_hat, cond).float().sum()
            (grad,) = torch.autograd.grad(out, x_hat, create_graph=True)
            loss = loss + 20 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad_(False)
        with autocast(precision):
            lg = g_loss(kind, d(g(*g_inputs(arch, batch, cond, gen)), cond)).float()
        opt_g.zero_grad(set_to_none=True)
        lg.backward()
        opt_g.step()
        for p in d.parameters():
            p.requires_grad_(True)
        with torch.no_grad():
            for pe, p in zip(g_ema.parameters(), g.parameters()):
                pe.lerp_(p, 0.01)
        return float(lg)

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    sps = statistics.median(times)
    # One more step, counted: the multiply-adds (x2) of its convolutions and matmuls, backward
    # passes included (WGAN-GP's double backward too), the step's useful work.
    counter = FlopCount()
    with counter:
        step()
    return {
        "arch": arch, "loss": kind, "spectral_norm": sn, "precision": precision, "batch": batch,
        "g_params": counts[0][0], "g_buffers": counts[0][1],
        "d_params": counts[1][0], "d_buffers": counts[1][1],
        "seconds_per_step": sps, "images_per_second": batch / sps,
        "flop_per_step": counter.flops,
    }


def bench_forward(arch, b, warmup):
    torch.manual_seed(0)
    g = make(arch)[0].eval()
    z = torch.randn(b, LATENT)
    c = torch.ones(b, T)
    with torch.inference_mode():
        for _ in range(max(warmup, 1)):
            g(z, c)
        reps = 20 if b <= 16 else 5
        ms = []
        for _ in range(reps):
            t0 = time.perf_counter()
            g(z, c)
            ms.append((time.perf_counter() - t0) * 1e3)
    # Counted outside inference mode, whose tensors bypass Python dispatch modes.
    counter = FlopCount()
    with torch.no_grad(), counter:
        g(z, c)
    m = statistics.median(ms)
    return {"arch": arch, "batch": b, "ms": m, "ms_per_image": m / b, "flop": counter.flops}


ARCHS = ["resnet-cgan", "dcgan", "stylegan2"]
LOSSES = ["hinge", "non-saturating", "wgan-gp"]
PRECISIONS = ["fp32", "bf16"]


def pick(ap, flag, given, known):
    """The values of a repeatable, comma-separated option (all of `known` if none), checked."""
    chosen = [v.strip() for g in given for v in g.split(",") if v.strip()]
    for v in chosen:
        if v not in known:
            ap.error(f"{flag}: unknown value '{v}' (expected one of: {', '.join(known)})")
    return [k for k in known if k in chosen] if chosen else known


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json")
    # As `trainer bench`: repeat or comma-separate; default all.
    ap.add_argument("--arch", action="append", default=[], help=f"only these: {', '.join(ARCHS)}")
    ap.add_argument("--loss", action="append", default=[], help=f"only these: {', '.join(LOSSES)}")
    ap.add_argument("--precision", action="append", default=[], help="fp32 (default) and/or bf16 (autocast)")
    a = ap.parse_args()
    archs, losses = pick(ap, "--arch", a.arch, ARCHS), pick(ap, "--loss", a.loss, LOSSES)
    precisions = pick(ap, "--precision", a.precision, PRECISIONS) if a.precision else ["fp32"]
    torch.set_num_threads(a.threads)
    rows, fwd = [], []
    for arch in archs:
        for kind, sn in [("hinge", False), ("non-saturating", False), ("wgan-gp", False), ("hinge", True)]:
            if kind not in losses:
                continue
            for precision in precisions:
                r = bench_steps(arch, kind, sn, a.batch, a.warmup, a.steps, precision)
                print(f"{arch} {kind}{' +SN' if sn else ''} {precision}: {r['seconds_per_step']:.3f} s/step", flush=True)
                rows.append(r)
        for b in [1, 16, 64]:
            r = bench_forward(arch, b, a.warmup)
            print(f"{arch} forward batch {b}: {r['ms']:.2f} ms", flush=True)
            fwd.append(r)
    peak = max(g for _, g in matmul_gflops(5))
    print(f"matmul peak: {peak:.1f} GFLOP/s", flush=True)
    peak_bf16 = max(g for _, g in matmul_gflops(5, dtype=torch.bfloat16)) if "bf16" in precisions else 0.0
    if peak_bf16:
        print(f"bf16 matmul peak: {peak_bf16:.1f} GFLOP/s", flush=True)
    report = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "peak_gflops": peak,
        "peak_gflops_bf16": peak_bf16,
        "steps": rows, "forward": fwd,
    }
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(report, f, indent=2)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()
