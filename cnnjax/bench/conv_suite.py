"""The conv suites: every ``cnnjax.conv`` impl per layer (forward, forward+backward) with
what ``impl='auto'`` chose, the FFT crossover, and the matmul peak they are measured against."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import cnnjax
import cnnjax.models
from cnnjax.bench.config import Config, ConvLayer
from cnnjax.bench.peers import flax_conv_fn, torch_conv_candidates
from cnnjax.bench.timing import jax_call, measure

IMPLS = ("xla", "im2col", "xla_im2col_grad", "fft", "auto")
#: The impls ``auto`` chooses between (its choice is checked against the fastest of them).
CHOICES = IMPLS[:-1]


# The distinct conv layers (shapes) of the four networks at their native input sizes.


CONV_LAYERS = (
    ConvLayer("lenet5.conv1", 28, 1, 20, 5, 1, 2),
    ConvLayer("lenet5.conv2", 14, 20, 50, 5, 1, 2),
    ConvLayer("mnistnet.conv1", 28, 1, 32, 3),
    ConvLayer("mnistnet.conv2", 26, 32, 64, 3),
    ConvLayer("vgg11.conv1", 32, 3, 64, 3, 1, 1),
    ConvLayer("vgg11.conv2", 16, 64, 128, 3, 1, 1),
    ConvLayer("vgg11.conv3", 8, 128, 256, 3, 1, 1),
    ConvLayer("vgg11.conv4", 8, 256, 256, 3, 1, 1),
    ConvLayer("vgg11.conv5", 4, 256, 512, 3, 1, 1),
    ConvLayer("vgg11.conv6", 4, 512, 512, 3, 1, 1),
    ConvLayer("vgg11.conv7", 2, 512, 512, 3, 1, 1),
    ConvLayer("resnet20.stem", 32, 3, 16, 3, 1, 1),
    ConvLayer("resnet20.stage1", 32, 16, 16, 3, 1, 1),
    ConvLayer("resnet20.stage2.down", 32, 16, 32, 3, 2, 1),
    ConvLayer("resnet20.stage2", 16, 32, 32, 3, 1, 1),
    ConvLayer("resnet20.stage2.shortcut", 16, 16, 32, 1),
    ConvLayer("resnet20.stage3.down", 16, 32, 64, 3, 2, 1),
    ConvLayer("resnet20.stage3", 8, 64, 64, 3, 1, 1),
    ConvLayer("resnet20.stage3.shortcut", 8, 32, 64, 1),
    # Shapes the networks above miss: thin, small maps, 1x1, grouped and depthwise.
    ConvLayer("thin.32x32x16", 32, 16, 16, 3, 1, 1),
    ConvLayer("small.16x16x64", 16, 64, 64, 3, 1, 1),
    ConvLayer("small.8x8x32", 8, 32, 32, 3, 1, 1),
    ConvLayer("strided.16x16x64", 16, 64, 64, 3, 2, 1),
    ConvLayer("pointwise.16x16x64", 16, 64, 128, 1),
    ConvLayer("grouped.16x16x64.g4", 16, 64, 64, 3, 1, 1, 4),
    ConvLayer("depthwise.32x32x16", 32, 16, 16, 3, 1, 1, 16),
    ConvLayer("depthwise.16x16x64", 16, 64, 64, 3, 1, 1, 64),
)
#: Batch sizes of the full conv suite (``--batch`` picks one).
CONV_BATCHES = (128, 16)


FFT_SIZE, FFT_CHANNELS, FFT_KERNELS = 64, 16, (3, 7, 11, 15)
QUICK_LAYERS = ("mnistnet.conv2", "resnet20.stage2.down", "depthwise.32x32x16")


def bench_matmul(cfg: Config) -> dict[str, Any]:
    """The machine's practical limit: GFLOP/s of a square float32 matmul (best size)."""
    sizes = (512, 1024) if cfg.quick else (1024, 2048)
    key = jax.random.key(0)
    best: dict[str, Any] = {"jax_gflops": 0.0, "torch_gflops": None}
    dot = jax.jit(jnp.dot)
    torch = cfg.torch
    for n in sizes:
        a = jax.random.normal(key, (n, n), jnp.float32)
        cands = {"jax": jax_call(dot, a, a)}
        if torch is not None:
            ta = torch.randn(n, n)
            cands["torch"] = lambda ta=ta: torch.mm(ta, ta)
        # A peak is a best case: the fastest run, not the median.
        t = measure(cands, max(cfg.repeats, 5), stat=min)
        flops = 2.0 * n ** 3
        if flops / t["jax"] / 1e9 > best["jax_gflops"]:
            best["jax_gflops"], best["jax_size"] = flops / t["jax"] / 1e9, n
        if "torch" in t:
            g = flops / t["torch"] / 1e9
            if best["torch_gflops"] is None or g > best["torch_gflops"]:
                best["torch_gflops"] = g
    return best


