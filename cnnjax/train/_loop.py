"""``fit``: the training loop (jitted SPMD steps, evaluation, checkpoints, progress)."""
from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cnnjax.data import (Dataset, as_dataset, batch_indices, normalization_stats, normalize,
                         random_crop_flip, take)
from cnnjax.ops._autotune import static_only
from cnnjax.train import _io, _nnx, _parallel, _validate
from cnnjax.train._checkpoint import Checkpointer
from cnnjax.train._logs import MetricsLog, Progress
from cnnjax.train._fingerprint import difference, run_fingerprint, stable_repr
from cnnjax.train._state import TrainState, cross_entropy, make_optimizer, make_schedule

_log = logging.getLogger("cnnjax.train")

# Standard augmentation per dataset when augment='auto': the CIFAR recipe (crop + flip);
# SVHN digits are not mirror-symmetric, so crop only.
_AUTO_AUGMENT = {"cifar10": "crop_flip", "cifar100": "crop_flip", "svhn_cropped": "crop"}


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      state: the final :class:`TrainState` (replicated over the mesh).
      history: one dict per epoch: ``epoch`` (1-based), ``train_loss``, ``train_accuracy``,
        ``test_loss``, ``test_accuracy`` (``None`` without test data), ``seconds`` (wall
        time of the epoch's training steps, first-epoch compilation included),
        ``eval_seconds``, ``learning_rate`` (at the epoch's last step).
      normalization: the ``(mean, std)`` per channel used to normalise inputs; apply
        ``cnnjax.data.normalize(images, *normalization)`` before ``model.apply`` at inference.
      model: the trained model: for a ``flax.nnx`` model, a new NNX model of its class and
        mode holding the final parameters and BatchNorm statistics (the one passed in is left
        as it was); for a linen module, the module passed in (its variables are ``state``'s).
    """
    state: TrainState
    history: list[dict]
    normalization: tuple[np.ndarray, np.ndarray]
    model: Any = None


_CROP_ONLY = functools.partial(random_crop_flip, flip=False)


def _augment_fn(augment: Any, name: str) -> Callable | None:
    if isinstance(augment, str) and augment == "auto":
        augment = _AUTO_AUGMENT.get(name)
    if augment is None or augment is False:
        return None
    if augment is True or augment == "crop_flip":
        return random_crop_flip
    if augment == "crop":
        return _CROP_ONLY
    if callable(augment):
        return augment
    raise ValueError(f"fit: augment must be 'auto', 'crop_flip', 'crop', True, False, None or "
                     f"a function (key, images) -> images, got {augment!r}.")


def _augment_name(fn: Callable | None) -> str:
    """How the run's augmentation is recorded in its fingerprint."""
    names = {None: "None", random_crop_flip: "'crop_flip'", _CROP_ONLY: "'crop'"}
    return next((n for f, n in names.items() if f is fn), None) or stable_repr(fn)


def _gradients(state: TrainState, images: jax.Array, labels: jax.Array, mean: jax.Array,
               std: jax.Array, *, model, augment) -> tuple[Any, Any, dict]:
    """One batch's gradient of the mean loss, updated batch statistics and metric sums."""
    # Per-step randomness from (seed, step) only: resuming at step t replays the same keys.
    k_aug, k_dropout, k_pool = jax.random.split(jax.random.fold_in(state.rng, state.step), 3)
    x = images if augment is None else augment(k_aug, images)
    x = normalize(x, mean, std)

    def loss_fn(params):
        logits, updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, x, train=True,
            rngs={"dropout": k_dropout, "pool": k_pool}, mutable=["batch_stats"])
        loss_sum, correct, count = cross_entropy(logits, labels)
        return loss_sum / count, (updates.get("batch_stats", state.batch_stats), loss_sum,
                                  correct, count)

    grads, (batch_stats, loss_sum, correct, count) = jax.grad(loss_fn, has_aux=True)(
        state.params)
    return grads, batch_stats, {"loss": loss_sum, "correct": correct, "count": count}


def _train_step(state: TrainState, images: jax.Array, labels: jax.Array, mean: jax.Array,
                std: jax.Array, *, model, tx, augment) -> tuple[TrainState, dict]:
    grads, batch_stats, metrics = _gradients(state, images, labels, mean, std, model=model,
                                             augment=augment)
    # optax mixes Python floats with int32 step counts (e.g. ``b1 ** count``); it is not
    # written for strict dtype promotion, so its update is traced under standard promotion.
    with jax.numpy_dtype_promotion("standard"):
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state,
                              step=state.step + 1)
    return new_state, metrics


def _eval_step(state: TrainState, images: jax.Array, labels: jax.Array, mean: jax.Array,
               std: jax.Array, *, model) -> dict:
    logits = model.apply({"params": state.params, "batch_stats": state.batch_stats},
                         normalize(images, mean, std), train=False)
    loss_sum, correct, count = cross_entropy(logits, labels)
    return {"loss": loss_sum, "correct": correct, "count": count}


def _init_state(model, tx, sample: jax.Array, root: jax.Array, mean: jax.Array,
                std: jax.Array, own: dict | None = None) -> TrainState:
    k_params, k_dropout, k_pool, k_run = jax.random.split(root, 4)
    if own is None:
        variables = model.init({"params": k_params, "dropout": k_dropout, "pool": k_pool},
                               normalize(sample, mean, std), train=False)
    else:  # an NNX model's own variables: an argument, never a constant of the cached step;
        # copied, as the train step donates the state's buffers
        variables = jax.tree_util.tree_map(jnp.copy, own)
    params = variables["params"]
    with jax.numpy_dtype_promotion("standard"):  # see _train_step
        opt_state = tx.init(params)
    return TrainState(params=params, batch_stats=variables.get("batch_stats", {}),
                      opt_state=opt_state, step=jnp.zeros((), jnp.int32), rng=k_run)


def _eager_init(model, tx, sharding, sample, root, mean, std, own: dict | None = None):
    """:func:`_init_state` run eagerly on host-local inputs, then placed with ``sharding``.

    Not jitted on purpose: a jitted init is one program per model (the initialisers'
    random-number code compiled anew each time, ~2-3 s on a 2-core CPU), while eager
    initialisers are compiled once per parameter shape for the whole process — in a pooling
    study every variant has the same conv and dense shapes. The values equal the jitted
    init's bit for bit for the zoo's parameters, except that XLA's fusion may round tree
    pooling's normalised leaf weights differently in the last bit (measured: 3e-8).
    """
    state = _init_state(model, tx, *(np.asarray(a) for a in (sample, root, mean, std)), own)
    return jax.device_put(jax.device_get(state), sharding)


def _on_mesh(fn: Callable, mesh, **kwargs) -> Callable:
    """``jax.jit`` of ``fn(state, images, labels, mean, std)`` as one SPMD program: state and
    normalisation replicated, the batch's rows split over the mesh, outputs replicated."""
    repl = _parallel.replicated(mesh)
    rows = _parallel.batch_sharding(mesh)
    return jax.jit(fn, in_shardings=(repl, rows, rows, repl, repl), out_shardings=repl,
                   **kwargs)


@functools.lru_cache(maxsize=32)
def _steps(model, tx, augment, mesh):
    """The jitted init/train/eval functions for one configuration.

    Cached, so runs that differ only in seed or data (an ablation's repeats, a resumed
    run) reuse the compiled steps: the seed, the data and the normalisation constants are
    arguments, not constants baked into the programs.
    """
    init = functools.partial(_eager_init, model, tx, _parallel.replicated(mesh))
    train_step = _on_mesh(functools.partial(_train_step, model=model, tx=tx, augment=augment),
                          mesh, donate_argnums=0)
    eval_step = _on_mesh(functools.partial(_eval_step, model=model), mesh)
    return init, train_step, eval_step


def gradient_step(model, mesh, augment: Callable | None = None) -> Callable:
    """The gradient part of ``fit``'s train step, compiled for ``mesh`` the same way.

    ``f(state, images, labels, mean, std) -> (grads, batch_stats, metrics)``: the gradient
    of the batch's mean loss, the updated BatchNorm running statistics and the metric sums,
    replicated. It is what the optimizer update (elementwise on replicated arrays) consumes,
    so comparing it across meshes compares the training steps.
    """
    return _on_mesh(functools.partial(_gradients, model=model, augment=augment), mesh)


@functools.lru_cache(maxsize=32)
def _cached_optimizer(optimizer, schedule, learning_rate, total_steps, warmup_steps,
                      weight_decay, momentum):
    """Equal settings give the *same* optax object, so :func:`_steps` hits its cache."""
    lr_schedule = make_schedule(schedule, learning_rate, total_steps, warmup_steps)
    return lr_schedule, make_optimizer(optimizer, lr_schedule, weight_decay=weight_decay,
                                       momentum=momentum)


def fit(model, train_data: Dataset | Sequence, test_data: Dataset | Sequence | None, *,
        epochs: int, batch_size: int, learning_rate: float, seed: int,
        optimizer: str | optax.GradientTransformation = "adam",
        schedule: str | Callable = "constant", weight_decay: float = 0.0,
        momentum: float = 0.9, warmup_steps: int | None = None, augment: Any = "auto",
        eval_batch_size: int | None = None, workdir: str | None = None,
        restart: bool = False, devices: int | Sequence[jax.Device] | None = None,
        progress: bool | str = "auto", on_epoch_end: Callable[[dict], None] | None = None,
        max_to_keep: int = 2, log_dir: str | bool | None = None,
        checkpoint_seconds: float = 0.0) -> FitResult:
    """Trains a classifier with minibatch gradient descent, data-parallel over devices.

    The model is any flax module ``model(x, *, train) -> logits [N, K]`` with an optional
    ``'batch_stats'`` collection and the RNG streams ``'dropout'`` and ``'pool'``. Every
    epoch shuffles the training set by ``(seed, epoch)``, drops the last incomplete batch,
    runs one jitted SPMD step per batch (state buffers donated), then evaluates the whole
    test set (padded last batch, masked). Inputs are normalised per channel with the
    training split's mean/std (:func:`cnnjax.data.normalization_stats`) on device. The
    loss is softmax cross-entropy on the logits (identical for log-softmax outputs).
    Before the first step the model is run abstractly (``jax.eval_shape``) on the images'
    shape, and every label of both splits must index one of its ``K`` logits.

    What is reproducible:

    * **Same devices**: a run is a pure function of its arguments; an interrupted run
      resumed from ``workdir`` ends bit for bit where the uninterrupted run ends.
    * **n devices vs 1, per step**: the step is the same function; only its sums (BatchNorm
      statistics, the batch reduction of the gradient) are accumulated in another order
      (per-device partial sums, then an all-reduce). At the same parameters and batch, the
      BatchNorm batch statistics equal the single-device ones to float32 round-off (at most
      ~5e-7 relative measured for ResNet-20 with every conv ``impl``), and so do the
      gradients (at most ~5e-6) — except at steps where the loss has a kink within
      round-off: a ReLU pre-activation (or a max-pooling tie) so close to switching that
      any round-off-sized change flips it. At such a step the gradient differs by ~2e-3 to
      ~5e-2 relative, and merely reordering the batch on one device produces the same jump.
      How often that happens grows with the model: in none of the steps the tests check
      for a 2-layer net on the digits, but at 4 to 7 of 10 steps of ResNet-20 (CIFAR shapes,
      batch 16). "Relative": per array, the largest absolute difference over the largest
      absolute value.
    * **n devices vs 1, whole runs**: not bitwise equal. After the first such step the
      trajectories separate, as in every framework; runs on different device counts are
      different samples of the same training process, to be compared over seeds.

    A ``flax.nnx`` model (``model(x) -> logits``, ``model.train()``/``model.eval()``) trains
    the same way from its own current parameters (``seed`` then drives the data order,
    augmentation and noise: dropout and stochastic pools draw from the step's keys, not
    from the model's ``nnx.Rngs``); ``result.model`` is the trained NNX model.

    Args:
      model: the flax module (``flax.linen`` or ``flax.nnx``).
      train_data: a :class:`cnnjax.data.Dataset` or ``(images uint8 [N, H, W, C], labels)``.
      test_data: same, or ``None`` (then test metrics are ``None``).
      epochs: number of epochs to reach (a resumed run continues up to it).
      batch_size: global batch size; must divide by the number of devices.
      learning_rate: peak learning rate.
      seed: seeds parameter init, shuffling, dropout/pool noise and augmentation.
      optimizer: ``'adam'``, ``'adamw'``, ``'sgd'`` (momentum ``momentum``) or an optax
        transformation.
      schedule: ``'constant'``, ``'cosine'``, ``'warmup_cosine'`` or an optax schedule.
      weight_decay: L2 penalty (``adam``/``sgd``) or decoupled decay (``adamw``).
      momentum: SGD momentum.
      warmup_steps: warmup length for ``'warmup_cosine'`` (default 5% of all steps).
      augment: ``'auto'`` (crop+flip for CIFAR, crop for SVHN, none otherwise),
        ``'crop_flip'``/``True``, ``'crop'``, ``None``/``False``, or ``f(key, images)``
        applied to uint8 batches on device.
      eval_batch_size: test batch size (default ``batch_size``); multiple of the devices.
      workdir: if given, an orbax checkpoint is written there after every epoch (see
        ``checkpoint_seconds``) and after the last one, and a run
        finding checkpoints resumes from the newest intact one (a damaged newer one is
        skipped with a ``RuntimeWarning``). Each checkpoint records the run's fingerprint:
        the model's class and fields (the pool spec among them), parameter shapes and
        dtypes, both datasets (name, classes, checksums of images and labels), optimizer,
        learning rate, weight decay, momentum (SGD), schedule (with its length when it
        depends on it), augmentation, batch size and seed. Any difference is an error
        naming the field; only ``epochs`` may grow, to extend a run.
      restart: delete ``workdir``'s checkpoints first and train from scratch.
      devices: ``None`` (all devices, all processes), an int (the first n) or a list.
      progress: ``'auto'`` (a rich progress bar when stdout is a terminal, else one line per
        epoch with loss, accuracy, time and ETA), ``'bar'``, ``'lines'``, True (the bar) or
        False (nothing).
      on_epoch_end: called with each new history entry (after the epoch's checkpoint, if
        one is written).
      max_to_keep: checkpoints kept in ``workdir``.
      checkpoint_seconds: write an epoch's checkpoint only when at least this many seconds
        have passed since the last one was written (or training started); the last epoch
        is always written. ``0`` (default): every epoch. A kill then loses at most this
        long plus one epoch of training; a resumed run still ends bit for bit where the
        uninterrupted one ends. For short epochs (small models, small data) the checkpoint
        write can cost more than the epoch.
      log_dir: where each epoch is appended to ``metrics.csv`` and, with tensorboardX
        installed, TensorBoard event files (:class:`MetricsLog`); default ``workdir``
        (no logs without one), ``False`` for none.

    Returns:
      :class:`FitResult` ``(state, history, normalization, model)``.

    Raises:
      ValueError: bad ``epochs``/``batch_size``/``learning_rate``/option values, batch size
        not divisible by the device count, a training set smaller than one batch, a model
        that cannot run on the images or has fewer logits than the labels need, a
        ``workdir`` holding another run, or one whose checkpoints are all damaged. Every
        message is one sentence starting with ``fit:``.

    Example:
      >>> from cnnjax.data import load
      >>> result = fit(model, load("digits"), load("digits", "test"), epochs=3,
      ...              batch_size=32, learning_rate=1e-3, seed=0)  # doctest: +SKIP
      >>> result.history[-1]["test_accuracy"]  # doctest: +SKIP
    """
    own = None
    if _nnx.is_nnx(model):  # the same steps, through linen's init/apply protocol
        model = _nnx.NnxModel.wrap(model)
        own = model.variables()
    train = as_dataset(train_data, "train_data")
    test = None if test_data is None else as_dataset(test_data, "test_data")
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"fit: epochs must be an int >= 0, got {epochs!r}.")
    if not learning_rate > 0 and not callable(schedule):
        raise ValueError(f"fit: learning_rate must be > 0, got {learning_rate!r}.")
    _validate.check_data(train, test)
    _validate.check_checkpoint_seconds(checkpoint_seconds, "fit")
    if restart and workdir is None:
        raise ValueError("fit: restart=True needs a workdir (it deletes the workdir's "
                         "checkpoints), got workdir=None.")
    mesh = _parallel.make_mesh(devices)
    _parallel.check_batch_size(batch_size, mesh)
    eval_batch_size = batch_size if eval_batch_size is None else eval_batch_size
    _parallel.check_batch_size(eval_batch_size, mesh, "eval_batch_size")
    steps_per_epoch = len(train.labels) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"fit: batch_size must be <= the {len(train.labels)} training "
                         f"examples, got {batch_size}.")
    augment_fn = _augment_fn(augment, train.name)
    # Only the settings that change the optimizer enter the cache key (a constant schedule
    # does not depend on the run length, so extending a run reuses the compiled step).
    total_steps = None if schedule == "constant" else epochs * steps_per_epoch
    warmup = warmup_steps if schedule == "warmup_cosine" else None
    opt_args = (optimizer, schedule, learning_rate, total_steps, warmup, weight_decay,
                momentum if optimizer == "sgd" else None)
    try:
        lr_schedule, tx = _cached_optimizer(*opt_args)
        init, train_step, eval_step = _steps(model, tx, augment_fn, mesh)
    except TypeError:  # an unhashable model/optimizer/schedule: build uncached
        lr_schedule, tx = _cached_optimizer.__wrapped__(*opt_args)
        init, train_step, eval_step = _steps.__wrapped__(model, tx, augment_fn, mesh)
    with static_only():  # abstract / init traces: their convs never run for their results
        variables = _validate.check_model(model, train, test)
    repl = _parallel.replicated(mesh)
    rows = _parallel.batch_sharding(mesh)
    mean, std = normalization_stats(train.images)
    mean_d, std_d = (jax.device_put(a, repl) for a in (mean, std))
    with static_only():
        state = init(train.images[:1], jax.random.PRNGKey(seed), mean, std, own)

    fingerprint = run_fingerprint(
        model=model, variables=variables, train=train, test=test, optimizer=optimizer,
        learning_rate=learning_rate, weight_decay=weight_decay, momentum=opt_args[-1],
        schedule=schedule, total_steps=total_steps, warmup_steps=warmup,
        augment=_augment_name(augment_fn), batch_size=batch_size, seed=seed)
    history: list[dict] = []
    start_epoch = 0
    train_rows = _parallel.local_rows(rows, batch_size)
    eval_rows = _parallel.local_rows(rows, eval_batch_size)
    if progress not in (True, False, "auto", "bar", "lines"):
        raise ValueError(f"fit: progress must be 'auto', 'bar', 'lines', True or False, got "
                         f"{progress!r}.")
    mode = {True: "bar", False: None}.get(progress, progress)
    if mode == "auto":
        mode = "bar" if sys.stdout.isatty() else "lines"
    mode = mode if jax.process_index() == 0 else None
    log_dir = workdir if log_dir is None or log_dir is True else log_dir or None
    ckpt = bar = logs = None
    try:
        if workdir is not None:
            # Closed in `finally` even when restoring fails, so that orbax's worker threads
            # end before the interpreter does.
            ckpt = Checkpointer(workdir, max_to_keep=max_to_keep)
            if restart:
                ckpt.clear()
            restored = ckpt.restore_latest(
                state, repl, check=functools.partial(_check_same_run, fingerprint, ckpt))
            if restored is not None:
                state, meta = restored
                history, start_epoch = list(meta["history"]), int(meta["epoch"])
                _log.info("resumed from %s at epoch %d (step %d)", workdir, start_epoch,
                          int(_parallel.to_host(state.step)))
        if log_dir is not None:
            logs = MetricsLog(log_dir, history, restart=restart)
        bar = Progress(mode, epochs)
        saved_at = time.monotonic()
        for epoch in range(start_epoch + 1, epochs + 1):
            task = bar.task(f"epoch {epoch}/{epochs}", steps_per_epoch)
            t0 = time.perf_counter()
            metrics = []
            for idx in batch_indices(len(train.labels), batch_size, seed=seed, epoch=epoch,
                                     drop_remainder=True):
                x, y = take(train.images, train.labels, idx[train_rows])
                x, y = _parallel.global_batch((x, y), rows, batch_size)
                state, m = train_step(state, x, y, mean_d, std_d)
                metrics.append(m)
                bar.advance(task)
            totals = _sum_metrics(metrics)
            seconds = time.perf_counter() - t0
            entry = {"epoch": epoch,
                     "train_loss": totals["loss"] / totals["count"],
                     "train_accuracy": totals["correct"] / totals["count"],
                     "test_loss": None, "test_accuracy": None,
                     "seconds": seconds}
            t1 = time.perf_counter()
            if test is not None:
                metrics = []
                for idx in batch_indices(len(test.labels), eval_batch_size, pad=True):
                    x, y = take(test.images, test.labels, idx[eval_rows])
                    x, y = _parallel.global_batch((x, y), rows, eval_batch_size)
                    metrics.append(eval_step(state, x, y, mean_d, std_d))
                totals = _sum_metrics(metrics)
                entry["test_loss"] = totals["loss"] / totals["count"]
                entry["test_accuracy"] = totals["correct"] / totals["count"]
            entry["eval_seconds"] = time.perf_counter() - t1
            entry["learning_rate"] = None
            if not isinstance(optimizer, optax.GradientTransformation):
                with jax.numpy_dtype_promotion("standard"):  # see _train_step
                    entry["learning_rate"] = float(lr_schedule(epoch * steps_per_epoch - 1))
            history.append(entry)
            _log.info("epoch %d/%d: train loss %.4f acc %.4f, test loss %s acc %s, %.2fs",
                      epoch, epochs, entry["train_loss"], entry["train_accuracy"],
                      entry["test_loss"], entry["test_accuracy"], seconds)
            if ckpt is not None and _checkpoint_due(epoch, epochs, saved_at,
                                                    checkpoint_seconds):
                ckpt.save(epoch, state, {"history": history, "fingerprint": fingerprint,
                                         "epochs": epochs, **_io.saved_model(model, train, mean,
                                                                               std)})
                saved_at = time.monotonic()
            if logs is not None:
                logs.append(entry)
            bar.epoch_done(entry)
            if on_epoch_end is not None:
                on_epoch_end(dict(entry))
    finally:
        if bar is not None:
            bar.close()
        if ckpt is not None:
            ckpt.close()
        if logs is not None:
            logs.close()
    trained = model if own is None else model.trained(
        {"params": state.params, "batch_stats": state.batch_stats})
    return FitResult(state, history, (mean, std), trained)


