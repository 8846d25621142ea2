"""``fit_seeds``: several seeds of one configuration trained as one vectorised program.

The seeds of an ablation cell differ only in their random numbers, so their training steps are
the same program on different data. ``jax.vmap`` over a leading seed axis of :func:`fit`'s own
init/train/eval steps turns S small programs into one larger one: on a CPU that keeps the cores
busy where a LeNet-sized step alone cannot, and the steps are compiled once for all seeds.
"""
from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cnnjax.data import Dataset, as_dataset, batch_indices, normalization_stats, take
from cnnjax.ops._autotune import static_only
from cnnjax.train import _parallel, _validate
from cnnjax.train._checkpoint import Checkpointer
from cnnjax.train._fingerprint import run_fingerprint
from cnnjax.train._loop import (
    _augment_fn,
    _augment_name,
    _cached_optimizer,
    _check_same_run,
    _checkpoint_due,
    _eval_step,
    _init_state,
    _steps,
    _train_step,
)

_OP = "fit_seeds"


class SeedsResult(NamedTuple):
    """What :func:`fit_seeds` returns.

    Attributes:
      state: the final :class:`~cnnjax.train.TrainState` of every seed, each leaf stacked
        along a new leading axis ``[S, ...]`` in the order of ``seeds``.
      histories: one history per seed, entries as :class:`~cnnjax.train.FitResult`'s
        (``seconds`` and ``eval_seconds`` are the wall time of the joint program).
      normalization: the ``(mean, std)`` per channel the inputs were normalised with.
    """
    state: Any
    histories: list[list[dict]]
    normalization: tuple[np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=32)
def _vmapped_steps(model, tx, augment):
    """fit's init/train/eval steps, vmapped over the seed axis and jitted (one device)."""
    def init(sample, roots, mean, std):  # eager, as fit's (``_eager_init``): the same values
        states = [_init_state(model, tx, sample, root, mean, std) for root in roots]
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *states)

    train_step = jax.jit(jax.vmap(functools.partial(_train_step, model=model, tx=tx,
                                                    augment=augment),
                                  in_axes=(0, 0, 0, None, None)), donate_argnums=0)
    # Every seed is evaluated on the same test batch.
    eval_step = jax.jit(jax.vmap(functools.partial(_eval_step, model=model),
                                 in_axes=(0, None, None, None, None)))
    return init, train_step, eval_step


def estimate_memory_bytes(model, sample: np.ndarray, seeds: int, batch_size: int) -> int:
    """A rough upper estimate of the memory S vectorised seeds need while training.

    Per seed: four copies of the parameters (weights, gradient, two Adam moments) and the
    outputs of every module for one batch, counted twice (kept for the backward pass and
    their gradients). Computed abstractly (``jax.eval_shape``), nothing is allocated.

    Args:
      model: the flax module.
      sample: one input ``[1, *spatial, C]``.
      seeds: the number S of seeds trained together.
      batch_size: examples per step.
    """
    x = jax.ShapeDtypeStruct((batch_size, *np.shape(sample)[1:]), jnp.float32)
    keys = {k: jax.random.PRNGKey(0) for k in ("params", "dropout", "pool")}
    variables = jax.eval_shape(lambda: model.init(keys, jnp.zeros(x.shape, x.dtype),
                                                  train=False))
    _, state = jax.eval_shape(
        lambda v, xs: model.apply(v, xs, train=False, capture_intermediates=True,
                                  mutable=["intermediates"]), variables, x)

    def nbytes(tree):
        return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize
                   for a in jax.tree_util.tree_leaves(tree))

    per_seed = 4 * nbytes(variables.get("params", {})) + 2 * nbytes(state["intermediates"])
    return int(seeds) * per_seed


