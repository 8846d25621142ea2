"""The fingerprint of a training run: everything that decides its result, as strings.

A checkpoint stores the fingerprint of the run that wrote it; ``fit`` resumes only a run
whose fingerprint is identical, so a changed pool, model field, dataset, optimizer setting,
schedule, augmentation, batch size or seed can never be continued from another experiment's
weights. ``epochs`` is deliberately left out: a run may be extended (a schedule that depends
on the run's length still records that length, so extending such a run is refused).

Values are rendered by :func:`stable_repr`, which is the same in every process and session
(no memory addresses, no ``id``-based reprs): flax modules and dataclasses by their fields,
functions by module-qualified name plus closure values and defaults, arrays by dtype, shape
and CRC-32 of their bytes.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import numbers
import re
import types
import zlib
from typing import Any

import jax
import numpy as np

# Closures nest (optax.chain of transformations of closures); deeper than this is cut off.
_MAX_DEPTH = 12
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def checksum(array: Any) -> str:
    """``dtype[shape] crc32=<8 hex digits>`` of a concrete array (CRC-32 of its C-order bytes)."""
    a = np.ascontiguousarray(np.asarray(array))
    crc = zlib.crc32(a.view(np.uint8).reshape(-1)) if a.size else 0
    return f"{a.dtype}[{','.join(map(str, a.shape))}] crc32={crc:08x}"


def _name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def stable_repr(value: Any, _depth: int = 0, _seen: frozenset = frozenset()) -> str:
    """A description of ``value`` that is equal across processes iff the values are alike.

    Example:
      >>> stable_repr(functools.partial(max, 3))
      'functools.partial(builtins.max, 3)'
    """
    if _depth > _MAX_DEPTH:
        return "..."
    if isinstance(value, (type(None), bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{_name(type(value))}.{value.name}"
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        if isinstance(value, jax.core.Tracer):
            return f"traced {value.dtype}{list(value.shape)}"
        if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
            return f"key<{jax.random.key_impl(value)}> {checksum(jax.random.key_data(value))}"
        if np.ndim(value) == 0:
            return f"{np.asarray(value).dtype}({np.asarray(value).item()!r})"
        return checksum(value)
    if id(value) in _seen:
        return "<cycle>"
    seen = _seen | {id(value)}
    rec = functools.partial(stable_repr, _depth=_depth + 1, _seen=seen)
    if isinstance(value, type):
        return _name(value)
    if isinstance(value, functools.partial):
        parts = [rec(value.func), *map(rec, value.args),
                 *(f"{k}={rec(v)}" for k, v in sorted(value.keywords.items()))]
        return f"functools.partial({', '.join(parts)})"
    if callable(value) and getattr(value, "__wrapped__", None) is not None:
        # jax.jit / functools.wraps wrappers: what they wrap decides the result.
        return f"wrapped {rec(value.__wrapped__)}"
    if isinstance(value, types.MethodType):
        return f"{rec(value.__self__)}.{value.__name__}"
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType)):
        parts = []
        code = getattr(value, "__code__", None)
        if code is not None and value.__closure__:
            for var, cell in zip(code.co_freevars, value.__closure__):
                try:
                    parts.append(f"{var}={rec(cell.cell_contents)}")
                except ValueError:  # an empty cell (a variable not yet assigned)
                    parts.append(f"{var}=<empty>")
        if getattr(value, "__defaults__", None):
            parts.append(f"defaults={rec(value.__defaults__)}")
        if getattr(value, "__kwdefaults__", None):
            parts.append(f"kwdefaults={rec(value.__kwdefaults__)}")
        return _name(value) + (f"[{', '.join(parts)}]" if parts else "")
    if dataclasses.is_dataclass(value):  # flax modules, flax.struct and plain dataclasses
        fields = [f"{f.name}={rec(getattr(value, f.name, None))}"
                  for f in dataclasses.fields(value) if f.name not in ("parent", "name")]
        return f"{_name(type(value))}({', '.join(fields)})"
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # NamedTuple
        fields = [f"{k}={rec(v)}" for k, v in zip(value._fields, value)]
        return f"{_name(type(value))}({', '.join(fields)})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(map(rec, value))
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        items = sorted((rec(k), rec(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(map(rec, value))) + "}"
    text = repr(value)
    if _ADDRESS.search(text) is None:
        return text
    attrs = getattr(value, "__dict__", None)
    if attrs is not None:
        return f"{_name(type(value))}({rec(attrs)})"
    return _ADDRESS.sub("", text)


def describe_dataset(data: Any) -> dict[str, str]:
    """Name, size, classes and checksums of a :class:`cnnjax.data.Dataset` (or ``None``)."""
    if data is None:
        return dict.fromkeys((".name", ".num_classes", ".labels", ".images"), "None")
    return {".name": repr(data.name), ".num_classes": repr(int(data.num_classes)),
            ".labels": checksum(data.labels), ".images": checksum(data.images)}


def tree_shapes(tree: Any, prefix: str) -> dict[str, str]:
    """``{prefix + path: 'dtype[shape]'}`` for every leaf of a pytree of arrays/shapes."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    if not leaves:
        return {prefix: "{}"}
    return {prefix + jax.tree_util.keystr(path): f"{np.dtype(leaf.dtype)}{list(leaf.shape)}"
            for path, leaf in leaves}


