"""``make_pool``: a pooling module from a spec string or a module factory, at a pooling site."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn

from cnnjax.layers import pool_specs
from cnnjax.nn._pool import Shape
from cnnjax.ops import checks

#: The canonical spec strings (:data:`cnnjax.layers.pool_specs.POOL_SPECS`).
POOL_SPECS = pool_specs.POOL_SPECS

#: What a model's ``pool`` field holds: a spec string, or a factory called as
#: ``factory(window_shape=..., strides=..., padding=..., **kwargs)`` returning a pooling module.
PoolSpec = str | Callable[..., nn.Module]


def make_pool(spec: PoolSpec, window_shape: Shape = 2, strides: Shape | None = None,
              padding: Any = "VALID", **kwargs: Any) -> nn.Module:
    """Builds the pooling module for a pooling site from a spec string or a factory.

    The site is where a model would put ``max_pool(x, window_shape, strides, padding)``; every
    spec gives that output size there. Specs (:data:`POOL_SPECS` lists the canonical ones;
    :mod:`cnnjax.layers.pool_specs` has the grammar and every option): ``'max'``, ``'avg'``,
    ``'sum'``, ``'lp:p=3'`` (any p >= 1), ``'lp:learn'`` (learned p, starting at 2 unless
    ``p=`` is also given), ``'l2'``, ``'mixed:alpha=0.5'``, ``'mixed:learn'`` (learned alpha;
    ``'mixed:learn,per_channel'`` one per channel), ``'stochastic_mixed'`` (``':alpha=…'``),
    ``'gated'`` (``'gated:per_channel'``), ``'stochastic'``, ``'spectral'`` (pools to the
    site's size), ``'strided_conv'`` (no pooling: a learned convolution with the site's window
    and stride). Every module is called as ``module(x, train=...)``.

    Args:
      spec: a spec string (case-insensitive) or a module factory.
      window_shape: the site's window, an int or one per spatial dim.
      strides: the site's strides (``None``: ``window_shape``).
      padding: the site's padding, as for the pooling ops.
      **kwargs: more module fields (e.g. ``name=``); they override the spec's options.

    Returns:
      An unbound ``flax.linen`` pooling module.

    Raises:
      ValueError: an unknown spec or option, or an option value out of range; the message
        lists the valid specs.

    Example:
      >>> pool = make_pool('lp:p=3', window_shape=3, strides=2)
      >>> type(pool).__name__, pool.p
      ('LpPool', 3.0)
    """
    if isinstance(spec, str):
        return pool_specs.build(spec, window_shape, strides, padding, frontend="linen", **kwargs)
    if not callable(spec):
        checks.fail("make_pool", f"pool must be a spec string or a module factory, got "
                                  f"{spec!r}.", TypeError)
    return spec(window_shape=window_shape, strides=strides, padding=padding, **kwargs)
