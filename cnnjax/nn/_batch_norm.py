"""BatchNorm module over :func:`cnnjax.batch_norm` (running statistics in ``'batch_stats'``)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

import cnnjax
from cnnjax.ops import checks


class BatchNorm(nn.Module):
    """Batch normalization, equivalent to partial application of :func:`cnnjax.batch_norm`.

    Parameters ``'scale'`` (γ, ones) and ``'bias'`` (β, zeros) of shape ``[C]`` live in
    ``'params'``; the running ``'mean'`` (zeros) and ``'var'`` (ones) in ``'batch_stats'``,
    as in ``flax.linen.BatchNorm``. ``train=True`` normalises with batch statistics and updates
    the running ones (apply with ``mutable=['batch_stats']``); ``train=False`` uses the running
    statistics. As in Flax, ``init`` does not update the statistics.

    Attributes:
      momentum: decay of the running averages (PyTorch's ``momentum=0.1`` is ``0.9`` here).
      epsilon: added to the variance.
      use_scale, use_bias: learn γ / β.
      axis_name: mapped axis to average statistics over (cross-device BN).
      dtype: computation dtype (``None``: the input's).
      param_dtype: dtype of parameters and statistics.
      scale_init, bias_init: Flax initialisers.

    Example:
      >>> bn = BatchNorm()
      >>> v = bn.init(jax.random.key(0), jnp.ones((4, 3)), train=False)
      >>> y, updates = bn.apply(v, jnp.ones((4, 3)), train=True, mutable=['batch_stats'])
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    axis_name: str | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    scale_init: Callable[..., jax.Array] = nn.initializers.ones_init()
    bias_init: Callable[..., jax.Array] = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: ArrayLike, *, train: bool) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim < 2:
            checks.fail("BatchNorm", f"x must have rank >= 2 ([N, ..., C]), got shape {x.shape}.")
        c = x.shape[-1]
        mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), self.param_dtype))
        var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), self.param_dtype))
        scale = self.param("scale", self.scale_init, (c,), self.param_dtype) if self.use_scale else None
        bias = self.param("bias", self.bias_init, (c,), self.param_dtype) if self.use_bias else None
        if self.dtype is not None:
            x = x.astype(self.dtype)
        y, new = cnnjax.batch_norm(
            x, scale, bias, cnnjax.BatchStats(mean.value, var.value), train=train,
            momentum=self.momentum, epsilon=self.epsilon,
            # Flax's rule: init may run outside the mapped axis, so no collective there.
            axis_name=None if self.is_initializing() else self.axis_name)
        if train and not self.is_initializing():
            mean.value, var.value = new.mean, new.var
        return y
