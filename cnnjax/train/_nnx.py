"""``fit`` on ``flax.nnx`` models: an adapter that gives an NNX model linen's ``init``/``apply``.

``fit``'s steps are written against the functional linen protocol: ``init(rngs, x, train)``
returns ``{'params', 'batch_stats'}`` and ``apply(variables, x, train=, rngs=, mutable=)``
returns the logits (and the updated batch statistics). :class:`NnxModel` gives an NNX model
that protocol, so the same jitted train and eval steps train both front ends:

* ``init`` returns the model's OWN current parameters and BatchNorm statistics (NNX
  semantics: the object holds its state), split off with ``nnx.split(model, nnx.Param,
  nnx.BatchStat, ...)``; ``fit``'s ``seed`` then drives shuffling, augmentation and noise.
* ``apply`` is pure: ``nnx.merge`` of the static graph with the given variables, the copy
  switched with ``train()`` / ``eval()``, called, and its BatchNorm statistics read back.
* Randomness comes from the step: every ``nnx.Dropout`` stream is reseeded from the step's
  ``'dropout'`` key and every other stream (the stochastic pools') from its ``'pool'`` key,
  each folded with the stream's position in the graph, so sites draw independent noise and
  a run (and a resumed run) is a pure function of its arguments. The model's own
  ``nnx.Rngs`` counters, a hidden state, are never read or advanced.
* Equality and hash are the static graph's (``nnx.GraphDef`` in eval mode, plus any state
  that is neither a parameter, a statistic nor an RNG), so ``fit``'s cache of compiled steps
  serves every model of one architecture; the parameters are never baked into a step.
* ``module`` and ``fields`` (dataclass fields, read by the run fingerprint) name the model's
  class and its constructor fields, ``graph`` every submodule's static attributes, so a
  checkpoint of another NNX model is refused.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from cnnjax.train._fingerprint import stable_repr

# Attributes that only say which mode a module is in: fit sets the mode of every call.
_MODE_ATTRIBUTES = frozenset({"deterministic", "use_running_average"})


def is_nnx(model: Any) -> bool:
    """True for a ``flax.nnx`` module (fit then wraps it in :class:`NnxModel`)."""
    return isinstance(model, nnx.Module)


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _static(module: nnx.Module) -> dict[str, str]:
    """A module's own static attributes (not variables, submodules or mode), described."""
    out = {}
    for name, value in vars(module).items():
        if name.startswith("_") or name in _MODE_ATTRIBUTES:
            continue
        if isinstance(value, (nnx.Variable, nnx.Module, nnx.RngStream, nnx.Rngs, jax.Array)):
            continue
        if isinstance(value, nnx.Pytree):  # nnx.List / nnx.Dict of submodules
            continue
        out[name] = stable_repr(value)
    return out


def _describe(model: nnx.Module) -> str:
    rows = []
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Module):
            fields = ", ".join(f"{k}={v}" for k, v in _static(node).items())
            rows.append(f"{'/'.join(map(str, path)) or '.'}: {_qualname(node)}({fields})")
    return "; ".join(sorted(rows))


def to_tree(state: Any) -> dict:
    """An ``nnx.State`` as nested dicts with string keys (list indices as ``'0'``, ``'1'``)."""
    out: dict = {}
    for path, var in nnx.to_flat_state(state):
        node = out
        for key in path[:-1]:
            node = node.setdefault(str(key), {})
        node[str(path[-1])] = var[...]
    return out


def from_tree(tree: Mapping, template: Any) -> Any:
    """``template`` (an ``nnx.State``) holding the values of ``tree`` (:func:`to_tree`'s)."""
    flat = []
    for path, var in nnx.to_flat_state(template):
        value = tree
        for key in path:
            value = value[str(key)]
        flat.append((path, var.replace(value)))
    return nnx.from_flat_state(flat)


def _key(key: jax.Array) -> jax.Array:
    """A typed PRNG key (RngStreams hold typed keys; fit's are raw ``uint32[2]``)."""
    return key if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(key)


