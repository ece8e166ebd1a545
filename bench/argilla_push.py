"""Benchmark: sending raw results to Argilla with ``pipeline.argilla.push`` vs the recipe's plain SDK ``log``.

Starts the local Argilla stack of the tests (``tests/fixtures/argilla_stack.py``: argilla-server 2.8, Redis, osmem),
builds ``--rows`` raw rows (one in ten with three responses) and measures, in one run:

- ``baseline_s``: the plain SDK way: create a dataset with the same settings and ``dataset.records.log`` the very
  same records (fields, metadata, suggestions prepared outside the timer)
- ``ours_s``: ``argilla_io.push`` of the raw rows into another fresh dataset (plans the records: shuffle, mapping,
  metadata, suggestions; looks for ids already there; sends in batches)
- ``resend_s``: ``argilla_io.push`` of the same rows again (everything is already there: nothing is written)
- ``pull_s``: ``argilla_io.pull`` of the dataset (no answers yet: reads every record and its responses)

Prints one JSON line last with ``overhead = ours_s / baseline_s`` (goal <= 1.2: what push adds to the SDK's own cost) and
``resend_ratio = resend_s / ours_s`` (goal <= 0.3: a re-send only reads ids). Needs scripts/services.sh.
Usage: ``python bench/argilla_push.py [--rows 1000]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def raw_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        k = 3 if i % 10 == 0 else 2
        rows.append(
            {
                "id": f"row-{i:06d}",
                "prompt": f"Vraag nummer {i}: " + "lorem ipsum " * 20,
                "system_prompt": "",
                "target_language": "nld",
                "responses": [f"Antwoord {i}.{j} " + "dolor sit amet " * 25 for j in range(k)],
                "response_sources": ["human", "org/gen-a", "org/gen-b"][:k],
                "ratings": [(i + j) % 5 + 1 for j in range(k)],
                "rationales": [None] * k,
                "detected_languages": ["nld"] * k,
                "language_confidences": [0.9] * k,
                "language_match": [True] * k,
                "judge_model": "org/judge",
                "aspect": "overall-rating",
                "status": "ok",
                "error": "",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()

    import argilla as rg

    from pipeline import argilla as aio
    from tests.fixtures.argilla_stack import start_stack, stop_stack

    warnings.simplefilter("ignore")
    tmp = Path(tempfile.mkdtemp(prefix="bench-argilla-"))
    stack = start_stack(tmp)
    try:
        rows = raw_rows(args.rows)
        with aio.connect(stack.url, stack.api_key) as conn:
            # baseline: the plain SDK path with the very same payload, prepared outside the timer
            payload = aio.plan_records(rows).records
            t0 = time.perf_counter()
            settings = aio.build_settings(3, "guidelines", client=conn.client)
            ds = rg.Dataset(
                name="bench-baseline", workspace=stack.workspace, settings=settings, client=conn.client
            ).create()
            records = [
                rg.Record(
                    id=r.id,
                    fields=r.fields,
                    metadata=r.metadata,
                    suggestions=[
                        rg.Suggestion(q, v, agent=r.judge_model, type="model") for q, v in r.suggestions.items()
                    ],
                )
                for r in payload
            ]
            ds.records.log(records, batch_size=aio.BATCH_SIZE)
            baseline = time.perf_counter() - t0

            t0 = time.perf_counter()
            first = aio.push(conn, rows, "bench-ours", stack.workspace)
            ours = time.perf_counter() - t0
            assert first.added == args.rows

            t0 = time.perf_counter()
            again = aio.push(conn, rows, "bench-ours", stack.workspace)
            resend = time.perf_counter() - t0
            assert again.added == 0 and again.already_there == args.rows

            t0 = time.perf_counter()
            pulled = aio.pull(conn, "bench-ours", stack.workspace)
            pull = time.perf_counter() - t0
            assert pulled.progress["total"] == args.rows
    finally:
        stop_stack(stack)
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        json.dumps(
            {
                "bench": "argilla_push",
                "rows": args.rows,
                "baseline_s": round(baseline, 3),
                "ours_s": round(ours, 3),
                "overhead": round(ours / baseline, 3),
                "resend_s": round(resend, 3),
                "resend_ratio": round(resend / ours, 3),
                "pull_s": round(pull, 3),
                "records_per_s": round(args.rows / ours, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
