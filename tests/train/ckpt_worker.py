"""Worker for the kill-while-checkpointing test (test_checkpoint.py), run as a subprocess.

Trains TinyBN on a digits subset with a workdir and writes the final history as JSON::

    python ckpt_worker.py WORKDIR EPOCHS OUT.json
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import jax  # noqa: E402

# The same configuration as tests/conftest.py.
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_disable_most_optimizations", True)


def main(workdir, epochs, out):
    from cnnjax.train import fit
    from tests.train.tiny_models import TinyBN, digits_subset

    train, test = digits_subset(n_train=128, n_test=32)
    result = fit(TinyBN(), train, test, epochs=int(epochs), batch_size=32,
                 learning_rate=3e-3, seed=0, progress=False, workdir=workdir or None,
                 schedule="cosine")
    history = [{k: v for k, v in h.items() if "seconds" not in k} for h in result.history]
    with open(out, "w") as f:
        json.dump({"history": history, "step": int(result.state.step)}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
