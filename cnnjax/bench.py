"""``cnnjax bench``: the CPU speed benchmark of issue 6, every contender side by side.

One run measures, on the current machine and in one process:

* ``matmul``: the practical limit, a square float32 matmul (GFLOP/s);
* ``conv``: the conv layers of LeNet5, MnistNet, a CIFAR VGG-11 and ResNet-20 at ``--batch``,
  forward and forward+backward (gradients w.r.t. ``x`` and ``w``), GFLOP/s for every
  ``cnnjax.conv`` impl (``'xla'``, ``'im2col'``, ``'fft'``, ``'auto'``), for
  ``flax.linen.Conv`` and for ``torch.nn.functional.conv2d`` (when PyTorch is installed);
* ``pool``: every pooling op, forward and forward+backward, relative to ``max_pool`` on
  ``[batch, 24, 24, 64]`` with 2x2 windows;
* ``train``: one Adam training step of MnistNet and LeNet5 (cnnjax model, the cnnjax model
  with ``impl='xla'``, a plain Flax model of the same architecture, the same network in
  PyTorch), ms/step; and eval of a BN model (ResNet-20) with the batch norms folded into the
  convolutions vs unfolded;
* ``memory``: XLA's compiled memory statistics of the training steps;
* ``fft``: 64x64 inputs with kernels 3, 7, 11, 15: ``'xla'`` vs ``'im2col'`` vs ``'fft'`` vs
  ``'auto'`` (and which one ``'auto'`` picks).

Timing protocol: every contender of one row is compiled and warmed up first, then the
contenders are timed in interleaved rounds (one call each per round, ``--repeats`` rounds) and
the median is reported, so background load hits all of them alike. FLOPs of a convolution are
``2 * N * prod(out) * C_out * prod(k) * C_in / groups`` forward and three times that forward
+ backward (the input and the weight gradients are each one more such product).

PyTorch is an optional peer, imported lazily: without it the PyTorch columns are skipped
with a note. It runs with ``torch.set_num_threads(<cores available to this process>)``.

Allocator: XLA:CPU allocates a call's temporaries afresh on every call, and glibc serves
blocks of 32 MB and more with new ``mmap`` pages, so each training step page-faults its
large temporaries back in (measured ~1-4 GB/s instead of ~25 GB/s for a copy). Settings such
as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967296`` keep them in the heap; measured
in separate processes they took the LeNet5 step from 107-111 to 71-94 ms but left MnistNet
and Flax within their noise, so they are not applied. The header of the output says when
such settings are active.

Example::

    cnnjax bench                           # everything, batch 128 (a few minutes)
    cnnjax bench --quick                   # a small configuration (well under a minute)
    cnnjax bench --suite conv,fft --repeats 7 --json bench.json
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import glob
import gzip
import json
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import cnnjax
import cnnjax.models

SUITES = ("conv", "pool", "train", "memory", "fft")
IMPLS = ("xla", "im2col", "fft", "auto")


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One 2-D conv layer of the suite: input ``[N, size, size, c_in]``, square kernel."""

    name: str
    size: int
    c_in: int
    c_out: int
    k: int
    stride: int = 1
    padding: int = 0

    def out_size(self) -> int:
        return (self.size + 2 * self.padding - self.k) // self.stride + 1

    def flops(self, n: int) -> float:
        return 2.0 * n * self.out_size() ** 2 * self.c_out * self.k * self.k * self.c_in


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
)
QUICK_LAYERS = ("mnistnet.conv2", "resnet20.stage2.down")

POOL_SHAPE = (24, 24, 64)
FFT_SIZE, FFT_CHANNELS, FFT_KERNELS = 64, 16, (3, 7, 11, 15)
TRAIN_MODELS = ("mnistnet", "lenet5")


# --------------------------------------------------------------------------- timing


def _block(out: Any) -> Any:
    return jax.block_until_ready(out)


def measure(candidates: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1,
            stat: Callable[[list[float]], float] = statistics.median) -> dict[str, float]:
    """Median (or ``stat``) seconds per call of each candidate, timed in interleaved rounds.

    Every candidate runs ``warmup`` times first (compilation, allocator warm-up); then each
    of ``repeats`` rounds calls every candidate once. Interleaving makes background load
    (other processes on the shared cores) affect all candidates of a row alike.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: stat(ts) for name, ts in times.items()}


def _jax_call(fn: Callable, *args) -> Callable[[], Any]:
    return lambda: _block(fn(*args))


def _torch():
    """The torch module, or ``None`` when it is absent or disabled."""
    try:
        import torch  # an optional peer: imported only here, when benchmarking it
    except ImportError:
        return None
    return torch


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _geomean(values: Sequence[float]) -> float:
    values = [v for v in values if v and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# --------------------------------------------------------------------------- suites


def bench_matmul(cfg: Config) -> dict[str, Any]:
    """The machine's practical limit: GFLOP/s of a square float32 matmul (best size)."""
    sizes = (512, 1024) if cfg.quick else (1024, 2048)
    key = jax.random.key(0)
    best: dict[str, Any] = {"jax_gflops": 0.0, "torch_gflops": None}
    dot = jax.jit(jnp.dot)
    torch = cfg.torch
    for n in sizes:
        a = jax.random.normal(key, (n, n), jnp.float32)
        cands = {"jax": _jax_call(dot, a, a)}
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
        return cnnjax.conv(x, w, stride=layer.stride, padding=layer.padding, impl=impl)
    return fwd


