"""Slow NumPy reference for tree pooling (Lee, Gallagher & Tu 2016).

For every window (zero padding) and channel: node values by recursion from the root of a
heap-ordered complete binary tree — a leaf returns its filter's dot product with the
window, internal node m returns sigmoid(w_m·x)·f(2m+1) + (1 - sigmoid(w_m·x))·f(2m+2).
Nothing here is shared with ``cnnjax``.
"""
from __future__ import annotations

import math

import numpy as np

from tests.reference.pool import windowed


def tree_value(vals, leaves, gates):
    """Root value for one window's values (row-major) and filters [L, K], [L - 1, K]."""
    v = np.asarray(vals, np.float64)
    num_gates = len(gates)

    def f(m):
        if m >= num_gates:
            return float(np.dot(leaves[m - num_gates], v))
        s = 1.0 / (1.0 + math.exp(-float(np.dot(gates[m], v))))
        return s * f(2 * m + 1) + (1.0 - s) * f(2 * m + 2)

    return f(0)


def tree_pool(x, leaves, gates, window, strides=None, padding="VALID"):
    size = int(np.prod(np.shape(leaves)[1:]))  # window elements
    leaves = np.asarray(leaves, np.float64).reshape(len(leaves), size)
    gates = np.asarray(gates, np.float64).reshape(len(gates), size)
    return windowed(x, window, strides, padding,
                    fn=lambda vals, ks, c: tree_value(vals, leaves, gates))
