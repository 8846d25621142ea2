"""Measured dispatch: ``impl='auto'`` on CPU times the applicable impls once per configuration.

The first time ``conv(..., impl='auto')`` is traced for a configuration -- input and kernel
shapes, dtype, canonical geometry (stride, padding, dilation, groups), precision -- on this
machine, every applicable implementation's forward+backward pass is compiled and timed on
random data of that shape (medians of a few interleaved runs, a small time budget), and the
fastest is remembered: in memory, and in a JSON file that later processes read.

The file lives in ``$CNNJAX_CACHE_DIR`` (default ``~/.cache/cnnjax``), one per machine key
(backend, CPU model, usable cores, jax/jaxlib and cnnjax versions, whether the process
reuses freed host memory), named
``autotune-<hash of the key>.json``; an entry measured under another key never applies.
Writers merge with what is on disk under an exclusive ``fcntl.flock`` and replace the file
atomically (temp file + ``os.replace``), so concurrent processes never lose each other's
entries. An unreadable or corrupt file is reported once with a warning and ignored.

``CNNJAX_AUTOTUNE=0`` turns measuring off (the static rule answers); so do a backend other
than CPU (XLA is the choice there), a multi-process run (``jax.process_count() > 1``:
hosts that measured differently would compile different programs and deadlock in their
collectives), convolutions too small for the choice to repay the seconds of measuring
(``_MIN_FLOPS``), and traces whose convolutions never run (``static_only``: ``fit``'s
parameter initialisation and shape checks).

Timing runs on concrete data through ahead-of-time compiled executables, so it works while
an outer ``jit``/``grad``/``vmap`` is tracing: nothing of the measurement enters that trace.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jaxlib
import numpy as np

from cnnjax import _host_memory
from cnnjax.ops import checks
from cnnjax.ops._conv_fft import direct_over_product
from cnnjax.ops._conv_geometry import ConvGeometry
from cnnjax.ops._conv_kernels import KERNELS

try:  # POSIX; elsewhere the file is still replaced atomically, only merging is unlocked
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

ENV_AUTOTUNE = "CNNJAX_AUTOTUNE"
ENV_CACHE_DIR = "CNNJAX_CACHE_DIR"
_OFF_VALUES = ("0", "false", "no", "off")
_FORMAT = 1

# Timed rounds per impl: at least ``_MIN_ROUNDS``, up to ``_MAX_ROUNDS`` while the timed part
# stays inside ``_BUDGET_S`` seconds. Compilation comes on top (~0.1-1 s per impl).
_MIN_ROUNDS = 3
_MAX_ROUNDS = 10
_BUDGET_S = 0.5
# When the static rule's impl takes less than this (forward+backward), nothing else is
# compiled: another impl could save at most this much per step, and compiling three more
# impls costs ~1-5 s (far more on a loaded machine), repaid only after thousands of steps.
# (The ablation's default study, LeNet5 on 8x8 digits at batch 64, stays below it.)
_FAST_ENOUGH_S = 5e-3
# Below this many forward FLOPs (2 * multiply-adds) a conv is not measured: at ~10 GFLOP/s
# its forward+backward takes ~1 ms, so even halving it repays the ~1-2 s of compiling and
# timing four impls only after thousands of steps (the 8x8 digits of the ablation's
# default study are all below it).
_MIN_FLOPS = 4e6
# An impl slower than this multiple of the best after the warm-up run is not timed further.
_HOPELESS = 3.0


class ConvChoice(NamedTuple):
    """What ``impl='auto'`` runs for one configuration and why.

    Attributes:
      impl: the implementation's name in ``CONV_IMPLS``.
      source: ``'tuned'`` (measured now), ``'cache'`` (measured earlier: memory or the cache
        file) or ``'static'`` (the static rule; ``reason`` says why nothing was measured).
      reason: one sentence.
      times_ms: forward+backward milliseconds per measured impl (empty for ``'static'``).
      cache_path: the cache file of this machine key (``None`` when nothing was measured).
    """

    impl: str
    source: str
    reason: str
    times_ms: dict[str, float]
    cache_path: str | None


_lock = threading.RLock()
_memo: dict[tuple[str, str], ConvChoice] = {}
_warned: set[str] = set()
_failed: dict[str, ConvChoice] = {}
_static_depth = threading.local()
_observers: list[list] = []


@contextlib.contextmanager
def static_only():
    """Within this block (this thread) ``impl='auto'`` measures nothing: the static rule.

    For traces whose convolutions are never run for their results (parameter
    initialisation, ``jax.eval_shape`` checks), often at other batch sizes than the real
    steps: measuring there would only cost time.
    """
    _static_depth.n = getattr(_static_depth, "n", 0) + 1
    try:
        yield
    finally:
        _static_depth.n -= 1


@contextlib.contextmanager
def observe():
    """Collects ``(x_shape, w_shape, geometry, dtype, ConvChoice)`` of every choice made
    inside the block (``cnnjax tune`` reports them)."""
    seen: list = []
    _observers.append(seen)
    try:
        yield seen
    finally:
        _observers.remove(seen)


def notify(x_shape, w_shape, geometry: ConvGeometry, dtype: Any, choice: ConvChoice) -> None:
    """Reports one choice to the active ``observe`` blocks."""
    for seen in _observers:
        seen.append((tuple(x_shape), tuple(w_shape), geometry, np.dtype(dtype).name, choice))


def clear_memo() -> None:
    """Forgets the in-memory choices (the cache files stay)."""
    with _lock:
        _memo.clear()
        _failed.clear()
        _warned.clear()


def _warn_once(tag: str, message: str) -> None:
    if tag not in _warned:
        _warned.add(tag)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def disabled_reason(backend: str) -> str | None:
    """Why nothing is measured for ``backend`` (a sentence), or ``None`` when measuring is on."""
    if os.environ.get(ENV_AUTOTUNE, "1").strip().lower() in _OFF_VALUES:
        return f"measuring is off ({ENV_AUTOTUNE}={os.environ[ENV_AUTOTUNE]})."
    if backend != "cpu":
        return f"backend {backend!r}: XLA's convolutions are the choice off CPU."
    if backend != jax.default_backend():
        return f"backend {backend!r} is not the default backend, so it cannot be timed here."
    if getattr(_static_depth, "n", 0):
        return "inside static_only(): this trace's convolutions are not run for their results."
    if jax.process_count() > 1:
        return (f"{jax.process_count()} processes: hosts that measured differently would "
                f"compile different programs.")
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else ``platform``)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_key() -> dict[str, Any]:
    """What a measurement depends on besides the configuration: where and with what it ran
    (and whether the process reuses freed host memory, which changes im2col's chunking)."""
    return dict(_machine_key(cores(), _host_memory.reused()))


def _cnnjax_version() -> str:
    try:
        return importlib.metadata.version("cnnjax")
    except importlib.metadata.PackageNotFoundError:  # a source tree on sys.path, uninstalled
        return "unknown"


@functools.lru_cache(maxsize=8)
def _machine_key(cores: int, host_memory_reused: bool) -> tuple[tuple[str, Any], ...]:
    # Cached per core count: every trace of impl='auto' asks, /proc/cpuinfo is read once.
    return (("backend", jax.default_backend()), ("cpu", cpu_model()), ("cores", cores),
            ("jax", jax.__version__), ("jaxlib", jaxlib.__version__),
            ("cnnjax", _cnnjax_version()), ("host_memory_reused", host_memory_reused))


def cache_path(machine: dict[str, Any] | None = None) -> str:
    """The cache file for ``machine`` (this machine's key when ``None``)."""
    machine = machine_key() if machine is None else machine
    root = os.environ.get(ENV_CACHE_DIR) or os.path.join(os.path.expanduser("~"), ".cache",
                                                          "cnnjax")
    digest = hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:16]
    return os.path.join(root, f"autotune-{digest}.json")


