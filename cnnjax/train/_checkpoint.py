"""Per-epoch orbax checkpoints of a :class:`TrainState` plus the run's history.

One checkpoint per finished epoch, numbered by the epoch, holding the state (params,
batch_stats, opt_state, step, rng) and a JSON item (history and run metadata). Writes are
synchronous and atomic (orbax writes to a temporary directory and renames it), so killing a
run loses at most the current epoch. In a multi-process run every process calls ``save``
and orbax writes each replicated array once. Restoring takes the *current* mesh's
replicated sharding as target, so a checkpoint written on 4 devices restores on 1 (or on
any other count).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding


class Checkpointer:
    """Saves and restores ``(state, meta)`` pairs in ``workdir``, keyed by epoch."""

    def __init__(self, workdir: str | os.PathLike, *, max_to_keep: int = 2):
        self._manager = ocp.CheckpointManager(
            os.path.abspath(os.fspath(workdir)),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True,
                # Synchronous: the next jitted step donates the state's buffers, and a
                # resumable run must not report an epoch as saved before it is on disk.
                enable_async_checkpointing=False),
            item_names=("state", "meta"))

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def save(self, epoch: int, state: Any, meta: dict) -> None:
        self._manager.save(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        self._manager.wait_until_finished()

    def restore(self, epoch: int, like: Any, sharding: NamedSharding) -> tuple[Any, dict]:
        """Restores epoch ``epoch`` with ``like``'s structure, placed with ``sharding``."""
        target = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), like)
        out = self._manager.restore(epoch, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()))
        return out["state"], out["meta"]

    def close(self) -> None:
        self._manager.close()
