"""Slow NumPy references for GeM (Radenović et al. 2018) and LSE pooling (Pinheiro &
Collobert 2015), straight from the definitions (no rescaling, so moderate inputs only):

    gem = (mean_j max(x_j, eps)^p)^{1/p},   lse = (1/r)·log(mean_j e^{r·x_j})

over the window positions inside the input. ``p``/``r`` may be per channel. Nothing here is
shared with ``cnnjax.ops``."""
from __future__ import annotations

import numpy as np

from tests.reference.soft_pool import window_op


def _per_channel(v, c):
    v = np.asarray(v, np.float64)
    return float(v) if v.ndim == 0 else float(v[c])


def gem_pool(x, window, strides=None, padding="VALID", *, p=3.0, eps=1e-6):
    def gem(vals, c):
        q = _per_channel(p, c)
        return np.mean(np.maximum(vals, eps) ** q) ** (1.0 / q)
    return window_op(x, window, strides, padding, gem)


def lse_pool(x, window, strides=None, padding="VALID", *, r=1.0):
    def lse(vals, c):
        q = _per_channel(r, c)
        return np.log(np.mean(np.exp(q * vals))) / q
    return window_op(x, window, strides, padding, lse)


def global_gem_pool(x, *, p=3.0, eps=1e-6):
    x = np.asarray(x, np.float64)
    y = np.zeros((x.shape[0], x.shape[-1]))
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            q = _per_channel(p, c)
            y[n, c] = np.mean(np.maximum(x[n, ..., c], eps) ** q) ** (1.0 / q)
    return y


def global_lse_pool(x, *, r=1.0):
    x = np.asarray(x, np.float64)
    y = np.zeros((x.shape[0], x.shape[-1]))
    for n in range(x.shape[0]):
        for c in range(x.shape[-1]):
            q = _per_channel(r, c)
            y[n, c] = np.log(np.mean(np.exp(q * x[n, ..., c]))) / q
    return y
