"""Benchmark: the recipe's ``Dataset.filter(lambda x: x["language"] == L)`` vs DPO Studio's filter path.

Builds an Aya-shaped table (202,362 rows, 71 languages with a skewed distribution, mean prompt ~224 characters,
mean response ~352), then, in one run and for the same languages (the largest, a few mid-sized and the smallest):

- ``baseline_s``: mean seconds per language of ``datasets.Dataset.filter(lambda x: x["language"] == L)``
- ``ours_s``: mean seconds per language of the app's filter path with its default filters
  (``pipeline.filter.filtered.apply_filters``: resolve the language, slice, drop duplicate prompts) on the loaded source
- ``ours_all_filters_s``: the same with every filter set (annotation type, min/max lengths, dedup)
- ``table_s``: seconds to build the language table (language, code, rows, mean lengths) from the source
- ``load_s``: one-off seconds to normalise the raw table into the shared source (once per process)
- ``rss_mb``: peak resident memory of the whole run

Prints one JSON line last. Goals: speedup >= 50, ours_s <= 0.02, table_s <= 0.5, rss_mb <= 1500.
Usage: ``python bench/filter.py [--rows 202362] [--languages 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import numpy as np
import pyarrow as pa

# 71 language codes (ISO 639-3), as many as Aya has
CODES = (
    "eng fra spa por deu nld ita rus ukr pol ces slk slv hrv srp bul ron hun fin est lit lav ell tur arb ary arz "
    "apc pes heb hin ben pan guj mar tel tam kan mal sin nep urd jpn kor zho vie tha ind zsm fil jav sun "
    "swh yor ibo hau amh som zul xho sna nya mlt gle cym eus glg kir kaz uzb plt"
).split()


def make_table(n: int, seed: int = 0) -> pa.Table:
    import langcodes

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(CODES) + 1) ** 1.1  # Zipf-like skew
    weights /= weights.sum()
    lang_idx = rng.choice(len(CODES), size=n, p=weights)
    names = [langcodes.get(c).display_name() for c in CODES]
    base = "".join(chr(c) for c in rng.integers(0x61, 0x7B, size=20_000)).replace("q", " ")
    base = base + base

    def texts(mean: float) -> list[str]:
        lengths = np.clip(rng.gamma(2.0, mean / 2.0, size=n).astype(int), 1, 9_000)
        starts = rng.integers(0, 20_000, size=n)
        return [base[s : s + ln] for s, ln in zip(starts.tolist(), lengths.tolist())]

    prompts, responses = texts(224), texts(352)
    dup = rng.random(n) < 0.03  # ~3% re-annotated prompts, as in Aya
    for i in np.flatnonzero(dup).tolist():
        prompts[i] = prompts[i - 1] if i else prompts[i]
    return pa.table(
        {
            "inputs": prompts,
            "targets": responses,
            "language": pa.array([names[i] for i in lang_idx.tolist()], pa.string()),
            "language_code": pa.array([CODES[i] for i in lang_idx.tolist()], pa.string()),
            "annotation_type": pa.array(np.where(dup, "re-annotations", "original-annotations").tolist()),
            "user_id": pa.array([f"{i % 4000:064x}" for i in range(n)]),
        }
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=202_362)
    ap.add_argument("--languages", type=int, default=5, help="how many languages to time")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats of our path per language (median)")
    args = ap.parse_args(argv)

    import datasets

    from pipeline.filter import filtered, sources

    datasets.disable_progress_bars()
    raw = make_table(args.rows)
    counts = {c: 0 for c in CODES}
    for c in raw["language_code"].to_pylist():
        counts[c] += 1
    by_size = sorted(counts, key=counts.get, reverse=True)
    k = max(2, min(args.languages, len(by_size)))
    picks = [by_size[round(i * (len(by_size) - 1) / (k - 1))] for i in range(k)]
    names = {c: n for c, n in zip(raw["language_code"].to_pylist(), raw["language"].to_pylist())}
    pl = raw.column("inputs")
    print(
        f"table: {raw.num_rows} rows, {len(counts)} languages, mean prompt "
        f"{np.mean([len(s) for s in pl.to_pylist()]):.0f} chars; timing {', '.join(picks)} "
        f"({', '.join(str(counts[c]) for c in picks)} rows)",
        file=sys.stderr,
    )

    # the recipe's way
    ds = datasets.Dataset(raw)
    baseline = []
    for code in picks:
        name = names[code]
        t0 = time.perf_counter()
        out = ds.filter(lambda x, name=name: x["language"] == name)
        baseline.append(time.perf_counter() - t0)
        assert out.num_rows == counts[code]

    # ours: the shared source is built once per process, then every filter change runs apply_filters
    t0 = time.perf_counter()
    table, dropped = sources.normalize(raw, sources.SourceSpec.aya())
    info = sources.SourceInfo(sources.AYA_ID, "train", None, "apache-2.0", False, table.num_rows)
    source = sources._build_source(table, info)
    load_s = time.perf_counter() - t0

    ours = []
    for code in picks:
        spec = filtered.FilterSpec(language=names[code])  # the app's defaults (drop duplicate prompts on)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = filtered.apply_filters(source, spec)
            times.append(time.perf_counter() - t0)
        ours.append(statistics.median(times))
        assert 0 < out.num_rows <= counts[code]
        plain = filtered.apply_filters(source, filtered.FilterSpec(language=code, dedup=False))
        assert plain.num_rows == counts[code], (code, plain.num_rows, counts[code])

    # the same languages with every filter set (length limits + annotation type + dedup): a real copy of the rows
    ours_all = []
    for code in picks:
        spec = filtered.FilterSpec(
            language=code,
            annotation_types=("original-annotations",),
            min_prompt_chars=20,
            max_prompt_chars=2000,
            min_response_chars=20,
            max_response_chars=4000,
        )
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            filtered.apply_filters(source, spec)
            times.append(time.perf_counter() - t0)
        ours_all.append(statistics.median(times))

    t0 = time.perf_counter()
    lt = sources.language_table(source.table)
    table_s = time.perf_counter() - t0
    assert lt.num_rows == len(CODES)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    baseline_s, ours_s = statistics.mean(baseline), statistics.mean(ours)
    result = {
        "bench": "filter",
        "rows": raw.num_rows,
        "languages": len(CODES),
        "timed_languages": picks,
        "baseline_s": round(baseline_s, 4),
        "ours_s": round(ours_s, 5),
        "ours_max_s": round(max(ours), 5),
        "speedup": round(baseline_s / ours_s, 1),
        "ours_all_filters_s": round(statistics.mean(ours_all), 5),
        "speedup_all_filters": round(baseline_s / statistics.mean(ours_all), 1),
        "table_s": round(table_s, 4),
        "load_s": round(load_s, 3),
        "rss_mb": round(rss_mb, 1),
        "goals_met": bool(baseline_s / ours_s >= 50 and ours_s <= 0.02 and table_s <= 0.5 and rss_mb <= 1500),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
