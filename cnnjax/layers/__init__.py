"""What each layer is, independent of the module front end.

:mod:`cnnjax.layers.pool_specs` is the pooling registry: every pooling method, its spec grammar,
kind and module. :mod:`cnnjax.layers.params` holds the parameterisations that keep learned
hyperparameters in range and the size of a pooling site; :mod:`cnnjax.layers.fields` turns
module fields into parameter shapes and op arguments. Both front ends —
:mod:`cnnjax.nn` (``flax.linen``) and :mod:`cnnjax.nnx` (``flax.nnx``) — build their modules
from these, so a rule is written once whichever front end a model uses. Nothing here imports
Flax.
"""
from cnnjax.layers import fields, params, pool_specs
from cnnjax.layers.pool_specs import POOL_SPECS

__all__ = ["POOL_SPECS", "fields", "params", "pool_specs"]