def _conv_fns(layer: ConvLayer, impl: str):
    def fwd(x, w):
        return cnnjax.conv(x, w, stride=layer.stride, padding=layer.padding,
                           groups=layer.groups, impl=impl)
    return fwd


def fwd_bwd(fn: Callable) -> Callable:
    """``(x, w, ct) -> (y, dx, dw)``: the forward pass plus the VJP for a fixed cotangent.

    The output ``y`` is returned on purpose: the gradients of a convolution do not depend on
    its output, so a function returning only ``(dx, dw)`` lets XLA drop the forward pass as
    dead code and times the backward alone (PyTorch's autograd always runs the forward).
    """
    def f(x, w, ct):
        y, vjp = jax.vjp(fn, x, w)
        return (y, *vjp(ct))
    return jax.jit(f)


def bench_conv(cfg: Config) -> list[dict[str, Any]]:
    """Each contender on each layer at each batch size: ms and GFLOP/s, forward and
    forward+backward, what ``auto`` chose (and whether measured) and how it compares with
    the fastest impl."""
    rows = []
    key = jax.random.key(1)
    for n in cfg.conv_batch_sizes():
        for layer in cfg.layers:
            rows.append(_bench_layer(cfg, layer, n, jax.random.fold_in(
                key, hash((layer.name, n)) % 2**31)))
    return rows


