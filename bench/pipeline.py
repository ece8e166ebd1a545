"""Benchmark: the app's continuous executor vs the recipe's distilabel Pipeline, on the same loopback server.

    python bench/pipeline.py                 # 200 rows, concurrency 20, lognormal latency (mean 0.5 s, sigma 0.8)
    python bench/pipeline.py --memory        # also: a 10,000-row run on a fast server, peak extra memory
    python bench/pipeline.py --faults 0.2    # 20% of our calls refused at random (429, 500 or 503)

A loopback OpenAI-compatible server (``tests/fixtures/faulty_server.FakeLLMServer``, in its own process) answers
generations with a short text and judge calls with a well-formed reply after a lognormal delay: a request that asks
for structured output (``response_format`` with a JSON schema, as both arms' judges do) gets JSON that fits the
schema it sent (``follow_schema``), a text request the UltraFeedback text format. So both arms really rate.

- ``ours_s``: ``pipeline.generate.run_async`` (real HTTP client, retries, JSONL checkpoint, language check),
  generation + judge per row, concurrency 20; run ``--repeats`` times (default 3), each on a fresh server, and the
  run with the median efficiency reported (``runs_efficiency`` lists all: other work on the machine shares the CPU).
- ``cookbook_s``: the recipe's distilabel ``Pipeline`` as DPO Studio generates it (``LoadDataFromDicts`` →
  ``TextGeneration`` → ``GroupColumns`` → ``UltraFeedback`` with the judge's JSON schema → language check,
  ``input_batch_size=10``), run in the main thread of a subprocess on a fault-free server; ``pipeline.run()`` is
  timed inside it.
- ``limit_s`` = calls the server had to answer × mean latency / concurrency: no executor can beat it on average.
  Clean: 2 calls a row. With ``--faults``: every call the server saw (faulted ones included, since each takes its
  latency) minus our backup (hedged) calls, which are our executor's own choice.
- ``rated_rows`` / ``baseline_rated_rows``: rows whose every answer got a rating, counted from each arm's output
  (our raw table; distilabel's dataset). ``goal_met`` needs both equal to ``rows``.

Both are timed from a warm process (imports, the langid model and distilabel's task templates loaded first).
The last line printed is one JSON object with ``rows``, ``ours_s``, ``cookbook_s``, ``limit_s``, ``efficiency``
(= limit_s / ours_s), ``speedup`` (= cookbook_s / ours_s), ``rated_rows``, ``baseline_rated_rows`` and
``goal_met`` (efficiency ≥ 0.85, or ≥ 0.8 with ``--faults``, and both arms rated every row); with ``--memory``
also ``memory_rows``, ``memory_extra_mb`` (peak RSS during the run minus RSS before it; goal < 500) and
``memory_s``.

``--faults P``: the server answers a share P of our calls at random, after the call's latency, with 429 (no
Retry-After), 500 or 503 (one third each), as a busy provider does; the run retries them (a 429 is a wait, the
others attempts) and the adaptive controller must not mistake the scattered 429s for a rate limit. The baseline
still runs on its own fault-free server (distilabel has no retries of its own to compare); the JSON also has
``faults``, ``calls_sent`` (all requests the server saw), ``failed_rows``, ``refused_429`` and ``limit_clean_s`` (the
limit without faults, 2 calls a row).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds scripts named like packages (pipeline.py, langid.py): never import from it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

MEAN_LATENCY = 0.5
SIGMA = 0.8
MU = math.log(MEAN_LATENCY) - SIGMA**2 / 2  # lognormal with this mean

_ANSWER = (
    "Dit is een antwoord in het Nederlands. Het legt rustig uit wat er gevraagd werd, geeft een voorbeeld en "
    "sluit af met een korte samenvatting, zoals een behulpzame assistent dat zou doen. "
)


# --------------------------------------------------------------------------------------------------------------
# The server (its own process, so it never competes with the measured executor for the GIL)
# --------------------------------------------------------------------------------------------------------------
def _responder(request: dict) -> str:
    import re

    from tests.pipeline_helpers import JUDGE_MARK, judge_reply

    messages = request["messages"]
    if messages[0]["role"] == "system" and messages[0]["content"].startswith(JUDGE_MARK):
        annotation = messages[-1]["content"].split("## Annotation")[-1]
        n = len(re.findall(r"^<text \d+>", annotation, flags=re.M))
        return judge_reply(n, [min(5, 3 + i) for i in range(n)])
    return _ANSWER * 3


def serve(latency: str, faults: float = 0.0) -> None:
    import random

    from tests.fixtures.faulty_server import FakeLLMServer, Fault

    rnd = random.Random(1234)
    lock = threading.Lock()
    counts = {"429": 0, "500": 0, "503": 0}

    slept = [0.0]

    def delay() -> float:
        if latency == "fast":
            return 0.002
        with lock:
            seconds = rnd.lognormvariate(MU, SIGMA)
            slept[0] += seconds
            return seconds

    def fault_for(request: dict) -> Fault | None:
        with lock:
            if rnd.random() >= faults:
                return None
            code = rnd.choice((429, 500, 503))
            counts[str(code)] += 1
        return Fault.status(code)

    srv = FakeLLMServer(
        responder=_responder, latency=delay, record=False, fault_for=fault_for if faults else None, follow_schema=True
    )
    srv.start()
    print(srv.base_url, flush=True)
    for line in sys.stdin:  # "stats" prints the counts; the parent closing our stdin stops the server
        if line.strip() == "stats":
            with lock:
                print(json.dumps({"calls": srv.chat_requests, "latency_s": slept[0], **counts}), flush=True)
    srv.stop()


def Server(latency: str, faults: float = 0.0):
    """:func:`serve` in a child process."""
    from tests.fixtures.faulty_server import ServerProcess

    return ServerProcess([sys.executable, __file__, "--serve", latency, "--faults", str(faults)], cwd=str(ROOT))


# --------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------
def make_rows(n: int):
    import pyarrow as pa

    from pipeline.core import schema

    rows = []
    for i in range(n):
        prompt = f"Vraag {i}: leg in een paar zinnen uit hoe je brood bakt, en waarom het deeg moet rijzen?"
        response = f"Antwoord {i}: " + _ANSWER * 2
        rows.append(
            {
                "id": schema.row_id(prompt, response),
                "prompt": prompt,
                "response": response,
                "language": "Dutch",
                "language_code": "nld",
                "annotation_type": "",
                "user_id": "",
            }
        )
    return pa.Table.from_pylist(rows)


def _settings(base_url: str, concurrency: int):
    from pipeline.generate import RunSettings
    from pipeline.inference import Backend

    backend = Backend("openai", "bench-model", base_url)
    return RunSettings(
        generators=(backend,),
        judge=backend,
        system_prompt="Antwoord altijd in het Nederlands.",
        max_new_tokens=256,
        judge_max_new_tokens=512,
        concurrency=concurrency,
    )


def _warm_up() -> None:
    from pipeline import judge, langcheck

    judge.judge_messages("x", ["a", "b"])
    langcheck.warm_up()


# --------------------------------------------------------------------------------------------------------------
# Ours
# --------------------------------------------------------------------------------------------------------------
def rated_rows(ratings) -> int:
    """Rows whose every answer has a rating (a list of ratings per row; None or a missing rating: not rated)."""
    return sum(1 for row in ratings if row and all(r is not None for r in row))


def run_ours(base_url: str, rows, concurrency: int) -> tuple[float, dict]:
    from pipeline.generate import Checkpoint, run_async

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpoint(Path(tmp) / "bench.jsonl")
        started, cpu = time.perf_counter(), time.process_time()
        handle = asyncio.run(run_async(rows, _settings(base_url, concurrency), ckpt))
        took = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        table = handle.table()
    snap = handle.snapshot()
    if snap.state != "done":
        raise SystemExit(f"our run did not complete: {snap.state} {snap.counts} {snap.message}")
    rated = rated_rows(table.column("ratings").to_pylist())
    return took, {**snap.counts, "hedged_calls": snap.hedged_calls, "rated": rated, "cpu_s": cpu_s}


# --------------------------------------------------------------------------------------------------------------
# The cookbook: the distilabel Pipeline DPO Studio generates (input_batch_size=10), in a subprocess's main thread
# --------------------------------------------------------------------------------------------------------------
_DRIVER = """
import json, sys, time, logging
sys.path.insert(0, {folder!r})
import recipe_pipeline as script
if __name__ == "__main__":
    logging.disable(logging.WARNING)
    rows = script.load_rows({data!r})
    pipeline = script.build_pipeline(rows, batch_size=10)
    started = time.perf_counter()
    distiset = pipeline.run(use_cache=False)
    took = time.perf_counter() - started
    train = distiset["default"]["train"]
    rated = sum(1 for r in train["ratings"] if r and all(x is not None for x in r))  # = bench's rated_rows
    print(json.dumps({{"seconds": took, "rows": len(train), "rated": rated}}))
