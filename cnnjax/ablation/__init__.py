"""The pooling ablation study: one network, every pooling variant, several seeds.

The grid is pool spec × model × dataset × seed. Every run trains with :func:`cnnjax.train.fit`
and, once finished, is recorded as one JSON line in ``out_dir/results.jsonl``, the study's
source of truth. Re-running the same study skips the runs already recorded and resumes an
interrupted run from its per-run checkpoint directory ``out_dir/runs/<run id>``, so an
interruption loses at most the epoch in progress. At the end ``out_dir/report.md`` gets, for
every (model, dataset, hyperparameters) cell recorded, each metric's mean and 95% confidence
interval per variant, a paired comparison with a baseline variant, the published claims it
reproduces or contradicts, and the plots it embeds, which ``cnnjax viz ablation RESULTS`` can
redraw from the results file alone.

The package, one concern per module:

* :mod:`~cnnjax.ablation.results` — the results file (atomic appends, locking, reading and
  validating) and run identity;
* :mod:`~cnnjax.ablation.stats` — means and 95% confidence intervals over seeds, paired
  comparisons by seed with Holm's adjustment;
* :mod:`~cnnjax.ablation.summary` — aggregating runs per variant over seeds;
* :mod:`~cnnjax.ablation.claims` — published claims about pooling, and their verdicts here;
* :mod:`~cnnjax.ablation.report` — ``report.md``;
* :mod:`~cnnjax.ablation.plots` — the figures (matplotlib, headless);
* :mod:`~cnnjax.ablation.runner` — :func:`run_ablation`, running the grid.

Defaults (:data:`DEFAULTS`) make the default study — LeNet5 on the embedded 8×8 ``'digits'``,
every canonical pool spec of :data:`cnnjax.layers.POOL_SPECS`, three seeds — finish in a few
minutes on two CPU cores; ``experiments/pooling_ablation.py`` records the numbers it produced.

Example:
    >>> from cnnjax.ablation import run_ablation
    >>> records = run_ablation("runs/ablation", pools=("max", "avg"), seeds=(0,))  # doctest: +SKIP
    >>> print(open("runs/ablation/report.md").read())  # doctest: +SKIP
"""
from cnnjax.ablation.claims import CLAIMS, Claim, ClaimResult, Comparison, evaluate_claims
from cnnjax.ablation.plots import plot_ablation
from cnnjax.ablation.report import REPORT_FILE, describe_hyperparameters, format_table, write_report
from cnnjax.ablation.results import (RESULTS_FILE, append_record, hyperparameter_hash,
                                     load_results, results_path, run_id, run_key)
from cnnjax.ablation.summary import GroupSummary, PoolSummary, summarize
from cnnjax.layers.pool_specs import POOL_SPECS

__all__ = [
    "CHECKPOINT_SECONDS", "CLAIMS", "DEFAULTS", "POOL_SPECS", "REPORT_FILE", "RESULTS_FILE", "RUNS_DIR", "Claim",
    "ClaimResult", "Comparison", "GroupSummary", "PoolSummary", "append_record",
    "default_cache_dir", "describe_hyperparameters", "enable_compilation_cache",
    "evaluate_claims", "format_table", "hyperparameter_hash", "load_results", "plot_ablation",
    "results_path", "run_ablation", "run_id", "run_key", "summarize", "write_report",
]

# The runner (training) is imported on first use: reading results, summaries, reports and plots
# (``cnnjax viz ablation``) never loads it.
_RUNNER = ("CHECKPOINT_SECONDS", "DEFAULTS", "RUNS_DIR", "default_cache_dir", "enable_compilation_cache",
           "run_ablation")


def __getattr__(name):
    if name in _RUNNER:
        from cnnjax.ablation import runner
        return getattr(runner, name)
    raise AttributeError(f"module 'cnnjax.ablation' has no attribute {name!r}")
