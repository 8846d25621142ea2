"""The pooling registry: every pooling method, its spec grammar, kind and module, in one table.

A *pool spec* is the string a researcher writes to put a pooling method at a model's pooling
sites (``models.get('lenet5', pool='lp:p=3')``, ``cnnjax ablate --pools max,gem:learn``)::

    spec    := name [ ':' option { ',' option } ]
    option  := key '=' number        e.g. 'lp:p=3', 'mixed:alpha=0.25', 'blur:k=5'
             | flag                  e.g. 'lp:learn', 'mixed:learn,per_channel'

Names and keys are case-insensitive. Each :class:`Method` below says which module implements
the name (the same class name in :mod:`cnnjax.nn` for ``flax.linen`` and in :mod:`cnnjax.nnx`
for ``flax.nnx``), which module field each option sets and which values it accepts, whether the
method is a window pool, learned or stochastic, and how it is placed at a *pooling site* — a
place where a model would put ``max_pool(x, window_shape, strides, padding)``. Every spec keeps
``'max'``'s output size at its site, so every model runs every spec.

This module is the single source of those facts: the ``make_pool`` functions of both front
ends, the command line, the ablation study, the model summary, the plots and the benchmark
all read it. Adding a pooling method is: its op, its module(s), one :class:`Method` entry here,
its tests. It imports no front end (neither Flax nor the module packages): both front ends
import it, and code that only reads specs (the command line, reading results) stays light.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "FAMILIES", "METHODS", "POOL_SPECS", "Method", "Option", "ParsedSpec", "build",
    "method_of", "module_class", "parse", "specs_of", "split_spec_list",
]

#: Method families, in the order plots list them (one colour per family).
FAMILIES: tuple[str, ...] = (
    "max/average",       # max, avg, sum, min — the lectures' reductions
    "power mean",        # lp, l2, gem, lse — means between average and max
    "max-average mix",   # mixed, stochastic_mixed, gated, tree (Lee et al. 2016; Yu 2014)
    "softmax-weighted",  # soft, lip
    "stochastic",        # stochastic, fractional
    "anti-aliased",      # blur, maxblur, spectral — low-pass before subsampling
    "order statistic",   # median
    "learned",           # strided_conv
)


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a spec.

    Attributes:
      key: as written in a spec (``'p'`` in ``'lp:p=3'``, ``'learn'`` in ``'lp:learn'``).
      field: the module field it sets.
      kind: ``float`` or ``int`` for ``key=value`` options; ``None`` for a flag (sets True).
      rule: for valued options, a predicate on the parsed value and the words that say what
        it must be (``(lambda v: v > 0, 'a number > 0')``).
    """

    key: str
    field: str
    kind: type | None = float
    rule: tuple[Callable[[Any], bool], str] | None = None


@dataclasses.dataclass(frozen=True)
class Method:
    """One pooling method of the registry.

    Attributes:
      name: the spec name (``None`` for pooling modules that no site can hold: adaptive,
        global and pyramid pools change the output size or rank).
      module: the class name in :mod:`cnnjax.nn` and :mod:`cnnjax.nnx`.
      op: the ``cnnjax`` op the module applies.
      family: one of :data:`FAMILIES`.
      summary: what it is, and the paper.
      options: the spec's options.
      defaults: module fields every spec of this name sets.
      site: how a pooling site ``(window_shape, strides, padding)`` is handed to the module:
        ``'window'`` as the fields ``window_shape``/``strides``/``padding``; ``'site'`` as the
        one field ``site`` (the module sizes its output to the site's, see ``BlurPool`` and
        ``FractionalMaxPool``); ``None`` for methods without a spec.
      geometry: how an instance maps input pixels to outputs, for receptive fields:
        ``'window'`` (its ``window_shape``/``strides``/``padding``/``dilation`` fields),
        ``'blur'`` (a ``window_shape`` filter with ``strides``, padded ``(k-1)//2`` before),
        ``'maxblur'`` (a dense ``window_shape`` max, then a ``filter_size`` blur),
        ``'adaptive'`` (PyTorch's adaptive bins) or ``'global'`` (every output sees the
        whole map).
      learned: True if the module always has parameters; the name of the flag field that
        adds them (``'learn_p'``); False if it never has any.
      stochastic: draws from the ``'pool'`` RNG stream when training.
      describe: the module fields shown in a summary row, each as ``(field, learn_flag)``
        (``('p', 'learn_p')`` prints ``p learned`` or ``p=3``).
    """

    name: str | None
    module: str
    op: str
    family: str
    summary: str
    options: tuple[Option, ...] = ()
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    site: str | None = "window"
    geometry: str = "window"
    learned: bool | str = False
    stochastic: bool = False
    describe: tuple[tuple[str, str | None], ...] = ()

    def option(self, key: str) -> Option | None:
        return next((o for o in self.options if o.key == key), None)


