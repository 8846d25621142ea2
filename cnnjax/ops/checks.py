"""Argument canonicalisation and validation shared by every op (and by modules and layers).

A public module: code that adds an op or a layer uses it to get the same argument rules and
the same one-sentence errors. One place turns user hyperparameters (``int`` or sequences, padding strings, pairs) into
canonical tuples and raises ``ValueError``/``TypeError`` with one sentence naming the op,
the argument, the rule and the value received (never ``assert``: it is stripped by
``python -O``).

Conventions (``docs/api.md``): inputs are channels-last ``[N, *spatial, C]`` with
``d = x.ndim - 2`` spatial dims, ``1 <= d <= 3``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

Padding = tuple[tuple[int, int], ...]

PADDING_STRINGS = ("VALID", "SAME")


def fail(op: str, message: str, exc: type[Exception] = ValueError) -> None:
    """Raises ``exc`` with the message ``"{op}: {message}"``."""
    raise exc(f"{op}: {message}")


def is_int(v: Any) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def spatial_rank(x: Any, op: str, *, min_d: int = 1, max_d: int = 3, name: str = "x") -> int:
    """Returns ``d = x.ndim - 2`` after checking ``min_d <= d <= max_d``."""
    ndim = getattr(x, "ndim", None)
    if ndim is None:
        fail(op, f"{name} must be an array, got {type(x).__name__}.", TypeError)
    d = ndim - 2
    if not min_d <= d <= max_d:
        fail(
            op,
            f"{name} must have rank {min_d + 2} to {max_d + 2} ([N, *spatial, C] with "
            f"{min_d} to {max_d} spatial dims), got rank {ndim} with shape {tuple(x.shape)}.",
        )
    return d


def ntuple(value: Any, d: int, op: str, name: str, *, min_value: int = 1) -> tuple[int, ...]:
    """Canonicalises an ``int`` or a length-``d`` sequence of ints to a ``d``-tuple.

    Each entry must be ``>= min_value``.
    """
    if is_int(value):
        out = (int(value),) * d
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != d:
            fail(op, f"{name} must be an int or a sequence of {d} ints (one per spatial dim), "
                     f"got {value!r} of length {len(value)}.")
        if not all(is_int(v) for v in value):
            fail(op, f"{name} must contain ints, got {value!r}.", TypeError)
        out = tuple(int(v) for v in value)
    else:
        fail(op, f"{name} must be an int or a sequence of {d} ints, got {value!r}.", TypeError)
    if any(v < min_value for v in out):
        fail(op, f"{name} must be >= {min_value} in every dim, got {value!r}.")
    return out


def check_choice(value: Any, choices: Sequence[Any], op: str, name: str) -> Any:
    """Returns ``value`` if it is one of ``choices``, else raises ``ValueError``."""
    if value not in tuple(choices):
        fail(op, f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}.")
    return value


def same_padding(n: int, k_eff: int, s: int) -> tuple[int, int]:
    """XLA ``'SAME'``: output ``ceil(n / s)``, the extra pixel of an odd total on the high side."""
    out = -(-n // s)
    total = max((out - 1) * s + k_eff - n, 0)
    return total // 2, total - total // 2


def canonical_padding(
    padding: Any,
    spatial_shape: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    op: str,
    *,
    dilation: Sequence[int] | None = None,
) -> Padding:
    """Canonicalises ``padding`` to ``d`` ``(lo, hi)`` pairs of non-negative ints.

    Accepts ``'VALID'``, ``'SAME'`` (XLA semantics, case-insensitive), an int, a sequence of
    ``d`` ints (symmetric) or a sequence of ``d`` ``(lo, hi)`` pairs.
    """
    d = len(spatial_shape)
    dilation = tuple(dilation) if dilation is not None else (1,) * d
    if isinstance(padding, str):
        p = padding.upper()
        if p == "VALID":
            return ((0, 0),) * d
        if p == "SAME":
            return tuple(
                same_padding(n, (k - 1) * r + 1, s)
                for n, k, s, r in zip(spatial_shape, window, strides, dilation)
            )
        fail(op, f"padding must be 'VALID', 'SAME', an int, {d} ints or {d} (lo, hi) pairs, "
                 f"got {padding!r}.")
    if is_int(padding):
        pairs = ((int(padding), int(padding)),) * d
    elif isinstance(padding, Sequence):
        if len(padding) != d:
            fail(op, f"padding must have one entry per spatial dim ({d}), got {padding!r}.")
        pairs = []
        for p in padding:
            if is_int(p):
                pairs.append((int(p), int(p)))
            elif (isinstance(p, Sequence) and not isinstance(p, str) and len(p) == 2
                  and all(is_int(v) for v in p)):
                pairs.append((int(p[0]), int(p[1])))
            else:
                fail(op, f"padding entries must be ints or (lo, hi) pairs of ints, got {padding!r}.",
                     TypeError)
        pairs = tuple(pairs)
    else:
        fail(op, f"padding must be a string, an int or a sequence, got {padding!r}.", TypeError)
    if any(v < 0 for pair in pairs for v in pair):
        fail(op, f"padding must be non-negative, got {padding!r}.")
    return pairs


def check_window_fits(spatial: Sequence[int], window: Sequence[int], pads: Padding,
                      op: str, *, dilation: Sequence[int] | None = None,
                      name: str = "window_shape") -> None:
    """Raises if a (dilated) window is larger than the padded input in some dim."""
    dilation = tuple(dilation) if dilation is not None else (1,) * len(spatial)
    for i, (n, k, (lo, hi), r) in enumerate(zip(spatial, window, pads, dilation)):
        k_eff = r * (k - 1) + 1
        if k_eff > n + lo + hi:
            fail(op, f"{name} (effective size {k_eff} with dilation {r}) is larger than the "
                     f"padded input ({n} + {lo} + {hi} = {n + lo + hi}) in spatial dim {i}.")


def check_floating(x: Any, op: str, name: str = "x") -> None:
    """Raises ``TypeError`` unless ``x`` has a floating dtype."""
    dtype = np.dtype(getattr(x, "dtype", np.float32))
    if not np.issubdtype(dtype, np.floating) and dtype.name != "bfloat16":
        fail(op, f"{name} must have a floating dtype, got {dtype}.", TypeError)


def check_key(key: Any, op: str, name: str = "key") -> None:
    """Raises ``TypeError`` unless ``key`` is one PRNG key.

    Accepted: a typed key array of shape ``()`` (``jax.random.key(seed)``) or a legacy
    uint32 ``[2]`` key (``jax.random.PRNGKey(seed)``), concrete or traced. An int seed, a
    float array or a batch of keys would otherwise fail deep inside ``jax.random`` (or,
    for some shapes, be reinterpreted as other key data).
    """
    dtype = getattr(key, "dtype", None)
    shape = tuple(getattr(key, "shape", ()))
    if dtype is not None:
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if shape == ():
                return
            got = f"a typed key array of shape {shape} (a batch of keys)"
        elif np.dtype(dtype) == np.uint32 and shape == (2,):
            return
        else:
            got = f"a {np.dtype(dtype)} array of shape {shape}"
    else:
        got = f"{type(key).__name__} {key!r}"
    fail(op, f"{name} must be one PRNG key (jax.random.key(seed), or the uint32 [2] "
             f"jax.random.PRNGKey(seed)), got {got}.", TypeError)


def prod(values: Sequence[int]) -> int:
    return int(math.prod(values))
