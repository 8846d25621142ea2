"""Slow NumPy references for the pooling family, written straight from the definitions.

Every function loops over examples, output positions and channels and looks at one window
at a time: the positions ``o·stride + k·dilation - lo`` of the unpadded input, some of which
fall in the padding (or past it, for ``ceil_mode``). Nothing here is shared with
``cnnjax.ops``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def tup(v, d):
    """An int or a sequence as a d-tuple (None stays None)."""
    if v is None:
        return None
    return (v,) * d if isinstance(v, (int, np.integer)) else tuple(v)


def pads_of(padding, spatial, window, strides, dilation=None):
    """(lo, hi) pairs for 'VALID', 'SAME' (XLA: out = ceil(n/s), odd extra on the high side),
    an int, d ints or d pairs."""
    d = len(spatial)
    dilation = dilation or (1,) * d
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return [(0, 0)] * d
        pairs = []
        for n, k, s, r in zip(spatial, window, strides, dilation):
            out = math.ceil(n / s)
            total = max((out - 1) * s + (k - 1) * r + 1 - n, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    if isinstance(padding, int):
        return [(padding, padding)] * d
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def out_size(n, k, s, lo, hi, r=1, ceil_mode=False):
    """PyTorch's pooling_output_shape."""
    span = n + lo + hi - r * (k - 1) - 1
    if ceil_mode:
        o = -(-span // s) + 1
        if (o - 1) * s >= n + lo:
            o -= 1
        return o
    return span // s + 1


def _windows(spatial, window, strides, pads, dilation, ceil_mode):
    """Yields (out_index, [(k_index, input_position, where)]) with where in
    {'in', 'pad', 'over'} (inside the input, in the user padding, past the padding)."""
    d = len(spatial)
    outs = [out_size(n, k, s, lo, hi, r, ceil_mode)
            for n, k, s, (lo, hi), r in zip(spatial, window, strides, pads, dilation)]
    for o in itertools.product(*[range(v) for v in outs]):
        items = []
        for k in itertools.product(*[range(v) for v in window]):
            pos = tuple(o[i] * strides[i] + k[i] * dilation[i] - pads[i][0] for i in range(d))
            if all(0 <= p < n for p, n in zip(pos, spatial)):
                where = "in"
            elif all(-lo <= p < n + hi for p, n, (lo, hi) in zip(pos, spatial, pads)):
                where = "pad"
            else:
                where = "over"
            items.append((k, pos, where))
        yield o, outs, items


def pool(x, kind, window, strides=None, padding="VALID", dilation=None, ceil_mode=False,
         count_include_pad=True):
    """kind in 'max', 'avg', 'sum', 'argmax' (PyTorch flat index of the first maximum)."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    window = tup(window, d)
    strides = tup(strides, d) or window
    dilation = tup(dilation, d) or (1,) * d
    pads = pads_of(padding, spatial, window, strides, dilation)
    result = None
    for o, outs, items in _windows(spatial, window, strides, pads, dilation, ceil_mode):
        if result is None:
            result = np.zeros((x.shape[0], *outs, x.shape[-1]))
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                vals = [x[(n, *pos, c)] for _, pos, w in items if w == "in"]
                flat = [int(np.ravel_multi_index(pos, spatial)) for _, pos, w in items
                        if w == "in"]
                if kind == "max":
                    v = max(vals) if vals else -np.inf
                elif kind == "argmax":
                    v = flat[int(np.argmax(vals))]
                elif kind == "sum":
                    v = sum(vals)
                elif kind == "avg":
                    counted = sum(1 for _, _, w in items
                                  if w == "in" or (w == "pad" and count_include_pad))
                    v = sum(vals) / counted if counted else 0.0
                else:
                    raise ValueError(kind)
                result[(n, *o, c)] = v
    return result


def unpool(y, indices, spatial):
    y = np.asarray(y)
    out = np.zeros((y.shape[0], int(np.prod(spatial)), y.shape[-1]))
    for idx in np.ndindex(*y.shape):
        n, c = idx[0], idx[-1]
        out[n, indices[idx], c] = y[idx]
    return out.reshape(y.shape[0], *spatial, y.shape[-1])


def gaussian_window(window, sigma=None):
    """Separable Gaussian centred on the window, std sigma (default window/4), sum 1."""
    d = len(window)
    sigma = [k / 4 for k in window] if sigma is None else (
        [sigma] * d if np.isscalar(sigma) else list(sigma))
    w = np.ones(window)
    for k in np.ndindex(*window):
        w[k] = math.prod(math.exp(-0.5 * ((k[i] - (window[i] - 1) / 2) / sigma[i]) ** 2)
                         for i in range(d))
    return w / w.sum()


def _regions(x, window, strides, padding):
    """Yields (n, o, c, values, weights-index list) over zero-padded windows."""
    spatial = x.shape[1:-1]
    window = tup(window, len(spatial))
    strides = tup(strides, len(spatial)) or window
    pads = pads_of(padding, spatial, window, strides)
    for o, outs, items in _windows(spatial, window, strides, pads, (1,) * len(spatial), False):
        for n in range(x.shape[0]):
            for c in range(x.shape[-1]):
                vals = [x[(n, *pos, c)] if w == "in" else 0.0 for _, pos, w in items]
                yield outs, (n, *o, c), [k for k, _, _ in items], vals


def lp_pool(x, window, strides=None, padding="VALID", *, p, weights=None):
    x = np.asarray(x, np.float64)
    window = tup(window, x.ndim - 2)
    if weights is None:
        weights = np.ones(window)
    result = None
    for outs, idx, ks, vals in _regions(x, window, strides, padding):
        if result is None:
            result = np.zeros((x.shape[0], *outs, x.shape[-1]))
        if np.isinf(p):
            result[idx] = max(abs(v) for k, v in zip(ks, vals) if weights[k] > 0)
        else:
            result[idx] = sum(weights[k] * abs(v) ** p for k, v in zip(ks, vals)) ** (1 / p)
    return result


def windowed(x, window, strides=None, padding="VALID", *, fn):
    """Generic zero-padded region op: fn(values (list), window positions, channel)."""
    x = np.asarray(x, np.float64)
    result = None
    for outs, idx, ks, vals in _regions(x, window, strides, padding):
        if result is None:
            result = np.zeros((x.shape[0], *outs, x.shape[-1]))
        result[idx] = fn(vals, ks, idx[-1])
    return result


def stochastic_probs(vals):
    """Zeiler & Fergus: p_j = a_j / Σ a on a = relu(x); None for a zero window."""
    a = np.maximum(np.asarray(vals, np.float64), 0)
    s = a.sum()
    return None if s == 0 else a / s


def stochastic_inference(vals):
    p = stochastic_probs(vals)
    return 0.0 if p is None else float(np.sum(p * np.maximum(vals, 0)))


def adaptive(x, output_shape, kind):
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    out = np.zeros((x.shape[0], *output_shape, x.shape[-1]))
    for o in np.ndindex(*output_shape):
        sl = tuple(slice((o[i] * n) // m, -((-(o[i] + 1) * n) // m))
                   for i, (n, m) in enumerate(zip(spatial, output_shape)))
        block = x[(slice(None), *sl, slice(None))]
        axes = tuple(range(1, len(spatial) + 1))
        out[(slice(None), *o, slice(None))] = (block.max(axis=axes) if kind == "max"
                                               else block.mean(axis=axes))
    return out


def spectral(x, output_shape, *, return_complex=False):
    """DFT of each spatial plane, keep the frequencies f with |f| < m/2 per axis, fold the
    two input bins ±m/2 onto the output Nyquist bin when m is even and smaller than n (the
    aliasing of sampling on the coarser grid), inverse DFT, scale by prod(m)/prod(n)."""
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    d = len(spatial)
    axes = tuple(range(1, d + 1))
    big = np.fft.fftn(x, axes=axes)
    small = np.zeros((x.shape[0], *output_shape, x.shape[-1]), complex)
    for k in np.ndindex(*spatial):
        freq = [ki if ki <= n // 2 else ki - n for ki, n in zip(k, spatial)]  # signed
        target = []
        for f, n, m in zip(freq, spatial, output_shape):
            if m == n:
                target.append(f % m)
            elif abs(f) < m / 2 or (m % 2 == 0 and abs(f) == m // 2):
                target.append(f % m)
            else:
                target = None
                break
        if target is not None:
            small[(slice(None), *target, slice(None))] += big[(slice(None), *k, slice(None))]
    y = np.fft.ifftn(small, axes=axes) * (math.prod(output_shape) / math.prod(spatial))
    return y if return_complex else np.real(y)


def distinct(rng, shape, dtype=np.float64):
    """Test data without ties and without zeros (a shifted random permutation), so that
    max-type gradients are unique and well defined."""
    n = int(np.prod(shape))
    return ((rng.permutation(n).reshape(shape) + 0.5) / n - 0.5).astype(dtype)