def available_memory_bytes() -> int | None:
    """Free physical memory of the host (``os.sysconf``), or ``None`` where unknown."""
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def measure_speedup(model, train_data: Dataset | Sequence, *, seeds: int, batch_size: int,
                    learning_rate: float, optimizer: str = "adam", schedule: str = "constant",
                    epochs: int = 1, augment: Any = "auto", devices: Any = None,
                    steps: int = 4) -> float:
    """How much faster one vectorised step of ``seeds`` seeds is than ``seeds`` of ``fit``'s.

    Compiles both train steps (``fit``'s is cached, so a ``fit`` of the same configuration
    reuses it), runs one warm-up step each, then ``steps`` steps of each, twice, interleaved,
    and compares the fastest rounds. Whether vmapping pays depends on the backend's batched
    kernels: XLA:CPU runs per-seed convolutions as grouped convolutions and per-seed matmuls
    as batched ones, which can be slower than the plain ones they replace.

    Returns:
      ``seeds × t(fit's step) / t(vectorised step)``: above 1 the vectorised step is faster.
    """
    train = as_dataset(train_data, "train_data")
    augment_fn = _augment_fn(augment, train.name)
    steps_per_epoch = max(1, len(train.labels) // batch_size)
    total_steps = None if schedule == "constant" else epochs * steps_per_epoch
    _, tx = _cached_optimizer(optimizer, schedule, learning_rate, total_steps, None, 0.0,
                              None if optimizer != "sgd" else 0.9)
    mesh = _parallel.make_mesh(devices)
    init1, step1, _ = _steps(model, tx, augment_fn, mesh)
    init_s, step_s, _ = _vmapped_steps(model, tx, augment_fn)
    mean, std = (jnp.asarray(a) for a in normalization_stats(train.images))
    sample = jnp.asarray(train.images[:1])
    one = init1(sample, jax.random.PRNGKey(0), mean, std)
    many = init_s(sample, jnp.stack([jax.random.PRNGKey(s) for s in range(seeds)]), mean,
                  std)
    idx = batch_indices(len(train.labels), batch_size, seed=0, epoch=1, drop_remainder=True)[0]
    x, y = take(train.images, train.labels, idx)
    xs, ys = np.stack([x] * seeds), np.stack([y] * seeds)

    def run(step, state, a, b, n):
        t = time.perf_counter()
        for _ in range(n):
            state, _ = step(state, a, b, mean, std)
        jax.block_until_ready(state)
        return state, time.perf_counter() - t

    one, _ = run(step1, one, x, y, 1)
    many, _ = run(step_s, many, xs, ys, 1)
    best_one = best_many = float("inf")
    for _ in range(2):
        one, t = run(step1, one, x, y, steps)
        best_one = min(best_one, t)
        many, t = run(step_s, many, xs, ys, steps)
        best_many = min(best_many, t)
    return seeds * best_one / best_many


def fit_seeds(model, train_data: Dataset | Sequence, test_data: Dataset | Sequence | None, *,
              seeds: Sequence[int], epochs: int, batch_size: int, learning_rate: float,
              optimizer: str = "adam", schedule: str = "constant",
              weight_decay: float = 0.0, momentum: float = 0.9,
              warmup_steps: int | None = None, augment: Any = "auto",
              eval_batch_size: int | None = None, workdir: str | None = None,
              on_epoch_end: Callable[[list[dict]], None] | None = None,
              max_to_keep: int = 2, checkpoint_seconds: float = 0.0) -> SeedsResult:
    """Trains one configuration for several seeds at once: ``jax.vmap`` over the seeds.

    Everything that depends on the seed is per seed, exactly as :func:`cnnjax.train.fit`
    draws it: parameter initialisation, the data order (``batch_indices(seed=s, epoch=e)``
    of each seed, stacked to ``[S, B, ...]``), dropout and stochastic-pool noise and
    augmentation (each seed's key folded with the step). The steps are ``fit``'s own,
    vmapped, so each seed's history equals what ``fit(seed=s)`` gives on one device, to
    float32 round-off (the batched convolutions may sum in another order). Runs on the first
    local device only, without a mesh; use :func:`fit` to shard over several devices.

    Args:
      model, train_data, test_data, epochs, batch_size, learning_rate, optimizer, schedule,
        weight_decay, momentum, warmup_steps, augment, eval_batch_size, max_to_keep,
        checkpoint_seconds: as
        :func:`cnnjax.train.fit` (``optimizer`` and ``schedule`` by name).
      seeds: the S distinct seeds, in the order of the results.
      workdir: if given, the stacked state of all seeds is checkpointed there after every
        epoch (see ``checkpoint_seconds``) and after the last one, and a run finding checkpoints resumes from the newest intact one. The
        fingerprint is ``fit``'s with the seed list in place of the seed, so a workdir of
        other seeds, or of another configuration, is refused.
      on_epoch_end: called with the S new history entries after each epoch's checkpoint.

    Returns:
      :class:`SeedsResult` ``(state, histories, normalization)``.

    Raises:
      ValueError: bad seeds, or what :func:`fit` raises for bad settings (one sentence).

    Example:
      >>> from cnnjax.data import load
      >>> r = fit_seeds(model, load("digits"), load("digits", "test"), seeds=(0, 1, 2),
      ...               epochs=3, batch_size=32, learning_rate=1e-3)  # doctest: +SKIP
      >>> [h[-1]["test_accuracy"] for h in r.histories]  # doctest: +SKIP
    """
    seeds = _check_seeds(seeds)
    train = as_dataset(train_data, "train_data")
    test = None if test_data is None else as_dataset(test_data, "test_data")
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"{_OP}: epochs must be an int >= 0, got {epochs!r}.")
    if not isinstance(optimizer, str) or not isinstance(schedule, str):
        raise TypeError(f"{_OP}: optimizer and schedule must be names, got "
                        f"{optimizer!r} and {schedule!r}.")
    if not learning_rate > 0:
        raise ValueError(f"{_OP}: learning_rate must be > 0, got {learning_rate!r}.")
    _validate.check_data(train, test)
    _validate.check_checkpoint_seconds(checkpoint_seconds, _OP)
    eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
    steps_per_epoch = len(train.labels) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{_OP}: batch_size must be <= the {len(train.labels)} training "
                         f"examples, got {batch_size}.")
    augment_fn = _augment_fn(augment, train.name)
    total_steps = None if schedule == "constant" else epochs * steps_per_epoch
    warmup = warmup_steps if schedule == "warmup_cosine" else None
    opt_args = (optimizer, schedule, learning_rate, total_steps, warmup, weight_decay,
                momentum if optimizer == "sgd" else None)
    lr_schedule, tx = _cached_optimizer(*opt_args)
    try:
        init, train_step, eval_step = _vmapped_steps(model, tx, augment_fn)
    except TypeError:  # an unhashable model: build uncached
        init, train_step, eval_step = _vmapped_steps.__wrapped__(model, tx, augment_fn)
    variables = _validate.check_model(model, train, test)
    mean, std = normalization_stats(train.images)
    mean_d, std_d = jnp.asarray(mean), jnp.asarray(std)
    roots = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    with static_only():  # as in fit: the init's convs never run for their speed
        state = init(jnp.asarray(train.images[:1]), roots, mean_d, std_d)

    fingerprint = run_fingerprint(
        model=model, variables=variables, train=train, test=test, optimizer=optimizer,
        learning_rate=learning_rate, weight_decay=weight_decay, momentum=opt_args[-1],
        schedule=schedule, total_steps=total_steps, warmup_steps=warmup,
        augment=_augment_name(augment_fn), batch_size=batch_size, seed=seeds[0])
    fingerprint["seed"] = repr(list(seeds))
    fingerprint["vectorized"] = "True"
    per_epoch: list[list[dict]] = []
    start_epoch = 0
    ckpt = None
    try:
        if workdir is not None:
            ckpt = Checkpointer(workdir, max_to_keep=max_to_keep)
            repl = _parallel.replicated(_parallel.make_mesh(1))
            restored = ckpt.restore_latest(
                state, repl, check=functools.partial(_check_same_run, fingerprint, ckpt))
            if restored is not None:
                state, meta = restored
                per_epoch, start_epoch = [list(e) for e in meta["history"]], int(meta["epoch"])
        saved_at = time.monotonic()
        for epoch in range(start_epoch + 1, epochs + 1):
            t0 = time.perf_counter()
            metrics = []
            orders = [batch_indices(len(train.labels), batch_size, seed=s, epoch=epoch,
                                    drop_remainder=True) for s in seeds]
            for idx in zip(*orders):
                x, y = take(train.images, train.labels, np.stack(idx))
                state, m = train_step(state, x, y, mean_d, std_d)
                metrics.append(m)
            totals = _sum_metrics(metrics, len(seeds))
            seconds = time.perf_counter() - t0
            entries = [{"epoch": epoch,
                        "train_loss": totals["loss"][i] / totals["count"][i],
                        "train_accuracy": totals["correct"][i] / totals["count"][i],
                        "test_loss": None, "test_accuracy": None, "seconds": seconds}
                       for i in range(len(seeds))]
            t1 = time.perf_counter()
            if test is not None:
                metrics = []
                for idx in batch_indices(len(test.labels), eval_batch_size, pad=True):
                    x, y = take(test.images, test.labels, idx)
                    metrics.append(eval_step(state, x, y, mean_d, std_d))
                totals = _sum_metrics(metrics, len(seeds))
                for i, e in enumerate(entries):
                    e["test_loss"] = totals["loss"][i] / totals["count"][i]
                    e["test_accuracy"] = totals["correct"][i] / totals["count"][i]
            eval_seconds = time.perf_counter() - t1
            with jax.numpy_dtype_promotion("standard"):  # optax's schedules, see fit
                lr = float(lr_schedule(epoch * steps_per_epoch - 1))
            for e in entries:
                e["eval_seconds"] = eval_seconds
                e["learning_rate"] = lr
            per_epoch.append(entries)
            if ckpt is not None and _checkpoint_due(epoch, epochs, saved_at,
                                                    checkpoint_seconds):
                ckpt.save(epoch, state, {"history": per_epoch, "fingerprint": fingerprint,
                                         "epochs": epochs})
                saved_at = time.monotonic()
            if on_epoch_end is not None:
                on_epoch_end([dict(e) for e in entries])
    finally:
        if ckpt is not None:
            ckpt.close()
    histories = [[entries[i] for entries in per_epoch] for i in range(len(seeds))]
    return SeedsResult(state, histories, (mean, std))


