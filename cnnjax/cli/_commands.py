"""The subcommands: train, ablate, data, summary."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import warnings

from cnnjax.cli.args import (PROG, UsageError, check_batch, check_datasets, check_input_shape, check_models, check_optimizer, check_pools, check_writable, flatten, load, one_line_warning)




def cmd_train(args: argparse.Namespace) -> int:
    check_datasets([args.dataset])
    check_pools([args.pool])
    check_models([args.model])
    check_optimizer(args.optimizer, args.schedule)
    if args.workdir is not None:
        check_writable(args.workdir, "--workdir")
        _save_config(args, args.workdir, "train")
    if args.log_dir is not None:
        check_writable(args.log_dir, "--log-dir")
    train_data = load(args.dataset, "train", args.data_dir)
    test_data = load(args.dataset, "test", args.data_dir)
    if args.limit is not None:
        train_data = train_data._replace(images=train_data.images[:args.limit],
                                         labels=train_data.labels[:args.limit])
        test_data = test_data._replace(images=test_data.images[:args.limit],
                                       labels=test_data.labels[:args.limit])

    import jax
    import numpy as np

    from cnnjax import train

    check_batch(args.batch_size, args.devices, len(train_data.labels))
    from cnnjax.ablation import _frontend
    try:
        _frontend.check_frontend(args.frontend, [args.model], "--frontend")
    except ValueError as e:
        raise UsageError(str(e)) from None
    model = _frontend.build_model(args.frontend, args.model, pool=args.pool,
                                  train_data=train_data, seed=args.seed,
                                  batch_size=args.batch_size, devices=args.devices)
    epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
    nnx = " as flax.nnx" if args.frontend == "nnx" else ""
    print(f"training {args.model}{nnx} (pool={args.pool}) on {args.dataset}: "
          f"{len(train_data.labels)} train / {len(test_data.labels)} test images "
          f"{tuple(train_data.images.shape[1:])}, {epochs}, batch {args.batch_size}, "
          f"{args.optimizer} lr={args.lr}, seed {args.seed}", flush=True)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            result = train.fit(model, train_data, test_data, epochs=args.epochs,
                               batch_size=args.batch_size, learning_rate=args.lr,
                               seed=args.seed, optimizer=args.optimizer,
                               schedule=args.schedule, workdir=args.workdir,
                               restart=args.restart, devices=args.devices,
                               progress="auto" if not args.quiet else False,
                               weight_decay=args.weight_decay, momentum=args.momentum,
                               warmup_steps=args.warmup_steps,
                               augment=None if args.augment == "none" else args.augment,
                               eval_batch_size=args.eval_batch_size,
                               max_to_keep=args.max_to_keep, log_dir=args.log_dir,
                               checkpoint_seconds=args.checkpoint_seconds)
    # fit's own checks (one sentence each, "fit: ..."): a model that does not fit the data,
    # a workdir holding another run or no intact checkpoint. Anything else is a bug.
    except (ValueError, TypeError) as e:
        if not str(e).startswith("fit: "):
            raise
        raise UsageError(str(e)[len("fit: "):]) from None
    params = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(result.state.params))
    print(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'test loss':>9} "
          f"{'test acc':>8} {'seconds':>8}")
    for h in result.history:
        print(f"{h['epoch']:>5} {h['train_loss']:>10.4f} {100 * h['train_accuracy']:>8.2f}% "
              f"{h['test_loss']:>9.4f} {100 * h['test_accuracy']:>7.2f}% {h['seconds']:>8.2f}")
    print(f"parameters: {params:,}")
    if args.workdir is not None:
        print(f"checkpoints: {args.workdir} (cnnjax eval --workdir {shlex.quote(args.workdir)}"
              f" --dataset {args.dataset})")
    if args.workdir is not None or args.log_dir is not None:
        print(f"metrics: {os.path.join(args.log_dir or args.workdir, 'metrics.csv')}")
    return 0


def _save_config(args: argparse.Namespace, directory, command: str) -> None:
    config = getattr(args, "effective_config", None)
    if config is not None:
        from cnnjax.cli._config import write_config
        write_config(config, directory, command)


def cmd_eval(args: argparse.Namespace) -> int:
    if not os.path.isdir(args.workdir):
        raise UsageError(f"--workdir must be a training run's directory, got {args.workdir!r} "
                         "(no such directory)")
    if args.dataset is not None:
        check_datasets([args.dataset])
    from cnnjax import train

    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warning
            run = train.load(args.workdir)
    except ValueError as e:  # no checkpoint, none intact, or no model record
        raise UsageError(str(e).removeprefix("load: ")) from None
    dataset = args.dataset or run.dataset
    check_datasets([dataset])
    data = load(dataset, args.split, args.data_dir)
    if args.limit is not None:
        data = data._replace(images=data.images[:args.limit], labels=data.labels[:args.limit])
    if tuple(data.images.shape[1:]) != tuple(run.image_shape):
        raise UsageError(f"--dataset {dataset} has images of shape "
                         f"{tuple(data.images.shape[1:])}, but the model in {args.workdir} was "
                         f"trained on {tuple(run.image_shape)} ({run.dataset})")
    try:
        metrics = train.evaluate(run.model, run.variables, data,
                                 normalization=run.normalization, batch_size=args.batch_size)
    except ValueError as e:  # labels the model has no logit for
        raise UsageError(str(e).removeprefix("evaluate: ")) from None
    pool = getattr(run.model, "pool", None)
    what = type(run.model).__name__ + (f" (pool={pool})" if isinstance(pool, str) else "")
    print(f"{dataset} {args.split}: accuracy {100 * metrics['accuracy']:.2f}%, loss "
          f"{metrics['loss']:.4f} on {metrics['count']} images ({what}, epoch {run.epoch} "
          f"of {args.workdir})")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from cnnjax import ablation

    out = check_writable(args.out, "--out")
    command = " ".join(shlex.quote(a) for a in [PROG, *args.argv])
    if args.report_only:
        records = ablation.load_results(out)
        if not records:
            raise UsageError(f"--report-only needs finished runs, but {out / 'results.jsonl'} "
                             "holds none")
        # The report quotes the commands recorded with the runs, not this one.
        report = ablation.write_report(out, records, plots=not args.no_plots,
                                       baseline=args.baseline or "max")
    else:
        pools = flatten(args.pools) or list(ablation.POOL_SPECS)
        models = flatten(args.models) or ["lenet5"]
        datasets = flatten(args.datasets) or ["digits"]
        check_datasets(datasets)
        check_pools(pools)
        check_models(models)
        from cnnjax.ablation import _frontend
        try:
            _frontend.check_frontend(args.frontend, models, "--frontend")
        except ValueError as e:
            raise UsageError(str(e)) from None
        check_optimizer(args.optimizer, args.schedule)
        for name in datasets:  # fail before training anything if a dataset is missing
            load(name, "test", args.data_dir)
        cache = None if args.cache_dir.lower() == "none" else args.cache_dir
        _save_config(args, out, "ablate")

        if args.baseline is not None and args.baseline not in pools:
            raise UsageError(f"--baseline must be one of the pools ({', '.join(pools)}), "
                             f"got {args.baseline!r}")
        monitor = None
        if not args.quiet:
            from cnnjax.ablation.progress import StudyProgress
            monitor = StudyProgress(sys.stderr)

        records = ablation.run_ablation(
            out, pools=pools, models=models, datasets=datasets,
            seeds=flatten(args.seeds) or [0, 1, 2], epochs=args.epochs,
            batch_size=args.batch_size, learning_rate=args.lr,
            optimizer=args.optimizer, schedule=args.schedule, limit=args.limit,
            shift=args.shift, shift_trials=args.shift_trials, data_dir=args.data_dir,
            devices=args.devices,
            vectorize_seeds="auto" if args.vectorize_seeds is None else args.vectorize_seeds,
            cache_dir=cache, keep_checkpoints=args.keep_checkpoints,
            checkpoint_seconds=args.checkpoint_seconds, workers=args.workers,
            plots=not args.no_plots, baseline=args.baseline, command=command,
            progress=False, monitor=monitor, frontend=args.frontend)
        report = out / ablation.REPORT_FILE
    for group in ablation.summarize(records):
        print(f"\n{group.model} on {group.dataset} "
              f"({ablation.describe_hyperparameters(group.hyperparameters)}):\n")
        print(ablation.format_table(group))
    print(f"\nreport: {report}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from cnnjax import data

    if args.data_command == "list":
        rows = data.list_datasets(args.data_dir)
        print(f"{'name':<14} {'available':<9} {'classes':>7}  {'image shape':<12} "
              f"{'source':<24} location")
        for r in rows:
            shape = "x".join(map(str, r.image_shape))
            state = "yes" if r.available else ("damaged" if r.problem else "no")
            print(f"{r.name:<14} {state:<9} {r.num_classes:>7}  {shape:<12} {r.source:<24} "
                  f"{r.location or '-'}")
        for r in rows:
            if r.problem:
                print(f"\n{r.name}: {r.problem}; run `{PROG} data fetch {r.name} --force` to "
                      "download it again")
        return 0
    check_datasets([args.name])
    if args.data_dir is not None:
        check_writable(args.data_dir, "--data-dir")
    try:
        where = data.fetch(args.name, args.data_dir, force=args.force,
                           report=lambda line: print(f"{args.name}: {line}", flush=True))
    except ValueError as e:  # a name that cannot be fetched, or damaged files present
        raise UsageError(str(e)) from None
    except data.DatasetNotFoundError as e:
        print(f"{PROG} data fetch: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.name}: ready ({where})")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    check_models([args.model])
    check_pools([args.pool])
    from cnnjax import models

    model = models.get(args.model, num_classes=args.num_classes, pool=args.pool)
    check_input_shape(model, args.model, args.input_shape)
    print(models.summary(model, args.input_shape))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    check_models([args.model])
    check_pools([args.pool])
    import os

    from cnnjax import models
    from cnnjax.bench.tune import format_tune, tune_model

    model = models.get(args.model, num_classes=10, pool=args.pool)
    check_input_shape(model, args.model, args.input_shape)
    if os.environ.get("CNNJAX_AUTOTUNE", "1").strip().lower() in ("0", "false", "no", "off"):
        raise UsageError("measuring is off (CNNJAX_AUTOTUNE=0); unset it to tune")
    print(f"tuning the convolutions of the {args.model} training step (pool={args.pool}, "
          f"batch {args.batch_size}, input {','.join(map(str, args.input_shape))})", flush=True)
    print(format_tune(tune_model(model, args.input_shape, args.batch_size)))
    return 0
