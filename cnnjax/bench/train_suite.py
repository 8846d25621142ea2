"""The training-step suite: one Adam step per model for each contender, memory statistics,
and eval with batch norms folded."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import cnnjax
import cnnjax.models
from cnnjax.bench.config import Config
from cnnjax.bench.peers import flax_model, torch_trainer
from cnnjax.bench.profile import profile_step
from cnnjax.bench.timing import block, jax_call, measure

TRAIN_MODELS = ("mnistnet", "lenet5")


class JaxTrainer:
    """An Adam training step of a flax model, jitted with the state donated."""

    def __init__(self, model, x, y, learning_rate: float = 1e-3):
        key = jax.random.key(0)
        variables = model.init({"params": key, "dropout": key, "pool": key}, x, train=False)
        params = variables["params"]
        extra = {k: v for k, v in variables.items() if k != "params"}
        mutable = list(extra)
        tx = optax.adam(learning_rate)

        def loss_fn(params, extra, x, y, key):
            rngs = {"dropout": key, "pool": jax.random.fold_in(key, 1)}
            if mutable:
                logits, new_extra = model.apply({"params": params, **extra}, x, train=True,
                                                rngs=rngs, mutable=mutable)
            else:
                logits, new_extra = model.apply({"params": params}, x, train=True,
                                                rngs=rngs), extra
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, new_extra

        def step(state, x, y, key):
            params, extra, opt_state = state
            (loss, extra), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, extra, x, y, key)
            # optax mixes weak Python floats with int32 step counts, which strict dtype
            # promotion (as in the test suite) rejects; the arrays stay float32 either way.
            with jax.numpy_dtype_promotion("standard"):
                updates, opt_state = tx.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            return (params, extra, opt_state), loss

        self.state = (params, extra, tx.init(params))
        self.args = (x, y, key)
        # Compiled once ahead of time: the same executable is timed and its memory reported.
        self.step = jax.jit(step, donate_argnums=0).lower(self.state, *self.args).compile()

    def memory(self) -> dict[str, float] | None:
        """XLA's compiled memory statistics of the step, in MB (``None`` if unavailable)."""
        stats = self.step.memory_analysis()
        if stats is None:
            return None
        mb = 1 / 2**20
        args, out = stats.argument_size_in_bytes * mb, stats.output_size_in_bytes * mb
        temp, alias = stats.temp_size_in_bytes * mb, stats.alias_size_in_bytes * mb
        return {"arguments_mb": args, "outputs_mb": out, "temp_mb": temp, "alias_mb": alias,
                "peak_mb": args + out - alias + temp}

    def __call__(self):
        self.state, loss = self.step(self.state, *self.args)
        return block(loss)


class FitStep:
    """``fit``'s own compiled train step (the cached ``_steps`` of :mod:`cnnjax.train`) for a
    linen or an NNX model, Adam at a constant learning rate, one device, state donated."""

    def __init__(self, model, images: np.ndarray, labels: np.ndarray,
                 learning_rate: float = 1e-3):
        from cnnjax.data import normalization_stats
        from cnnjax.train import _loop, _nnx, _parallel

        own = None
        if _nnx.is_nnx(model):  # as fit wraps it
            model = _nnx.NnxModel.wrap(model)
            own = model.variables()
        mesh = _parallel.make_mesh(1)
        _, tx = _loop._cached_optimizer("adam", "constant", learning_rate, None, None, 0.0,
                                        None)
        init, self.step, _ = _loop._steps(model, tx, None, mesh)
        mean, std = (jnp.asarray(a) for a in normalization_stats(images))
        self.args = (jnp.asarray(images), jnp.asarray(labels), mean, std)
        self.state = init(self.args[0][:1], jax.random.PRNGKey(0), mean, std, own)

    def ops(self) -> int:
        """Operations in the step's lowered StableHLO (two equal programs count alike)."""
        text = self.step.lower(self.state, *self.args).as_text()
        return sum(1 for line in text.splitlines() if " = " in line)

    def __call__(self):
        self.state, metrics = self.step(self.state, *self.args)
        return block(metrics["loss"])


def nnx_model(name: str):
    """The ``cnnjax.nnx`` twin of a zoo model (10 classes, native input)."""
    from flax import nnx

    from cnnjax.nnx import models as nnx_models
    return nnx_models.get(name, num_classes=10, rngs=nnx.Rngs(0))


def train_inputs(batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, batch).astype(np.int32)
    return x, y


