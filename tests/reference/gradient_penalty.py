"""Reference values for kyara's gradient-penalty test (trainer/src/train/losses.rs, `gp_matches_double_backward`).

Exact WGAN-GP penalty and R1 on a tiny fixed critic, differentiated with PyTorch's double backward
(create_graph=True). kyara's Burn has no second-order gradients, so its penalty uses a first-order
directional-derivative construction; the Rust test rebuilds the same critic from the same formulas
and compares parameter gradients with the numbers printed here.

    pip install torch==2.15.0 && python3 tests/reference/gradient_penalty.py   # CPU, float64

Critic: conv3x3(3->4, pad 1) -> leaky_relu(0.2) -> conv3x3(4->4, stride 2, pad 1) -> leaky_relu(0.2)
        -> flatten (4*4*4) -> linear(64->1). Input x: [2, 3, 8, 8].
Every value comes from fill(n, scale, phase)[k] = scale * sin(0.7 * k + phase), row-major.
"""
import math

import torch
import torch.nn.functional as F


def fill(shape, scale, phase):
    n = math.prod(shape)
    k = torch.arange(n, dtype=torch.float64)
    return (scale * torch.sin(0.7 * k + phase)).reshape(shape)


def critic(x, p):
    h = F.leaky_relu(F.conv2d(x, p["w1"], p["b1"], padding=1), 0.2)
    h = F.leaky_relu(F.conv2d(h, p["w2"], p["b2"], stride=2, padding=1), 0.2)
    return h.flatten(1) @ p["w3"] + p["b3"]


def params():
    return {
        "w1": fill((4, 3, 3, 3), 0.4, 0.1),
        "b1": fill((4,), 0.1, 0.2),
        "w2": fill((4, 4, 3, 3), 0.3, 0.3),
        "b2": fill((4,), 0.1, 0.4),
        "w3": fill((64,), 0.25, 0.5),
        "b3": fill((1,), 0.1, 0.6),
    }


def penalty(target):
    p = {k: v.clone().requires_grad_(True) for k, v in params().items()}
    x = fill((2, 3, 8, 8), 0.8, 0.0).requires_grad_(True)
    (g,) = torch.autograd.grad(critic(x, p).sum(), x, create_graph=True)
    n = g.flatten(1).norm(dim=1)
    pen = ((n - target) ** 2).mean()
    grads = torch.autograd.grad(pen, list(p.values()), allow_unused=True)
    # b3 shifts D by a constant: it never changes the input gradient, so its gradient is zero.
    grads = [torch.zeros_like(v) if g is None else g for v, g in zip(p.values(), grads)]
    return pen.item(), dict(zip(p.keys(), grads))


def rust(name, values):
    body = ", ".join(f"{v:.9e}" for v in values)
    return f"const {name}: [f64; {len(values)}] = [{body}];"


if __name__ == "__main__":
    print(f"// made by tests/reference/gradient_penalty.py, torch {torch.__version__}, float64")
    for target, tag in ((1.0, "GP"), (0.0, "R1")):
        value, grads = penalty(target)
        print(f"const {tag}_VALUE: f64 = {value:.12e};")
        for k, g in grads.items():
            print(rust(f"{tag}_GRAD_{k.upper()}", g.flatten().tolist()))
