"""The language check: the one public facade the rest of the app calls ("is this answer in language X?").

Owns and promises:

- ``check(text, code)`` -> ``LanguageCheck(detected, confidence, match, detector, reason)`` for any Aya code (and
  any other ISO 639 / BCP 47 code). It never raises:
  1. Code (fenced, inline, code-like lines) is set aside; a text without letters gets ``match=None``, "no letters".
  2. The script check (``script.py``), for every language: a text in the wrong script is a mismatch
     (``match=False``) even where no detector knows the language; mixed scripts give ``match=None`` with each
     script's share.
  3. The detector the routing table (``routing.py``, measured) names for the code: langid, heliport, or the Hub
     fastText model (GlotLID by default; ``fasttext_hub.py``) when no offline detector knows the language. The Hub
     model is only started when such a language is checked; until it is ready, or when it cannot be had, the check
     says so in ``reason`` and stays at the script check (``match=None`` when the script is right).
  ``detected`` is an ISO 639-3 code (the target's own code on a match); ``detector`` names who decided
  (``langid``, ``heliport``, ``glotlid``, ``openlid``, ``script``); macrolanguages and variants count as the same
  language (``codes.canonical``: one mapping).
- ``coverage(code)`` -> ``Coverage``: which detector checks a language and its measured figures, for the UI, the
  CLI's ``--list-languages``, the export card and the generated distilabel script; ``describe(code)`` says it in a
  sentence. An unknown code gets a message naming the nearest Aya code.
- ``warm_up(code)`` loads what checking ``code`` needs (in the background with ``background=True``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from pipeline.langcheck import fasttext_hub, routing, script
from pipeline.langcheck.codes import (
    AYA_LANGUAGES,
    canonical,
    expected_scripts,
    language_name,
    nearest_aya_code,
    to_iso3,
)
from pipeline.langcheck.detectors import Detector
from pipeline.langcheck.registry import detector, offline_detectors

__all__ = [
    "AYA_LANGUAGES",
    "Coverage",
    "LanguageCheck",
    "canonical",
    "check",
    "check_many",
    "coverage",
    "coverage_table",
    "describe",
    "detect",
    "detector_spec",
    "is_supported",
    "language_name",
    "nearest_aya_code",
    "unsupported",
    "unsupported_names",
    "warm_up",
]

MAX_CHARS = 2000  # the check reads the first 2000 characters: plenty for a language, bounded cost


@dataclass(frozen=True)
class LanguageCheck:
    detected: str | None  # ISO 639-3 (the target's own code on a match); None if nothing was detected
    confidence: float | None  # 0-1, the detector's
    match: bool | None  # None: not judged (no letters, mixed scripts, no detector ready for the language)
    detector: str = ""  # who decided: "langid", "heliport", "glotlid", "openlid", "script"; "" when nobody
    reason: str = ""  # for people, when the verdict needs one


@dataclass(frozen=True)
class Coverage:
    code: str
    name: str
    level: str  # "offline" | "hub" | "script" | "unknown"
    detector: str  # "langid" | "heliport" | "glotlid" | "openlid" | "script" | ""
    label: str  # for people: "heliport", "GlotLID (download 1.6 GB on first use)", "script only"
    recall: float | None  # measured on the evaluation set (None: not measured)
    false_match: float | None
    samples: int
    scripts: tuple[str, ...]  # ISO 15924
    version: str  # detector version, for cards
    note: str  # e.g. why a Hub model is not used, or the nearest Aya code for an unknown code

    @property
    def checked(self) -> bool:
        """Whether a detector (not only the script check) judges this language."""
        return self.level in ("offline", "hub")


# ---------------------------------------------------------------------------------------------------------------
# Coverage
# ---------------------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _mean_scores() -> dict[str, float]:
    scores: dict[str, list[float]] = {}
    for r in routing.table().values():
        for det, fig in r.measured.items():
            scores.setdefault(det, []).append(fig.score)
    return {d: sum(v) / len(v) for d, v in scores.items()}


@lru_cache(maxsize=1024)
def _static_route(code: str) -> routing.Route | None:
    """The table's route, or for a code outside it, the rule applied to what the detectors know."""
    found = routing.route(code)
    if found is not None:
        return found
    key = canonical(code)
    if key is None:
        return None
    knows = [d.name for d in offline_detectors() if key in d.keys()]
    means = _mean_scores()
    best = max(knows, key=lambda d: (means.get(d, 0.0), -knows.index(d))) if knows else None
    hub_keys = set().union(*(fasttext_hub.hub_detector(m).keys() for m in fasttext_hub.HUB_MODELS))
    return routing.Route(code, best, None, "hub" if best is None and key in hub_keys else None, {})


