"""The registry of convolution implementations: the concrete ones and ``'auto'``.

``conv`` and ``conv_transpose`` look implementations up here only; adding one is one entry in
``_conv_kernels.KERNELS``.
"""
from __future__ import annotations

from typing import Any

import jax

from cnnjax.ops import checks
from cnnjax.ops._conv_geometry import ConvGeometry
from cnnjax.ops._conv_kernels import KERNELS, ConvFn, ConvImpl
from cnnjax.ops._conv_policy import choose_impl


def conv_auto(x: jax.Array, w: jax.Array, geom: ConvGeometry, precision=None) -> jax.Array:
    """``impl='auto'``: runs the implementation ``choose_impl`` names for these shapes."""
    name = choose_impl(x.shape, w.shape, geom, dtype=x.dtype, precision=precision)
    return _REGISTRY[name].fn(x, w, geom, precision)


_REGISTRY: dict[str, ConvImpl] = {
    "auto": ConvImpl(conv_auto, "the impl choose_impl names for the backend and shapes "
                                "(on CPU the fastest measured, cached on disk)"),
    **KERNELS,
}

CONV_IMPLS: tuple[str, ...] = tuple(_REGISTRY)


def conv_impl_fn(name: Any, op: str) -> ConvFn:
    """The function registered as ``name``; raises ``ValueError`` naming ``op`` otherwise."""
    checks.check_choice(name, CONV_IMPLS, op, "impl")
    return _REGISTRY[name].fn
