"""Per-step comparison of the data-parallel step with the single-device step.

Shared by dp_worker.py (inside the 4-device and the 2-process subprocesses) and
test_parallel.py. Both steps get the SAME parameters and batch at every step: the
single-device gradients advance the parameters (plain SGD), so round-off cannot accumulate
into diverging trajectories and each step's difference is the step's own.

In float32 a ReLU network's loss is not smooth at every step: when a pre-activation is
within round-off of switching, the gradient itself jumps under any round-off-sized change,
on a single device just as across device counts. Splitting the batch over devices only
changes the order in which sums (BatchNorm statistics, gradients) are accumulated; so such a
step is identified on the reference device alone, by the same kind of change: the batch's
examples in another order, or the parameters moved by ~2 ulp. If either moves the
single-device gradient by at least a tenth of the 1-vs-n difference, the step is one where
the loss has a kink within round-off, not one the device count got wrong.
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


def compare_steps(model, data, batch_size, steps, meshes, lr=0.05, tries=40):
    """Per step: gradient and batch-statistics differences of ``meshes[1]`` from
    ``meshes[0]`` (one device) at the same parameters, and, where the gradients differ by
    more than ``STEP_RTOL``, the reference's own sensitivity to round-off-sized changes (the
    largest of up to ``tries`` seeded probes, alternately the batch reordered and the
    parameters moved by ~2 ulp; 0 where not needed).

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
        for k in range(tries if grad[-1] >= STEP_RTOL else 0):
            probe, probe_args = state, args
            if k % 2 == 0:
                probe_args = (rng.permutation(idx), *args[1:])
            else:
                probe = state.replace(params=jax.tree.map(lambda p: (p * (
                    1 + ULP_PERTURBATION * rng.standard_normal(p.shape))).astype(p.dtype),
                    state.params))
            g_probe, _ = _sharded_call(fns[0], meshes[0], probe, *probe_args)
            sens = max(sens, relative_difference(g_probe, g_ref))
            if sens >= grad[-1] / 10:
                break
        sensitivity.append(sens)
        state = state.replace(
            params=jax.tree.map(lambda p, d: (p - lr * d).astype(p.dtype), state.params,
                                g_ref),
            step=state.step + 1)
    return np.array(grad), np.array(stats), np.array(sensitivity)


def assert_steps_agree(grad, stats, sensitivity, what="", min_smooth=0.5):
    """Batch statistics agree to round-off at every step; gradients too, except at steps
    where the loss has a kink within round-off (see the module docstring). At least the
    fraction ``min_smooth`` of the steps must agree outright, or the check says little."""
    assert stats.max() < STEP_RTOL, (what, stats)
    for t, (g, s) in enumerate(zip(grad, sensitivity)):
        assert g < STEP_RTOL or s >= g / 10, (what, t, g, s)
    assert np.mean(grad < STEP_RTOL) >= min_smooth, (what, grad)