def _hub_for(code: str) -> fasttext_hub.HubModelDetector | None:
    """The chosen Hub model's detector, when it knows ``code``'s language (None: no model chosen, or it does not)."""
    model = fasttext_hub.chosen_model()
    if model is None:
        return None
    hub = fasttext_hub.hub_detector(model.name)
    return hub if canonical(code) in hub.keys() else None


def coverage(code: str) -> Coverage:
    """Which detector checks ``code`` and how well (see ``Coverage``)."""
    code = (code or "").strip()
    name = language_name(code)
    scripts = tuple(sorted(expected_scripts(code)))
    r = _static_route(code)
    if r is None or not scripts:
        near = nearest_aya_code(code)
        note = f"unknown language code '{code}'" + (
            f"; the nearest Aya code is '{near}' ({AYA_LANGUAGES[near]})" if near else ""
        )
        return Coverage(code, name, "unknown", "", "not checked", None, None, 0, scripts, "", note)
    if r.offline:
        fig = r.figures
        det = detector(r.offline)
        return Coverage(
            code,
            name,
            "offline",
            det.name,
            det.title,
            fig.recall if fig else None,
            fig.false_match if fig else None,
            fig.n if fig else 0,
            scripts,
            det.version(),
            "",
        )
    hub = _hub_for(code) if r.hub else None
    if hub is not None:
        model = hub.model
        status = hub.status()
        if status.state != "failed":
            label = model.title if hub.ready() else f"{model.title} (download {model.size_label} on first use)"
            note = "" if hub.ready() or status.state == "idle" else status.message
            return Coverage(code, name, "hub", hub.name, label, None, None, 0, scripts, hub.version(), note)
        return Coverage(
            code, name, "script", "script", "script only", None, None, 0, scripts, "", f"{status.message}: script only"
        )
    return Coverage(code, name, "script", "script", "script only", None, None, 0, scripts, "", "")


def describe(code: str) -> str:
    """One sentence for people: which check ``code`` gets and how well it was measured."""
    cov = coverage(code)
    if cov.level == "unknown":
        return f"No language check: {cov.note}."
    scripts = " or ".join(script.script_name(s) for s in cov.scripts)
    if cov.level == "script":
        why = cov.note.removesuffix(": script only") if cov.note else f"no detector knows {cov.name}"
        return f"{cov.name}: script only ({why}) – answers not written in {scripts} are flagged."
    if cov.recall is not None:
        figures = f"measured recall {cov.recall:.0%} on {cov.samples} samples, false matches {cov.false_match:.1%}"
    else:
        figures = "recall not measured here"
    extra = f"; {cov.note}" if cov.note else ""
    route = routing.route(code)
    unchecked = route.figures.unchecked_scripts if route is not None and route.figures is not None else ()
    if unchecked:
        names = " or ".join(script.script_name(s) for s in unchecked)
        extra += f"; {cov.label} does not recognise it in {names} script, so such answers are not judged"
    return f"{cov.name}: checked by {cov.label} ({figures}) and the script check ({scripts}){extra}."


def coverage_table(codes: Iterable[str] | None = None) -> list[Coverage]:
    """``coverage`` for each code (default: all of Aya's), in order."""
    return [coverage(c) for c in (AYA_LANGUAGES if codes is None else codes)]


def is_supported(code: str) -> bool:
    """Whether a detector (offline, or the chosen Hub model) checks ``code`` beyond its script."""
    return coverage(code).checked


def unsupported(codes: Iterable[str] | None = None) -> list[str]:
    """The codes (default: all of Aya's) that only get the script check."""
    return sorted({c for c in (AYA_LANGUAGES if codes is None else codes) if c and not is_supported(c)})


def unsupported_names(codes: Iterable[str] | None = None) -> list[str]:
    """``unsupported`` as "Name (code)" for people."""
    return [f"{language_name(c)} ({c})" for c in unsupported(codes)]


@dataclass(frozen=True)
class DetectorSpec:
    """How a standalone script (the generated distilabel ``pipeline.py``) checks ``code`` with the same detector."""

    detector: str  # "langid" | "heliport" | "glotlid" | "openlid" | "script"
    labels: tuple[str, ...]  # the detector's labels that count as the language (macrolanguage members included)
    packages: str  # what to pip install for it
    hub_repo: str  # the Hub model's repo ("" for offline detectors)
    version: str