def _bench_layer(cfg: Config, layer: ConvLayer, n: int, key) -> dict[str, Any]:
    kx, kw, kc = jax.random.split(key, 3)
    cig = layer.c_in // layer.groups
    x = jax.random.normal(kx, (n, layer.size, layer.size, layer.c_in), jnp.float32)
    w = jax.random.normal(kw, (layer.k, layer.k, cig, layer.c_out), jnp.float32)
    w = w * jnp.asarray(1.0 / math.sqrt(layer.k * layer.k * cig), jnp.float32)
    out = layer.out_size()
    ct = jax.random.normal(kc, (n, out, out, layer.c_out), jnp.float32)
    # Asked first, so that a configuration not seen before is measured here (reported as
    # 'tuned') rather than while the 'auto' contender is being compiled.
    choice = _auto_choice(x, w, layer)
    fns = {impl: _conv_fns(layer, impl) for impl in IMPLS}
    fns["flax"] = flax_conv_fn(layer)
    fwd = {name: jax_call(jax.jit(fn), x, w) for name, fn in fns.items()}
    fb = {name: jax_call(fwd_bwd(fn), x, w, ct) for name, fn in fns.items()}
    if cfg.torch is not None:
        fwd["torch"], fb["torch"] = torch_conv_candidates(
            cfg.torch, layer, np.asarray(x), np.asarray(w), np.asarray(ct))
    flops = layer.flops(n)
    t_f = measure(fwd, cfg.repeats)
    t_b = measure(fb, cfg.repeats)
    best = min(CHOICES, key=t_b.get)
    groups = f" g{layer.groups}" if layer.groups > 1 else ""
    row = {"layer": layer.name, "batch": n,
           "shape": f"{n}x{layer.size}x{layer.size}x{layer.c_in} k{layer.k} "
                    f"s{layer.stride} p{layer.padding}{groups} -> {layer.c_out}",
           "gflop_fwd": flops / 1e9, "auto_impl": choice.impl, "auto_source": choice.source,
           "auto_tuning_ms": choice.times_ms, "best_impl": best,
           "fwd_ms": {k: v * 1e3 for k, v in t_f.items()},
           "fwd_bwd_ms": {k: v * 1e3 for k, v in t_b.items()},
           "fwd_gflops": {k: flops / v / 1e9 for k, v in t_f.items()},
           "fwd_bwd_gflops": {k: 3 * flops / v / 1e9 for k, v in t_b.items()}}
    row["auto_over_xla_fwd"] = t_f["xla"] / t_f["auto"]
    row["auto_over_xla_fwd_bwd"] = t_b["xla"] / t_b["auto"]
    row["auto_over_best_fwd_bwd"] = t_b["auto"] / t_b[best]
    if "torch" in t_b:
        row["auto_over_torch_fwd"] = t_f["torch"] / t_f["auto"]
        row["auto_over_torch_fwd_bwd"] = t_b["torch"] / t_b["auto"]
    cfg.log(f"conv {layer.name} batch {n}: fwd+bwd auto ({choice.impl}, {choice.source}) "
            f"{row['fwd_bwd_ms']['auto']:.1f} ms, best {best} {t_b[best] * 1e3:.1f} ms, "
            f"xla {row['fwd_bwd_ms']['xla']:.1f} ms")
    return row


def _auto_choice(x, w, layer: ConvLayer):
    """What ``impl='auto'`` runs for this layer and why (``cnnjax.conv_choice``)."""
    return cnnjax.conv_choice(x.shape, w.shape, stride=layer.stride, padding=layer.padding,
                              groups=layer.groups)


def bench_fft(cfg: Config) -> list[dict[str, Any]]:
    """64x64 inputs, kernels 3..15: every impl, forward and forward+backward."""
    n = max(1, cfg.batch // 8)
    rows = []
    key = jax.random.key(4)
    for k in cfg.fft_kernels:
        layer = ConvLayer(f"fft.k{k}", FFT_SIZE, FFT_CHANNELS, FFT_CHANNELS, k)
        x = jax.random.normal(key, (n, FFT_SIZE, FFT_SIZE, FFT_CHANNELS), jnp.float32)
        w = jax.random.normal(key, (k, k, FFT_CHANNELS, FFT_CHANNELS), jnp.float32)
        out = layer.out_size()
        ct = jnp.ones((n, out, out, FFT_CHANNELS), jnp.float32)
        fns = {impl: _conv_fns(layer, impl) for impl in IMPLS}
        t_f = measure({i: jax_call(jax.jit(f), x, w) for i, f in fns.items()}, cfg.repeats)
        t_b = measure({i: jax_call(fwd_bwd(f), x, w, ct) for i, f in fns.items()},
                      cfg.repeats)
        rows.append({"kernel": k, "shape": f"{n}x{FFT_SIZE}x{FFT_SIZE}x{FFT_CHANNELS} -> "
                                           f"{FFT_CHANNELS}",
                     "auto_impl": _auto_choice(x, w, layer).impl,
                     "fwd_ms": {i: v * 1e3 for i, v in t_f.items()},
                     "fwd_bwd_ms": {i: v * 1e3 for i, v in t_b.items()},
                     "fft_over_xla_fwd": t_f["xla"] / t_f["fft"],
                     "fft_over_xla_fwd_bwd": t_b["xla"] / t_b["fft"]})
        cfg.log(f"fft k={k}: fwd xla {t_f['xla'] * 1e3:.1f} ms, fft {t_f['fft'] * 1e3:.1f} ms")
    return rows
