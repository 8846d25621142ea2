"""Forward+backward time of blur, max-blur, soft, LIP, GeM and LSE pooling.

Command (from the repository root)::

    python experiments/blur_soft_gem_timing.py     # [128, 24, 24, 64] float32

Every JAX row is ``jax.jit(jax.value_and_grad(lambda x, *params, ct: sum(op(x, *params)·ct)))``
with the cotangent ``ct`` an argument (a constant one lets XLA fold a linear op's whole
backward pass into the compiled program) and the gradient taken w.r.t. ``x`` and any learned
``p``/``r``. The window pools use 2×2 windows, stride 2, and are compared with ``avg_pool``
on the same footing. The blur rows use a 3-tap filter and stride 2 and are compared with the
PyTorch formulation of antialiased-cnns' ``BlurPool`` — ``F.pad`` (reflect) then a depthwise
``F.conv2d(groups=C)`` with the binomial filter — and MaxBlurPool with a dense 2×2
``F.max_pool2d(stride=1)`` before it, PyTorch in NCHW (its default) and channels-last,
forward plus ``backward()`` w.r.t. the input. All ops run in one process, interleaved over
``--rounds`` rounds so that load on the machine hits them alike; the table gives medians
over every timed call and the ratio to each group's baseline.

Measured on this machine (2 CPU cores shared with other jobs, load average ~9 throughout,
so single rows move by up to 1.5× between runs), jax 0.10.2, torch 2.13.0, one run::

    | op                                                  | median ms | × baseline |
    |-----------------------------------------------------|----------:|-----------:|
    | avg_pool (baseline)                                 |      12.3 |       1.00 |
    | soft_pool                                           |      28.6 |       2.32 |
    | lip_pool (grad w.r.t. x and logits)                 |      40.2 |       3.26 |
    | gem_pool(p=3)                                       |      24.6 |       2.00 |
    | gem_pool(p learned, scalar)                         |      75.3 |       6.11 |
    | gem_pool(p learned, [C])                            |      87.2 |       7.08 |
    | lse_pool(r=1)                                       |      32.9 |       2.67 |
    | lse_pool(r learned, scalar)                         |      88.6 |       7.20 |
    | torch pad+conv2d(groups=C), NCHW (baseline)         |     189.6 |       1.00 |
    | torch pad+conv2d(groups=C), channels-last           |      79.1 |       0.42 |
    | blur_pool(3, 2)                                     |      69.5 |       0.37 |
    | blur_pool(3, 2, padding_mode='zeros')               |      36.2 |       0.19 |
    | torch max_pool2d(2, 1)+pad+conv2d, NCHW (baseline)  |     401.3 |       1.00 |
    | torch max_pool2d(2, 1)+pad+conv2d, channels-last    |     173.2 |       0.43 |
    | max_blur_pool(2, 2)                                 |      87.6 |       0.22 |

Where the time goes: the window pools evaluate one ``exp`` (soft, LIP, LSE: ``expm1``) per
input element forward and again backward; a learned ``p``/``r`` adds a ``log`` per element
(GeM) and the reduction of its gradient over the whole batch. The blur is two strided 1-D
passes; ``'reflect'`` padding costs the padded copy forward and the fold of the reflected
rows backward.
"""
from __future__ import annotations

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
from cnnjax.bench.timing import measure


def jax_step(fn, x, params):
    y = fn(x, *params)
    ct = jnp.cos(jnp.arange(y.size, dtype=x.dtype)).reshape(y.shape)

    def loss(x, *args):
        *params, ct = args
        return jnp.sum(fn(x, *params) * ct)

    step = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(1 + len(params)))))
    args = (x, *params, ct)
    jax.block_until_ready(step(*args))
    return lambda: jax.block_until_ready(step(*args))


def torch_step(kind, channels_last, x_np):
    import torch
    import torch.nn.functional as F

    c = x_np.shape[-1]
    x = torch.from_numpy(np.moveaxis(x_np, -1, 1).copy())
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    taps = torch.tensor([1.0, 2.0, 1.0]) / 4
    w = (taps[:, None] * taps[None, :]).expand(c, 1, 3, 3).contiguous()

    def run():
        h = F.max_pool2d(x, 2, stride=1) if kind == "maxblur" else x
        y = F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), w, stride=2, groups=c)
        y.backward(torch.ones_like(y))
        x.grad = None

    run()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=(128, 24, 24, 64))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per round")
    args = parser.parse_args()
    shape = tuple(args.shape)
    c = shape[-1]
    x = jax.random.normal(jax.random.key(1), shape, jnp.float32)
    logits = jax.random.normal(jax.random.key(2), shape, jnp.float32)
    x_np = np.asarray(x)
    f32 = jnp.float32
    window_rows = [
        ("avg_pool (baseline)", lambda v: cnnjax.avg_pool(v, 2), ()),
        ("soft_pool", lambda v: cnnjax.soft_pool(v, 2), ()),
        ("lip_pool (grad w.r.t. x and logits)", lambda v, lg: cnnjax.lip_pool(v, lg, 2),
         (logits,)),
        ("gem_pool(p=3)", lambda v: cnnjax.gem_pool(v, 2), ()),
        ("gem_pool(p learned, scalar)", lambda v, p: cnnjax.gem_pool(v, 2, p=p), (f32(3.0),)),
        ("gem_pool(p learned, [C])", lambda v, p: cnnjax.gem_pool(v, 2, p=p),
         (jnp.full((c,), 3.0, f32),)),
        ("lse_pool(r=1)", lambda v: cnnjax.lse_pool(v, 2), ()),
        ("lse_pool(r learned, scalar)", lambda v, r: cnnjax.lse_pool(v, 2, r=r), (f32(1.0),)),
    ]
    blur_rows = [
        ("torch pad+conv2d(groups=C), NCHW (baseline)", ("blur", False)),
        ("torch pad+conv2d(groups=C), channels-last", ("blur", True)),
        ("blur_pool(3, 2)", lambda v: cnnjax.blur_pool(v), ()),
        ("blur_pool(3, 2, padding_mode='zeros')",
         lambda v: cnnjax.blur_pool(v, padding_mode="zeros"), ()),
        ("torch max_pool2d(2, 1)+pad+conv2d, NCHW (baseline)", ("maxblur", False)),
        ("torch max_pool2d(2, 1)+pad+conv2d, channels-last", ("maxblur", True)),
        ("max_blur_pool(2, 2)", lambda v: cnnjax.max_blur_pool(v), ()),
    ]
    steps = []
    for name, fn, params in window_rows:
        steps.append((name, jax_step(fn, x, params)))
    for name, *spec in blur_rows:
        if isinstance(spec[0], tuple):
            steps.append((name, torch_step(*spec[0], x_np)))
        else:
            steps.append((name, jax_step(spec[0], x, spec[1])))
    load = os.getloadavg()[0]
    medians = measure(dict(steps), args.rounds * args.repeats)
    load = max(load, os.getloadavg()[0])
    print(f"shape {shape} float32, forward+backward, {args.rounds}×{args.repeats} timed calls "
          f"per op, load average up to {load:.1f} on {os.cpu_count()} cores")
    print("| op                                                  | median ms | × baseline |")
    print("|-----------------------------------------------------|----------:|-----------:|")
    base = None
    for name, _ in steps:
        med = medians[name]
        if "baseline" in name:
            base = med
        print(f"| {name:<51} | {med * 1e3:9.1f} | {med / base:10.2f} |")


if __name__ == "__main__":
    main()
