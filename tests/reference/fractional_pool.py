"""Slow NumPy reference for fractional max pooling (Graham 2014, PyTorch's start rule).

Per spatial dim with input n, window k, output o and sample u:
alpha = (n - k)/(o - 1); start_i = floor((i + u)·alpha) - floor(u·alpha) for i < o - 1, and
start_{o-1} = n - k. The arithmetic runs in the given NumPy float type (PyTorch computes it
in the input's type). Nothing here is shared with ``cnnjax``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def starts(u, n, k, o, dtype=np.float64):
    u = dtype(u)
    seq = []
    if o > 1:
        alpha = dtype(n - k) / dtype(o - 1)
        for i in range(o - 1):
            seq.append(int(math.floor((dtype(i) + u) * alpha)) - int(math.floor(u * alpha)))
    seq.append(n - k)
    return seq


def fractional_max_pool(x, window, output, samples, dtype=np.float64):
    """samples [N, C, d] with samples[..., t] for spatial dim t."""
    x = np.asarray(x)
    spatial = x.shape[1:-1]
    d = len(spatial)
    y = np.zeros((x.shape[0], *output, x.shape[-1]), x.dtype)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            seqs = [starts(samples[b, c, t], spatial[t], window[t], output[t], dtype)
                    for t in range(d)]
            for o in itertools.product(*map(range, output)):
                box = tuple(slice(seqs[t][o[t]], seqs[t][o[t]] + window[t]) for t in range(d))
                y[(b, *o, c)] = np.max(x[(b, *box, c)])
    return y