def _flax_conv_fn(layer: ConvLayer):
    module = fnn.Conv(layer.c_out, (layer.k, layer.k), strides=layer.stride,
                      padding=[(layer.padding, layer.padding)] * 2, use_bias=False)
    return lambda x, w: module.apply({"params": {"kernel": w}}, x)


def _fwd_bwd(fn: Callable) -> Callable:
    """``(x, w, ct) -> (y, dx, dw)``: the forward pass plus the VJP for a fixed cotangent.

    The output ``y`` is returned on purpose: the gradients of a convolution do not depend on
    its output, so a function returning only ``(dx, dw)`` lets XLA drop the forward pass as
    dead code and times the backward alone (PyTorch's autograd always runs the forward).
    """
    def f(x, w, ct):
        y, vjp = jax.vjp(fn, x, w)
        return (y, *vjp(ct))
    return jax.jit(f)


def _nchw(a: np.ndarray) -> np.ndarray:
    """A writable C-contiguous copy (torch.from_numpy warns on read-only JAX buffers)."""
    return np.array(a, order="C", copy=True)


def _torch_conv_cands(torch, layer: ConvLayer, x: np.ndarray, w: np.ndarray, ct: np.ndarray):
    f = torch.nn.functional.conv2d
    # PyTorch's native layout: NCHW input, OIHW weight.
    tx = torch.from_numpy(_nchw(x.transpose(0, 3, 1, 2)))
    tw = torch.from_numpy(_nchw(w.transpose(3, 2, 0, 1)))
    tct = torch.from_numpy(_nchw(ct.transpose(0, 3, 1, 2)))
    kw = {"stride": layer.stride, "padding": layer.padding}

    def fwd():
        with torch.no_grad():
            return f(tx, tw, **kw)

    gx, gw = tx.clone().requires_grad_(True), tw.clone().requires_grad_(True)

    def fwd_bwd():
        y = f(gx, gw, **kw)
        return torch.autograd.grad(y, (gx, gw), tct)
    return fwd, fwd_bwd


def bench_conv(cfg: Config) -> list[dict[str, Any]]:
    """GFLOP/s of each contender on each layer, forward and forward+backward."""
    rows = []
    key = jax.random.key(1)
    for layer in cfg.layers:
        kx, kw, kc = jax.random.split(jax.random.fold_in(key, hash(layer.name) % 2**31), 3)
        n = cfg.batch
        x = jax.random.normal(kx, (n, layer.size, layer.size, layer.c_in), jnp.float32)
        w = jax.random.normal(kw, (layer.k, layer.k, layer.c_in, layer.c_out), jnp.float32)
        w = w * jnp.asarray(1.0 / math.sqrt(layer.k * layer.k * layer.c_in), jnp.float32)
        out = layer.out_size()
        ct = jax.random.normal(kc, (n, out, out, layer.c_out), jnp.float32)
        fns = {impl: _conv_fns(layer, impl) for impl in IMPLS}
        fns["flax"] = _flax_conv_fn(layer)
        fwd = {name: _jax_call(jax.jit(fn), x, w) for name, fn in fns.items()}
        fb = {name: _jax_call(_fwd_bwd(fn), x, w, ct) for name, fn in fns.items()}
        if cfg.torch is not None:
            fwd["torch"], fb["torch"] = _torch_conv_cands(
                cfg.torch, layer, np.asarray(x), np.asarray(w), np.asarray(ct))
        flops = layer.flops(n)
        t_f = measure(fwd, cfg.repeats)
        t_b = measure(fb, cfg.repeats)
        row = {"layer": layer.name,
               "shape": f"{n}x{layer.size}x{layer.size}x{layer.c_in} k{layer.k} "
                        f"s{layer.stride} p{layer.padding} -> {layer.c_out}",
               "gflop_fwd": flops / 1e9, "auto_impl": _auto_choice(x, w, layer),
               "fwd_ms": {k: v * 1e3 for k, v in t_f.items()},
               "fwd_bwd_ms": {k: v * 1e3 for k, v in t_b.items()},
               "fwd_gflops": {k: flops / v / 1e9 for k, v in t_f.items()},
               "fwd_bwd_gflops": {k: 3 * flops / v / 1e9 for k, v in t_b.items()}}
        row["auto_over_xla_fwd"] = t_f["xla"] / t_f["auto"]
        row["auto_over_xla_fwd_bwd"] = t_b["xla"] / t_b["auto"]
        if "torch" in t_b:
            row["auto_over_torch_fwd"] = t_f["torch"] / t_f["auto"]
            row["auto_over_torch_fwd_bwd"] = t_b["torch"] / t_b["auto"]
        rows.append(row)
        cfg.log(f"conv {layer.name}: fwd+bwd auto {row['fwd_bwd_ms']['auto']:.1f} ms, "
                f"xla {row['fwd_bwd_ms']['xla']:.1f} ms")
    return rows


