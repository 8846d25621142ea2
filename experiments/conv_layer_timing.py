"""Time one 2-D conv layer with every ``impl``, forward and forward+backward, in one run.

Command (from the repository root)::

    python experiments/conv_layer_timing.py            # --reps 15 --batch 128

By default the layer is MnistNet's conv2: N=128, 26x26x32 -> 64 channels, 3x3 kernel,
stride 1, VALID, float32; ``--size --c-in --c-out --k --stride --padding --groups`` time any other
square 2-D layer (``docs/benchmark.md`` uses them for the layers behind ``impl='auto'``'s
rule) and ``--impls`` picks the contenders from ``cnnjax.CONV_IMPLS`` ('xla' is always
timed: the ratios are relative to it). "fwd+bwd" is ``jax.value_and_grad`` of a scalar loss
w.r.t. the input *and* the kernel, so the forward pass cannot be dead-code eliminated. Every
function is jitted and warmed up; the reps are interleaved (one call of each impl per round)
so that load from other processes hits every impl alike; the table shows medians.

Measured on the shared 2-core AMD EPYC VM while other jobs were running (load
average ~7 on 2 cores, so absolute times are several times slower than on an idle machine;
the ratios come from one interleaved run), 2026-11-22, ``--reps 15``::

    | impl   | fwd ms | fwd GFLOP/s | fwd xla/impl | fwd+bwd ms | fwd+bwd GFLOP/s | fwd+bwd xla/impl |
    |--------|--------|-------------|--------------|------------|-----------------|------------------|
    | xla    | 206.3  | 13          | 1.00x        | 1355.0     | 6               | 1.00x            |
    | im2col | 109.4  | 25          | 1.88x        |  511.8     | 16              | 2.65x            |
    | fft    | 246.0  | 11          | 0.84x        |  644.1     | 13              | 2.10x            |
    | auto   | 110.0  | 25          | 1.87x        |  459.0     | 18              | 2.95x            |
    | torch  | 101.6  | 27          | 2.03x        |  524.2     | 16              | 2.58x            |
    | matmul [73728x288]@[288x64] | 83.6 | 33 |   |            |                 |                  |

(The first line printed names the impl 'auto' runs, here 'im2col'; 'torch' is
``torch.nn.functional.conv2d`` on the same data when PyTorch is installed.)
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
from cnnjax.bench.timing import jax_call, measure

DEFAULT_IMPLS = ("xla", "im2col", "fft", "auto")


def _interleaved_medians(fns: dict, args: tuple, reps: int) -> dict:
    """Median ms per call, interleaved rounds (cnnjax's one timing harness)."""
    medians = measure({k: jax_call(f, *args) for k, f in fns.items()}, reps)
    return {k: v * 1e3 for k, v in medians.items()}


def _torch_fns(x, w, stride: int, padding: int, groups: int):
    try:
        import torch
    except ImportError:
        return None
    xt = torch.tensor(np.moveaxis(np.asarray(x), -1, 1).copy(), requires_grad=True)
    wt = torch.tensor(np.transpose(np.asarray(w), (3, 2, 0, 1)).copy(), requires_grad=True)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding,
                                              groups=groups)

    def fwd_bwd():
        y = torch.nn.functional.conv2d(xt, wt, stride=stride, padding=padding, groups=groups)
        loss = (y * y).sum() * 0.5
        return torch.autograd.grad(loss, (xt, wt))

    return fwd, fwd_bwd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=26, help="input height = width")
    parser.add_argument("--c-in", type=int, default=32)
    parser.add_argument("--c-out", type=int, default=64)
    parser.add_argument("--k", type=int, default=3, help="kernel height = width")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--padding", type=int, default=0, help="zero padding on every side")
    parser.add_argument("--groups", type=int, default=1, help="feature groups (C_in: depthwise)")
    parser.add_argument("--impls", default=",".join(DEFAULT_IMPLS),
                        help=f"comma-separated, from {', '.join(cnnjax.CONV_IMPLS)}")
    args = parser.parse_args()
    impls = ("xla", *(i for i in args.impls.split(",") if i != "xla"))
    if unknown := [i for i in impls if i not in cnnjax.CONV_IMPLS]:
        parser.error(f"--impls: unknown {', '.join(unknown)}; choose from "
                     f"{', '.join(cnnjax.CONV_IMPLS)}")

    n, size, c_in, c_out, k = args.batch, args.size, args.c_in, args.c_out, args.k
    groups = args.groups
    conv_kw = dict(stride=args.stride, padding=args.padding, groups=groups)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, size, size, c_in)), jnp.float32)
    cig = c_in // groups
    w = jnp.asarray(rng.normal(size=(k, k, cig, c_out)) / np.sqrt(k * k * cig), jnp.float32)
    out = cnnjax.conv_output_shape((size, size), k, stride=args.stride, padding=args.padding)[0]
    flops = 2.0 * n * out * out * k * k * cig * c_out
    print(f"{n}x{size}x{size}x{c_in} k{k} s{args.stride} p{args.padding} g{groups} -> {c_out}: "
          f"'auto' runs {cnnjax.conv_impl(x.shape, w.shape, **conv_kw)!r}")

    def loss(x, w, impl):
        y = cnnjax.conv(x, w, impl=impl, **conv_kw)
        return 0.5 * jnp.sum(y * y)

    fwd = {i: jax.jit(lambda x, w, i=i: cnnjax.conv(x, w, impl=i, **conv_kw)) for i in impls}
    fwd_bwd = {i: jax.jit(jax.value_and_grad(lambda x, w, i=i: loss(x, w, i), (0, 1)))
               for i in impls}
    # Same numbers from every impl before timing anything.
    ref_y = fwd["xla"](x, w)
    ref_g = fwd_bwd["xla"](x, w)[1]
    for i in impls[1:]:
        np.testing.assert_allclose(fwd[i](x, w), ref_y, rtol=2e-3, atol=2e-3)
        for a, e in zip(fwd_bwd[i](x, w)[1], ref_g):
            np.testing.assert_allclose(a, e, rtol=2e-3, atol=2e-3 * float(jnp.abs(e).max()))

    torch_fns = _torch_fns(x, w, args.stride, args.padding, groups)
    t_fwd = dict(fwd)
    t_bwd = dict(fwd_bwd)
    if torch_fns is not None:
        t_fwd["torch"] = lambda x, w: torch_fns[0]()
        t_bwd["torch"] = lambda x, w: torch_fns[1]()
    fwd_ms = _interleaved_medians(t_fwd, (x, w), args.reps)
    bwd_ms = _interleaved_medians(t_bwd, (x, w), args.reps)

    a = jnp.asarray(rng.normal(size=(n * out * out, k * k * cig)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(k * k * cig, c_out)), jnp.float32)
    mm_ms = _interleaved_medians({"matmul": jax.jit(jnp.matmul)}, (a, b), args.reps)["matmul"]

    rows = ["| impl | fwd ms | fwd GFLOP/s | fwd xla/impl | fwd+bwd ms | fwd+bwd GFLOP/s "
            "| fwd+bwd xla/impl |", "|---|---|---|---|---|---|---|"]
    for i in t_fwd:
        rows.append(
            f"| {i} | {fwd_ms[i]:.1f} | {flops / fwd_ms[i] / 1e6:.0f} | "
            f"{fwd_ms['xla'] / fwd_ms[i]:.2f}x | {bwd_ms[i]:.1f} | "
            f"{3 * flops / bwd_ms[i] / 1e6:.0f} | {bwd_ms['xla'] / bwd_ms[i]:.2f}x |")
    rows.append(f"| matmul [{n * out * out}x{k * k * cig}]@[{k * k * cig}x{c_out}] | "
                f"{mm_ms:.1f} | {flops / mm_ms / 1e6:.0f} | | | | |")
    print("\n".join(rows))
    print(json.dumps({"fwd_ms": fwd_ms, "fwd_bwd_ms": bwd_ms, "matmul_ms": mm_ms,
                      "layer": dict(n=n, size=size, c_in=c_in, c_out=c_out, k=k,
                                    stride=args.stride, padding=args.padding, groups=groups),
                      "backend": jax.default_backend()}))


if __name__ == "__main__":
    main()
