"""The language check's detectors by name.

Owns and promises: ``offline_detectors()``: langid and heliport, in the order used to break ties (the lighter
first); ``detector(name)``: one by name (``langid``, ``heliport``, ``glotlid``, ``openlid``).
"""

from __future__ import annotations

from pipeline.langcheck import fasttext_hub, heliport_detector, langid_detector
from pipeline.langcheck.detectors import Detector


def offline_detectors() -> list[Detector]:
    return [langid_detector.DETECTOR, heliport_detector.DETECTOR]


def detector(name: str) -> Detector:
    """The detector called ``name``; a Hub model's detector is the process-wide one for that model."""
    for d in offline_detectors():
        if d.name == name:
            return d
    return fasttext_hub.hub_detector(name)
