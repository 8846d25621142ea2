"""Data parallelism with ``jax.sharding``: one mesh axis ``'data'`` over every device.

Each global batch is a ``NamedSharding(mesh, P('data'))`` array (rows split over devices);
params, batch statistics and optimizer state are replicated (``P()``). The train step is a
single SPMD ``jax.jit`` program: XLA inserts the all-reduces for the mean loss's gradient
and for BatchNorm's batch mean/variance, so BN is synchronised across devices by
construction (the tests check it against one device).

Multi-host: after ``jax.distributed.initialize()``, ``jax.devices()`` lists every process's
devices. Every process computes the same global batch indices and loads only the rows that
its own devices hold (:func:`local_rows`), then ``jax.make_array_from_process_local_data``
assembles the global array without any host-to-host copy.
"""
from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: int | Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D ``Mesh`` with axis ``'data'``.

    Args:
      devices: ``None`` for every device of every process, an int ``n`` for the first
        ``n`` of them, or an explicit sequence of devices.

    Returns:
      The mesh, devices ordered by (process, id) so each process's rows are contiguous.
    """
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(f"fit: devices must be between 1 and the {len(available)} "
                             f"available devices, got {devices}.")
        chosen = available[:int(devices)]
    else:
        chosen = list(devices)
        if not chosen:
            raise ValueError("fit: devices must not be empty.")
    chosen = sorted(chosen, key=lambda d: (d.process_index, d.id))
    return Mesh(np.asarray(chosen), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows of a batch split over the ``'data'`` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device of the mesh."""
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "batch_size") -> None:
    """Batch sizes must split evenly over the devices (no silent padding of training data)."""
    n = mesh.devices.size
    if batch_size < 1 or batch_size % n:
        raise ValueError(f"fit: {name} must be a positive multiple of the number of devices "
                         f"({n}), got {batch_size}.")


def local_rows(sharding: NamedSharding, global_batch: int) -> slice:
    """The contiguous rows of a global batch that this process's devices hold."""
    index_map = sharding.addressable_devices_indices_map((global_batch,))
    if not index_map:
        raise ValueError(f"fit: process {jax.process_index()} has no device in the mesh; "
                         "every process must contribute devices (use devices=None).")
    spans = sorted((idx[0].indices(global_batch)[:2] for idx in index_map.values()))
    lo, hi = spans[0][0], max(stop for _, stop in spans)
    covered = sum(stop - start for start, stop in {tuple(s) for s in spans})
    if covered != hi - lo:
        raise ValueError("fit: this process's devices do not hold a contiguous block of the "
                         "batch; order the devices by process.")
    return slice(lo, hi)


def global_batch(arrays: Sequence[np.ndarray], sharding: NamedSharding, global_batch: int
                 ) -> list[jax.Array]:
    """Assembles globally sharded arrays from this process's rows ``arrays``."""
    return [jax.make_array_from_process_local_data(sharding, a, (global_batch, *a.shape[1:]))
            for a in arrays]


def to_host(x: jax.Array) -> np.ndarray:
    """A replicated (possibly multi-process) array's value on this host."""
    return np.asarray(x.addressable_data(0))
