"""Slow NumPy references for the shift-consistency measurement (Zhang 2019), from the
definition: each output pixel reads the input pixel ``δ`` before it, or zero outside; the
two counts are plain loops over (image, trial). Nothing here is shared with ``cnnjax``."""
from __future__ import annotations

import itertools

import numpy as np


def shift_images(images, shifts):
    """``out[n, p, c] = images[n, p − δ_n, c]`` inside the image, else 0."""
    images = np.asarray(images)
    out = np.zeros_like(images)
    spatial = images.shape[1:-1]
    for n in range(images.shape[0]):
        for p in itertools.product(*(range(s) for s in spatial)):
            q = tuple(pi - int(di) for pi, di in zip(p, shifts[n]))
            if all(0 <= qi < si for qi, si in zip(q, spatial)):
                out[(n, *p)] = images[(n, *q)]
    return out


def shift_consistency(predict, images, labels, shifts):
    """``shifts`` ``[T, 2, N, d]``; ``predict(one image [*spatial, C]) -> class``.

    Returns (fraction of (image, trial) pairs predicted alike under both shifts, fraction of
    the 2·N·T shifted images predicted correctly)."""
    trials, _, n, _ = shifts.shape
    same = correct = 0
    for t in range(trials):
        for i in range(n):
            a = predict(shift_images(images[i:i + 1], shifts[t, 0, i:i + 1])[0])
            b = predict(shift_images(images[i:i + 1], shifts[t, 1, i:i + 1])[0])
            same += int(a == b)
            correct += int(a == labels[i]) + int(b == labels[i])
    return same / (n * trials), correct / (2 * n * trials)
