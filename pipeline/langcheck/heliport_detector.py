"""The heliport detector: the one module that uses ``heliport`` (HeLI-OTS in Rust, about 220 languages; the
model ships inside the wheel, so it works offline).

Owns and promises: one ``heliport.Identifier`` per process, loaded on first use (about 4 s, about 850 MB of memory:
it is only loaded when a chosen language is routed to it), thread-safe; labels (``msa``, ``hbs``, ``msaind``,
``cmn``...) mapped to canonical keys with ``codes.canonical``; ``und``/``zxx`` are "no language". Its label list is
read from the package's threshold file, so routing and coverage never load the model. Licence: GPL-3.0 (a
dependency, not vendored).
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from importlib import metadata, resources
from typing import Any

from pipeline.langcheck.codes import canonical
from pipeline.langcheck.detectors import Prediction

_NO_LANGUAGE = frozenset({"und", "zxx", "undhtml"})


@lru_cache(maxsize=512)
def label_key(label: str) -> str | None:
    """Canonical key of a heliport label (``msaind`` -> ``ms``, ``hbssrp`` -> ``sh``, ``und`` -> None)."""
    if label in _NO_LANGUAGE:
        return None
    return canonical(label[:3])


@lru_cache(maxsize=1)
def labels() -> tuple[str, ...]:
    """heliport's labels, read from its package data (no model load). Empty if heliport is not installed."""
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
        self._ident: Any = None
        self._lock = threading.Lock()

    def version(self) -> str:
        try:
            return metadata.version("heliport")
        except metadata.PackageNotFoundError:
            return "not installed"

    def keys(self) -> frozenset[str]:
        return frozenset(k for k in (label_key(label) for label in labels()) if k)

    def ready(self) -> bool:
        return bool(labels())

    def loaded(self) -> bool:
        return self._ident is not None

    def load(self) -> Any:
        if self._ident is None:
            with self._lock:
                if self._ident is None:
                    import heliport

                    self._ident = heliport.Identifier()
        return self._ident

    def predict(self, text: str) -> Prediction:
        top = self.load().identify_topk_with_score(text.replace("\n", " "), 2)
        if not top:
            return Prediction("und", None, None)
        label, score = top[0]
        # HeLI scores are mean negative log-probabilities (lower is better): the margin to the runner-up is
        # HeLI-OTS's own confidence; squashed to 0-1 for display.
        margin = (top[1][1] - score) if len(top) > 1 else 10.0
        return Prediction(label, label_key(label), round(1.0 - math.exp(-max(margin, 0.0)), 4))


DETECTOR = HeliportDetector()
