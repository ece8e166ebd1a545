"""`dpo-studio train`: train a model on a pushed export with TRL's DPO or ORPO, here (default) or on HF Jobs.

Examples::

    dpo-studio train --dataset alice/aya-dutch-dpo --method dpo                 # here: CPU or GPU, what torch finds
    dpo-studio train --dataset alice/aya-dutch-dpo --jobs --flavor a10g-small   # on HF Jobs, billed to you
    dpo-studio train --dataset alice/aya-dutch-dpo --script-only train.py       # just write the script

Both run the same script (``--script-only`` writes it): it evaluates on the export's test split, trains, evaluates
again and pushes the model (or LoRA adapter) with a model card. Progress and the evaluation figures are printed
here; ``--jobs`` prints the estimate first and follows the job (``--detach`` stops after the launch;
``--follow JOB_ID`` picks a job up again, ``--cancel JOB_ID`` stops it). A local run needs the script's
dependencies: ``uv`` installs them (``uv run``), or pass ``--python`` of an environment that has them.
The token is ``HF_TOKEN`` or the one saved by ``hf auth login``; it reaches the script through its environment
(on Jobs: a secret), never its command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from pipeline import train
from pipeline.core import hub


def register(sub: argparse._SubParsersAction) -> None:
    d = train.TrainSettings(dataset="", base_model="")
    p = sub.add_parser(
        "train",
        help="train a model on a pushed export with TRL (DPO or ORPO), here or on HF Jobs",
        description="Train a model on a pushed DPO/ORPO export with TRL, evaluate it on the test split before and "
        "after, and push it with a model card. Runs here by default; --jobs runs it on Hugging Face Jobs.",
    )
    what = p.add_argument_group("what to train")
    what.add_argument("--dataset", help="the pushed export (owner/name)")
    what.add_argument("--method", choices=train.METHODS, default=d.method, help="DPO or ORPO (default: %(default)s)")
    what.add_argument("--base-model", help="the model to train (default: a suggestion for the dataset's size)")
    what.add_argument("--gguf-file", default="", help="load the base model from this GGUF file of its repo")
    what.add_argument("--full", action="store_true", help="full fine-tuning (default: a LoRA adapter)")
    what.add_argument("--output-repo", help="push the model here (default: <you>/<model>-<dataset>-<method>)")
    what.add_argument("--public", action="store_true", help="make the model repo public (default: private)")
    what.add_argument("--no-push", action="store_true", help="keep the model on disk (local runs only)")
    hp = p.add_argument_group("hyperparameters (TRL's defaults)")
    hp.add_argument("--beta", type=float, default=d.beta, help="default: %(default)s")
    hp.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"default: {train.LR_LORA:g} with LoRA, {train.LR_FULL:g} (TRL's) for full fine-tuning",
    )
    hp.add_argument("--epochs", type=float, default=d.epochs, help="default: %(default)s")
    hp.add_argument("--max-length", type=int, default=d.max_length, help="tokens, default: %(default)s")
    hp.add_argument("--batch-size", type=int, default=d.batch_size, help="per device, default: %(default)s")
    hp.add_argument("--gradient-accumulation", type=int, default=d.gradient_accumulation, help="default: %(default)s")
    hp.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    hp.add_argument("--max-steps", type=int, default=0, help="stop after this many optimiser steps (a quick check)")
    where = p.add_argument_group("where it runs")
    where.add_argument("--script-only", metavar="PATH", help="write the training script to PATH and stop")
    where.add_argument("--python", default="", help="local runs: the Python of an environment with the dependencies")
    where.add_argument("--workdir", help="local runs: the folder for the script and the model (default: a temp dir)")
    where.add_argument("--jobs", action="store_true", help="run on Hugging Face Jobs (needs a paid account)")
    where.add_argument("--flavor", default="", help="Jobs hardware (default: the cheapest GPU that fits)")
    where.add_argument("--timeout", default="8h", help="Jobs: the longest the job may run (default: %(default)s)")
    where.add_argument("--detach", action="store_true", help="Jobs: print the job id and return")
    where.add_argument("--follow", metavar="JOB_ID", help="Jobs: follow a job started before")
    where.add_argument("--cancel", metavar="JOB_ID", help="Jobs: cancel a job")
    where.add_argument("--namespace", help="Jobs: the namespace of --follow/--cancel (default: yours)")
    where.add_argument("--poll", type=float, default=10.0, help="Jobs: seconds between looks (default: %(default)s)")
    p.set_defaults(func=run)


def _fail(message: object) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _settings(args: argparse.Namespace, facts: train.ExportFacts | None) -> train.TrainSettings:
    base_model = args.base_model or train.suggest_base_model(facts.train_pairs if facts else None)[0]
    return train.TrainSettings.from_mapping(
        {
            "dataset": args.dataset,
            "base_model": base_model,
            "gguf_file": args.gguf_file,
            "output_repo": args.output_repo or "",
            "method": args.method,
            "lora": not args.full,
            "beta": args.beta,
            "learning_rate": args.learning_rate,
            "epochs": args.epochs,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "gradient_accumulation": args.gradient_accumulation,
            "seed": args.seed,
            "private": not args.public,
        }
    )


def _print_result(progress: train.TrainProgress) -> None:
    if progress.seconds_per_step:
        print(f"trained {progress.step} steps, {progress.seconds_per_step:.2f} s a step")
    if progress.figures:
        print("evaluation " + progress.figures.summary())
    if progress.model_url:
        print(f"model: {progress.model_url}")
    elif progress.saved_path:
        print(f"model saved: {progress.saved_path}")


def run(args: argparse.Namespace) -> int:
    token = hub.local_token()
    try:
        if args.cancel or args.follow:
            namespace = args.namespace or (hub.whoami(token).name if token else "")
            ref = train.JobRef(args.cancel or args.follow, namespace)
            if args.cancel:
                train.cancel(ref, token)
                print(f"cancelled job {ref.job_id}")
                return 0
            return _follow(ref, token, args.poll)
        if not args.dataset:
            return _fail("--dataset is required (the pushed export, owner/name)")
        facts = train.read_export(args.dataset, token)
        print(
            f"dataset {facts.dataset}: {facts.train_pairs} training pairs, "
            + (f"{facts.test_pairs} test pairs" if facts.test_pairs else "no test split (10% of train held out)")
        )
        settings = _settings(args, facts)
        namespace = ""
        if not args.no_push and not settings.output_repo:
            if token:
                namespace = hub.whoami(token).name
            elif not args.script_only:
                return _fail(f"{hub.SIGN_IN_TO_PUSH} Or pass --no-push to keep the model on disk.")
        if args.no_push:
            settings = dataclasses.replace(settings, output_repo="")
        flavors = train.list_flavors(token) if args.jobs else []
        the_plan = train.plan(settings, facts, namespace=namespace, flavors=flavors, flavor=args.flavor)
    except (train.TrainError, train.JobsError, hub.HubError) as e:
        return _fail(e)
    settings = the_plan.settings
    print(
        f"{settings.method.upper()} of {settings.base_model} ({'LoRA' if settings.lora else 'full fine-tuning'}), "
        f"beta {settings.beta:g}, learning rate {settings.lr:g}, {settings.epochs:g} epochs, max length "
        f"{settings.max_length}" + (f"; pushes to {settings.output_repo}" if settings.output_repo else "")
    )
    if args.script_only:
        path = Path(args.script_only)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(the_plan.script, encoding="utf-8")
        print(f"wrote {path}: run it with `uv run {path}`")
        return 0
    if args.jobs:
        return _launch(the_plan, token, args)
    return _run_here(the_plan, token, args)


def _run_here(the_plan: train.TrainPlan, token: str | None, args: argparse.Namespace) -> int:
    extra = ["--max-steps", str(args.max_steps)] if args.max_steps else []
    if args.no_push:
        extra.append("--no-push")
    last = [""]

    def show(line: str) -> None:
        progress.feed(line)
        now = progress.line()
        if now != last[0]:
            print(now, flush=True)
            last[0] = now

    progress = train.TrainProgress()
    workdir = Path(args.workdir) if args.workdir else None
    code, final, tail = train.run_local(the_plan, token, python=args.python, args=extra, on_line=show, workdir=workdir)
    if code != 0:
        print("\n".join(tail[-30:]), file=sys.stderr)
        return _fail(f"the training script exited with code {code} (its last lines are above)")
    _print_result(final)
    return 0


def _launch(the_plan: train.TrainPlan, token: str | None, args: argparse.Namespace) -> int:
    if the_plan.estimate is not None:
        print(f"estimate: {the_plan.estimate.text()}")
    note = train.payment_note(token)
    if note:
        print(f"note: {note}")
    try:
        ref = train.launch(the_plan, token, timeout=args.timeout)
    except (train.TrainError, train.JobsError, hub.HubError) as e:
        return _fail(e)
    print(f"job {ref.job_id} started in {ref.namespace} on {ref.flavor}")
    print(f"follow it: dpo-studio train --follow {ref.job_id} --namespace {ref.namespace}")
    if args.detach:
        return 0
    return _follow(ref, token, args.poll)


def _follow(ref: train.JobRef, token: str | None, poll: float) -> int:
    seen_stage, seen_line = "", ""
    while True:
        try:
            job = train.view(ref, token, metrics=False)
        except train.JobsError as e:
            return _fail(e)
        if job.stage != seen_stage:
            print(f"job {ref.job_id}: {job.stage}" + (f" ({job.message})" if job.message else ""), flush=True)
            seen_stage = job.stage
        line = job.progress.line() if job.progress.stage else ""
        if line and line != seen_line:
            print(line, flush=True)
            seen_line = line
        if job.finished:
            break
        time.sleep(poll)
    _print_result(job.progress)
    if job.stage != "COMPLETED":
        print("\n".join(job.logs[-20:]), file=sys.stderr)
        return _fail(f"the job ended {job.stage}" + (f": {job.message}" if job.message else ""))
    if job.model_url and not job.progress.model_url:
        print(f"model: {job.model_url}")
    return 0
