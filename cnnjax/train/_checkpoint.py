"""Per-epoch orbax checkpoints of a :class:`TrainState` plus the run's history.

One checkpoint per finished epoch, numbered by the epoch, holding the state (params,
batch_stats, opt_state, step, rng) and a JSON item (history and the run's fingerprint).
Writes are synchronous and atomic (orbax writes into a temporary directory and renames it;
the temporary directory of a killed run is removed when the workdir is opened again), so
killing a run loses at most the current epoch. After the rename, the size and CRC-32 of
every file of the checkpoint are recorded next to it (``cnnjax_files.json``).

Restoring verifies each checkpoint (its files against that record, then readable metadata
and state) and falls back to the newest intact one with a warning, so one damaged epoch
never makes a run unrecoverable; the damaged newer checkpoints are deleted (their epochs
are recomputed, bit for bit). Checking the files first keeps damaged data away from orbax,
whose parallel reads fail untidily. A checkpoint without the record (the run was killed
between the rename and the record) is complete by orbax's atomicity and is restored as is.
In a multi-process run every process calls ``save`` and orbax writes each replicated array
once. Restoring takes the *current* mesh's replicated sharding as target, so a checkpoint
written on 4 devices restores on 1 (or on any other count).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath
from jax.sharding import NamedSharding

_FILES = "cnnjax_files.json"


class _PartialRestoreFilter(logging.Filter):
    """Drops orbax's warning that a restore left an item out: reading only the metadata
    (or only the state) of a checkpoint is what this module means to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "was found in the checkpoint, but could not be restored" not in record.getMessage()


logging.getLogger("absl").addFilter(_PartialRestoreFilter())
_TMP_SUFFIX = ".orbax-checkpoint-tmp"  # orbax's name for a checkpoint being written


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc


def file_record(directory: str) -> dict[str, list[int]]:
    """``{relative path: [size, crc32]}`` of every file under ``directory``."""
    record = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, directory)
            if not rel.startswith(_FILES):  # the record and its temporary file
                record[rel] = [os.path.getsize(path), _crc32(path)]
    return dict(sorted(record.items()))


def check_files(directory: str) -> bool:
    """Raises if a file recorded for ``directory`` is missing or changed.

    Returns:
      ``False`` if there is no record to check against, else ``True``.
    """
    try:
        with open(os.path.join(directory, _FILES)) as f:
            record = json.load(f)
    except FileNotFoundError:
        return False
    for rel, (size, crc) in record.items():
        path = os.path.join(directory, rel)
        if not os.path.isfile(path):
            raise ValueError(f"{rel} is missing")
        if os.path.getsize(path) != size:
            raise ValueError(f"{rel} has {os.path.getsize(path)} bytes, not {size}")
        if _crc32(path) != crc:
            raise ValueError(f"{rel} has changed (CRC-32 mismatch)")
    return True


def _first_line(error: BaseException, limit: int = 160) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