def detector_spec(code: str) -> DetectorSpec:
    """The detector the routing table picks for ``code`` (a Hub-routed code gets the chosen Hub model, even before
    it is downloaded here) and its labels for ``code``."""
    key = canonical(code)
    r = _static_route(code)
    if r is not None and key is not None and r.offline == "langid":
        from pipeline.langcheck import langid_detector

        labels = tuple(lbl for lbl in langid_detector.labels() if canonical(lbl) == key)
        return DetectorSpec("langid", labels, "langid", "", detector("langid").version())
    if r is not None and key is not None and r.offline == "heliport":
        from pipeline.langcheck import heliport_detector

        labels = tuple(lbl for lbl in heliport_detector.labels() if heliport_detector.label_key(lbl) == key)
        return DetectorSpec("heliport", labels, "heliport", "", detector("heliport").version())
    hub = _hub_for(code) if r is not None and r.hub else None
    if hub is not None and key is not None:
        model = hub.model
        published = fasttext_hub.published_labels().get(model.name, ())
        labels = tuple(lbl for lbl in published if fasttext_hub.label_key(lbl) == key)
        return DetectorSpec(model.name, labels, "fasttext-predict huggingface_hub", model.repo_id, model.repo_id)
    return DetectorSpec("script", (), "", "", "")


# ---------------------------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------------------------
def _active_detector(code: str) -> tuple[Detector | None, str]:
    """The detector to use now for ``code`` and, when there is none, why."""
    r = _static_route(code)
    if r is None:
        return None, ""
    if r.offline:
        det = detector(r.offline)
        return (det, "") if det.ready() else (None, f"{det.title} is not installed")
    hub = _hub_for(code) if r.hub else None
    if hub is not None:
        if hub.ready():
            return hub, ""
        hub.start()
        status = hub.status()
        return None, f"{status.message}; script check only until then" if status.state != "failed" else (
            f"{status.message}; script check only"
        )
    return None, f"no detector knows {language_name(code)}; script check only"


def check(text: str, target_code: str) -> LanguageCheck:
    """Is ``text`` in the language ``target_code``? See the module docstring. Never raises."""
    text = (text or "")[:MAX_CHARS]
    expected = expected_scripts(target_code)
    if not expected or _static_route(target_code) is None:
        return LanguageCheck(None, None, None, "", coverage(target_code).note)
    prose = script.strip_code(text)
    verdict = script.check_script(prose, expected)
    if verdict.status in ("no letters", "mixed"):
        return LanguageCheck(None, None, None, "script", verdict.reason)
    if verdict.status == "wrong":  # no detector asked: its guess for a script the language does not use is noise
        return LanguageCheck(None, None, False, "script", verdict.reason)
    det, why = _active_detector(target_code)
    if det is None:
        return LanguageCheck(None, None, None, "script", f"{verdict.reason}; {why}" if why else verdict.reason)
    r = _static_route(target_code)
    if r is not None and r.figures is not None and verdict.dominant in r.figures.unchecked_scripts:
        return LanguageCheck(
            None,
            None,
            None,
            "script",
            f"{det.title} does not recognise {language_name(target_code)} in {script.script_name(verdict.dominant or '')} "
            "script (measured); script check only",
        )
    try:
        pred = det.predict(prose)
    except Exception as exc:  # noqa: BLE001 - a detector failure is a missing verdict, never an error
        return LanguageCheck(None, None, None, "script", f"{det.title} failed ({type(exc).__name__})")
    if pred.key is None:
        return LanguageCheck(None, pred.confidence, None, det.name, f"{det.title} found no language in it")
    if pred.key == canonical(target_code):
        return LanguageCheck(target_code, pred.confidence, True, det.name)
    return LanguageCheck(
        to_iso3(pred.key), pred.confidence, False, det.name, f"{det.title} detected {language_name(to_iso3(pred.key))}"
    )


def check_many(texts: Sequence[str], target_code: str) -> list[LanguageCheck]:
    """``check`` for each text (same order)."""
    return [check(text, target_code) for text in texts]


def detect(text: str) -> tuple[str | None, float | None]:
    """(ISO 639-3 code, confidence) of ``text`` by langid over its 97 languages; ``(None, None)`` without letters."""
    text = script.strip_code((text or "")[:MAX_CHARS])
    if not any(ch.isalpha() for ch in text):
        return None, None
    pred = detector("langid").predict(text)
    return (to_iso3(pred.key) if pred.key else pred.label), pred.confidence


def warm_up(code: str | None = None, background: bool = False) -> None:
    """Load what checking ``code`` needs (langid always; heliport or the Hub model when ``code`` is routed to it)."""

    def load() -> None:
        from pipeline.langcheck import langid_detector

        langid_detector.DETECTOR.load()
        r = _static_route(code) if code else None
        if r is not None and r.offline == "heliport":
            from pipeline.langcheck import heliport_detector

            heliport_detector.DETECTOR.load()
        if r is not None and r.hub:
            _active_detector(code or "")

    if background:
        threading.Thread(target=load, name="langcheck-warm-up", daemon=True).start()
    else:
        load()