def entry_key(x_shape: Sequence[int], w_shape: Sequence[int], dtype: Any,
              geometry: ConvGeometry, precision: Any) -> str:
    """The configuration as a string: shapes, dtype, canonical geometry, precision."""
    return json.dumps({"x": list(x_shape), "w": list(w_shape), "dtype": np.dtype(dtype).name,
                       "kernel": list(geometry.kernel_size), "stride": list(geometry.stride),
                       "padding": [list(p) for p in geometry.padding],
                       "dilation": list(geometry.dilation), "groups": geometry.groups,
                       "precision": str(precision)}, sort_keys=True)


def candidates(x_shape: Sequence[int], w_shape: Sequence[int],
               geometry: ConvGeometry) -> tuple[str, ...]:
    """The impls worth timing: all direct ones, and ``'fft'`` unless it cannot win.

    The FFT's per-frequency channel product alone does more multiply-adds than the direct
    sum when ``direct_over_product(...) / prod(stride) < 1`` (the transforms come on top).
    """
    names = ("xla", "im2col", "xla_im2col_grad")
    padded = [n + lo + hi for n, (lo, hi) in zip(x_shape[1:-1], geometry.padding)]
    k_eff = [r * (k - 1) + 1 for k, r in zip(geometry.kernel_size, geometry.dilation)]
    direct_taps = checks.prod(geometry.kernel_size) / checks.prod(k_eff)
    ratio = direct_over_product(padded, k_eff) * direct_taps / checks.prod(geometry.stride)
    return (*names, "fft") if ratio >= 1 else names