class Checkpointer:
    """Saves and restores ``(state, meta)`` pairs in ``workdir``, keyed by epoch."""

    def __init__(self, workdir: str | os.PathLike, *, max_to_keep: int = 2):
        self.directory = os.path.abspath(os.fspath(workdir))
        if jax.process_index() == 0 and os.path.isdir(self.directory):
            # A run killed while writing leaves orbax's temporary directory behind. Removed
            # here, synchronously: orbax's own clean-up runs in a thread that close() does
            # not wait for, and that fails noisily when the process exits first.
            for name in os.listdir(self.directory):
                if _TMP_SUFFIX in name:
                    shutil.rmtree(os.path.join(self.directory, name), ignore_errors=True)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True,
                # Synchronous: the next jitted step donates the state's buffers, and a
                # resumable run must not report an epoch as saved before it is on disk.
                enable_async_checkpointing=False),
            item_names=("state", "meta"))

    def epochs(self) -> list[int]:
        """The saved epochs, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_epoch(self) -> int | None:
        epochs = self.epochs()
        return epochs[-1] if epochs else None

    def path(self, epoch: int) -> str:
        return os.path.join(self.directory, str(epoch))

    def save(self, epoch: int, state: Any, meta: dict) -> None:
        """Writes ``state`` and ``meta`` as epoch ``epoch``, then records its files."""
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave({**meta, "epoch": epoch})))
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            directory = self.path(epoch)
            tmp = os.path.join(directory, _FILES + ".tmp")
            with open(tmp, "w") as f:
                json.dump(file_record(directory), f)
            os.replace(tmp, os.path.join(directory, _FILES))

    def read_meta(self, epoch: int) -> dict:
        """The JSON item of epoch ``epoch``; raises if it is unreadable or inconsistent."""
        meta = self._manager.restore(epoch, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]
        if not isinstance(meta, dict):
            raise ValueError(f"metadata is a {type(meta).__name__}, not a JSON object")
        history = meta.get("history")
        if meta.get("epoch") != epoch or not isinstance(history, list) or len(history) != epoch:
            raise ValueError(f"metadata records epoch {meta.get('epoch')!r} and "
                             f"{len(history) if isinstance(history, list) else 'no'} history "
                             f"entries, expected {epoch}")
        return meta

    def restore(self, epoch: int, like: Any, sharding: NamedSharding) -> tuple[Any, dict]:
        """Restores epoch ``epoch`` with ``like``'s structure, placed with ``sharding``.

        Raises if a file of the checkpoint changed or it cannot be read.
        """
        check_files(self.path(epoch))
        return self._read_state(epoch, like, sharding), self.read_meta(epoch)

    def _read_state(self, epoch: int, like: Any, sharding: NamedSharding) -> Any:
        target = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), like)
        return self._manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target)))["state"]

    def read_variables(self, epochs: list[int]) -> tuple[dict, dict, int]:
        """``({'params', 'batch_stats'}, meta, epoch)`` of the first intact of ``epochs``.

        The arrays are read onto this process's first local device (not the saved
        sharding, so this works whatever mesh wrote them), then copied to NumPy arrays.

        Raises:
          ValueError: none of ``epochs`` is intact (the message names each problem).
        """
        import numpy as np

        errors = []
        for epoch in epochs:
            try:
                check_files(self.path(epoch))
                meta = self.read_meta(epoch)
                # The saved shapes and dtypes, read by the item's handler (the manager
                # knows no handler for an item it has not restored in this process).
                tree = ocp.StandardCheckpointHandler().metadata(
                    epath.Path(self.path(epoch)) / "state")
                tree = getattr(tree, "tree", tree)  # the plain nested dict of ArrayMetadata
                one = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
                target = jax.tree.map(
                    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=one), tree)
                state = jax.device_get(self._manager.restore(epoch, args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target)))["state"])
            except Exception as e:  # noqa: BLE001 - orbax reports damage with many types
                errors.append(f"epoch {epoch}: {_first_line(e)}")
                continue
            pick = {"params": state["params"], "batch_stats": state.get("batch_stats") or {}}
            return jax.tree.map(np.asarray, pick), meta, epoch
        raise ValueError(f"load: no intact checkpoint in {self.directory} ("
                         + "; ".join(errors) + ").")

    def restore_latest(self, like: Any, sharding: NamedSharding,
                       check: Callable[[dict], None] | None = None
                       ) -> tuple[Any, dict] | None:
        """The newest intact checkpoint, or ``None`` if there is none at all.

        ``check(meta)`` is called with each readable checkpoint's metadata before its state
        is read; what it raises (a checkpoint of another run) propagates. A damaged
        checkpoint is reported with a ``RuntimeWarning`` and skipped; once an intact one is
        found, the damaged newer ones are deleted so their epochs can be written again.

        Raises:
          ValueError: checkpoints exist but none is intact (the message names them).
        """
        damaged: list[tuple[int, BaseException]] = []
        for epoch in reversed(self.epochs()):
            try:
                check_files(self.path(epoch))
                meta = self.read_meta(epoch)
            # orbax/TensorStore report damage with many types (even a bare Exception).
            except Exception as e:  # noqa: BLE001
                damaged.append((epoch, e))
                continue
            if check is not None:
                check(meta)
            try:
                state = self._read_state(epoch, like, sharding)
            except Exception as e:  # noqa: BLE001 - as above
                damaged.append((epoch, e))
                continue
            if damaged:
                warnings.warn(
                    f"fit: the checkpoint{'s' if len(damaged) > 1 else ''} of epoch "
                    + ", ".join(str(e) for e, _ in damaged) + f" in {self.directory} "
                    f"{'are' if len(damaged) > 1 else 'is'} damaged ({_first_line(damaged[0][1])}"
                    f"); resuming from epoch {epoch} and deleting the damaged one(s).",
                    RuntimeWarning, stacklevel=3)
                for bad, _ in damaged:
                    self._manager.delete(bad)
            return state, meta
        if damaged:
            paths = " and ".join(self.path(e) for e, _ in damaged)
            raise ValueError(
                f"fit: no intact checkpoint in {self.directory} ("
                + "; ".join(f"epoch {e}: {_first_line(err)}" for e, err in damaged)
                + f"); delete {paths}, or start over with restart=True "
                  "(cnnjax train --restart).")
        return None

    def clear(self) -> None:
        """Deletes every checkpoint of the workdir (nothing else in it)."""
        for epoch in self.epochs():
            self._manager.delete(epoch)

    def close(self) -> None:
        self._manager.close()