def difference(old: dict[str, str], new: dict[str, str]) -> tuple[str, str, str, int] | None:
    """The first differing field as ``(field, old, new, number of differing fields)``.

    Fields are compared in ``new``'s order (the order they were recorded in), then fields
    only ``old`` has. ``None`` if the fingerprints are equal.
    """
    keys = list(new) + [k for k in old if k not in new]
    diff = [k for k in keys if old.get(k) != new.get(k)]
    if not diff:
        return None
    k = diff[0]
    return k, old.get(k, "(absent)"), new.get(k, "(absent)"), len(diff)


def _number(value: Any) -> str:
    return repr(float(value)) if isinstance(value, numbers.Real) else stable_repr(value)


def run_fingerprint(*, model: Any, variables: Any, train: Any, test: Any, optimizer: Any,
                    learning_rate: Any, weight_decay: Any, momentum: Any, schedule: Any,
                    total_steps: int | None, warmup_steps: int | None, augment: str,
                    batch_size: int, seed: int) -> dict[str, str]:
    """``{field: value}`` of everything that decides a ``fit`` run's result but ``epochs``.

    Args:
      model: the flax module (class and every dataclass field, ``pool`` among them).
      variables: its variables or their ``ShapeDtypeStruct`` s (``params``,
        ``batch_stats``): shapes and dtypes are recorded.
      train, test: the :class:`cnnjax.data.Dataset` splits (``test`` may be ``None``).
      optimizer ... seed: ``fit``'s settings; ``momentum`` is ``None`` when unused,
        ``total_steps`` when the schedule does not depend on the run length, and
        ``augment`` is already a description.
    """
    fp = {"model": _name(type(model))}
    for f in dataclasses.fields(model):
        if f.name not in ("parent", "name"):
            fp[f"model.{f.name}"] = stable_repr(getattr(model, f.name))
    fp.update(tree_shapes(variables.get("params", {}), "params"))
    fp.update(tree_shapes(variables.get("batch_stats", {}), "batch_stats"))
    for key, data in (("train_data", train), ("test_data", test)):
        fp.update({key + k: v for k, v in describe_dataset(data).items()})
    fp["optimizer"] = stable_repr(optimizer)
    fp["learning_rate"] = _number(learning_rate)
    fp["weight_decay"] = _number(weight_decay)
    if momentum is not None:
        fp["momentum"] = _number(momentum)
    if callable(schedule) or total_steps is None:
        fp["schedule"] = stable_repr(schedule)
    else:
        fp["schedule"] = f"{schedule!r} over {total_steps} steps" + (
            f", warmup_steps={warmup_steps!r}" if schedule == "warmup_cosine" else "")
    fp["augment"] = augment
    fp["batch_size"] = repr(int(batch_size))
    fp["seed"] = repr(int(seed))
    return fp
