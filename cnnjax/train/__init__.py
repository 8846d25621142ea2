"""Training: ``fit`` (jitted, data-parallel SPMD steps, orbax checkpoints) and its parts.

``fit(model, train_data, test_data, *, epochs, batch_size, learning_rate, seed, ...)``
trains a ``flax.linen`` or a ``flax.nnx`` model and returns ``FitResult(state, history,
normalization, model)``; see :func:`fit`. Running on many
devices or hosts needs no code change: ``fit`` builds a ``jax.sharding.Mesh`` over
``jax.devices()`` (all processes' devices after ``jax.distributed.initialize()``), shards
each batch over the ``'data'`` axis and replicates the state.

After training, :func:`load` rebuilds the model from a workdir's checkpoint (any device
count), :func:`predict` gives logits or classes and :func:`evaluate` the test loss and
accuracy; every epoch is logged to ``metrics.csv`` and, with tensorboardX, TensorBoard
(:class:`MetricsLog`).

Scaling out:

* **One GPU/TPU host**: nothing to change — ``fit`` uses every local accelerator
  (``devices=`` picks fewer); ``batch_size`` is the *global* batch and must divide by the
  device count. BatchNorm statistics are computed over the whole global batch
  (synchronised BN), because the step is one SPMD program over the sharded batch.
* **Several hosts**: start the same script on every host and call, before anything else,
  ``jax.distributed.initialize(coordinator_address="host0:1234", num_processes=N,
  process_id=i)`` (on Cloud TPU / SLURM the arguments are detected automatically). Each
  process loads the dataset, computes the same shuffled global batches and transfers only
  its own rows (``jax.make_array_from_process_local_data``). ``workdir`` must be on a
  filesystem all hosts share; orbax writes every replicated array once, and the
  checkpoint restores on any device count.
* **What "n devices = 1 device" means**: each step is the same function, with its sums
  (BatchNorm statistics, the gradient's batch reduction) accumulated in another order. At
  the same parameters and batch, batch statistics and gradients agree to float32 round-off
  (ResNet-20, every conv impl: at most ~5e-7 and ~5e-6 relative), except at steps where the
  loss has a kink within round-off (a ReLU or max-pool choice on the edge): there the
  gradient differs by up to a few percent, as it does when the batch is merely reordered
  on one device. Whole runs are therefore not bitwise equal across device counts
  and their trajectories separate, as in every framework; compare them over seeds. On the
  same devices a run, and a resumed run, is reproducible bit for bit.
* **Host memory** (Linux): call :func:`reuse_host_memory` at the top of a training script
  so that XLA:CPU's per-step buffers are reused instead of mapped and page-faulted anew
  every step (the ``cnnjax`` command does).
* Trying it on one CPU machine: ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
  (set before JAX starts) gives 4 host devices; for several processes use
  ``jax.config.update('jax_cpu_collectives_implementation', 'gloo')`` and
  ``jax.distributed.initialize('127.0.0.1:PORT', num_processes=2, process_id=i)``.
"""
from cnnjax._host_memory import reuse_host_memory
from cnnjax.train._checkpoint import Checkpointer
from cnnjax.train._io import TrainedModel, evaluate, load, predict
from cnnjax.train._logs import MetricsLog, read_metrics
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
    "Checkpointer", "FitResult", "MetricsLog", "OPTIMIZERS", "SCHEDULES", "TrainState",
    "TrainedModel", "batch_sharding", "cross_entropy", "evaluate", "fit", "load",
    "make_mesh", "make_optimizer", "make_schedule", "predict", "read_metrics", "replicated",
    "reuse_host_memory",
]
