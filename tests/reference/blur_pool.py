"""Slow NumPy references for blur pooling and max-blur pooling (Zhang 2019), from the
definitions: binomial taps from Pascal's triangle, explicit padding by index mapping, one
output at a time. Nothing here is shared with ``cnnjax.ops``."""
from __future__ import annotations

import itertools

import numpy as np

from tests.reference.pool import tup


def binomial(k):
    """Row k−1 of Pascal's triangle, normalised to sum 1."""
    row = [1]
    for _ in range(k - 1):
        row = [a + b for a, b in zip([0] + row, row + [0])]
    return np.array(row, np.float64) / sum(row)


def padded_index(i, n, mode):
    """The input index that position i (possibly outside [0, n)) reads, or None for a zero."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return 0 if i < 0 else n - 1
    if mode == "circular":
        return i % n
    # reflect about the edge samples (the edge is not repeated), again and again as np.pad
    if n == 1:
        return 0
    while not 0 <= i < n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def blur_pool(x, window_shape=3, strides=2, padding_mode="reflect", output_shape=None):
    """y[n, o, c] = Σ_t Π_i b_i[t_i] · x[n, idx(o·s + t − ⌊(k−1)/2⌋), c]; natural output size
    ⌊(n−1)/s⌋+1 unless output_shape is given (extra outputs read further into the padding)."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    k = tup(window_shape, d)
    s = tup(strides, d)
    out = output_shape or tuple((n - 1) // si + 1 for n, si in zip(spatial, s))
    taps = [binomial(ki) for ki in k]
    y = np.zeros((x.shape[0], *out, x.shape[-1]))
    for o in itertools.product(*[range(v) for v in out]):
        acc = np.zeros((x.shape[0], x.shape[-1]))
        for t in itertools.product(*[range(v) for v in k]):
            idx = [padded_index(o[i] * s[i] + t[i] - (k[i] - 1) // 2, spatial[i], padding_mode)
                   for i in range(d)]
            if any(j is None for j in idx):
                continue
            w = np.prod([taps[i][t[i]] for i in range(d)])
            acc += w * x[(slice(None), *idx, slice(None))]
        y[(slice(None), *o, slice(None))] = acc
    return y


def dense_max(x, window_shape, padding=0):
    """Stride-1 max pooling with symmetric integer padding (or (lo, hi) pairs) of −∞."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    k = tup(window_shape, d)
    pads = [(p, p) if isinstance(p, int) else tuple(p) for p in
            ([padding] * d if isinstance(padding, int) else padding)]
    out = tuple(n + lo + hi - ki + 1 for n, ki, (lo, hi) in zip(spatial, k, pads))
    y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf)
    for o in itertools.product(*[range(v) for v in out]):
        for t in itertools.product(*[range(v) for v in k]):
            idx = [o[i] + t[i] - pads[i][0] for i in range(d)]
            if all(0 <= j < n for j, n in zip(idx, spatial)):
                sl = (slice(None), *o, slice(None))
                y[sl] = np.maximum(y[sl], x[(slice(None), *idx, slice(None))])
    return y


def max_blur_pool(x, window_shape=2, strides=2, filter_size=3, padding_mode="reflect",
                  padding=0):
    return blur_pool(dense_max(x, window_shape, padding), filter_size, strides, padding_mode)