_POSITIVE = (lambda v: v > 0 and math.isfinite(v), "a finite number > 0")
_UNIT = (lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
_LP_P = (lambda v: v > 0, "a number > 0 (or inf)")
_KERNEL = (lambda v: v >= 1, "an int >= 1")
_DEPTH = (lambda v: v >= 2, "an int >= 2")
_LEARN = Option("learn", "", None)  # field filled per method below
_PER_CHANNEL = Option("per_channel", "per_channel", None)


def _learn(field: str) -> Option:
    return dataclasses.replace(_LEARN, field=field)


#: Every pooling method, the first-family ones (lectures and 2012–16 papers) first.
METHODS: tuple[Method, ...] = (
    Method("max", "MaxPool", "max_pool", "max/average", "max pooling"),
    Method("avg", "AvgPool", "avg_pool", "max/average", "average pooling"),
    Method("sum", "SumPool", "sum_pool", "max/average", "sum pooling"),
    Method("lp", "LpPool", "lp_pool", "power mean",
           "Lp pooling (Sermanet et al. 2012; learned p: Gulcehre et al. 2014)",
           (Option("p", "p", float, _LP_P), _learn("learn_p")),
           learned="learn_p", describe=(("p", "learn_p"),)),
    Method("l2", "L2Pool", "l2_pool", "power mean",
           "L2 pooling with a Gaussian window (Sermanet et al. 2012)"),
    Method("mixed", "MixedPool", "mixed_pool", "max-average mix",
           "alpha·max + (1−alpha)·average (Lee et al. 2016)",
           (Option("alpha", "alpha", float, _UNIT), _learn("learn_alpha"), _PER_CHANNEL),
           learned="learn_alpha", describe=(("alpha", "learn_alpha"),)),
    Method("stochastic_mixed", "StochasticMixedPool", "stochastic_mixed_pool", "max-average mix",
           "max or average drawn per example and channel (Yu et al. 2014)",
           (Option("alpha", "alpha", float, _UNIT),), stochastic=True,
           describe=(("alpha", None),)),
    Method("gated", "GatedPool", "gated_pool", "max-average mix",
           "gated max-average mix (Lee et al. 2016)", (_PER_CHANNEL,), learned=True),
    Method("stochastic", "StochasticPool", "stochastic_pool", "stochastic",
           "stochastic pooling (Zeiler & Fergus 2013)", stochastic=True),
    Method("spectral", "SpectralPool", "spectral_pool", "anti-aliased",
           "spectral pooling (Rippel et al. 2015)", stochastic=True, geometry="global"),
    Method("blur", "BlurPool", "blur_pool", "anti-aliased",
           "anti-aliased downsampling: binomial low-pass filter, then subsample (Zhang 2019)",
           (Option("k", "window_shape", int, _KERNEL),), defaults={"window_shape": 3},
           site="site", geometry="blur"),
    Method("maxblur", "MaxBlurPool", "max_blur_pool", "anti-aliased",
           "dense max pooling, then anti-aliased subsampling (Zhang 2019)",
           (Option("k", "filter_size", int, _KERNEL),), geometry="maxblur"),
    Method("soft", "SoftPool", "soft_pool", "softmax-weighted",
           "softmax-weighted pooling (Stergiou et al. 2021)"),
    Method("lip", "LipPool", "lip_pool", "softmax-weighted",
           "local importance-based pooling, logits from a learned convolution (Gao et al. 2019)",
           learned=True),
    Method("gem", "GeMPool", "gem_pool", "power mean",
           "generalized mean pooling (Radenović et al. 2018)",
           (Option("p", "p", float, _POSITIVE), _learn("learn_p"), _PER_CHANNEL),
           learned="learn_p", describe=(("p", "learn_p"),)),
    Method("lse", "LsePool", "lse_pool", "power mean",
           "log-sum-exp pooling (Pinheiro & Collobert 2015)",
           (Option("r", "r", float, _POSITIVE), _learn("learn_r"), _PER_CHANNEL),
           learned="learn_r", describe=(("r", "learn_r"),)),
    Method("min", "MinPool", "min_pool", "max/average", "min pooling"),
    Method("median", "MedianPool", "median_pool", "order statistic",
           "median pooling; padding by edge replication, which (unlike reflection) exists at "
           "every site, including 3×3 'SAME' pooling of a 1×1 map",
           defaults={"padding_mode": "replicate"}),
    Method("fractional", "FractionalMaxPool", "fractional_max_pool", "stochastic",
           "pseudo-random overlapping fractional max pooling (Graham 2014)", site="site",
           geometry="adaptive", stochastic=True),
    Method("tree", "TreePool", "tree_pool", "max-average mix",
           "tree pooling, depth 2 by default (Lee et al. 2016)",
           (Option("depth", "depth", int, _DEPTH),), learned=True),
    Method("strided_conv", "StridedConvPool", "conv", "learned",
           "no pooling: a learned C→C convolution with the site's window and stride "
           "(Springenberg et al. 2015)", learned=True),
    Method(None, "AdaptiveAvgPool", "adaptive_avg_pool", "max/average",
           "adaptive average pooling", site=None, geometry="adaptive"),
    Method(None, "AdaptiveMaxPool", "adaptive_max_pool", "max/average",
           "adaptive max pooling", site=None, geometry="adaptive"),
    Method(None, "GlobalAvgPool", "global_avg_pool", "max/average",
           "global average pooling", site=None, geometry="global"),
    Method(None, "GlobalMaxPool", "global_max_pool", "max/average",
           "global max pooling", site=None, geometry="global"),
    Method(None, "GlobalGeMPool", "global_gem_pool", "power mean",
           "global generalized mean pooling", site=None, geometry="global"),
    Method(None, "GlobalLsePool", "global_lse_pool", "power mean",
           "global log-sum-exp pooling", site=None, geometry="global"),
    Method(None, "SpatialPyramidPool", "spatial_pyramid_pool", "max/average",
           "spatial pyramid pooling (He et al. 2014)", site=None, geometry="global"),
)

_BY_NAME: dict[str, Method] = {m.name: m for m in METHODS if m.name is not None}
_BY_MODULE: dict[str, Method] = {m.module: m for m in METHODS}

#: The canonical spec strings, one per method and variant: the ablation study's default grid.
POOL_SPECS: tuple[str, ...] = (
    # The lectures and the 2012-16 papers.
    "max", "avg", "sum", "lp:p=3", "lp:learn", "l2", "mixed:alpha=0.5", "mixed:learn",
    "stochastic_mixed", "gated", "stochastic", "spectral",
    # The variants pooling papers since 2017 compare against, and the no-pooling baseline.
    "blur", "maxblur", "soft", "lip", "gem:p=3", "gem:learn", "lse:r=1", "lse:learn", "min",
    "median", "fractional", "tree", "strided_conv",
)


def _help() -> str:
    return ("valid specs are " + ", ".join(repr(s) for s in POOL_SPECS)
            + "; options: " + "; ".join(
                f"{m.name}: " + ", ".join(o.key if o.kind is None else f"{o.key}=<{o.kind.__name__}>"
                                         for o in m.options)
                for m in METHODS if m.name and m.options))


def _fail(message: str, exc: type[Exception] = ValueError) -> None:
    raise exc(f"make_pool: {message}")


@dataclasses.dataclass(frozen=True)
class ParsedSpec:
    """A validated spec: its method and the module fields its options set."""

    spec: str
    method: Method
    fields: Mapping[str, Any]

    @property
    def learned(self) -> bool:
        learned = self.method.learned
        return bool(self.fields.get(learned)) if isinstance(learned, str) else learned

    @property
    def stochastic(self) -> bool:
        return self.method.stochastic


def _parse_value(option: Option, spec: str, text: str) -> Any:
    try:
        value = option.kind(text)
    except ValueError:
        _fail(f"option {option.key!r} in pooling spec {spec!r} needs "
              f"{'an int' if option.kind is int else 'a number'}, got {text!r}; {_help()}.")
    if option.rule is not None and not option.rule[0](value):
        _fail(f"option {option.key!r} in pooling spec {spec!r} must be {option.rule[1]}, "
              f"got {text!r}.")
    return value


def parse(spec: str) -> ParsedSpec:
    """Validates a spec string and returns its method and module fields.

    Raises:
      TypeError: ``spec`` is not a string.
      ValueError: unknown name, unknown or malformed option, or an option value outside its
        range; the message lists the valid specs.

    Example:
      >>> parse('lp:p=3').fields
      {'p': 3.0}
    """
    if not isinstance(spec, str):
        _fail(f"spec must be a string, got {spec!r}; {_help()}.", TypeError)
    name, _, options = spec.strip().lower().partition(":")
    method = _BY_NAME.get(name)
    if method is None:
        _fail(f"unknown pooling spec {spec!r}; {_help()}.")
    fields: dict[str, Any] = dict(method.defaults)
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, eq, value = item.partition("=")
        option = method.option(key.strip())
        if option is None or (option.kind is None) == bool(eq):
            _fail(f"unknown option {item!r} in pooling spec {spec!r}; {_help()}.")
        fields[option.field] = True if option.kind is None else _parse_value(
            option, spec, value.strip())
    if name == "lp" and "p" not in fields and not fields.get("learn_p"):
        _fail(f"pooling spec {spec!r} needs 'p=<float>' or 'learn'; {_help()}.")
    if name == "mixed" and fields.get("per_channel") and not fields.get("learn_alpha"):
        _fail(f"'per_channel' in pooling spec {spec!r} needs 'learn'; {_help()}.")
    return ParsedSpec(spec, method, fields)


def split_spec_list(text: str) -> list[str]:
    """Splits a comma-separated list of specs whose options are also comma-separated.

    A fragment continues the previous spec when it is one of that spec's options
    (``'mixed:learn,per_channel,avg'`` -> ``['mixed:learn,per_channel', 'avg']``).
    """
    specs: list[str] = []
    for part in (s.strip() for s in text.split(",")):
        if not part:
            continue
        if specs and ":" not in part:
            method = _BY_NAME.get(specs[-1].partition(":")[0].strip().lower())
            key = part.partition("=")[0].strip().lower()
            if method is not None and method.option(key) is not None:
                specs[-1] += ("," if ":" in specs[-1] else ":") + part
                continue
        specs.append(part)
    return specs


def build(spec: str, window_shape: Any = 2, strides: Any = None, padding: Any = "VALID", *,
          frontend: str = "linen", **kwargs: Any) -> Any:
    """The pooling module for ``spec`` at a site ``(window_shape, strides, padding)``.

    Args:
      spec: a pool spec.
      window_shape, strides, padding: the site (``strides=None`` means ``window_shape``).
      frontend: ``'linen'`` (:mod:`cnnjax.nn`) or ``'nnx'`` (:mod:`cnnjax.nnx`).
      **kwargs: more module fields (``name=``, ``rngs=``, ``num_features=``); they override
        the spec's options.

    Returns:
      An unbound linen module, or an NNX module.
    """
    parsed = parse(spec)
    method = parsed.method
    cls = module_class(parsed, frontend)
    if method.site == "site":
        site_fields = {"site": (window_shape, strides, padding)}
    else:
        site_fields = {"window_shape": window_shape, "strides": strides, "padding": padding}
    return cls(**site_fields, **{**parsed.fields, **kwargs})


def module_class(parsed: ParsedSpec, frontend: str) -> type:
    """The module class of a parsed spec in a front end (``'linen'`` or ``'nnx'``)."""
    package = {"linen": "cnnjax.nn", "nnx": "cnnjax.nnx"}.get(frontend)
    if package is None:
        _fail(f"frontend must be 'linen' or 'nnx', got {frontend!r}.")
    cls = getattr(importlib.import_module(package), parsed.method.module, None)
    if cls is None:
        _fail(f"pooling spec {parsed.spec!r} has no {package} module ({parsed.method.module}) "
              f"yet; build it with the linen front end (cnnjax.nn.make_pool).")
    return cls


def specs_of(frontend: str) -> tuple[str, ...]:
    """The canonical specs (:data:`POOL_SPECS`) whose module the front end has.

    Both :mod:`cnnjax.nn` (``'linen'``) and :mod:`cnnjax.nnx` (``'nnx'``) have every one.
    """
    package = importlib.import_module({"linen": "cnnjax.nn", "nnx": "cnnjax.nnx"}[frontend])
    return tuple(s for s in POOL_SPECS if hasattr(package, parse(s).method.module))


def method_of(module: Any) -> Method | None:
    """The registry entry of a pooling module instance (linen or NNX), or None."""
    for cls in type(module).__mro__:
        method = _BY_MODULE.get(cls.__name__)
        if method is not None and cls.__module__.startswith(("cnnjax.nn", "cnnjax.nnx")):
            return method
    return None
