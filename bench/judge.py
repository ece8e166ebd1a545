"""Benchmark: the judge's parse rate with structured output vs the plain UltraFeedback text format, and its flip rate.

Starts the local llama.cpp server with SmolLM2-135M-Instruct itself (``tests/fixtures/llm_server.py``, as the tests
do; ``scripts/services.sh`` installs it), takes ``--rows`` rows of the bundled demo data (Dutch first, then other
languages to fill up) and judges each row's human answer against a second answer: the human answer of the next row
(a fluent but off-topic answer, so a judge that reads the texts has something to prefer). Three passes through
``pipeline.judge.judge_row`` (the code the pipeline runs), one after the other, on the same server:

- ``parse_rate``: ratings mode, structured output (JSON schema in ``response_format``), order random per row; a row
  counts only if it parsed AND every call really used structured output (a verdict read from a text reply after
  the server ignored the schema is not a structured success);
- ``parse_rate_text``: the same rows with the plain UltraFeedback text format (the baseline: what the app did before).

Both formats get the same tries: the app retries an unparseable structured reply once (another seed, twice the
token budget if the reply was cut off); the text pass gets the same second try here, by the same rule.
- ``flip_rate``: structured output, both orders; the share of rows parsed in both orders whose preferred answer
  changed when the answers swapped places (``flip_rows`` is its denominator).

``seconds_per_row`` is the structured pass's wall time per row. Prints one JSON line last.
Goals: ``parse_rate`` >= 0.95 and ``parse_rate`` > ``parse_rate_text``.
Usage: ``python bench/judge.py [--rows 40] [--language nld]``
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
sys.path.insert(0, str(ROOT))

from pipeline import judge  # noqa: E402
from pipeline.inference import AsyncChat, Backend, GenParams  # noqa: E402
from tests.fixtures.llm_server import START_TIMEOUT_S, find_gguf, start_llm_server, wait_ready  # noqa: E402

DEMO = ROOT / "pipeline" / "filter" / "demo_data" / "aya_demo.jsonl"


def demo_rows(n: int, language: str) -> list[dict]:
    rows = [json.loads(line) for line in DEMO.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = [r for r in rows if r["language_code"] == language]
    rows = (first + [r for r in rows if r["language_code"] != language])[: n + 1]
    return [
        {"id": f"bench-{i}", "prompt": row["inputs"], "texts": [row["targets"], rows[(i + 1) % len(rows)]["targets"]]}
        for i, row in enumerate(rows[:n])
    ]


def second_try(params: GenParams, cut_off: bool) -> GenParams:
    """The app's rule for its one retry of an unparseable structured reply (``pipeline.judge``): another seed, and
    twice the token budget if the first reply was cut off."""
    seed = None if params.seed is None else params.seed + 1
    return replace(params, seed=seed, max_new_tokens=params.max_new_tokens * (2 if cut_off else 1))


async def judge_pass(backend: Backend, rows: list[dict], *, order: str, structured: bool) -> tuple[list, float]:
    state = judge.StructuredState(enabled=structured)
    params = GenParams(max_new_tokens=judge.default_max_new_tokens(2), temperature=0.1, top_p=1.0, seed=0)
    verdicts = []
    started = time.perf_counter()
    async with AsyncChat(backend, None, timeout=300) as chat:
        cut_off = [False]

        async def call(b: Backend, messages: list[dict], p: GenParams):
            result = await chat(messages, p)
            cut_off[0] = result.finish_reason == "length"
            return result

        async def one(row: dict, p: GenParams):
            return await judge.judge_row(
                call,
                backend,
                p,
                prompt=row["prompt"],
                texts=row["texts"],
                row_id=row["id"],
                order=order,
                structured=state,
            )

        for row in rows:  # one at a time: the server has one slot
            verdict = await one(row, params)
            if not structured and not verdict.ok:  # the text format's second try (structured: inside judge_row)
                verdict = await one(row, second_try(params, cut_off[0]))
            verdicts.append(verdict)
    if structured and state.reason(backend):
        print(f"note: {state.notice(backend)}", file=sys.stderr)
    return verdicts, time.perf_counter() - started


def parse_rate(verdicts: list, *, structured: bool = False) -> float:
    """Share of rows that parsed; with ``structured``, only rows whose every call used structured output."""
    good = [v for v in verdicts if v.ok and (v.structured or not structured)]
    return len(good) / len(verdicts) if verdicts else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--language", default="nld", help="ISO 639-3 code of the rows taken first (default nld)")
    args = parser.parse_args()
    rows = demo_rows(args.rows, args.language)
    server = start_llm_server("smollm2-judge", find_gguf(), Path(tempfile.mkdtemp(prefix="bench-judge-")))
    try:
        wait_ready(server, time.monotonic() + START_TIMEOUT_S)
        backend = server.backend()
        structured, structured_s = asyncio.run(judge_pass(backend, rows, order="random", structured=True))
        text, text_s = asyncio.run(judge_pass(backend, rows, order="random", structured=False))
        both, both_s = asyncio.run(judge_pass(backend, rows, order="both", structured=True))
    finally:
        server.stop()
    flips = [v.inconsistent for v in both if v.ok]
    for v in structured + text:
        if not v.ok:
            print(f"unparseable ({'structured' if v.structured else 'text'}): {v.error[:160]!r}", file=sys.stderr)
    print(
        json.dumps(
            {
                "rows": len(rows),
                "language": args.language,
                "parse_rate": round(parse_rate(structured, structured=True), 3),
                "parse_rate_text": round(parse_rate(text), 3),
                "parse_rate_both_orders": round(parse_rate(both, structured=True), 3),
                "flip_rate": None if not flips else round(sum(map(bool, flips)) / len(flips), 3),
                "flip_rows": len(flips),
                "structured_used": all(v.structured for v in structured),
                "seconds_per_row": round(structured_s / len(rows), 2),
                "seconds_per_row_text": round(text_s / len(rows), 2),
                "seconds_per_row_both": round(both_s / len(rows), 2),
                "goal_met": parse_rate(structured, structured=True) >= 0.95
                and parse_rate(structured, structured=True) > parse_rate(text),
            }
        )
    )


if __name__ == "__main__":
    main()
