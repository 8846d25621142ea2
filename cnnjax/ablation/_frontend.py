"""Which Flax front end an ablation run (or ``cnnjax train``) builds its model with.

``'linen'`` builds :mod:`cnnjax.models`; ``'nnx'`` builds the twin in
:mod:`cnnjax.nnx.models` and loads into it the linen model's initial parameters for the
run's seed (the ones ``fit`` would draw), so both front ends train the same network from the
same weights and a run's numbers do not depend on the front end (stochastic pools and dropout
draw other noise: the streams are per front end).
"""
from __future__ import annotations

from typing import Any

FRONTENDS: tuple[str, ...] = ("linen", "nnx")


def check_frontend(frontend: Any, models: Any, op: str) -> str:
    """``frontend`` if it is one of :data:`FRONTENDS` and has every model, else the error."""
    if frontend not in FRONTENDS:
        raise ValueError(f"{op}: frontend must be 'linen' or 'nnx', got {frontend!r}.")
    if frontend == "nnx":
        from cnnjax.nnx import models as nnx_models
        missing = [m for m in models if m.lower() not in nnx_models.NAMES]
        if missing:
            raise ValueError(f"{op}: models must be names from cnnjax.nnx.models.NAMES "
                             f"({', '.join(nnx_models.NAMES)}) with frontend='nnx', got "
                             f"{missing[0]!r}.")
    return frontend


def build_model(frontend: str, name: str, *, pool: str, train_data: Any, seed: int,
                batch_size: int, devices: Any = None) -> Any:
    """The model of one run: linen, or its NNX twin holding the linen init of ``seed``."""
    from cnnjax import models as cmodels

    linen = cmodels.get(name, num_classes=train_data.num_classes, pool=pool)
    if frontend == "linen":
        return linen
    from flax import nnx

    from cnnjax import train as ctrain
    from cnnjax.nnx import models as nnx_models

    model = nnx_models.get(name, rngs=nnx.Rngs(seed), pool=pool,
                           num_classes=train_data.num_classes,
                           input_shape=tuple(int(n) for n in train_data.images.shape[1:]))
    # fit's own initialisation (zero epochs): exactly the linen run's starting point.
    init = ctrain.fit(linen, train_data, None, epochs=0, batch_size=batch_size,
                      learning_rate=1.0, seed=seed, devices=devices, progress=False).state
    nnx_models.load_linen_variables(model, linen, {"params": init.params,
                                                   "batch_stats": init.batch_stats})
    return model