def reseed(model: nnx.Module, rngs: Mapping[str, jax.Array] | None) -> None:
    """Sets every RNG stream of ``model`` from ``rngs`` (see the module docstring)."""
    rngs = dict(rngs or {})
    dropout_streams = {id(node.rngs) for _, node in nnx.iter_graph(model)
                       if isinstance(node, nnx.Dropout)}
    fallback = jax.random.key(0)  # inference draws nothing; a fixed key bakes in no state
    for i, (_, node) in enumerate(nnx.iter_graph(model)):
        if not isinstance(node, nnx.RngStream):
            continue
        name = "dropout" if id(node) in dropout_streams else "pool"
        base = _key(rngs[name]) if name in rngs else fallback
        key = jax.random.fold_in(base, i)
        shape = node.key[...].shape
        if shape:
            key = jax.random.split(key, shape)
        node.key.set_value(key)
        node.count.set_value(jnp.zeros(shape, jnp.uint32))


@dataclasses.dataclass(frozen=True, eq=False)
class NnxModel:
    """An NNX model seen through linen's ``init``/``apply`` (see the module docstring).

    Attributes:
      module: the NNX model's class, module-qualified.
      fields: its own static attributes (its constructor fields: ``pool``, ``num_classes``...).
      graph: every submodule's path, class and static attributes.
    """

    module: str
    fields: str
    graph: str

    @classmethod
    def wrap(cls, model: nnx.Module) -> NnxModel:
        """The adapter of ``model``, holding a snapshot of its current state."""
        graphdef, params, stats, rng_state, rest = nnx.split(
            model, nnx.Param, nnx.BatchStat, nnx.RngState, ...)
        canonical = nnx.merge(graphdef, params, stats, rng_state, rest)
        canonical.eval()  # the mode is set per call: it must not split the step cache
        static = nnx.split(canonical, nnx.Param, nnx.BatchStat, nnx.RngState, ...)[0]
        fields = ", ".join(f"{k}={v}" for k, v in _static(model).items())
        self = cls(_qualname(model), fields, _describe(model))
        for name, value in (("_graphdef", static), ("_user_graphdef", graphdef),
                            ("_params", params), ("_stats", stats), ("_rng_state", rng_state),
                            ("_rest", rest), ("_rest_key", stable_repr(to_tree(rest)))):
            object.__setattr__(self, name, value)
        return self

    def __hash__(self) -> int:
        return hash((self._graphdef, self._rest_key))

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, NnxModel) and self._graphdef == other._graphdef
                and self._rest_key == other._rest_key)

    def variables(self) -> dict:
        """The wrapped model's parameters and statistics, as ``fit``'s state holds them."""
        return {"params": to_tree(self._params), "batch_stats": to_tree(self._stats)}

    def _merge(self, variables: Mapping, graphdef: Any = None) -> nnx.Module:
        # nnx.merge reuses the Variable objects it is given: every merge gets fresh ones, so
        # a call never writes into the wrapped model or into another call's copy.
        return nnx.merge(graphdef or self._graphdef,
                         from_tree(variables["params"], self._params),
                         from_tree(variables.get("batch_stats", {}), self._stats),
                         from_tree(to_tree(self._rng_state), self._rng_state),
                         from_tree(to_tree(self._rest), self._rest))

    def init(self, rngs: Any, x: jax.Array, *, train: bool = False) -> dict:
        """The model's own variables (``rngs``, ``x`` and ``train`` are not needed)."""
        del rngs, x, train
        return self.variables()

    def init_with_output(self, rngs: Any, x: jax.Array, *, train: bool = False):
        """``(apply(init(...), x, train=train), init(...))``."""
        variables = self.init(rngs, x, train=train)
        return self.apply(variables, x, train=train, rngs=rngs), variables

    def apply(self, variables: Mapping, x: jax.Array, *, train: bool = False,
              rngs: Mapping[str, jax.Array] | None = None, mutable: Any = False):
        """Runs the model on ``variables``; with ``mutable``, also its new batch statistics."""
        model = self._merge(variables)
        if train:
            model.train()
        else:
            model.eval()
        reseed(model, rngs)
        logits = model(x)
        if not mutable:
            return logits
        return logits, {"batch_stats": to_tree(nnx.state(model, nnx.BatchStat))}

    def trained(self, variables: Mapping) -> nnx.Module:
        """A new NNX model (the wrapped model's class and mode) holding ``variables``."""
        return self._merge(variables, self._user_graphdef)
