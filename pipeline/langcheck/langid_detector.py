"""The langid detector: the one module that uses ``langid`` (97 languages, in the pip package).

Owns and promises: langid's model loaded once per process (read-only, thread-safe), scored with a sparse pure-numpy
path (only the features present in the text), so no BLAS call (multithreaded OpenBLAS made langid's dense
``np.dot`` ~2.5 ms a call) and no global thread settings change; a check takes about 0.1 ms. The global ``langid``
module state is never touched. Labels are mapped to canonical keys with ``codes.canonical``.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import metadata

import numpy as np

from pipeline.langcheck.codes import canonical
from pipeline.langcheck.detectors import Prediction


class _Model:
    def __init__(self) -> None:
        from langid.langid import LanguageIdentifier, model  # our own instance; the global one stays untouched

        ident = LanguageIdentifier.from_modelstring(model, norm_probs=False)
        self.classes: list[str] = [str(c) for c in ident.nb_classes]
        self.keys: list[str | None] = [canonical(c) for c in self.classes]
        self.ptc = np.ascontiguousarray(ident.nb_ptc, dtype=np.float32)  # (features, classes)
        self.pc = np.asarray(ident.nb_pc, dtype=np.float64)
        self.nextmove = ident.tk_nextmove.tolist()  # list indexing is the fastest in the byte loop
        outputs = ident.tk_output
        self.outputs: dict[int, np.ndarray] = {s: np.asarray(list(v), dtype=np.intp) for s, v in outputs.items()}

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(feature indices, counts) of ``text``: langid's byte n-gram automaton, kept sparse."""
        nextmove = self.nextmove
        visits: dict[int, int] = {}
        get = visits.get
        state = 0
        for byte in text.encode("utf-8"):
            state = nextmove[(state << 8) + byte]
            visits[state] = get(state, 0) + 1
        outputs = self.outputs
        idx_parts: list[np.ndarray] = []
        cnt_parts: list[int] = []
        for state, count in visits.items():
            out = outputs.get(state)
            if out is not None:
                idx_parts.append(out)
                cnt_parts.extend([count] * len(out))
        if not idx_parts:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.float32)
        return np.concatenate(idx_parts), np.asarray(cnt_parts, dtype=np.float32)

    def classify(self, text: str) -> tuple[int, float]:
        idx, counts = self.features(text)
        # Elementwise multiply and sum: no BLAS (BLAS thread start-up dominates such tiny products).
        scores = (self.ptc[idx] * counts[:, None]).sum(axis=0, dtype=np.float64) + self.pc
        best = int(np.argmax(scores))
        confidence = 1.0 / float(np.exp(scores - scores[best]).sum())  # langid's norm_probs, computed stably
        return best, confidence


_MODEL: _Model | None = None
_LOCK = threading.Lock()


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                _MODEL = _Model()
    return _MODEL


@lru_cache(maxsize=1)
def _keys() -> frozenset[str]:
    from langid.langid import LanguageIdentifier, model

    classes = LanguageIdentifier.from_modelstring(model).nb_classes
    return frozenset(k for k in (canonical(str(c)) for c in classes) if k)


def labels() -> tuple[str, ...]:
    """langid's labels (ISO 639-1 mostly)."""
    return tuple(_model().classes)


class LangidDetector:
    name = "langid"
    title = "langid"
    offline = True

    def version(self) -> str:
        return metadata.version("langid")

    def keys(self) -> frozenset[str]:
        return frozenset(k for k in _model().keys if k) if _MODEL is not None else _keys()

    def ready(self) -> bool:
        return True

    def load(self) -> None:
        _model()

    def predict(self, text: str) -> Prediction:
        model = _model()
        best, confidence = model.classify(text)
        return Prediction(model.classes[best], model.keys[best], confidence)


DETECTOR = LangidDetector()
