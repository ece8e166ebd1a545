"""Benchmark: a run against a provider's rate limit: the adaptive concurrency controller off, off with the same wait
budget as on, and on.

    python bench/ratelimit.py                  # 400 rows, concurrency 64, token bucket 20 calls/s, 0.3 s latency
    python bench/ratelimit.py --rate 50        # the other rate the goal is checked at

A loopback OpenAI-compatible server (``tests/fixtures/faulty_server.FakeLLMServer`` in its own process) enforces a
token bucket of ``--rate`` R calls/s (bucket size R) per API key and answers every call beyond it at once with 429
and ``Retry-After`` (``--retry-after`` seconds, 1 by default, as the provider measured in the issue did); answered
calls take 0.3 s. The app's executor (``pipeline.generate.run_async``: real HTTP client, retries, checkpoint,
language check) runs 400 rows (one generation + one judge call each) at concurrency 64, three times in one
process:

- ``off``: ``pipeline.inference.ratecontrol.set_adaptive(False)``, the behaviour before the controller: a fixed
  limit of 64, every 429 one more attempt (5 at most, then the row fails), each call backing off on its own.
- ``off_same_wait``: the controller off (a fixed limit of 64, no pause of the key, no cut), but a 429 is a wait
  within the same wait budget as ``on`` (``RetryPolicy(throttle_wait=True)``, the run's longest wait of 600 s),
  each call waiting its own Retry-After. Against ``off`` it shows what the wait budget alone does; against ``on``
  what the controller adds.
- ``on``: the controller (slow start from 4 calls, AIMD per key, the key paused until Retry-After, a 429 a wait
  and not an attempt).

Each mode uses its own API key, so the server's buckets and the app's controllers start fresh. For each mode:
``failed_rows`` (rows not ok at the end), ``refused_share`` (429s ÷ all calls the server saw), ``goodput``
(answered calls per second of the run ÷ R), ``calls``, ``seconds`` and the run's ``state``, all from the server's
counts. Goals with the controller on, at R = 20 and R = 50: ``failed_rows`` == 0, ``refused_share`` <= 0.05,
``goodput`` >= 0.9 (``goals_met``). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds scripts named like packages (pipeline.py, langid.py): never import from it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

LATENCY = 0.3
_ANSWER = "Dit is een antwoord in het Nederlands, met een voorbeeld en een korte samenvatting. " * 3


def _responder(request: dict) -> str:
    import re

    from tests.pipeline_helpers import JUDGE_MARK, judge_reply

    messages = request["messages"]
    if messages[0]["role"] == "system" and messages[0]["content"].startswith(JUDGE_MARK):
        annotation = messages[-1]["content"].split("## Annotation")[-1]
        n = len(re.findall(r"^<text \d+>", annotation, flags=re.M))
        return judge_reply(n, [min(5, 3 + i) for i in range(n)])
    return _ANSWER


def serve(rate: float, retry_after: float | None) -> None:
    """The server process: prints its base URL; on a "stats" line prints its counts; stops when stdin closes."""
    from tests.fixtures.faulty_server import FakeLLMServer

    srv = FakeLLMServer(
        responder=_responder, latency=LATENCY, rate_limit=rate, rate_retry_after=retry_after, record=False
    ).start()
    print(srv.base_url, flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps({"calls": srv.chat_requests, "refused": srv.rate_limited}), flush=True)
            srv.reset()
    srv.stop()


def Server(rate: float, retry_after: float | None):
    """:func:`serve` in a child process."""
    from tests.fixtures.faulty_server import ServerProcess

    args = [sys.executable, __file__, "--serve", "--rate", str(rate), "--retry-after", str(retry_after or 0)]
    return ServerProcess(args, cwd=str(ROOT))


def make_rows(n: int):
    import pyarrow as pa

    from pipeline.core import schema

    rows = []
    for i in range(n):
        prompt = f"Vraag {i}: hoe bak je brood, en waarom moet het deeg rijzen?"
        response = f"Antwoord {i}: " + _ANSWER
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


MODES = ("off", "off_same_wait", "on")


def run_mode(server: Server, rows, concurrency: int, rate: float, mode: str) -> dict:
    from pipeline.generate import Checkpoint, RunSettings, run_async
    from pipeline.inference import DEFAULT_RETRY, Backend, ratecontrol

    ratecontrol.set_adaptive(mode == "on")
    # the run's default policy (as pipeline.generate uses it); the same wait budget (the run's max_wait_s) in all
    # modes: "off" spends a 429 as an attempt, the other two as a wait
    retry = replace(DEFAULT_RETRY, base_backoff_s=0.5, max_backoff_s=8.0, throttle_wait=mode != "off")
    backend = Backend("openai", "bench-model", server.base_url)
    settings = RunSettings(
        generators=(backend,),
        judge=backend,
        concurrency=concurrency,
        judge_structured=False,
        max_new_tokens=256,
        judge_max_new_tokens=512,
    )
    key = f"bench-key-{mode}"  # fresh bucket on the server, fresh controller in the app
    server.stats()  # reset the server's counts
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        handle = asyncio.run(
            run_async(rows, settings, Checkpoint(Path(tmp) / "c.jsonl"), api_keys={server.base_url: key}, retry=retry)
        )
        seconds = time.perf_counter() - started
    counts = server.stats()
    snap = handle.snapshot()
    answered = counts["calls"] - counts["refused"]
    return {
        "state": snap.state,
        "failed_rows": rows.num_rows - snap.counts.get("ok", 0),
        "refused_share": round(counts["refused"] / max(1, counts["calls"]), 3),
        "goodput": round(answered / seconds / rate, 3),
        "calls": counts["calls"],
        "refused": counts["refused"],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=20.0, help="the server's limit, calls per second (R)")
    parser.add_argument(
        "--retry-after",
        type=float,
        default=1.0,
        help="Retry-After of a 429, seconds (0: the time until the bucket's next token)",
    )
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--only-on", action="store_true", help="skip the runs with the controller off")
    args = parser.parse_args()
    retry_after = args.retry_after if args.retry_after > 0 else None
    if args.serve:
        serve(args.rate, retry_after)
        return

    import logging

    logging.basicConfig(level=logging.ERROR)
    from pipeline import judge, langcheck

    judge.judge_messages("x", ["a", "b"])  # warm: every mode starts from a warm process
    langcheck.warm_up("nld")  # the rows' language: its detector loads here, not inside the first mode's run
    rows = make_rows(args.rows)
    result: dict = {
        "rows": args.rows,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "retry_after": args.retry_after,
        "latency": LATENCY,
    }
    server = Server(args.rate, retry_after)
    try:
        for mode in ("on",) if args.only_on else MODES:
            result[mode] = run_mode(server, rows, args.concurrency, args.rate, mode)
            print(f"controller {mode}: {result[mode]}", file=sys.stderr)
    finally:
        server.close()
    on = result["on"]
    result["goals_met"] = on["failed_rows"] == 0 and on["refused_share"] <= 0.05 and on["goodput"] >= 0.9
    result["goal"] = "on: failed_rows == 0, refused_share <= 0.05, goodput >= 0.9"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
