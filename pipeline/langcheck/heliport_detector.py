"""The heliport detector: the one module that runs heliport's language models (HeLI-OTS, about 220 languages).

Owns and promises: one model per process, loaded on first use, thread-safe, from one of two engines:

- the compact model (``heli_model.py``: heliport's published models as memory-mapped arrays, about 130 MB on disk,
  only touched pages resident; built once by ``heli_model.main``, the install step of ``scripts/app`` and
  ``scripts/test``, and in the background on a Space, which a first check waits for). Its verdicts are heliport's
  (measured: same top label on every sample of the evaluation set, ``bench/langcheck.py``);
- else the ``heliport`` wheel's ``Identifier`` (about 4 s and about 860 MB of memory to load).

Labels (``msa``, ``hbs``, ``cmn``...) are mapped to canonical keys with ``codes.canonical``; ``und``/``zxx`` are "no
language". The label list is read from the compact model's metadata or the wheel's threshold file, so routing and
coverage never load a model. Licence: heliport and its models are GPL-3.0 (downloaded at install, not vendored).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib import metadata, resources

from pipeline.langcheck import heli_model
from pipeline.langcheck.codes import canonical
from pipeline.langcheck.detectors import Prediction

_NO_LANGUAGE = frozenset({"und", "zxx", "undhtml"})
BUILD_WAIT_S = 180.0  # a first check during a Space's background build waits for it (about 40 s) before the wheel


@lru_cache(maxsize=512)
def label_key(label: str) -> str | None:
    """Canonical key of a heliport label (``msaind`` -> ``ms``, ``hbssrp`` -> ``sh``, ``und`` -> None)."""
    if label in _NO_LANGUAGE:
        return None
    return canonical(label[:3])


@lru_cache(maxsize=1)
def labels() -> tuple[str, ...]:
    """heliport's labels, from the compact model's metadata or the wheel's package data (no model load). Empty if
    neither is there."""
    try:
        return tuple(heli_model.read_meta(heli_model.default_dir())["thresholds"])
    except (heli_model.HeliModelError, OSError, ValueError, KeyError):
        pass
    try:
        text = resources.files("heliport").joinpath("confidenceThresholds").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return ()
    return tuple(line.split("\t", 1)[0] for line in text.splitlines() if line.strip())


class HeliportDetector:
    name = "heliport"
    title = "heliport"
    offline = True

    def __init__(self) -> None:
        self._topk: Callable[[str, int], list[tuple[str, float]]] | None = None
        self._engine = ""
        self._lock = threading.Lock()

    def version(self) -> str:
        engine = self._engine or ("compact model" if heli_model.is_built() else "")
        if engine == "compact model":
            return f"{heli_model.HELIPORT_VERSION} (compact model)"
        try:
            return metadata.version("heliport")
        except metadata.PackageNotFoundError:
            return "not installed"

    def engine(self) -> str:
        """``compact model`` or ``heliport wheel`` once loaded; ``""`` before."""
        return self._engine

    def keys(self) -> frozenset[str]:
        return frozenset(k for k in (label_key(label) for label in labels()) if k)

    def ready(self) -> bool:
        return bool(labels())

    def loaded(self) -> bool:
        return self._topk is not None

    def load(self) -> Callable[[str, int], list[tuple[str, float]]]:
        if self._topk is None:
            with self._lock:
                if self._topk is None:
                    heli_model.wait_for_build(BUILD_WAIT_S)
                    try:
                        model = heli_model.HeliModel(heli_model.default_dir())
                        self._engine, self._topk = "compact model", model.topk
                    except heli_model.HeliModelError:
                        import heliport

                        ident = heliport.Identifier()
                        self._engine, self._topk = "heliport wheel", ident.identify_topk_with_score
        return self._topk

    def predict(self, text: str) -> Prediction:
        top = self.load()(text.replace("\n", " "), 2)
        if not top:
            return Prediction("und", None, None)
        label, score = top[0]
        # HeLI scores are mean negative log-probabilities (lower is better): the margin to the runner-up is
        # HeLI-OTS's own confidence; squashed to 0-1 for display.
        margin = (top[1][1] - score) if len(top) > 1 else 10.0
        return Prediction(label, label_key(label), round(1.0 - math.exp(-max(margin, 0.0)), 4))


DETECTOR = HeliportDetector()