def _auto_choice(x, w, layer: ConvLayer) -> str:
    """Which impl ``impl='auto'`` runs for this layer (reported next to its timing)."""
    return cnnjax.conv_impl(x.shape, w.shape, stride=layer.stride, padding=layer.padding)


def _pool_ops():
    """``name -> fn(x, key)`` for every pooling op the installed cnnjax provides."""
    gate = jnp.full((2, 2), 0.1, jnp.float32)
    half = (POOL_SHAPE[0] // 2, POOL_SHAPE[1] // 2)
    specs: dict[str, Callable] = {
        "max_pool": lambda op: lambda x, k: op(x, 2),
        "max_pool_with_indices": lambda op: lambda x, k: op(x, 2)[0],
        "avg_pool": lambda op: lambda x, k: op(x, 2),
        "sum_pool": lambda op: lambda x, k: op(x, 2),
        "lp_pool": lambda op: lambda x, k: op(x, 2, p=3.0),
        "l2_pool": lambda op: lambda x, k: op(x, 2),
        "mixed_pool": lambda op: lambda x, k: op(x, 2, alpha=0.5),
        "stochastic_mixed_pool": lambda op: lambda x, k: op(x, 2, alpha=0.5, train=True, key=k),
        "gated_pool": lambda op: lambda x, k: op(x, gate, 2),
        "stochastic_pool": lambda op: lambda x, k: op(x, 2, train=True, key=k),
        "spectral_pool": lambda op: lambda x, k: op(x, half),
        "adaptive_avg_pool": lambda op: lambda x, k: op(x, half),
        "adaptive_max_pool": lambda op: lambda x, k: op(x, half),
        "global_avg_pool": lambda op: lambda x, k: op(x),
        "global_max_pool": lambda op: lambda x, k: op(x),
    }
    ops, missing = {}, []
    for name, make in specs.items():
        op = getattr(cnnjax, name, None)
        if op is None:
            missing.append(name)
        else:
            ops[name] = make(op)
    ops["flax.linen.max_pool"] = lambda x, k: fnn.max_pool(x, (2, 2), (2, 2))
    return ops, missing


def bench_pool(cfg: Config) -> dict[str, Any]:
    """Every pooling op, forward and forward+backward, in ms and relative to ``max_pool``."""
    key = jax.random.key(2)
    x = jax.random.normal(key, (cfg.batch, *POOL_SHAPE), jnp.float32)
    ops, missing = _pool_ops()
    fwd, fb = {}, {}
    for name, fn in ops.items():
        y = jax.eval_shape(fn, x, key)
        ct = jnp.ones(y.shape, y.dtype)

        def vjp_fn(x, k, ct, fn=fn):  # returns y too, so the forward is not dead code
            y, vjp = jax.vjp(lambda x: fn(x, k), x)
            return (y, *vjp(ct))
        fwd[name] = _jax_call(jax.jit(fn), x, key)
        fb[name] = _jax_call(jax.jit(vjp_fn), x, key, ct)
    torch = cfg.torch
    if torch is not None:
        tx = torch.from_numpy(_nchw(np.asarray(x).transpose(0, 3, 1, 2)))
        gx = tx.clone().requires_grad_(True)
        tct = torch.ones(cfg.batch, POOL_SHAPE[2], POOL_SHAPE[0] // 2, POOL_SHAPE[1] // 2)

        def t_fwd():
            with torch.no_grad():
                return torch.nn.functional.max_pool2d(tx, 2)

        def t_fb():
            y = torch.nn.functional.max_pool2d(gx, 2)
            return torch.autograd.grad(y, (gx,), tct)
        fwd["torch max_pool2d"], fb["torch max_pool2d"] = t_fwd, t_fb
    t_f = measure(fwd, cfg.repeats)
    t_b = measure(fb, cfg.repeats)
    base_f, base_b = t_f.get("max_pool"), t_b.get("max_pool")
    rows = [{"op": name, "fwd_ms": t_f[name] * 1e3, "fwd_bwd_ms": t_b[name] * 1e3,
             "fwd_vs_max_pool": _ratio(t_f[name], base_f),
             "fwd_bwd_vs_max_pool": _ratio(t_b[name], base_b)} for name in fwd]
    cfg.log(f"pool: {len(rows)} ops")
    return {"shape": [cfg.batch, *POOL_SHAPE], "rows": rows, "missing": missing}


# ----------------------------------------------------------------- training steps


def _flax_model(name: str):
    """The same architecture as ``cnnjax.models.get(name)`` from plain ``flax.linen`` parts."""
    class PlainMnistNet(fnn.Module):
        @fnn.compact
        def __call__(self, x, *, train: bool):
            x = fnn.relu(fnn.Conv(32, (3, 3), padding="VALID")(x))
            x = fnn.relu(fnn.Conv(64, (3, 3), padding="VALID")(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.Dropout(0.25, broadcast_dims=(1, 2), deterministic=not train)(x)
            x = fnn.relu(fnn.Dense(128)(x.reshape(x.shape[0], -1)))
            x = fnn.Dropout(0.5, deterministic=not train)(x)
            return fnn.log_softmax(fnn.Dense(10)(x))

    class PlainLeNet5(fnn.Module):
        @fnn.compact
        def __call__(self, x, *, train: bool):
            x = fnn.relu(fnn.Conv(20, (5, 5), padding=[(2, 2), (2, 2)])(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.relu(fnn.Conv(50, (5, 5), padding=[(2, 2), (2, 2)])(x))
            x = fnn.max_pool(x, (2, 2), (2, 2))
            x = fnn.relu(fnn.Dense(500)(x.reshape(x.shape[0], -1)))
            return fnn.Dense(10)(x)

    return {"mnistnet": PlainMnistNet, "lenet5": PlainLeNet5}[name]()


def _torch_model(torch, name: str):
    nn = torch.nn
    if name == "mnistnet":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Dropout2d(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(128, 10), nn.LogSoftmax(dim=1))
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(2450, 500), nn.ReLU(), nn.Linear(500, 10))


class _JaxTrainer:
    """An Adam training step of a flax model, jitted with the state donated."""

    def __init__(self, model, x, y, learning_rate: float = 1e-3):
        key = jax.random.key(0)
        variables = model.init({"params": key, "dropout": key, "pool": key}, x, train=False)
        params = variables["params"]
        extra = {k: v for k, v in variables.items() if k != "params"}
        mutable = list(extra)
        tx = optax.adam(learning_rate)

        def loss_fn(params, extra, x, y, key):
            rngs = {"dropout": key, "pool": jax.random.fold_in(key, 1)}
            if mutable:
                logits, new_extra = model.apply({"params": params, **extra}, x, train=True,
                                                rngs=rngs, mutable=mutable)
            else:
                logits, new_extra = model.apply({"params": params}, x, train=True,
                                                rngs=rngs), extra
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, new_extra

        def step(state, x, y, key):
            params, extra, opt_state = state
            (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, extra, x, y, key)
            # optax mixes weak Python floats with int32 step counts, which strict dtype
            # promotion (as in the test suite) rejects; the arrays stay float32 either way.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = tx.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            return (params, extra, opt_state), loss

        self.state = (params, extra, tx.init(params))
        self.args = (x, y, key)
        # Compiled once ahead of time: the same executable is timed and its memory reported.
        self.step = jax.jit(step, donate_argnums=0).lower(self.state, *self.args).compile()

    def memory(self) -> dict[str, float] | None:
        """XLA's compiled memory statistics of the step, in MB (``None`` if unavailable)."""
        stats = self.step.memory_analysis()
        if stats is None:
            return None
        mb = 1 / 2**20
        args, out = stats.argument_size_in_bytes * mb, stats.output_size_in_bytes * mb
        temp, alias = stats.temp_size_in_bytes * mb, stats.alias_size_in_bytes * mb
        return {"arguments_mb": args, "outputs_mb": out, "temp_mb": temp, "alias_mb": alias,
                "peak_mb": args + out - alias + temp}

    def __call__(self):
        self.state, loss = self.step(self.state, *self.args)
        return _block(loss)


def _torch_trainer(torch, name: str, x: np.ndarray, y: np.ndarray):
    torch.manual_seed(0)
    model = _torch_model(torch, name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tx = torch.from_numpy(_nchw(x.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(tx), ty)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def _train_inputs(batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return x, y


def bench_train(cfg: Config, with_memory: bool) -> dict[str, Any]:
    """Training-step ms of each contender per model, BN fold eval, memory statistics."""
    x_np, y_np = _train_inputs(cfg.batch)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    rows, memory, profiles = [], [], {}
    for name in cfg.models:
        trainers = {"cnnjax": _JaxTrainer(cnnjax.models.get(name, num_classes=10), x, y),
                    "cnnjax[xla]": _JaxTrainer(
                        cnnjax.models.get(name, num_classes=10, impl="xla"), x, y),
                    "flax": _JaxTrainer(_flax_model(name), x, y)}
        cands: dict[str, Callable] = dict(trainers)
        if cfg.torch is not None:
            cands["torch"] = _torch_trainer(cfg.torch, name, x_np, y_np)
        if "train" in cfg.suites:
            t = measure(cands, cfg.repeats, warmup=2)
            row = {"model": name, "batch": cfg.batch, "ms": {k: v * 1e3 for k, v in t.items()},
                   "flax_over_cnnjax": t["flax"] / t["cnnjax"],
                   "xla_over_cnnjax": t["cnnjax[xla]"] / t["cnnjax"]}
            if "torch" in t:
                row["cnnjax_over_torch"] = t["cnnjax"] / t["torch"]
                row["flax_over_torch"] = t["flax"] / t["torch"]
            rows.append(row)
            cfg.log(f"train {name}: cnnjax {row['ms']['cnnjax']:.1f} ms/step")
        if cfg.profile:
            profiles[name] = profile_step(trainers["cnnjax"], cfg)
            cfg.log(f"profiled {name}")
        if with_memory:
            for label, trainer in trainers.items():
                stats = trainer.memory()
                if stats is not None:
                    memory.append({"model": name, "variant": label, **stats})
    out: dict[str, Any] = {"rows": rows, "memory": memory}
    if profiles:
        out["profile"] = profiles
    if "train" in cfg.suites:
        out["bn_fold"] = bench_bn_fold(cfg)
    return out


_OP_NAME = re.compile(r'^\s*(?:ROOT )?%?([\w.\-]+) = .*?op_name="([^"]*)"')


def _hlo_op_names(hlo_text: str) -> dict[str, str]:
    """HLO instruction name -> the JAX op it came from (``op_name`` metadata)."""
    names = {}
    for line in hlo_text.splitlines():
        m = _OP_NAME.match(line)
        if m:
            names[m.group(1)] = m.group(2).removeprefix("jit(step)/")
    return names


def _layer_of(op_name: str) -> str:
    """A readable bucket for an op: ``'fwd Conv_1'``, ``'bwd Dense_0'``, ``'optimizer'``..."""
    phase = "bwd" if "transpose(" in op_name else "fwd"
    m = re.search(r"\b((?:Conv|Dense|ConvBN|MaxPool|AvgPool|Pool|Dropout|ReLU|Flatten|LogSoftmax)\w*)/", op_name)
    if m:
        return f"{phase} {m.group(1)}"
    if any(t in op_name for t in ("pool", "reduce_window", "max_pool")):
        return f"{phase} pooling"
    if phase == "fwd" and "jvp(" not in op_name:
        return "optimizer / loss"
    return f"{phase} other"


def profile_step(trainer: _JaxTrainer, cfg: Config, steps: int = 5, top: int = 12
                 ) -> dict[str, Any]:
    """Where one training step's time goes: an XLA profiler trace, per op and per layer.

    Runs ``steps`` steps under ``jax.profiler.trace`` (Perfetto JSON), sums the duration of
    every executed XLA thunk and maps it back to the JAX op that produced it through the
    compiled HLO's ``op_name`` metadata. Thunks run concurrently on the CPU's threads, so the
    per-op sum can exceed the wall time of a step; the shares are what matter.
    """
    names = _hlo_op_names(trainer.step.as_text())
    for _ in range(2):
        trainer()
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            for _ in range(steps):
                trainer()
        files = glob.glob(os.path.join(tmp, "**", "*.json.gz"), recursive=True)
        if not files:
            return {"error": "the profiler wrote no Perfetto trace"}
        with gzip.open(files[0]) as f:
            trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    per_op: dict[str, float] = {}
    for e in events:
        base = str(e.get("name", "")).removeprefix("end: ")
        if e.get("ph") == "X" and base in names and not str(e["name"]).startswith("end: "):
            per_op[base] = per_op.get(base, 0.0) + e.get("dur", 0) / 1e3 / steps
    per_layer: dict[str, float] = {}
    for op, ms in per_op.items():
        layer = _layer_of(names[op])
        per_layer[layer] = per_layer.get(layer, 0.0) + ms
    total = sum(per_op.values())
    ops = sorted(per_op.items(), key=lambda kv: -kv[1])[:top]
    return {"thunk_ms_per_step": total,
            "layers": dict(sorted(per_layer.items(), key=lambda kv: -kv[1])),
            "ops": [{"hlo": op, "op_name": names[op], "ms": ms} for op, ms in ops]}


def bench_bn_fold(cfg: Config) -> dict[str, Any]:
    """Eval of ResNet-20 (BN after every conv) with the batch norms folded vs unfolded."""
    model = cnnjax.models.get("resnet20", num_classes=10)
    key = jax.random.key(3)
    x = jax.random.normal(key, (cfg.batch, 32, 32, 3), jnp.float32)
    variables = model.init(key, x[:1], train=False)
    # Non-trivial running statistics, so the fold is checked on a real affine map.
    variables = jax.tree_util.tree_map_with_path(_perturb_stats, variables)
    folded_model, folded_vars = cnnjax.models.fold_batch_norms(model, variables)
    unfolded = jax.jit(lambda v, x: model.apply(v, x, train=False))
    folded = jax.jit(lambda v, x: folded_model.apply(v, x, train=False))
    t = measure({"unfolded": _jax_call(unfolded, variables, x),
                 "folded": _jax_call(folded, folded_vars, x)}, cfg.repeats)
    diff = float(jnp.max(jnp.abs(unfolded(variables, x) - folded(folded_vars, x))))
    cfg.log(f"bn fold: unfolded {t['unfolded'] * 1e3:.1f} ms, folded {t['folded'] * 1e3:.1f} ms")
    return {"model": "resnet20", "batch": cfg.batch, "unfolded_ms": t["unfolded"] * 1e3,
            "folded_ms": t["folded"] * 1e3, "speedup": t["unfolded"] / t["folded"],
            "max_abs_logit_diff": diff}


def _perturb_stats(path, leaf):
    names = [getattr(p, "key", "") for p in path]
    if "batch_stats" in names and names[-1] in ("mean", "var"):
        idx = jnp.arange(leaf.shape[-1], dtype=leaf.dtype) / leaf.shape[-1]
        return leaf + idx if names[-1] == "var" else leaf + (idx - 0.5)
    return leaf


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
        t_f = measure({i: _jax_call(jax.jit(f), x, w) for i, f in fns.items()}, cfg.repeats)
        t_b = measure({i: _jax_call(_fwd_bwd(f), x, w, ct) for i, f in fns.items()},
                      cfg.repeats)
        rows.append({"kernel": k, "shape": f"{n}x{FFT_SIZE}x{FFT_SIZE}x{FFT_CHANNELS} -> "
                                           f"{FFT_CHANNELS}",
                     "auto_impl": _auto_choice(x, w, layer),
                     "fwd_ms": {i: v * 1e3 for i, v in t_f.items()},
                     "fwd_bwd_ms": {i: v * 1e3 for i, v in t_b.items()},
                     "fft_over_xla_fwd": t_f["xla"] / t_f["fft"],
                     "fft_over_xla_fwd_bwd": t_b["xla"] / t_b["fft"]})
        cfg.log(f"fft k={k}: fwd xla {t_f['xla'] * 1e3:.1f} ms, fft {t_f['fft'] * 1e3:.1f} ms")
    return rows


# --------------------------------------------------------------------------- report


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The benchmark result as Markdown tables (what ``cnnjax bench`` prints)."""
    meta = result["meta"]
    out = [f"cnnjax bench — {meta['date']}, jax {meta['jax']} ({meta['backend']}), "
           f"{meta['cores']} cores, {meta['cpu']}, torch {meta['torch'] or 'absent'}, "
           f"batch {meta['batch']}, median of {meta['repeats']} interleaved runs"
           + (f", glibc malloc tuned ({' '.join(f'{k}={v}' for k, v in meta['malloc_env'].items())})"
              if meta.get("malloc_env") else ""), ""]
    for note in result["notes"]:
        out.append(f"> note: {note}")
    if result["notes"]:
        out.append("")
    mm = result.get("matmul")
    if mm:
        out.append(f"Matmul peak (float32, {mm['jax_size']}²): jax {_fmt(mm['jax_gflops'])} "
                   f"GFLOP/s, torch {_fmt(mm['torch_gflops'])} GFLOP/s.")
        out.append("")
    conv = result.get("conv")
    if conv:
        peak = (mm or {}).get("jax_gflops")
        names = [*IMPLS, "flax"] + (["torch"] if "torch" in conv[0]["fwd_ms"] else [])
        for phase, key in (("forward+backward", "fwd_bwd"), ("forward", "fwd")):
            out.append(f"### Conv layers, {phase} — GFLOP/s (higher is better)")
            rows = []
            for r in conv:
                g = r[f"{key}_gflops"]
                rows.append([r["layer"], r["shape"], r["auto_impl"],
                             *(_fmt(g[n]) for n in names),
                             _fmt(r[f"auto_over_xla_{key}"], 2) + "×",
                             _fmt(r.get(f"auto_over_torch_{key}"), 2) + "×",
                             _fmt(_ratio(g["auto"], peak) and 100 * g["auto"] / peak, 0) + "%"])
            gm = [_geomean([r[f"{key}_gflops"][n] for r in conv]) for n in names]
            rows.append(["geometric mean", "", "", *(_fmt(v) for v in gm),
                         _fmt(_geomean([r[f"auto_over_xla_{key}"] for r in conv]), 2) + "×",
                         _fmt(_geomean([r.get(f"auto_over_torch_{key}") for r in conv]), 2)
                         + "×", ""])
            out.append(_table(["layer", "shape", "auto→", *names, "auto/xla", "auto/torch",
                               "auto/peak"], rows))
            out.append("")
    pool = result.get("pool")
    if pool:
        out.append(f"### Pooling, {'x'.join(map(str, pool['shape']))}, 2×2 — ms and ratio to "
                   "max_pool (lower is better)")
        out.append(_table(["op", "fwd ms", "fwd+bwd ms", "fwd ×max_pool", "fwd+bwd ×max_pool"],
                          [[r["op"], _fmt(r["fwd_ms"], 2), _fmt(r["fwd_bwd_ms"], 2),
                            _fmt(r["fwd_vs_max_pool"], 2), _fmt(r["fwd_bwd_vs_max_pool"], 2)]
                           for r in pool["rows"]]))
        if pool["missing"]:
            out.append(f"\nNot available in this cnnjax: {', '.join(pool['missing'])}.")
        out.append("")
    train = result.get("train")
    if train and train["rows"]:
        names = list(train["rows"][0]["ms"])
        out.append("### Training step (Adam) — ms/step (lower is better)")
        out.append(_table(
            ["model", "batch", *names, "flax/cnnjax", "cnnjax/torch"],
            [[r["model"], str(r["batch"]), *(_fmt(r["ms"][n]) for n in names),
              _fmt(r["flax_over_cnnjax"], 2) + "×", _fmt(r.get("cnnjax_over_torch"), 2) + "×"]
             for r in train["rows"]]))
        out.append("")
    if train and train.get("bn_fold"):
        b = train["bn_fold"]
        out.append("### Eval with batch norm folded into the convs")
        out.append(_table(["model", "batch", "unfolded ms", "folded ms", "speedup",
                           "max |Δlogit|"],
                          [[b["model"], str(b["batch"]), _fmt(b["unfolded_ms"]),
                            _fmt(b["folded_ms"]), _fmt(b["speedup"], 2) + "×",
                            f"{b['max_abs_logit_diff']:.1e}"]]))
        out.append("")
    for model, prof in ((train or {}).get("profile") or {}).items():
        if "layers" not in prof:
            continue
        total = prof["thunk_ms_per_step"] or 1.0
        out.append(f"### Where the cnnjax {model} step goes (XLA profiler, ms/step summed over "
                   f"threads, total {prof['thunk_ms_per_step']:.1f})")
        out.append(_table(["part", "ms", "share"],
                          [[k, _fmt(v), f"{100 * v / total:.0f}%"]
                           for k, v in prof["layers"].items()]))
        out.append("")
        out.append(_table(["top XLA op", "from", "ms"],
                          [[o["hlo"], o["op_name"][-70:].replace("|", "/"), _fmt(o["ms"])]
                           for o in prof["ops"]]))
        out.append("")
    if train and train.get("memory"):
        out.append("### Training-step memory (XLA compiled statistics, MB)")
        out.append(_table(["model", "variant", "arguments", "outputs", "temp", "peak"],
                          [[m["model"], m["variant"], _fmt(m["arguments_mb"]),
                            _fmt(m["outputs_mb"]), _fmt(m["temp_mb"]), _fmt(m["peak_mb"])]
                           for m in train["memory"]]))
        out.append("")
    fft = result.get("fft")
    if fft:
        out.append(f"### FFT check, {fft[0]['shape']} — ms (lower is better)")
        rows = [[str(r["kernel"]), r["auto_impl"],
                 *(_fmt(r["fwd_ms"][i]) for i in IMPLS),
                 *(_fmt(r["fwd_bwd_ms"][i]) for i in IMPLS),
                 _fmt(r["fft_over_xla_fwd"], 2) + "×", _fmt(r["fft_over_xla_fwd_bwd"], 2) + "×"]
                for r in fft]
        out.append(_table(["k", "auto→", *(f"fwd {i}" for i in IMPLS),
                           *(f"f+b {i}" for i in IMPLS), "xla/fft fwd", "xla/fft f+b"], rows))
        out.append("")
    checks = result.get("targets", [])  # computed once, in benchmark()
    if checks:
        out.append("### Issue 6 targets")
        if meta["batch"] != 128:
            out.append(f"(The targets are defined at batch 128; this run used batch "
                       f"{meta['batch']}.)\n")
        out.append(_table(["target", "measured", "met"],
                          [[c["target"], c["measured"], "yes" if c["met"] else "**no**"]
                           for c in checks]))
        out.append("")
    out.append(f"Total benchmark time {meta['seconds']:.0f} s.")
    return "\n".join(out)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The speed targets of issue 6, checked against this run's measurements."""
    checks = []
    train = result.get("train") or {}
    for r in train.get("rows", []):
        if "cnnjax_over_torch" in r:
            v = r["cnnjax_over_torch"]
            checks.append({"target": f"{r['model']} step ≤ 1.0× PyTorch's time",
                           "measured": f"{v:.2f}×", "met": v <= 1.0})
        v = r["flax_over_cnnjax"]
        checks.append({"target": f"{r['model']} step ≥ 3× faster than plain Flax",
                       "measured": f"{v:.2f}×", "met": v >= 3.0})
    conv = result.get("conv") or []
    if conv:
        ratios = [r["auto_over_xla_fwd_bwd"] for r in conv]
        gm = _geomean(ratios)
        checks.append({"target": "conv fwd+bwd, 'auto' over 'xla', geometric mean ≥ 3×",
                       "measured": f"{gm:.2f}×", "met": gm >= 3.0})
        worst = min(conv, key=lambda r: r["auto_over_xla_fwd_bwd"])
        v = worst["auto_over_xla_fwd_bwd"]
        checks.append({"target": "no conv layer fwd+bwd slower than 'xla' by > 5%",
                       "measured": f"worst {worst['layer']} {v:.2f}×", "met": v >= 1 / 1.05})
    for r in result.get("fft") or []:
        if r["kernel"] >= 11:
            ok = r["fft_over_xla_fwd"] > 1 and r["fft_over_xla_fwd_bwd"] > 1
            checks.append({"target": f"k={r['kernel']} on 64×64: 'fft' faster than 'xla'",
                           "measured": f"fwd {r['fft_over_xla_fwd']:.2f}×, fwd+bwd "
                                       f"{r['fft_over_xla_fwd_bwd']:.2f}×", "met": ok})
            checks.append({"target": f"k={r['kernel']} on 64×64: 'auto' uses 'fft'",
                           "measured": r["auto_impl"], "met": r["auto_impl"] == "fft"})
    fold = train.get("bn_fold")
    if fold:
        checks.append({"target": "folded-BN eval faster than unfolded",
                       "measured": f"{fold['speedup']:.2f}×", "met": fold["speedup"] > 1.0})
    return checks


# --------------------------------------------------------------------------- CLI


@dataclasses.dataclass
class Config:
    """Resolved options of one benchmark run."""

    suites: tuple[str, ...]
    batch: int
    repeats: int
    quick: bool
    layers: tuple[ConvLayer, ...]
    models: tuple[str, ...]
    fft_kernels: tuple[int, ...]
    torch: Any
    verbose: bool
    profile: bool = False

    def log(self, message: str) -> None:
        """Progress messages go to stderr (``--verbose``), the tables to stdout."""
        if self.verbose:
            sys.stderr.write(f"[bench] {message}\n")
            sys.stderr.flush()


def _csv(choices: Sequence[str] | None = None):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(s.strip() for s in text.split(",") if s.strip())
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        bad = [s for s in items if choices is not None and s not in choices]
        if bad:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad)}; choose from {', '.join(choices)}")
        return items
    return parse


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return v


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Adds the ``cnnjax bench`` options to ``parser``."""
    parser.description = (
        "Benchmark cnnjax on this machine, every contender side by side in one run: the conv "
        "layers of LeNet5/MnistNet/VGG/ResNet-20 per impl vs Flax and PyTorch, every pooling "
        "op, training steps vs plain Flax and PyTorch, BN folding, memory, FFT convs. Prints "
        "Markdown tables (medians of interleaved timed runs after warm-up).")
    parser.add_argument("--suite", type=_csv(SUITES), default=SUITES, metavar="NAME,...",
                        help=f"suites to run, from {','.join(SUITES)} (default: all)")
    parser.add_argument("--repeats", type=_positive, default=None, metavar="N",
                        help="timed runs per contender (default: 5, --quick: 3)")
    parser.add_argument("--batch", type=_positive, default=None, metavar="N",
                        help="batch size (default: 128, --quick: 16)")
    parser.add_argument("--json", default=None, metavar="PATH",
                        help="also write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true",
                        help="a small configuration: 2 conv layers, MnistNet only, kernels 3 and 11 "
                             "in the FFT check, batch 16, 3 repeats")
    parser.add_argument("--layers", type=_csv(), default=None, metavar="TEXT,...",
                        help="only conv layers whose name contains one of these "
                             "(e.g. mnistnet,vgg11.conv3)")
    parser.add_argument("--models", type=_csv(TRAIN_MODELS), default=TRAIN_MODELS,
                        metavar="NAME,...", help="training-step models (default: all)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch rows even when torch is installed")
    parser.add_argument("--profile", action="store_true",
                        help="with the train suite: profile the cnnjax training steps with "
                             "the XLA profiler and report the time per layer and top ops")
    parser.add_argument("--verbose", action="store_true", help="log progress")


def make_config(args: argparse.Namespace) -> Config:
    """Resolves parsed arguments (defaults depend on ``--quick``)."""
    quick = bool(args.quick)
    layers = CONV_LAYERS
    if args.layers:
        layers = tuple(l for l in CONV_LAYERS if any(p in l.name for p in args.layers))
    elif quick:
        layers = tuple(l for l in CONV_LAYERS if l.name in QUICK_LAYERS)
    torch = None if args.no_torch else _torch()
    if torch is not None:
        torch.set_num_threads(_cores())
    return Config(
        suites=tuple(args.suite), batch=args.batch or (16 if quick else 128),
        repeats=args.repeats or (3 if quick else 5), quick=quick, layers=layers,
        models=("mnistnet",) if quick and args.models == TRAIN_MODELS else tuple(args.models),
        fft_kernels=(3, 11) if quick else FFT_KERNELS,
        torch=torch, verbose=bool(getattr(args, "verbose", False)),
        profile=bool(getattr(args, "profile", False)))


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def benchmark(cfg: Config) -> dict[str, Any]:
    """Runs the configured suites; returns the JSON-able result."""
    t0 = time.perf_counter()
    notes = []
    if cfg.torch is None:
        notes.append("PyTorch rows skipped (torch not installed or --no-torch).")
    result: dict[str, Any] = {"notes": notes}
    if "conv" in cfg.suites:
        result["matmul"] = bench_matmul(cfg)
        result["conv"] = bench_conv(cfg)
    if "pool" in cfg.suites:
        result["pool"] = bench_pool(cfg)
    if "train" in cfg.suites or "memory" in cfg.suites:
        result["train"] = bench_train(cfg, with_memory="memory" in cfg.suites)
    if "fft" in cfg.suites:
        result["fft"] = bench_fft(cfg)
    result["targets"] = targets(result)
    result["meta"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "jax": jax.__version__, "backend": jax.default_backend(), "cores": _cores(),
        "cpu": _cpu_name(), "torch": None if cfg.torch is None else cfg.torch.__version__,
        "batch": cfg.batch, "repeats": cfg.repeats, "suites": list(cfg.suites),
        "malloc_env": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
        "seconds": time.perf_counter() - t0}
    return result


def run(args: argparse.Namespace) -> int:
    """Runs ``cnnjax bench`` with parsed ``args``; prints Markdown, optionally writes JSON."""
    cfg = make_config(args)
    result = benchmark(cfg)
    sys.stdout.write(markdown(result) + "\n")
    sys.stdout.flush()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry point (``python -m cnnjax.bench``)."""
    parser = argparse.ArgumentParser(prog="cnnjax bench")
    configure_parser(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
