"""Slow NumPy references for min and median pooling, written from the definitions.

One window at a time: the positions ``o·stride + k - lo`` of the input. Min pooling counts
positions outside the input as +inf; median pooling first pads the input with
``numpy.pad`` in the requested mode and sorts each window's values. Nothing here is shared
with ``cnnjax``.
"""
from __future__ import annotations

import itertools

import numpy as np

from tests.reference.pool import out_size, pads_of, tup

NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                  "circular": "wrap"}


def min_pool(x, window, strides=None, padding="VALID", ceil_mode=False):
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    window = tup(window, d)
    strides = tup(strides, d) or window
    pads = pads_of(padding, spatial, window, strides)
    outs = [out_size(n, k, s, lo, hi, 1, ceil_mode)
            for n, k, s, (lo, hi) in zip(spatial, window, strides, pads)]
    y = np.zeros((x.shape[0], *outs, x.shape[-1]))
    for o in itertools.product(*map(range, outs)):
        for b in range(x.shape[0]):
            for c in range(x.shape[-1]):
                best = np.inf
                for k in itertools.product(*map(range, window)):
                    pos = tuple(o[i] * strides[i] + k[i] - pads[i][0] for i in range(d))
                    if all(0 <= p < n for p, n in zip(pos, spatial)):
                        best = min(best, x[(b, *pos, c)])
                y[(b, *o, c)] = best
    return y


def median_windows(x, window, strides=None, padding="VALID", padding_mode="reflect"):
    """Yields (index of the output, the window's values in row-major order, and the
    flat input index each value came from) — the "selected element" of the gradient."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    window = tup(window, d)
    strides = tup(strides, d) or window
    pads = pads_of(padding, spatial, window, strides)
    widths = [(0, 0), *pads, (0, 0)]
    xpad = np.pad(x, widths, mode=NUMPY_PAD_MODE[padding_mode])
    # Where each padded position's value comes from (the same padding applied to indices).
    index = np.arange(x.size).reshape(x.shape)
    source = (np.pad(index, widths, constant_values=-1) if padding_mode == "zeros"
              else np.pad(index, widths, mode=NUMPY_PAD_MODE[padding_mode]))
    outs = [out_size(n, k, s, lo, hi) for n, k, s, (lo, hi) in zip(spatial, window, strides,
                                                                       pads)]
    for o in itertools.product(*map(range, outs)):
        for b in range(x.shape[0]):
            for c in range(x.shape[-1]):
                vals, srcs = [], []
                for k in itertools.product(*map(range, window)):
                    pos = (b, *(o[i] * strides[i] + k[i] for i in range(d)), c)
                    vals.append(xpad[pos])
                    srcs.append(source[pos])
                yield (b, *o, c), outs, vals, srcs


def median_pool(x, window, strides=None, padding="VALID", padding_mode="reflect"):
    """Lower median: element (K-1)//2 of the K sorted window values (NaN if any is NaN)."""
    y = None
    for idx, outs, vals, _ in median_windows(x, window, strides, padding, padding_mode):
        if y is None:
            y = np.zeros((np.shape(x)[0], *outs, np.shape(x)[-1]))
        y[idx] = np.nan if np.any(np.isnan(vals)) else sorted(vals)[(len(vals) - 1) // 2]
    return y


def median_pool_grad(x, cotangent, window, strides=None, padding="VALID",
                     padding_mode="reflect"):
    """d/dx of sum(cotangent · median_pool(x)): each output's cotangent goes to the first
    window element (row-major) equal to the median, then to the input it was copied from
    (padding zeros are constants)."""
    g = np.zeros(np.size(x))
    for idx, _, vals, srcs in median_windows(x, window, strides, padding, padding_mode):
        med = sorted(vals)[(len(vals) - 1) // 2]
        j = next(j for j, v in enumerate(vals) if v == med)
        if srcs[j] >= 0:
            g[srcs[j]] += cotangent[idx]
    return g.reshape(np.shape(x))
