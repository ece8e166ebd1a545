"""The interface every language detector of the language check implements.

Owns and promises:

- ``Prediction``: what a detector says about a text: its own ``label``, the canonical ``key`` of that label
  (``codes.canonical``; ``None`` for "no language", e.g. heliport's ``und``/``zxx``) and a 0-1 ``confidence``.
- ``Detector``: ``name`` (a short id used in the routing table), ``title`` (for people), ``offline`` (works
  without a download), ``version()``, ``keys()`` (the canonical keys it can recognise, known without loading the
  model), ``ready()``, ``predict(text)`` (loads the model on first use, except a Hub model, which only predicts
  once ``ready()``).
(``registry.py`` lists the detectors.)
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