def bench_train(cfg: Config, with_memory: bool) -> dict[str, Any]:
    """Training-step ms of each contender per model, BN fold eval, memory statistics."""
    x_np, y_np = train_inputs(cfg.batch)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np)
    rows, memory, profiles = [], [], {}
    for name in cfg.models:
        trainers = {"cnnjax": JaxTrainer(cnnjax.models.get(name, num_classes=10), x, y),
                    "cnnjax[xla]": JaxTrainer(
                        cnnjax.models.get(name, num_classes=10, impl="xla"), x, y),
                    "flax": JaxTrainer(flax_model(name), x, y)}
        cands: dict[str, Callable] = dict(trainers)
        images = np.round((x_np - x_np.min()) / np.ptp(x_np) * 255).astype(np.uint8)
        fit_steps = {"fit[linen]": FitStep(cnnjax.models.get(name, num_classes=10), images,
                                           y_np),
                     "fit[nnx]": FitStep(nnx_model(name), images, y_np)}
        cands.update(fit_steps)
        if cfg.torch is not None:
            cands["torch"] = torch_trainer(cfg.torch, name, x_np, y_np)
        if "train" in cfg.suites:
            t = measure(cands, cfg.repeats, warmup=2, settle=1)
            row = {"model": name, "batch": cfg.batch, "ms": {k: v * 1e3 for k, v in t.items()},
                   "flax_over_cnnjax": t["flax"] / t["cnnjax"],
                   "xla_over_cnnjax": t["cnnjax[xla]"] / t["cnnjax"],
                   "nnx_over_linen": t["fit[nnx]"] / t["fit[linen]"],
                   "hlo_ops": {k: step.ops() for k, step in fit_steps.items()}}
            if "torch" in t:
                row["cnnjax_over_torch"] = t["cnnjax"] / t["torch"]
                row["flax_over_torch"] = t["flax"] / t["torch"]
            rows.append(row)
            cfg.log(f"train {name}: cnnjax {row['ms']['cnnjax']:.1f} ms/step, fit step NNX/linen "
                    f"{row['nnx_over_linen']:.3f}×")
        if cfg.profile:
            profiles[name] = profile_step(trainers["cnnjax"], cfg)
            cfg.log(f"profiled {name}")
        if with_memory:
            for label, trainer in trainers.items():
                stats = trainer.memory()
                if stats is not None:
                    memory.append({"model": name, "variant": label, **stats})
    out: dict[str, Any] = {"rows": rows, "memory": memory}
    if profiles:
        out["profile"] = profiles
    if "train" in cfg.suites:
        out["bn_fold"] = bench_bn_fold(cfg)
    return out


def bench_bn_fold(cfg: Config) -> dict[str, Any]:
    """Eval of ResNet-20 (BN after every conv) with the batch norms folded vs unfolded."""
    model = cnnjax.models.get("resnet20", num_classes=10)
    key = jax.random.key(3)
    x = jax.random.normal(key, (cfg.batch, 32, 32, 3), jnp.float32)
    variables = model.init(key, x[:1], train=False)
    # Non-trivial running statistics, so the fold is checked on a real affine map.
    variables = jax.tree_util.tree_map_with_path(_perturb_stats, variables)
    folded_model, folded_vars = cnnjax.models.fold_batch_norms(model, variables)
    unfolded = jax.jit(lambda v, x: model.apply(v, x, train=False))
    folded = jax.jit(lambda v, x: folded_model.apply(v, x, train=False))
    t = measure({"unfolded": jax_call(unfolded, variables, x),
                 "folded": jax_call(folded, folded_vars, x)}, cfg.repeats)
    diff = float(jnp.max(jnp.abs(unfolded(variables, x) - folded(folded_vars, x))))
    cfg.log(f"bn fold: unfolded {t['unfolded'] * 1e3:.1f} ms, folded {t['folded'] * 1e3:.1f} ms")
    return {"model": "resnet20", "batch": cfg.batch, "unfolded_ms": t["unfolded"] * 1e3,
            "folded_ms": t["folded"] * 1e3, "speedup": t["unfolded"] / t["folded"],
            "max_abs_logit_diff": diff}


def _perturb_stats(path, leaf):
    names = [getattr(p, "key", "") for p in path]
    if "batch_stats" in names and names[-1] in ("mean", "var"):
        idx = jnp.arange(leaf.shape[-1], dtype=leaf.dtype) / leaf.shape[-1]
        return leaf + idx if names[-1] == "var" else leaf + (idx - 0.5)
    return leaf
