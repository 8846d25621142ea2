"""BatchNorm module over :func:`cnnjax.batch_norm` (running statistics as ``nnx.BatchStat``)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

import cnnjax
from cnnjax.nnx._base import Initializer, Module, positive_int
from cnnjax.ops import checks


class BatchNorm(Module):
    """Batch normalization, equivalent to partial application of :func:`cnnjax.batch_norm`.

    ``nnx.Param`` ``scale`` (γ, ones) and ``bias`` (β, zeros) and ``nnx.BatchStat`` running
    ``mean`` (zeros) and ``var`` (ones), all ``[num_features]``, as in ``flax.nnx.BatchNorm``.
    In training mode (``use_running_average=False``, a new module's mode) it normalises with
    the batch mean and biased batch variance and updates the running statistics;
    ``model.eval()`` normalises with the running ones and leaves them unchanged.

    Unlike ``flax.nnx.BatchNorm`` it keeps :func:`cnnjax.batch_norm`'s rules: the default
    ``momentum`` is 0.9 (PyTorch's ``momentum=0.1``; Flax's default is 0.99), and the running
    variance is updated with the *unbiased* batch variance ``σ²_B·m/(m − 1)`` (Ioffe & Szegedy
    2015 and PyTorch; Flax stores the biased one)::

        mean ← momentum·mean + (1 − momentum)·μ_B
        var  ← momentum·var  + (1 − momentum)·σ²_B·m/(m − 1)

    Args:
      num_features: the channel count ``C`` (the last axis).
      use_running_average: inference mode.
      momentum: decay of the running averages.
      epsilon: added to the variance.
      use_scale, use_bias: learn γ / β.
      axis_name: mapped axis to average statistics over (cross-device BN).
      dtype: computation dtype (``None``: the input's).
      param_dtype: dtype of parameters and statistics.
      scale_init, bias_init: Flax initialisers.
      rngs: its ``params`` stream gives the initialisers' keys.

    Example:
      >>> bn = BatchNorm(3, rngs=nnx.Rngs(0))
      >>> y = bn(jnp.arange(12.0).reshape(4, 3))   # training: updates bn.mean, bn.var
      >>> bn.eval()
      >>> y = bn(jnp.arange(12.0).reshape(4, 3))   # uses them
    """

    def __init__(self, num_features: int, *, use_running_average: bool = False,
                 momentum: float = 0.9, epsilon: float = 1e-5, use_scale: bool = True,
                 use_bias: bool = True, axis_name: str | None = None, dtype=None,
                 param_dtype=jnp.float32,
                 scale_init: Initializer = nnx.initializers.ones_init(),
                 bias_init: Initializer = nnx.initializers.zeros_init(), rngs: nnx.Rngs):
        c = self.num_features = positive_int(num_features, "BatchNorm", "num_features")
        if not isinstance(use_running_average, bool):
            checks.fail("BatchNorm", f"use_running_average must be a bool, got "
                                      f"{use_running_average!r}.", TypeError)
        self.mean = nnx.BatchStat(jnp.zeros((c,), param_dtype))
        self.var = nnx.BatchStat(jnp.ones((c,), param_dtype))
        self.scale = (nnx.Param(scale_init(rngs.params(), (c,), param_dtype)) if use_scale
                      else nnx.data(None))
        self.bias = (nnx.Param(bias_init(rngs.params(), (c,), param_dtype)) if use_bias
                     else nnx.data(None))
        self.use_running_average = use_running_average
        self.momentum = momentum
        self.epsilon = epsilon
        self.use_scale = use_scale
        self.use_bias = use_bias
        self.axis_name = axis_name
        self.dtype = dtype
        self.param_dtype = param_dtype

    def __call__(self, x: ArrayLike, use_running_average: bool | None = None) -> jax.Array:
        """Normalises ``x`` ``[N, ..., C]``; ``use_running_average`` overrides the mode."""
        x = jnp.asarray(x)
        if x.ndim < 2 or x.shape[-1] != self.num_features:
            checks.fail("BatchNorm", f"x must be [N, ..., C] with C = num_features = "
                                      f"{self.num_features}, got shape {x.shape}.")
        if use_running_average is None:
            use_running_average = self.use_running_average
        if self.dtype is not None:
            x = x.astype(self.dtype)
        y, new = cnnjax.batch_norm(
            x, None if self.scale is None else self.scale[...],
            None if self.bias is None else self.bias[...],
            cnnjax.BatchStats(self.mean[...], self.var[...]), train=not use_running_average,
            momentum=self.momentum, epsilon=self.epsilon, axis_name=self.axis_name)
        if not use_running_average:
            self.mean[...], self.var[...] = new.mean, new.var
        return y

    def set_view(self, use_running_average: bool | None = None):
        """Used by ``nnx.view``: ``use_running_average=True`` for inference."""
        if use_running_average is not None:
            self.use_running_average = use_running_average
