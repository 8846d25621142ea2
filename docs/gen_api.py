"""Writes docs/api.md, the API reference, from the package's own docstrings and signatures.

Command (from the repository root)::

    python docs/gen_api.py            # rewrite docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is stale (the test suite runs this)

Every public name of every public package (their ``__all__``) gets its signature and the first
paragraph of its docstring; the conventions that hold for every op come first. Nothing here is
written by hand twice: change a docstring, re-run this script.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import re
import sys
from pathlib import Path

PATH = Path(__file__).with_name("api.md")
# Document this checkout's package, whatever copy of cnnjax is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: (module, heading, what the section is) in the order of the reference.
SECTIONS = (
    ("cnnjax", "Ops — `cnnjax`",
     "Pure functions (``cnnjax/ops``), re-exported at the top level: arrays and static "
     "hyperparameters in, arrays out."),
    ("cnnjax.layers.pool_specs", "Pooling registry — `cnnjax.layers.pool_specs`",
     "Every pooling method, its spec string grammar, kind and module; read by both module "
     "front ends, the command line, the ablation, the summary and the benchmark."),
    ("cnnjax.layers.params", "Learned hyperparameters — `cnnjax.layers.params`",
     "The parameterisations shared by the linen and NNX modules."),
    ("cnnjax.nn", "Flax linen modules — `cnnjax.nn`",
     "Thin ``flax.linen`` modules, each the partial application of one op."),
    ("cnnjax.nnx", "Flax NNX modules — `cnnjax.nnx`",
     "Thin ``flax.nnx`` modules, the same set with NNX conventions."),
    ("cnnjax.models", "Models — `cnnjax.models`",
     "The model zoo; ``pool`` is a field of every model."),
    ("cnnjax.models.introspect", "Looking inside models — `cnnjax.models.introspect`",
     "Tracing a model's layers, their windows and receptive fields."),
    ("cnnjax.data", "Data — `cnnjax.data`", "Datasets, batching and augmentation."),
    ("cnnjax.train", "Training — `cnnjax.train`", "``fit`` and its parts."),
    ("cnnjax.ablation", "The pooling ablation — `cnnjax.ablation`",
     "The study: results file, summary, report, plots and the runner."),
    ("cnnjax.bench", "Benchmark — `cnnjax.bench`", "``cnnjax bench`` and its timing harness."),
)

CONVENTIONS = """\
## Conventions (every op)

- **Layout is channels-last.** Inputs are ``[N, *spatial, C]`` with 1, 2 or 3 spatial dims
  (``d = x.ndim - 2``). Conv kernels are ``[*kernel_size, C_in // groups, C_out]`` (HWIO in 2-D).
- An ``int`` hyperparameter (``kernel_size``, ``window_shape``, ``stride(s)``, ``dilation``,
  ``padding``) means the same value for every spatial dim; a sequence must have length ``d``.
- ``padding`` is ``'VALID'``, ``'SAME'`` (XLA semantics), an int, a sequence of ``d`` ints
  (symmetric), or a sequence of ``d`` ``(lo, hi)`` pairs.
- Pooling: ``strides=None`` means ``strides = window_shape`` (non-overlapping, as in PyTorch
  and the lectures — unlike ``flax.linen.max_pool``); ``ceil_mode`` follows PyTorch.
- Every op works under ``jax.jit``, ``jax.vmap`` and ``jax.grad`` (with respect to inputs and
  parameters), in float32 and float64 (and bfloat16 where XLA allows).
- Misuse (wrong rank, bad padding, channels not divisible by groups, a window larger than the
  padded input, ``p <= 0``, a missing ``key`` when ``train=True``, ...) raises
  ``ValueError``/``TypeError`` with one sentence naming the op, the argument, the rule and the
  value received.
- Stochastic ops take ``train`` (keyword, required) and ``key`` (required when
  ``train=True``); ``train=False`` is the method's deterministic inference rule.
  Hyperparameters of a method are keyword-only.
- Modules: each is "equivalent to partial application" of its op, with fields named as the
  op's arguments; pooling modules are called as ``module(x, train=...)``; stochastic pools draw
  from the ``'pool'`` RNG stream; running statistics live in ``'batch_stats'``
  (``nnx.BatchStat`` in NNX).
"""


def _first_paragraph(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _signature(name: str, obj) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    # Without annotations: the reference shows names and defaults; types are in the docstrings.
    # Flax's bookkeeping fields (parent, name) are not part of a module's own interface.
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()
              if not (inspect.isclass(obj) and p.name in ("parent", "name"))]
    sig = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))
    sig = re.sub(r" at 0x[0-9a-f]+", "", sig)  # reprs of default callables: no addresses
    if inspect.isclass(obj):
        return f"class {name}{sig}"
    return f"{name}{sig}"


def _entries(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    names = list(getattr(module, "__all__", []))
    out = []
    for name in names:
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        if callable(obj):
            out.append(f"### `{name}`\n\n```python\n{_signature(name, obj)}\n```\n\n"
                       f"{_first_paragraph(obj)}\n")
        elif name == "METHODS":
            rows = ["| spec | module | op | family | what |", "|---|---|---|---|---|"]
            rows += [f"| `{m.name or ''}` | `{m.module}` | `{m.op}` | {m.family} | {m.summary} |"
                     for m in obj]
            out.append(f"### `{name}`\n\nEvery pooling method of the registry:\n\n"
                       + "\n".join(rows) + "\n")
        elif name == "CLAIMS":
            rows = ["| paper | claim | comparisons |", "|---|---|---|"]
            rows += [f"| {c.paper} | {c.statement} | {'; '.join(map(str, c.comparisons))} |"
                     for c in obj]
            out.append(f"### `{name}`\n\nThe published claims the report checks:\n\n"
                       + "\n".join(rows) + "\n")
        else:
            out.append(f"### `{name}`\n\n`{name} = {obj!r}`\n")
    return out


def generate() -> str:
    parts = ["# cnnjax API reference", "",
             "Generated from the docstrings by `python docs/gen_api.py`; the full docstring of "
             "each name (formula, paper, output size, example) is one `help()` away.", "",
             CONVENTIONS]
    for module_name, heading, what in SECTIONS:
        entries = _entries(module_name)
        if entries:
            parts += [f"## {heading}", "", what, "", *entries]
    return "\n".join(parts).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        if not PATH.exists() or PATH.read_text(encoding="utf-8") != text:
            print(f"{PATH} is stale: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
