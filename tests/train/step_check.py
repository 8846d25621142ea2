"""Per-step comparison of the data-parallel step with the single-device step.

Shared by dp_worker.py (inside the 4-device and the 2-process subprocesses) and
test_parallel.py. Both steps get the SAME parameters and batch at every step: the
single-device gradients advance the parameters (plain SGD), so round-off cannot accumulate
into diverging trajectories and each step's difference is the step's own.

In float32 a ReLU network's loss is not smooth at every step: when a pre-activation (or a
pooling choice) is within round-off of switching, the gradient itself jumps under a change
of the parameters by one unit in the last place, on a single device just as across device
counts. Such a step is identified by that sensitivity, measured on the reference device.
"""
import jax
import numpy as np

from cnnjax.data import batch_indices, normalization_stats
from cnnjax.data._pipeline import take
from cnnjax.train import _parallel, fit
from cnnjax.train._loop import gradient_step

BN_MOMENTUM = 0.9  # cnnjax.nn.BatchNorm's default, used by every model here
IMPLS = ("xla", "im2col", "fft", "auto")
STEPS = 4
# Measured: at most ~5e-6 (gradients) and ~1e-6 (batch statistics) at steps where the loss is
# smooth; far below e.g. the ~1e-1 of per-device BatchNorm statistics, and far above an
# exact 0 (the devices' partial sums are added in another order).
STEP_RTOL = 5e-5
# One float32 ulp is 2**-24 ~ 6e-8 relative; the parameters are perturbed by ~2 ulp.
ULP_PERTURBATION = 1.2e-7


def relative_difference(a, b):
    """max over leaves of max|a - b| / max|b| (0 for all-zero leaves that agree)."""
    worst = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = np.max(np.abs(y))
        diff = np.max(np.abs(x - y))
        worst = max(worst, diff / scale if scale > 0 else (0.0 if diff == 0 else np.inf))
    return worst


def batch_statistics(new):
    """The batch statistics in running averages updated from zero: new = (1 - m)·batch."""
    return jax.tree.map(lambda n: np.asarray(n, np.float64) / (1 - BN_MOMENTUM), new)


def initial_state(model, data, batch_size, devices):
    return fit(model, data, None, epochs=0, batch_size=batch_size, learning_rate=1e-2,
               seed=0, progress=False, devices=devices).state


def host(tree):
    return jax.tree.map(lambda x: np.asarray(_parallel.to_host(x)), tree)


def _sharded_call(fn, mesh, state, idx, data, mean, std, batch_size):
    repl, rows = _parallel.replicated(mesh), _parallel.batch_sharding(mesh)
    mine = idx[_parallel.local_rows(rows, batch_size)]
    x, y = _parallel.global_batch(take(data.images, data.labels, mine), rows, batch_size)
    grads, stats, _ = fn(jax.device_put(state, repl), x, y, jax.device_put(mean, repl),
                         jax.device_put(std, repl))
    return host(grads), batch_statistics(host(stats))


def compare_steps(model, data, batch_size, steps, meshes, lr=0.05, tries=4):
    """Per step: gradient and batch-statistics differences of ``meshes[1]`` from
    ``meshes[0]`` (one device) at the same parameters, and, where the gradients differ by
    more than ``STEP_RTOL``, the reference's own sensitivity to a ~2-ulp perturbation of
    the parameters (the largest of ``tries`` seeded draws; 0 where not needed).

    Returns:
      ``(grad, stats, sensitivity)``, float arrays of length ``steps``.
    """
    mean, std = normalization_stats(data.images)
    fns = [gradient_step(model, mesh) for mesh in meshes]
    state = host(initial_state(model, data, batch_size, list(meshes[0].devices.flat)))
    # Training normalises with batch statistics; running averages that start at zero hold
    # exactly (1 - m) times them after the step, with no cancellation to blur the comparison.
    state = state.replace(batch_stats=jax.tree.map(np.zeros_like, state.batch_stats))
    rng = np.random.default_rng(0)
    grad, stats, sensitivity = [], [], []
    batches = batch_indices(len(data.labels), batch_size, seed=0, epoch=1, drop_remainder=True)
    for _, idx in zip(range(steps), batches):
        args = (idx, data, mean, std, batch_size)
        (g_ref, s_ref), (g, s) = (_sharded_call(fn, mesh, state, *args)
                                  for fn, mesh in zip(fns, meshes))
        grad.append(relative_difference(g, g_ref))
        stats.append(relative_difference(s, s_ref))
        sens = 0.0
        if grad[-1] >= STEP_RTOL:
            for _ in range(tries):
                nudged = jax.tree.map(lambda p: (p * (1 + ULP_PERTURBATION * rng.standard_normal(
                    p.shape))).astype(p.dtype), state.params)
                g_nudged, _ = _sharded_call(fns[0], meshes[0], state.replace(params=nudged),
                                            *args)
                sens = max(sens, relative_difference(g_nudged, g_ref))
        sensitivity.append(sens)
        state = state.replace(
            params=jax.tree.map(lambda p, d: (p - lr * d).astype(p.dtype), state.params,
                                g_ref),
            step=state.step + 1)
    return np.array(grad), np.array(stats), np.array(sensitivity)


def assert_steps_agree(grad, stats, sensitivity, what=""):
    """Every step agrees to round-off, or is a step where the loss is not smooth at float32
    resolution (the single-device gradient moves at least a tenth as much under a ~2-ulp
    change of the parameters); most steps must be smooth, or the check says nothing."""
    assert stats.max() < STEP_RTOL, (what, stats)
    for t, (g, s) in enumerate(zip(grad, sensitivity)):
        assert g < STEP_RTOL or s >= g / 10, (what, t, g, s)
    assert np.mean(grad < STEP_RTOL) >= 0.5, (what, grad)