"""


def run_cookbook(base_url: str, rows) -> tuple[float, dict]:
    import pyarrow.parquet as pq

    from pipeline.generate import recipe

    meta = recipe.build_raw_meta(_settings(base_url, 20), None, language="Dutch", language_code="nld")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "recipe_pipeline.py").write_text(recipe.render_pipeline_script(meta), encoding="utf-8")
        pq.write_table(rows, folder / "rows.parquet")
        (folder / "driver.py").write_text(_DRIVER.format(folder=str(folder), data=str(folder / "rows.parquet")))
        env = {**os.environ, "HOME": str(folder), "DISTILABEL_CACHE_DIR": str(folder / "cache"), "HF_HUB_OFFLINE": "0"}
        done = subprocess.run(
            [sys.executable, str(folder / "driver.py")],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    last = (done.stdout.strip().splitlines() or [""])[-1]
    try:
        out = json.loads(last)
    except ValueError:
        raise SystemExit(f"the distilabel run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}") from None
    if out["rows"] != rows.num_rows:
        raise SystemExit(f"the distilabel run lost rows: {out}")
    return out["seconds"], out


# --------------------------------------------------------------------------------------------------------------
# Memory: a 10,000-row run on a fast server
# --------------------------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_memory(base_url: str, n: int, concurrency: int) -> tuple[float, float]:
    import gc

    from pipeline.generate import Checkpoint, run_async

    rows = make_rows(n)
    gc.collect()
    before = _rss_mb()
    peak = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Checkpoint(Path(tmp) / "memory.jsonl")
        started = time.perf_counter()
        handle = asyncio.run(run_async(rows, _settings(base_url, concurrency), ckpt))
        table = handle.table()  # the final table is part of the run's memory
        took = time.perf_counter() - started
        peak[0] = max(peak[0], _rss_mb())
        stop.set()
        sampler.join()
        if table.num_rows != n or handle.snapshot().counts.get("ok") != n:
            raise SystemExit(f"memory run incomplete: {handle.snapshot()}")
        del table
    return peak[0] - before, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", choices=("lognormal", "fast"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--faults",
        type=float,
        default=0.0,
        help="share of calls answered at random by 429/500/503 (ours only; e.g. 0.2)",
    )
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours; the median efficiency is reported")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--memory", action="store_true", help="also measure a 10,000-row run's extra memory")
    parser.add_argument("--memory-rows", type=int, default=10_000)
    parser.add_argument("--skip-cookbook", action="store_true", help="no baseline (goal_met is then false)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.faults)
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    _warm_up()
    rows = make_rows(args.rows)
    calls = 2 * args.rows
    limit_s = calls * MEAN_LATENCY / args.concurrency
    result: dict = {"rows": args.rows, "concurrency": args.concurrency, "calls": calls}

    runs = []
    for _ in range(args.repeats):  # each on a fresh server; the median run is reported (neighbours share the CPU)
        server = Server("lognormal", args.faults)
        try:
            took, counts = run_ours(server.base_url, rows, args.concurrency)
            sent = server.stats()
        finally:
            server.close()
        print(f"ours: {took:.2f} s {counts}; server: {sent}", file=sys.stderr)
        # with faults, every call the server answered took its latency, faulted ones too; our backup (hedged) calls
        # are our executor's own choice and do not count
        needed = sent["calls"] - counts["hedged_calls"] if args.faults else calls
        run_limit = needed * MEAN_LATENCY / args.concurrency
        runs.append(
            {
                "ours_s": round(took, 2),
                "ours_cpu_s": round(counts["cpu_s"], 2),  # our process's CPU time: the executor needs this much
                "limit_s": round(run_limit, 2),
                "efficiency": round(run_limit / took, 3),
                "rated_rows": counts["rated"],
                "failed_rows": args.rows - counts.get("ok", 0),
                "calls_sent": sent["calls"],
                "hedged_calls": counts["hedged_calls"],
                "refused_429": sent["429"],
                "server_mean_latency_s": round(sent["latency_s"] / max(1, sent["calls"]), 3),
            }
        )
    median = sorted(runs, key=lambda run: run["efficiency"])[len(runs) // 2]
    ours_s, limit_s = median["ours_s"], median["limit_s"]
    result["ours_s"] = ours_s
    result["hedged_calls"] = median["hedged_calls"]
    result["rated_rows"] = min(run["rated_rows"] for run in runs)  # every run must rate every row
    result["server_mean_latency_s"] = median["server_mean_latency_s"]
    if args.faults:
        result.update(
            {
                "limit_clean_s": round(calls * MEAN_LATENCY / args.concurrency, 2),
                "faults": args.faults,
                "calls_sent": median["calls_sent"],
                "refused_429": median["refused_429"],
                "failed_rows": max(run["failed_rows"] for run in runs),
            }
        )
    result["ours_cpu_s"] = median["ours_cpu_s"]
    if len(runs) > 1:
        result["runs_efficiency"] = [run["efficiency"] for run in runs]
    if not args.skip_cookbook:
        baseline = Server("lognormal")  # its own fault-free server, the same latency distribution
        try:
            cookbook_s, out = run_cookbook(baseline.base_url, rows)
        finally:
            baseline.close()
        print(f"cookbook (distilabel Pipeline): {cookbook_s:.2f} s {out}", file=sys.stderr)
        result["cookbook_s"] = round(cookbook_s, 2)
        result["baseline_rated_rows"] = out["rated"]
    result["limit_s"] = round(limit_s, 2)
    result["efficiency"] = median["efficiency"]
    if "cookbook_s" in result:
        result["speedup"] = round(result["cookbook_s"] / ours_s, 2)
        # What any executor could reach against this cookbook run if it kept every slot busy (efficiency 1.0):
        # the speed-up goal is only reachable when this ceiling is above it.
        result["speedup_ceiling"] = round(result["cookbook_s"] / limit_s, 2)
    goal = 0.8 if args.faults else 0.85
    result["goal"] = (
        f"efficiency >= {goal}; rated_rows and baseline_rated_rows = rows ({args.rows}); both arms rate every row"
    )
    result["goal_met"] = bool(
        result["efficiency"] >= goal
        and result["rated_rows"] == args.rows
        and result.get("baseline_rated_rows") == args.rows
    )

    if args.memory:
        fast = Server("fast")
        try:
            extra_mb, took = run_memory(fast.base_url, args.memory_rows, args.concurrency)
        finally:
            fast.close()
        print(f"memory: {args.memory_rows} rows in {took:.1f} s, +{extra_mb:.0f} MB peak", file=sys.stderr)
        result.update(
            {"memory_rows": args.memory_rows, "memory_extra_mb": round(extra_mb, 1), "memory_s": round(took, 1)}
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
