"""How a module's fields become its parameter shapes and its op's arguments.

Both module front ends (:mod:`cnnjax.nn`, :mod:`cnnjax.nnx`) resolve their fields here, so a
convolution kernel, a per-channel gate or a spectral pool's output size has one rule whichever
front end builds it. A ``flax.linen`` module reads the channel count and the number of spatial
dims ``d`` from its input; an NNX module knows them when it is constructed (``in_features``,
``num_features``, the length of ``kernel_size``).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from cnnjax.layers import params
from cnnjax.ops import checks

__all__ = ["adaptive_output_shape", "blur_site_geometry", "conv_kernel_shape",
           "conv_transpose_kernel_shape", "fractional_geometry", "resolve_conv_spellings",
           "spectral_output_shape"]


def conv_kernel_shape(kernel_size: Sequence[int], in_features: int, out_features: int,
                      groups: int, op: str) -> tuple[int, ...]:
    """``[*kernel_size, C_in // groups, C_out]``, the layout of :func:`cnnjax.conv`.

    ``groups`` must be >= 1 and divide ``in_features``.
    """
    if groups < 1 or in_features % groups:
        checks.fail(op, f"input channels ({in_features}) must be divisible by groups, "
                         f"got {groups}.")
    return (*kernel_size, in_features // groups, out_features)


def conv_transpose_kernel_shape(kernel_size: Sequence[int], in_features: int, out_features: int,
                                groups: int, op: str) -> tuple[int, ...]:
    """``[*kernel_size, C_in, C_out // groups]``, the layout of :func:`cnnjax.conv_transpose`.

    ``groups`` must be >= 1 and divide ``out_features``.
    """
    if groups < 1 or out_features % groups:
        checks.fail(op, f"features ({out_features}) must be divisible by groups, got {groups}.")
    return (*kernel_size, in_features, out_features // groups)


def resolve_conv_spellings(stride: Any, groups: int, strides: Any, feature_group_count: Any,
                           op: str, *, stacklevel: int = 3) -> tuple[Any, int]:
    """``(stride, groups)`` of a conv module, honouring Flax's spellings of both.

    The fields are named as :func:`cnnjax.conv`'s arguments (``stride``, ``groups``);
    ``strides`` and ``feature_group_count`` (the names in ``flax.linen.Conv`` and
    ``flax.nnx.Conv``) still work with a ``DeprecationWarning``, so Flax code ports unchanged.
    Giving both spellings with different values is an error.
    """
    if strides is not None:
        warnings.warn(f"{op}(strides=...) is deprecated; use stride=... (the name of "
                      "cnnjax.conv's argument).", DeprecationWarning, stacklevel=stacklevel)
        if stride not in (1, strides):
            checks.fail(op, f"give either stride or strides, got stride={stride!r} and "
                             f"strides={strides!r}.")
        stride = strides
    if feature_group_count is not None:
        warnings.warn(f"{op}(feature_group_count=...) is deprecated; use groups=... (the name "
                      "of cnnjax.conv's argument).", DeprecationWarning, stacklevel=stacklevel)
        if groups not in (1, feature_group_count):
            checks.fail(op, f"give either feature_group_count or groups, got "
                             f"feature_group_count={feature_group_count} and groups={groups}.")
        groups = feature_group_count
    return stride, groups


def spectral_output_shape(spatial: Sequence[int], output_shape: Any, window_shape: Any,
                          strides: Any, padding: Any, op: str) -> tuple[int, ...]:
    """The output size of spectral pooling on a map of size ``spatial``.

    ``output_shape`` if given; else the size max pooling with ``window_shape``/``strides``/
    ``padding`` would give there (:func:`cnnjax.layers.params.site_output_shape`), so a
    spectral pool drops in wherever a max pool was.
    """
    d = len(spatial)
    out = output_shape
    if out is None:
        if window_shape is None:
            checks.fail(op, "give output_shape or window_shape, got neither.")
        out = params.site_output_shape(spatial, (window_shape, strides, padding), op)
    return checks.ntuple(tuple(out) if not isinstance(out, int) else out, d, op,
                          "output_shape")


def adaptive_output_shape(output_shape: Any, d: int, op: str) -> tuple[int, ...]:
    """An adaptive pool's ``output_shape`` (an int means every spatial dim) as a ``d``-tuple."""
    return checks.ntuple(output_shape, d, op, "output_shape")


def blur_site_geometry(spatial: Sequence[int], site: Any, strides: Any,
                       op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(output_shape, strides)`` of a blur pool standing in for max pooling at ``site``.

    The blur subsamples with the site's stride (``strides`` must be ``None`` or equal to it)
    and its output has the site's max-pooling size, so it drops in where the max pool was.
    """
    d = len(spatial)
    _check_site(site, op)
    window, site_strides = site[0], site[1]
    site_strides = checks.ntuple(window if site_strides is None else site_strides, d, op,
                                 "site strides")
    if strides is not None and checks.ntuple(strides, d, op, "strides") != site_strides:
        checks.fail(op, f"strides must be None or the site's stride {site_strides} when site "
                         f"is given, got {strides!r}.")
    return params.site_output_shape(spatial, site, op), site_strides


def fractional_geometry(spatial: Sequence[int], window_shape: Any, output_shape: Any,
                        site: Any, op: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(window, output_shape)`` of fractional max pooling on a map of size ``spatial``.

    Exactly one of ``output_shape`` and ``site`` is given. With ``site`` (the max pooling it
    replaces) the output has the site's size, and the window keeps ``window_shape`` except
    where the map leaves no room for it (``o + k − 1 > n``): there it shrinks to ``n − o + 1``.
    """
    d = len(spatial)
    window = checks.ntuple(window_shape, d, op, "window_shape")
    if (output_shape is None) == (site is None):
        checks.fail(op, f"give exactly one of output_shape and site, got "
                         f"output_shape={output_shape!r} and site={site!r}.")
    if site is None:
        return window, checks.ntuple(output_shape, d, op, "output_shape")
    _check_site(site, op)
    out = params.site_output_shape(spatial, site, op)
    if any(o > n for o, n in zip(out, spatial)):
        checks.fail(op, f"site must not enlarge the input: max pooling at site {site!r} "
                         f"gives {out} from {tuple(spatial)}.")
    return tuple(min(k, n - o + 1) for k, n, o in zip(window, spatial, out)), out


def _check_site(site: Any, op: str) -> None:
    if not (isinstance(site, Sequence) and not isinstance(site, str) and len(site) == 3):
        checks.fail(op, f"site must be a (window_shape, strides, padding) triple, got "
                         f"{site!r}.", TypeError)
