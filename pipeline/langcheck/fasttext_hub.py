"""The fastText language-ID models on the Hub (GlotLID by default, OpenLID selectable): the one module that
downloads them and the one that uses a fastText reader (``fasttext-predict``).

Owns and promises:

- ``HUB_MODELS``: the models one can choose (``DPO_STUDIO_LID_MODEL=glotlid|openlid|off``; default ``glotlid``).
- ``hub_detector(name)``: the process-wide ``HubModelDetector`` for a model. Nothing is downloaded until
  ``start()`` (the language check calls it only when a chosen language is routed to the model); then, in a
  background thread: ``huggingface_hub.hf_hub_download`` into the Hub cache (no token: the models are public, and a
  user's token is never sent), a check of the file against the Hub's size and sha256 (when the Hub answers), and
  loading. ``status()`` says where it is (with download progress) in words for people.
- A corrupt or partial file is deleted and downloaded again once; if it still fails, or the Hub cannot be reached,
  the detector is ``failed`` with a reason, and the language check falls back (it never raises).
- Labels (``__label__eng_Latn``) are mapped to canonical keys with ``codes.canonical``. Before any download the
  labels come from ``hub_labels.json`` (each project's published label list).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.langcheck.codes import canonical
from pipeline.langcheck.detectors import Prediction

MODEL_ENV = "DPO_STUDIO_LID_MODEL"


@dataclass(frozen=True)
class HubModel:
    name: str  # id used in the routing table and the env variable
    title: str
    repo_id: str
    filename: str
    size_label: str  # for people, before the download (the Hub's size is used once known)
    licence: str


HUB_MODELS: dict[str, HubModel] = {
    "glotlid": HubModel("glotlid", "GlotLID", "cis-lmu/glotlid", "model.bin", "1.6 GB", "Apache-2.0"),
    "openlid": HubModel("openlid", "OpenLID", "laurievb/OpenLID", "model.bin", "about 1.2 GB", "GPL-3.0"),
}


def chosen_model() -> HubModel | None:
    """The Hub model chosen with ``DPO_STUDIO_LID_MODEL`` (default GlotLID); ``None`` when set to ``off``."""
    name = os.environ.get(MODEL_ENV, "glotlid").strip().lower() or "glotlid"
    return HUB_MODELS.get(name)


@lru_cache(maxsize=1)
def published_labels() -> dict[str, tuple[str, ...]]:
    """Each Hub model's labels as its project publishes them (``hub_labels.json``), known before any download."""
    data = json.loads(Path(__file__).with_name("hub_labels.json").read_text(encoding="utf-8"))
    return {name: tuple(data.get(name, ())) for name in HUB_MODELS}


def label_key(label: str) -> str | None:
    """Canonical key of a fastText label (``__label__eng_Latn`` -> ``en``; ``und_*``/``zxx_*`` -> None)."""
    base = label.removeprefix("__label__").split("_", 1)[0]
    if base in ("und", "zxx"):
        return None
    return canonical(base)


@dataclass(frozen=True)
class HubStatus:
    state: str  # "idle" | "downloading" | "loading" | "ready" | "failed"
    message: str  # for people
    progress: float | None = None  # 0-1 while downloading, when the size is known


