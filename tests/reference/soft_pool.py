"""Slow NumPy references for SoftPool (Stergiou et al. 2021) and LIP (Gao et al. 2019),
straight from the definition y = Σ e^{ℓ_j} x_j / Σ e^{ℓ_j} over the window positions inside
the input (moderate logits only: no shift, so large ones overflow). Nothing here is shared
with ``cnnjax.ops``."""
from __future__ import annotations

import itertools

import numpy as np

from tests.reference.pool import out_size, pads_of, tup


def windows(spatial, window, strides=None, padding="VALID"):
    """Yields (output index, list of in-input positions of its window), and the output shape
    first (as a sentinel (None, out_shape))."""
    d = len(spatial)
    window = tup(window, d)
    strides = tup(strides, d) or window
    pads = pads_of(padding, spatial, window, strides)
    out = tuple(out_size(n, k, s, lo, hi) for n, k, s, (lo, hi) in
                zip(spatial, window, strides, pads))
    yield None, out
    for o in itertools.product(*[range(v) for v in out]):
        positions = []
        for k in itertools.product(*[range(v) for v in window]):
            pos = tuple(o[i] * strides[i] + k[i] - pads[i][0] for i in range(d))
            if all(0 <= p < n for p, n in zip(pos, spatial)):
                positions.append(pos)
        yield o, positions


def window_op(x, window, strides, padding, fn, *extra):
    """y[n, o, c] = fn(values, *extra values, c) over the in-input window positions (0 if none)."""
    x = np.asarray(x, np.float64)
    extra = [np.asarray(e, np.float64) for e in extra]
    gen = windows(x.shape[1:-1], window, strides, padding)
    _, out = next(gen)
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o, positions in gen:
        if not positions:
            continue
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                vals = np.array([x[(n, *p, c)] for p in positions])
                more = [np.array([e[(n, *p, c)] for p in positions]) for e in extra]
                y[(n, *o, c)] = fn(vals, *more, c)
    return y


def lip_pool(x, logits, window, strides=None, padding="VALID"):
    def weighted(v, lg, c):
        w = np.exp(lg)
        return np.sum(w * v) / np.sum(w)
    return window_op(x, window, strides, padding, weighted, logits)


def soft_pool(x, window, strides=None, padding="VALID"):
    def soft(v, c):
        return np.sum(np.exp(v) * v) / np.sum(np.exp(v))
    return window_op(x, window, strides, padding, soft)


def mean_pool(x, window, strides=None, padding="VALID"):
    return window_op(x, window, strides, padding, lambda v, c: np.mean(v))


def max_pool(x, window, strides=None, padding="VALID"):
    return window_op(x, window, strides, padding, lambda v, c: np.max(v))