def _checkpoint_due(epoch: int, epochs: int, saved_at: float, every_seconds: float) -> bool:
    """Whether the checkpoint of ``epoch`` is written (``fit``'s ``checkpoint_seconds``)."""
    return epoch == epochs or time.monotonic() - saved_at >= every_seconds


def _check_same_run(fingerprint: dict, ckpt: Checkpointer, meta: dict) -> None:
    """Refuses a checkpoint written by a different run (any field but ``epochs``)."""
    hint = ("use another workdir, the same settings, or restart=True (cnnjax train "
            "--restart) to start over.")
    saved = meta.get("fingerprint")
    if not isinstance(saved, dict):
        raise ValueError(f"fit: workdir {ckpt.directory} holds a checkpoint without a run "
                         f"fingerprint (written by an older cnnjax), so it cannot be checked "
                         f"against this run; {hint}")
    diff = difference(saved, fingerprint)
    if diff is not None:
        field, old, new, count = diff
        more = f" (and {count - 1} more field{'s' if count > 2 else ''})" if count > 1 else ""
        raise ValueError(f"fit: workdir {ckpt.directory} holds another run: {field} was "
                         f"{old}, now {new}{more}; {hint}")


def _sum_metrics(metrics: list[dict]) -> dict:
    """Sums per-step metric scalars on the host (one device sync per epoch)."""
    if not metrics:
        return {"loss": float("nan"), "correct": float("nan"), "count": float("nan")}
    return {k: float(sum(_parallel.to_host(m[k]).astype(np.float64) for m in metrics))
            for k in metrics[0]}