def unstack(state: Any, i: int) -> Any:
    """Seed ``i``'s state out of a stacked one."""
    return jax.tree.map(lambda a: a[i], state)


def _check_seeds(seeds: Any) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Sequence):
        raise TypeError(f"{_OP}: seeds must be a sequence of ints, got {seeds!r}.")
    if not seeds:
        raise ValueError(f"{_OP}: seeds must name at least one seed, got {list(seeds)!r}.")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"{_OP}: seeds must be non-negative ints, got {s!r}.")
    if len(set(int(s) for s in seeds)) != len(seeds):
        raise ValueError(f"{_OP}: seeds must be distinct, got {list(seeds)!r}.")
    return tuple(int(s) for s in seeds)


def _sum_metrics(metrics: list[dict], n_seeds: int) -> dict:
    """Per-seed sums of the per-step metrics in float64 on the host, as ``fit`` sums them."""
    if not metrics:
        return {k: [float("nan")] * n_seeds for k in ("loss", "correct", "count")}
    host = jax.device_get(metrics)
    return {k: [float(v) for v in sum(np.asarray(m[k]).astype(np.float64) for m in host)]
            for k in host[0]}


__all__ = [
    "SeedsResult",
    "available_memory_bytes",
    "estimate_memory_bytes",
    "fit_seeds",
    "measure_speedup",
    "unstack",
]