class HubModelDetector:
    offline = False

    def __init__(self, model: HubModel) -> None:
        self.model = model
        self.name = model.name
        self.title = model.title
        self._state = "idle"
        self._message = f"{model.title} is downloaded on first use ({model.size_label})"
        self._size: int | None = None
        self._ft: Any = None
        self._path: Path | None = None
        self._revision: str | None = None  # the Hub commit of the file, once known
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the Detector interface ----------------------------------------------------------------------------------
    def version(self) -> str:
        return f"{self.model.repo_id}@{self._revision or 'main'}"

    def keys(self) -> frozenset[str]:
        return frozenset(k for k in (label_key(lbl) for lbl in published_labels().get(self.name, ())) if k)

    def ready(self) -> bool:
        return self._state == "ready"

    def predict(self, text: str) -> Prediction:
        if self._ft is None:
            raise RuntimeError(f"{self.title} is not loaded ({self._message})")
        labels, probs = self._ft.predict(" ".join(text.split()), k=1)
        if not labels:
            return Prediction("und", None, None)
        label = str(labels[0])
        return Prediction(label.removeprefix("__label__"), label_key(label), float(probs[0]))

    # -- download and load in the background ---------------------------------------------------------------------
    def start(self) -> None:
        """Start downloading and loading in the background (once; a failed model is not retried in this process)."""
        with self._lock:
            if self._thread is not None:
                return
            self._state = "downloading"
            self._message = f"downloading {self.title} ({self.model.size_label})"
            self._thread = threading.Thread(target=self._run, name=f"langcheck-{self.name}", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the model is ready or failed; True when ready."""
        self._done.wait(timeout)
        return self.ready()

    def status(self) -> HubStatus:
        if self._state == "downloading":
            got = self._downloaded_bytes()
            if self._size and got is not None:
                share = min(got / self._size, 1.0)
                return HubStatus(
                    "downloading", f"downloading {self.title}: {share:.0%} of {self._size / 1e9:.2f} GB", share
                )
        return HubStatus(self._state, self._message)

    def _downloaded_bytes(self) -> int | None:
        from huggingface_hub import constants

        folder = Path(constants.HF_HUB_CACHE) / f"models--{self.model.repo_id.replace('/', '--')}" / "blobs"
        try:
            return sum(p.stat().st_size for p in folder.glob("*.incomplete"))
        except OSError:
            return None

    def _finish(self, state: str, message: str) -> None:
        self._state, self._message = state, message
        self._done.set()

    def _run(self) -> None:
        try:
            self._download_and_load()
        except Exception as exc:  # noqa: BLE001 - a background load never takes the app down; the check falls back
            self._finish("failed", f"{self.title} could not be loaded ({type(exc).__name__}: {exc})")

    def _remote(self) -> tuple[int | None, str | None]:
        """(size, sha256) of the file on the Hub, or (None, None) when the Hub does not answer."""
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        try:
            meta = get_hf_file_metadata(hf_hub_url(self.model.repo_id, self.model.filename), token=False)
        except Exception:  # noqa: BLE001 - offline or unreachable: a cached file is used without the check
            return None, None
        self._revision = meta.commit_hash
        etag = (meta.etag or "").strip('"')
        return meta.size, (etag if len(etag) == 64 else None)

    def _download_and_load(self) -> None:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache

        size, sha256 = self._remote()
        self._size = size
        cached = None
        if size is None:  # the Hub does not answer: a cached copy, or nothing (no second round of retries)
            found = try_to_load_from_cache(self.model.repo_id, self.model.filename)
            if not isinstance(found, str):
                self._finish("failed", f"{self.title} could not be downloaded (the Hub cannot be reached)")
                return
            cached = Path(found)
        problem = ""
        for attempt in range(2):
            self._state = "downloading"
            try:
                path = (
                    cached
                    if cached is not None and attempt == 0
                    else Path(
                        hf_hub_download(
                            self.model.repo_id, self.model.filename, token=False, force_download=attempt > 0
                        )
                    )
                )
            except Exception as exc:  # noqa: BLE001 - unreachable Hub, offline, 404...
                reason = "the Hub cannot be reached" if size is None else f"{type(exc).__name__}: {exc}"
                self._finish("failed", f"{self.title} could not be downloaded ({reason})")
                return
            self._state, self._message = "loading", f"loading {self.title}"
            problem = _file_problem(path, size, sha256)
            if not problem:
                try:
                    self._ft = _load_fasttext(path)
                except (ValueError, RuntimeError, OSError, MemoryError) as exc:
                    problem = f"the file cannot be read ({exc})"
            if not problem:
                self._path = path
                self._finish("ready", f"{self.title} ready")
                return
            _delete_cached(path)
        self._finish("failed", f"{self.title}'s download is corrupt even after a retry ({problem}); it was deleted")


def _file_problem(path: Path, size: int | None, sha256: str | None) -> str:
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"{actual} bytes instead of {size}"
    if sha256 is not None:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            return "its sha256 does not match the Hub's"
    return ""


def _load_fasttext(path: Path) -> Any:
    import fasttext  # fasttext-predict: the reader only, wheels for Python 3.11, no numpy pin

    model = fasttext.load_model(str(path))
    model.predict("probe", k=1)  # a file that loads but cannot predict is as corrupt as one that does not load
    return model


def _delete_cached(path: Path) -> None:
    """Delete a cached file: the blob the snapshot link points to, and the link."""
    try:
        blob = path.resolve()
        blob.unlink(missing_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink(missing_ok=True)
    except OSError:
        pass


_DETECTORS: dict[str, HubModelDetector] = {}
_DETECTORS_LOCK = threading.Lock()


def hub_detector(name: str) -> HubModelDetector:
    """The process-wide detector of the Hub model ``name`` (``glotlid`` or ``openlid``)."""
    model = HUB_MODELS[name]
    with _DETECTORS_LOCK:
        if name not in _DETECTORS:
            _DETECTORS[name] = HubModelDetector(model)
        return _DETECTORS[name]


def reset() -> None:
    """Forget the loaded Hub models (tests use it to start from a fresh process state)."""
    with _DETECTORS_LOCK:
        _DETECTORS.clear()


def reader_version() -> str:
    try:
        return metadata.version("fasttext-predict")
    except metadata.PackageNotFoundError:
        return "not installed"
