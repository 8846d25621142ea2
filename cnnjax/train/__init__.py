"""Training: ``fit`` (jitted, data-parallel SPMD steps, orbax checkpoints) and its parts.

``fit(model, train_data, test_data, *, epochs, batch_size, learning_rate, seed, ...)``
returns ``FitResult(state, history, normalization)``; see :func:`fit`. Running on many
devices or hosts needs no code change: ``fit`` builds a ``jax.sharding.Mesh`` over
``jax.devices()`` (all processes' devices after ``jax.distributed.initialize()``), shards
each batch over the ``'data'`` axis and replicates the state.
"""
from cnnjax.train._checkpoint import Checkpointer
from cnnjax.train._loop import FitResult, fit
from cnnjax.train._parallel import batch_sharding, make_mesh, replicated
from cnnjax.train._state import (
    OPTIMIZERS,
    SCHEDULES,
    TrainState,
    cross_entropy,
    make_optimizer,
    make_schedule,
)

__all__ = [
    "Checkpointer", "FitResult", "OPTIMIZERS", "SCHEDULES", "TrainState", "batch_sharding",
    "cross_entropy", "fit", "make_mesh", "make_optimizer", "make_schedule", "replicated",
]
