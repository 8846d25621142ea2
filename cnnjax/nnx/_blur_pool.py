"""Anti-aliased pooling modules (Zhang 2019): :func:`cnnjax.blur_pool` and
:func:`cnnjax.max_blur_pool` as parameter-free NNX modules."""
from __future__ import annotations

from typing import Any

import jax
from jax.typing import ArrayLike

import cnnjax
from cnnjax.layers import fields
from cnnjax.nnx._base import Module, Shape, check_input, frozen
from cnnjax.ops._blur_pool import blur_pool_to_shape


class BlurPool(Module):
    """Binomial blur then subsampling, equivalent to partial application of
    :func:`cnnjax.blur_pool` (Zhang 2019 ``BlurPool``).

    Output size per spatial dim ``⌊(n − 1)/s⌋ + 1``. With ``site = (window_shape, strides,
    padding)`` — the max pooling it replaces — the blur subsamples with the site's stride and
    the output has the site's max-pooling size (trailing outputs dropped where the blur's
    natural output is longer, further blurred ``padding_mode`` padding where it is shorter).

    Args:
      window_shape: the binomial filter size (``3``: ``[1, 2, 1]/4``).
      strides: subsampling step; ``None`` means 2, or the site's stride when ``site`` is
        given (a different explicit value is an error).
      padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.
      site: ``(window_shape, strides, padding)`` of the pooling site, or ``None``.

    Example:
      >>> BlurPool()(jnp.ones((1, 7, 7, 3))).shape
      (1, 4, 4, 3)
      >>> BlurPool(site=(2, 2, 'VALID'))(jnp.ones((1, 7, 7, 3))).shape
      (1, 3, 3, 3)
    """

    def __init__(self, window_shape: Shape = 3, strides: Shape | None = None,
                 padding_mode: str = "reflect", site: tuple[Any, Any, Any] | None = None):
        self.window_shape = frozen(window_shape)
        self.strides = frozen(strides)
        self.padding_mode = padding_mode
        self.site = frozen(site)

    def __call__(self, x: ArrayLike) -> jax.Array:
        if self.site is None:
            strides = 2 if self.strides is None else self.strides
            return cnnjax.blur_pool(x, self.window_shape, strides, padding_mode=self.padding_mode)
        x = check_input(x, "BlurPool")
        out, strides = fields.blur_site_geometry(tuple(x.shape[1:-1]), self.site, self.strides,
                                                 "BlurPool")
        return blur_pool_to_shape(x, out, self.window_shape, strides,
                                  padding_mode=self.padding_mode, op="BlurPool")


class MaxBlurPool(Module):
    """Dense max pooling then a binomial blur with subsampling, equivalent to partial
    application of :func:`cnnjax.max_blur_pool` (Zhang 2019 ``MaxBlurPool``).

    Output size per spatial dim ``⌊(n + lo + hi − k)/s⌋ + 1``: max pooling's with the same
    ``window_shape``, ``strides`` and ``padding``, so it drops in at any max-pooling site.

    Args:
      window_shape: max window (dense: stride 1).
      strides: the blur's subsampling step.
      padding: the dense max pool's padding (as :func:`cnnjax.max_pool`).
      filter_size: binomial filter size.
      padding_mode: the blur's padding mode.

    Example:
      >>> MaxBlurPool(3, 2, padding=1)(jnp.ones((1, 8, 8, 3))).shape
      (1, 4, 4, 3)
    """

    def __init__(self, window_shape: Shape = 2, strides: Shape = 2, padding: Any = "VALID", *,
                 filter_size: Shape = 3, padding_mode: str = "reflect"):
        self.window_shape = frozen(window_shape)
        self.strides = frozen(strides)
        self.padding = frozen(padding)
        self.filter_size = frozen(filter_size)
        self.padding_mode = padding_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        return cnnjax.max_blur_pool(x, self.window_shape, self.strides,
                                    filter_size=self.filter_size,
                                    padding_mode=self.padding_mode, padding=self.padding)
