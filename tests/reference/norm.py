"""Slow NumPy references for batch normalization, straight from Ioffe & Szegedy 2015 (Alg. 1-2).

Loops over channels on purpose: each channel's statistics are computed from the flat list of
its values, exactly as the paper's mini-batch transform defines them.
"""
from __future__ import annotations

import numpy as np


def batch_norm(x, scale, bias, mean, var, *, train, momentum=0.9, epsilon=1e-5):
    """Returns ``(y, new_mean, new_var)`` in float64."""
    x = np.asarray(x, np.float64)
    c = x.shape[-1]
    flat = x.reshape(-1, c)
    m = flat.shape[0]
    y = np.empty_like(flat)
    new_mean = np.array(mean, np.float64).copy()
    new_var = np.array(var, np.float64).copy()
    for j in range(c):
        values = flat[:, j]
        if train:
            mu = sum(values) / m
            sigma2 = sum((v - mu) ** 2 for v in values) / m
            unbiased = sigma2 * m / (m - 1) if m > 1 else sigma2
            new_mean[j] = momentum * mean[j] + (1 - momentum) * mu
            new_var[j] = momentum * var[j] + (1 - momentum) * unbiased
        else:
            mu, sigma2 = float(mean[j]), float(var[j])
        g = 1.0 if scale is None else float(scale[j])
        b = 0.0 if bias is None else float(bias[j])
        y[:, j] = g * (values - mu) / np.sqrt(sigma2 + epsilon) + b
    return y.reshape(x.shape), new_mean, new_var


def dense(x, w, b):
    """``x @ w + b`` for ``x`` ``[N, in]``, by explicit sums."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    out = np.zeros((x.shape[0], w.shape[1]))
    for n in range(x.shape[0]):
        for o in range(w.shape[1]):
            out[n, o] = sum(x[n, i] * w[i, o] for i in range(x.shape[1])) + (0 if b is None else b[o])
    return out


def conv2d_valid(x, w, b):
    """Stride-1 'VALID' cross-correlation, ``x`` ``[N, H, W, Ci]``, ``w`` ``[kh, kw, Ci, Co]``."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    out = np.zeros((n, h - kh + 1, wd - kw + 1, co))
    for i in range(h - kh + 1):
        for j in range(wd - kw + 1):
            patch = x[:, i:i + kh, j:j + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    if b is not None:
        out = out + np.asarray(b, np.float64)
    return out
