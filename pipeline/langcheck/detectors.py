"""The interface every language detector of the language check implements, and the registry of detectors.

Owns and promises:

- ``Prediction``: what a detector says about a text: its own ``label``, the canonical ``key`` of that label
  (``codes.canonical``; ``None`` for "no language", e.g. heliport's ``und``/``zxx``) and a 0-1 ``confidence``.
- ``Detector``: ``name`` (a short id used in the routing table), ``title`` (for people), ``offline`` (works
  without a download), ``version()``, ``keys()`` (the canonical keys it can recognise, known without loading the
  model), ``ready()``, ``predict(text)`` (loads the model on first use, except a Hub model, which only predicts
  once ``ready()``).
- ``offline_detectors()``: langid and heliport, in the order used to break ties (the lighter first);
  ``detector(name)``: one by name (``langid``, ``heliport``, ``glotlid``, ``openlid``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Prediction:
    label: str  # the detector's own label
    key: str | None  # canonical key (codes.canonical), None for "no language"
    confidence: float | None  # 0-1


@runtime_checkable
class Detector(Protocol):
    name: str
    title: str
    offline: bool

    def version(self) -> str: ...

    def keys(self) -> frozenset[str]: ...

    def ready(self) -> bool: ...

    def predict(self, text: str) -> Prediction: ...


def offline_detectors() -> list[Detector]:
    from pipeline.langcheck import heliport_detector, langid_detector

    return [langid_detector.DETECTOR, heliport_detector.DETECTOR]


def detector(name: str) -> Detector:
    """The detector called ``name``; a Hub model's detector is the process-wide one for that model."""
    for d in offline_detectors():
        if d.name == name:
            return d
    from pipeline.langcheck import fasttext_hub

    return fasttext_hub.hub_detector(name)
