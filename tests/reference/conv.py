"""Slow NumPy references for the convolution family, written straight from the definitions.

Lecture 3 / ``shared/API.md``::

    out[n, o, co] = b[co] + sum_k sum_ci w[k, ci, co] * xpad[n, o*stride + k*dilation, g*C_in/G + ci]

with ``g = co // (C_out/G)``. Everything here loops over output positions and kernel taps;
nothing calls JAX.
"""
from __future__ import annotations

import itertools

import numpy as np

_NP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad_pairs(padding, spatial, kernel, stride, dilation):
    """``padding`` in any contract form -> list of ``(lo, hi)``; 'SAME' from XLA's definition."""
    d = len(spatial)
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return [(0, 0)] * d
        pairs = []
        for n, k, s, r in zip(spatial, kernel, stride, dilation):
            out = -(-n // s)  # ceil(n / s)
            total = max((out - 1) * s + (k - 1) * r + 1 - n, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    if isinstance(padding, int):
        return [(padding, padding)] * d
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


def _tuple(v, d):
    return (v,) * d if isinstance(v, int) else tuple(v)


def conv(x, w, b=None, *, stride=1, padding="VALID", dilation=1, groups=1, padding_mode="zeros"):
    """Direct cross-correlation ``[N, *S, C_in] x [*k, C_in/G, C_out] -> [N, *out, C_out]``."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    d = x.ndim - 2
    kernel = w.shape[:d]
    stride, dilation = _tuple(stride, d), _tuple(dilation, d)
    pads = pad_pairs(padding, x.shape[1:-1], kernel, stride, dilation)
    width = [(0, 0), *pads, (0, 0)]
    xp = np.pad(x, width) if padding_mode == "zeros" else np.pad(x, width, _NP_MODE[padding_mode])
    c_in, c_out = x.shape[-1], w.shape[-1]
    cig, cog = c_in // groups, c_out // groups
    out_shape = [(n - (k - 1) * r - 1) // s + 1
                 for n, k, s, r in zip(xp.shape[1:-1], kernel, stride, dilation)]
    y = np.zeros((x.shape[0], *out_shape, c_out))
    for o in itertools.product(*(range(m) for m in out_shape)):
        for k in itertools.product(*(range(m) for m in kernel)):
            pos = tuple(oo * s + kk * r for oo, kk, s, r in zip(o, k, stride, dilation))
            pixel = xp[(slice(None), *pos)]  # [N, C_in]
            for g in range(groups):
                y[(slice(None), *o, slice(g * cog, (g + 1) * cog))] += (
                    pixel[:, g * cig:(g + 1) * cig] @ w[k][:, g * cog:(g + 1) * cog])
    if b is not None:
        y += np.asarray(b, np.float64)
    return y


def conv_transpose(x, w, b=None, *, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Scatter definition (PyTorch ``conv_transposeNd``): input pixel ``i`` adds
    ``x[n, i, ci] * w[k, ci, co]`` at output ``i*stride - pad_lo + k*dilation``."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    d = x.ndim - 2
    kernel = w.shape[:d]
    stride, dilation = _tuple(stride, d), _tuple(dilation, d)
    output_padding = _tuple(output_padding, d)
    pads = pad_pairs(padding, x.shape[1:-1], kernel, stride, dilation)
    c_in = x.shape[-1]
    cig, cog = c_in // groups, w.shape[-1]
    out_shape = [(n - 1) * s - lo - hi + r * (k - 1) + op + 1 for n, s, (lo, hi), r, k, op in
                 zip(x.shape[1:-1], stride, pads, dilation, kernel, output_padding)]
    full = [m + lo + hi for m, (lo, hi) in zip(out_shape, pads)]
    y = np.zeros((x.shape[0], *full, cog * groups))
    for i in itertools.product(*(range(m) for m in x.shape[1:-1])):
        pixel = x[(slice(None), *i)]  # [N, C_in]
        for k in itertools.product(*(range(m) for m in kernel)):
            pos = tuple(ii * s + kk * r for ii, kk, s, r in zip(i, k, stride, dilation))
            for g in range(groups):
                y[(slice(None), *pos, slice(g * cog, (g + 1) * cog))] += (
                    pixel[:, g * cig:(g + 1) * cig] @ w[k][g * cig:(g + 1) * cig])
    crop = tuple(slice(lo, lo + m) for (lo, _), m in zip(pads, out_shape))
    y = y[(slice(None), *crop)]
    if b is not None:
        y += np.asarray(b, np.float64)
    return y


def im2col(x, kernel_size, *, stride=1, padding="VALID", dilation=1):
    """``cols[n, o, kpos*C + c] = xpad[n, o*stride + kpos*dilation, c]``."""
    x = np.asarray(x, np.float64)
    d = x.ndim - 2
    kernel = _tuple(kernel_size, d)
    stride, dilation = _tuple(stride, d), _tuple(dilation, d)
    pads = pad_pairs(padding, x.shape[1:-1], kernel, stride, dilation)
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    c = x.shape[-1]
    out_shape = [(n - (k - 1) * r - 1) // s + 1
                 for n, k, s, r in zip(xp.shape[1:-1], kernel, stride, dilation)]
    cols = np.zeros((x.shape[0], *out_shape, int(np.prod(kernel)) * c))
    for o in itertools.product(*(range(m) for m in out_shape)):
        for j, k in enumerate(itertools.product(*(range(m) for m in kernel))):
            pos = tuple(oo * s + kk * r for oo, kk, s, r in zip(o, k, stride, dilation))
            cols[(slice(None), *o, slice(j * c, (j + 1) * c))] = xp[(slice(None), *pos)]
    return cols


def output_size(n, k, s=1, p=0, dilation=1):
    """The lecture formula ``(n + 2p - dilation*(k-1) - 1) // s + 1``."""
    return (n + 2 * p - dilation * (k - 1) - 1) // s + 1
