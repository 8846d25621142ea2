"""Slow NumPy reference for spatial pyramid pooling (He et al. 2014).

For each level l the input is cut into l^d bins, bin i along a dim of size n covering
[floor(i·n/l), ceil((i+1)·n/l)); each bin gives one value per channel (max or mean), and
the features are listed level by level, bin by bin (row-major), channel by channel.
Nothing here is shared with ``cnnjax``.
"""
from __future__ import annotations

import itertools
import math

import numpy as np


def spatial_pyramid_pool(x, levels, mode="max"):
    x = np.asarray(x, np.float64)
    spatial = x.shape[1:-1]
    rows = []
    for b in range(x.shape[0]):
        feats = []
        for level in levels:
            for bin_idx in itertools.product(range(level), repeat=len(spatial)):
                box = tuple(slice(i * n // level, math.ceil((i + 1) * n / level))
                            for i, n in zip(bin_idx, spatial))
                for c in range(x.shape[-1]):
                    block = x[(b, *box, c)]
                    feats.append(block.max() if mode == "max" else block.mean())
        rows.append(feats)
    return np.asarray(rows)