def _forward_flops(x_shape, w_shape, geometry: ConvGeometry) -> float:
    out = geometry.output_shape(x_shape[1:-1])
    return 2.0 * x_shape[0] * checks.prod(out) * checks.prod(w_shape[:-1]) * w_shape[-1]


def _impl_fns() -> dict[str, Callable]:
    return {name: impl.fn for name, impl in KERNELS.items()}


def _compiled_fwd_bwd(fn: Callable, x, w, ct, geometry: ConvGeometry, precision):
    def f(a, b, g):
        y, vjp = jax.vjp(lambda p, q: fn(p, q, geometry, precision), a, b)
        return (y, *vjp(g))
    specs = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in (x, w, ct)]
    return jax.jit(f).lower(*specs).compile()


def measure(x_shape: Sequence[int], w_shape: Sequence[int], dtype: Any,
            geometry: ConvGeometry, precision: Any, names: Sequence[str],
            static: str) -> dict[str, float]:
    """Forward+backward seconds of the impls in ``names`` on random data (fastest run).

    The static rule's impl ``static`` is compiled and timed first; when it takes less than
    ``_FAST_ENOUGH_S`` nothing else is compiled (only its time is returned). Otherwise every
    impl is compiled ahead of time and run once (warm-up), impls slower than ``_HOPELESS``
    times the best warm-up are dropped (their warm-up time is reported), and the rest are
    timed in interleaved rounds (``_MIN_ROUNDS`` to ``_MAX_ROUNDS``, within ``_BUDGET_S``).
    The fastest run of each is reported: on a shared machine background load only ever adds
    time, so the minimum is the estimate it disturbs least.
    """
    rng = np.random.default_rng(0)
    dtype = np.dtype(dtype)
    out = geometry.output_shape(x_shape[1:-1])
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) / max(1, checks.prod(w_shape[:-1])) ** 0.5).astype(dtype)
    ct = rng.standard_normal((x_shape[0], *out, w_shape[-1])).astype(dtype)
    fns = _impl_fns()
    names = [static, *(n for n in names if n != static)]
    runs: dict[str, Any] = {}

    def once(name: str) -> float:
        if name not in runs:
            runs[name] = _compiled_fwd_bwd(fns[name], x, w, ct, geometry, precision)
            jax.block_until_ready(runs[name](x, w, ct))  # warm-up
        t0 = time.perf_counter()
        jax.block_until_ready(runs[name](x, w, ct))
        return time.perf_counter() - t0

    first = min(once(static) for _ in range(_MIN_ROUNDS))
    if first < _FAST_ENOUGH_S:
        return {static: first}
    times: dict[str, list[float]] = {static: [first], **{n: [once(n)] for n in names[1:]}}
    best = min(min(t) for t in times.values())
    live = [n for n in names if times[n][0] <= _HOPELESS * best]
    start = time.perf_counter()
    for r in range(_MAX_ROUNDS):
        if r >= _MIN_ROUNDS and time.perf_counter() - start > _BUDGET_S:
            break
        for name in live:
            times[name].append(once(name))
    return {n: min(times[n]) for n in names}


