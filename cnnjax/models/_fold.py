"""Folding every Conv→BatchNorm pair of a trained model for inference."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn

import cnnjax
from cnnjax.ops import checks


def _fold_tree(params: Mapping, stats: Mapping, epsilon: float) -> tuple[dict, dict]:
    params_out: dict[str, Any] = {}
    stats_out: dict[str, Any] = {}
    is_pair = ("conv" in params and "bn" in params and "bn" in stats
               and "kernel" in params["conv"] and "mean" in stats["bn"])
    for key, value in params.items():
        if is_pair and key == "bn":
            continue
        if is_pair and key == "conv":
            bn, st = params["bn"], stats["bn"]
            w, b = cnnjax.fold_batch_norm(
                value["kernel"], value.get("bias"), bn.get("scale"), bn.get("bias"),
                cnnjax.BatchStats(st["mean"], st["var"]), epsilon=epsilon)
            params_out["conv"] = {"kernel": w, "bias": b}
        elif isinstance(value, Mapping):
            sub_p, sub_s = _fold_tree(value, stats.get(key, {}), epsilon)
            params_out[key] = sub_p
            if sub_s:
                stats_out[key] = sub_s
        else:
            params_out[key] = value
    for key, value in stats.items():  # statistics of BatchNorms that are not part of a pair
        if key not in params_out and not (is_pair and key == "bn"):
            stats_out[key] = value
    return params_out, stats_out


def fold_batch_norms(model: nn.Module, variables: Mapping, *, epsilon: float = 1e-5
                     ) -> tuple[nn.Module, dict]:
    """Folds every Conv→BatchNorm pair of a trained model into a biased Conv for inference.

    Eval-mode batch norm is a per-channel affine map, so it can be merged into the preceding
    convolution (lectures: "zero overhead at test-time: can be fused with conv"). Every
    ``ConvBN`` block (``params: {conv: {kernel}, bn: {scale, bias}}``, ``batch_stats: {bn:
    {mean, var}}``) becomes ``params: {conv: {kernel', bias'}}`` by
    :func:`cnnjax.fold_batch_norm`; the returned model is ``model.clone(fold_bn=True)``, whose
    ConvBN blocks are single Convs. Its logits with ``train=False`` equal the original's (to
    round-off). Models without a ``fold_bn`` field (no batch norm) come back unchanged.

    Args:
      model: a model with a ``fold_bn`` field (``VGG(batch_norm=True)``, ``ResNet``,
        ``GoogLeNet``) or any other model.
      variables: its trained variables (``{'params': ..., 'batch_stats': ...}``).
      epsilon: the batch norms' epsilon (the models use the default ``1e-5``).

    Returns:
      ``(folded_model, folded_variables)``, for ``folded_model.apply(folded_variables, x,
      train=False)``.

    Example:
      >>> model = ResNet20(num_classes=10)
      >>> v = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
      >>> fmodel, fv = fold_batch_norms(model, v)
      >>> 'batch_stats' in fv
      False
    """
    if not hasattr(model, "fold_bn"):
        return model, dict(variables)
    if model.fold_bn:
        checks.fail("fold_batch_norms", "model is already folded (fold_bn=True).")
    if "params" not in variables:
        checks.fail("fold_batch_norms", f"variables must contain 'params', got keys "
                                         f"{sorted(variables)}.")
    params, stats = _fold_tree(variables["params"], variables.get("batch_stats", {}), epsilon)
    out = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")}
    out["params"] = params
    if stats:
        out["batch_stats"] = stats
    return model.clone(fold_bn=True), out