def _valid_entry(entry: Any, known: Sequence[str]) -> bool:
    return (isinstance(entry, dict) and entry.get("impl") in known
            and isinstance(entry.get("times_ms"), dict))


def _read(path: str, machine: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``path`` measured under ``machine``; ``{}`` (warned once) if unreadable."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as e:
        _warn_once(f"read:{path}", f"cnnjax autotune: ignoring the unreadable cache file "
                                   f"{path} ({type(e).__name__}: {e}); measuring again.")
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        _warn_once(f"read:{path}", f"cnnjax autotune: ignoring the cache file {path}: not an "
                                   f"autotune cache; measuring again.")
        return {}
    if data.get("format") != _FORMAT or data.get("machine") != machine:
        return {}  # another machine key or layout: never applies here
    known = tuple(_impl_fns())
    return {k: v for k, v in data["entries"].items() if _valid_entry(v, known)}


@contextlib.contextmanager
def _file_lock(path: str):
    with open(path + ".lock", "a") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_UN)


def store(path: str, machine: dict[str, Any], key: str, entry: dict[str, Any]) -> None:
    """Adds ``entry`` under ``key`` to the cache file: locked read-merge-write, atomic replace."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with _file_lock(path):
        entries = _read(path, machine)
        entries[key] = entry
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".autotune-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"format": _FORMAT, "machine": machine, "entries": entries}, f,
                          indent=0, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def tuned_choice(x_shape: Sequence[int], w_shape: Sequence[int], dtype: Any,
                 geometry: ConvGeometry, precision: Any, static: str) -> ConvChoice:
    """The measured choice for this configuration: memory, else the cache file, else timed.

    Falls back to ``static`` (with a warning, once per configuration) when measuring raises.
    """
    x_shape, w_shape = tuple(map(int, x_shape)), tuple(map(int, w_shape))
    if 0 in x_shape or 0 in w_shape:
        return ConvChoice(static, "static", "an empty array: nothing to measure.", {}, None)
    flops = _forward_flops(x_shape, w_shape, geometry)
    if flops < _MIN_FLOPS:
        return ConvChoice(static, "static", f"too small to repay measuring ({flops:.2g} "
                                            f"forward FLOPs < {_MIN_FLOPS:.2g}).", {}, None)
    machine = machine_key()
    path = cache_path(machine)
    key = entry_key(x_shape, w_shape, dtype, geometry, precision)
    with _lock:
        hit = _memo.get((path, key)) or _failed.get(key)
        if hit is not None:
            return hit
        entry = _read(path, machine).get(key)
        if entry is not None:
            choice = ConvChoice(entry["impl"], "cache", f"measured earlier, read from {path}.",
                            dict(entry["times_ms"]), path)
            _memo[(path, key)] = choice
            return choice
        names = candidates(x_shape, w_shape, geometry)
        try:
            seconds = measure(x_shape, w_shape, dtype, geometry, precision, names, static)
        except Exception as e:  # noqa: BLE001 - any failure falls back to the static rule
            _warn_once(f"measure:{key}", f"cnnjax autotune: measuring {key} failed "
                                         f"({type(e).__name__}: {e}); using {static!r}.")
            choice = ConvChoice(static, "static", f"measuring failed ({type(e).__name__}).", {},
                            None)
            _failed[key] = choice
            return choice
        times_ms = {n: round(s * 1e3, 4) for n, s in seconds.items()}
        impl = min(seconds, key=seconds.get)
        what = (f"fastest of {', '.join(seconds)}" if len(seconds) > 1 else
                f"the static rule's choice, fast enough (< {_FAST_ENOUGH_S * 1e3:g} ms)")
        choice = ConvChoice(impl, "tuned", f"{what}, measured now.", times_ms, path)
        _memo[(path, key)] = choice._replace(source="cache", reason=f"{what}, measured earlier.")
        try:
            store(path, machine, key, {
                "impl": impl, "times_ms": times_ms,
                "when": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")})
        except OSError as e:
            _warn_once(f"write:{path}", f"cnnjax autotune: cannot write the cache file "
                                        f"{path} ({e}); choices are kept in memory only.")
        return choice
