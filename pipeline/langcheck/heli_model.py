"""heliport's language models in a compact, memory-mapped form, and the HeLI scoring that reads them.

Why: the ``heliport`` wheel decodes its 220-language model into Rust hash maps of about 860 MB, and has no option
to load less. The same models, published as plain text in heliport's source release (its sdist on PyPI), fit in
about 130 MB of flat arrays that are memory-mapped, so only the pages a check touches are resident.

Owns and promises:

- ``build(source, out_dir)``: reads heliport's sdist (``.tar.gz``) or an unpacked copy of it: every
  ``LanguageModels/<lang>.<order>.model`` file, ``confidenceThresholds``, and from heliport's own source the
  language list (the ``Lang`` enum, whose order breaks ties), the macrolanguage collapse, the CJK languages and the
  non-letter pattern, so nothing here is copied by hand. It writes, per n-gram order, sorted 64-bit keys (blake2b of
  the n-gram), offsets, language indices and ``7 - probability``; ``meta.json`` is written last, so a directory
  without it is an unfinished build (``HeliModel`` refuses it and ``ensure_built`` builds again).
- ``HeliModel.topk(text, k)``: heliport's ``identify_topk_with_score`` on these arrays: the same preprocessing
  (lowercase, the non-letter pattern, CJK runs split off), the word model first and then character 6- to 1-grams of
  `` word `` until one order knows the word, the penalty 7 for a language without the n-gram, the mean over words,
  the CJK rule, and macrolanguages collapsed. Scores are lower-is-better, as heliport's. ``bench/langcheck.py`` and
  ``tests/test_heli_model.py`` measure its agreement with the heliport wheel. Known differences: scores are summed
  in float64 (heliport: float32), and a text with a character outside every Unicode block (unassigned code points)
  is scored rather than answered ``zxx``.
- ``fetch_sdist(dest)``: downloads the pinned sdist from PyPI's simple index (``PIP_INDEX_URL`` if set) and checks
  its sha256. ``ensure_built()`` fetches (a failed download is tried once more) and builds unless a finished build
  is there; ``main()`` is the install step (``scripts/_venv.sh`` runs it; a failure is printed, not fatal: the app
  then uses the wheel); ``build_in_background()`` does it in a daemon thread (``app.py`` starts it on
  a Space; ``wait_for_build`` lets the first check wait for it rather than load the wheel). Nothing is downloaded at import or by a check.
- ``default_dir()``: ``DPO_STUDIO_HELI_DIR``, else ``~/.cache/dpo-studio/heliport-<version>-compact``.

Licence: heliport and its models are GPL-3.0; they are downloaded at install, not vendored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import ssl
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELIPORT_VERSION = "1.0.1"
SDIST_SHA256 = "9053fc4ae98f3120935627a415764683482dd1845e7df8df6fdfa0a6a3bd4761"  # heliport-1.0.1.tar.gz on PyPI
FORMAT = 1
ORDERS = ("word", "unigram", "bigram", "trigram", "quadgram", "quingram", "hexagram")
PENALTY = 7.0
MAX_NGRAM = 6
MAX_USED = 0.0000005  # heliport's cut-off: n-grams rarer than this share of a language's features are not used

# The Unicode blocks heliport counts as CJK (its ``utils.rs``: CJK unified ideographs and extensions A-I,
# compatibility, compatibility forms and ideographs (+ supplement), radicals supplement, strokes, symbols and
# punctuation). Block ranges are Unicode's.
_CJK_BLOCKS = (
    (0x2E80, 0x2EFF),
    (0x3000, 0x303F),
    (0x31C0, 0x31EF),
    (0x3300, 0x33FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0x2CEB0, 0x2EBEF),
    (0x2EBF0, 0x2EE5F),
    (0x2F800, 0x2FA1F),
    (0x30000, 0x3134F),
    (0x31350, 0x323AF),
)
_CJK_CLASS = "".join(f"\\U{lo:08X}-\\U{hi:08X}" for lo, hi in _CJK_BLOCKS)


class HeliModelError(RuntimeError):
    """The compact model is missing, unfinished or of another version: build it again."""


def default_dir() -> Path:
    if os.environ.get("DPO_STUDIO_HELI_DIR"):
        return Path(os.environ["DPO_STUDIO_HELI_DIR"])
    return Path.home() / ".cache" / "dpo-studio" / f"heliport-{HELIPORT_VERSION}-compact"


def gram_key(gram: str) -> int:
    """The 64-bit key of an n-gram (stable across processes, unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest(), "little")


# -- reading heliport's source ------------------------------------------------------------------------------------


def _source_files(source: Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the release, content) for the files the build reads, from a ``.tar.gz`` or a directory."""
    wanted = re.compile(
        r"(LanguageModels/[a-z]+\.[a-z]+\.model|LanguageModels/languagelist|LanguageModels/confidenceThresholds"
        r"|heliport-model/src/lang\.rs|src/utils\.rs)$"
    )
    if source.is_dir():
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source).as_posix()
            if path.is_file() and wanted.search(rel):
                yield rel, path.read_bytes()
        return
    with tarfile.open(source, "r:gz") as tar:
        for member in tar:
            if member.isfile() and wanted.search(member.name):
                f = tar.extractfile(member)
                if f is not None:
                    yield member.name, f.read()


@dataclass
class _Source:
    enum: list[str]  # the Lang enum, in its order
    model_langs: list[str]  # languagelist
    thresholds: dict[str, float]
    collapse: dict[str, str]
    cjk_langs: list[str]
    non_alpha: str
    models: dict[tuple[str, str], bytes]  # (lang, order) -> file


def _parse_lang_rs(text: str) -> tuple[list[str], dict[str, str], list[str]]:
    body = re.search(r"pub enum Lang \{(.*?)\n\}", text, re.S)
    collapse_fn = re.search(r"fn collapse\(&self\) -> Self \{(.*?)\n    \}", text, re.S)
    cjk_fn = re.search(r"fn is_cjk\(&self\) -> bool \{(.*?)\}", text, re.S)
    if not (body and collapse_fn and cjk_fn):
        raise HeliModelError("heliport's lang.rs has changed shape: update pipeline/langcheck/heli_model.py")
    enum = re.findall(r"^\s*([a-z]+),?\s*(?://.*)?$", body.group(1), re.M)
    collapse: dict[str, str] = {}
    for arm in re.finditer(r"((?:\|?\s*Lang::[a-z]+\s*)+)=>\s*Lang::([a-z]+)", collapse_fn.group(1)):
        for variant in re.findall(r"Lang::([a-z]+)", arm.group(1)):
            collapse[variant] = arm.group(2)
    cjk = re.findall(r"Lang::([a-z]+)", cjk_fn.group(1))
    return enum, collapse, cjk


def _read_source(source: Path) -> _Source:
    models: dict[tuple[str, str], bytes] = {}
    texts: dict[str, str] = {}
    for name, data in _source_files(source):
        m = re.search(r"LanguageModels/([a-z]+)\.([a-z]+)\.model$", name)
        if m:
            models[(m.group(1), m.group(2))] = data
        else:
            texts[name.rsplit("/", 1)[-1]] = data.decode("utf-8")
    missing = {"lang.rs", "utils.rs", "languagelist", "confidenceThresholds"} - texts.keys()
    if missing or not models:
        raise HeliModelError(f"{source} is not heliport's source release (missing: {sorted(missing) or 'models'})")
    enum, collapse, cjk = _parse_lang_rs(texts["lang.rs"])
    pattern = re.search(r'Regex::new\(r#"(.*?)"#\)', texts["utils.rs"], re.S)
    if not pattern:
        raise HeliModelError("heliport's utils.rs has no non-letter pattern: update heli_model.py")
    thresholds = {}
    for line in texts["confidenceThresholds"].splitlines():
        if line.strip():
            lang, value = line.split("\t")[:2]
            thresholds[lang] = float(value)
    model_langs = [lang for lang in texts["languagelist"].split() if lang in enum]
    return _Source(enum, model_langs, thresholds, collapse, cjk, pattern.group(1), models)


def _language_entries(data: bytes) -> tuple[list[str], np.ndarray]:
    """One ``<lang>.<order>.model`` file: its n-grams and ``-log10`` probabilities, as heliport's ``read_model``."""
    lines = data.decode("utf-8").split("\n")
    num_features = int(lines[0])
    kept: dict[str, int] = {}
    total = 0
    for line in lines[1:]:
        if not line:
            continue
        gram, _, amount_text = line.partition("\t")
        amount = int(amount_text)
        if amount / num_features <= MAX_USED:
            break  # the files are sorted by count: heliport stops at the first rare one
        kept[gram] = amount
        total += amount
    amounts = np.fromiter(kept.values(), dtype=np.float32, count=len(kept))
    probs = -np.log10(amounts / np.float32(total)) if total else amounts
    return list(kept), probs.astype(np.float32)


def build(source: Path, out_dir: Path) -> Path:
    """Build the compact model from heliport's source release into ``out_dir`` (replaced when complete)."""
    src = _read_source(Path(source))
    index = {lang: i for i, lang in enumerate(src.enum)}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".heli-build-", dir=out_dir.parent))
    try:
        for order in ORDERS:
            keys: list[np.ndarray] = []
            langs: list[np.ndarray] = []
            gains: list[np.ndarray] = []
            for lang in src.model_langs:
                data = src.models.get((lang, order))
                if data is None:
                    raise HeliModelError(f"heliport's source release lacks {lang}.{order}.model")
                grams, probs = _language_entries(data)
                keys.append(np.fromiter((gram_key(g) for g in grams), dtype=np.uint64, count=len(grams)))
                langs.append(np.full(len(grams), index[lang], dtype=np.uint8))
                gains.append((np.float32(PENALTY) - probs).astype(np.float32))
            k = np.concatenate(keys)
            lg = np.concatenate(langs)
            gn = np.concatenate(gains)
            sort = np.lexsort((lg, k))
            k, lg, gn = k[sort], lg[sort], gn[sort]
            unique, starts = np.unique(k, return_index=True)
            indptr = np.append(starts, len(k)).astype(np.uint32)
            np.save(tmp / f"{order}.keys.npy", unique)
            np.save(tmp / f"{order}.indptr.npy", indptr)
            np.save(tmp / f"{order}.langs.npy", lg)
            np.save(tmp / f"{order}.gains.npy", gn)
        meta = {
            "format": FORMAT,
            "heliport_version": HELIPORT_VERSION,
            "source": Path(source).name,
            "langs": src.enum,
            "model_langs": src.model_langs,
            "collapse": src.collapse,
            "cjk_langs": src.cjk_langs,
            "non_alpha": src.non_alpha,
            "thresholds": src.thresholds,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


# -- scoring ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Order:
    keys: np.ndarray
    indptr: np.ndarray
    langs: np.ndarray
    gains: np.ndarray

    def lookup(self, grams: list[str]) -> np.ndarray:
        """Index of each n-gram in this order's table, -1 where it has none."""
        if not grams or not len(self.keys):
            return np.full(len(grams), -1, dtype=np.int64)
        q = np.fromiter((gram_key(g) for g in grams), dtype=np.uint64, count=len(grams))
        pos = np.searchsorted(self.keys, q)
        pos[pos == len(self.keys)] = 0
        return np.where(self.keys[pos] == q, pos, -1)


class HeliModel:
    """The compact model, memory-mapped from ``directory`` (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        import regex

        directory = Path(directory)
        meta = read_meta(directory)
        self.directory = directory
        self.meta = meta
        self.langs: list[str] = meta["langs"]
        collapse = meta["collapse"]
        self._collapsed = [collapse.get(lang, lang) for lang in self.langs]
        cjk = set(meta["cjk_langs"])
        self._non_cjk = np.array([lang not in cjk for lang in self.langs])
        self._non_alpha = regex.compile(meta["non_alpha"])
        self._cjk_run = regex.compile(f"[{_CJK_CLASS}]+")
        self._orders = [
            _Order(*(np.load(directory / f"{order}.{part}.npy", mmap_mode="r").view(np.ndarray) for part in _PARTS))
            for order in ORDERS
        ]
        self._tiebreak = np.arange(len(self.langs))

    def scores(self, text: str) -> np.ndarray | None:
        """heliport's per-language scores (lower is better) for ``text``; ``None`` when it has no letters."""
        replaced = self._non_alpha.sub(" ", text.lower())
        length = len(replaced) - replaced.count(" ")
        cjk_chars = sum(len(run) for run in self._cjk_run.findall(replaced))
        if cjk_chars:
            replaced = self._cjk_run.sub(lambda m: f" {m.group(0)} ", replaced)
        words = replaced.split()
        if not words:
            return None
        found_idx: list[np.ndarray] = []
        found_weight: list[np.ndarray] = []
        orders: list[int] = []
        word_idx = self._orders[0].lookup(words)
        hit = word_idx >= 0
        scored = int(hit.sum())
        if scored:
            found_idx.append(word_idx[hit])
            found_weight.append(np.ones(scored))
            orders.append(0)
        remaining = [w for w, h in zip(words, hit, strict=True) if not h]
        for t in range(MAX_NGRAM, 0, -1):
            if not remaining:
                break
            grams: list[str] = []
            owner: list[int] = []
            for i, word in enumerate(remaining):
                spaced = f" {word} "
                for j in range(len(spaced) - t + 1):
                    grams.append(spaced[j : j + t])
                    owner.append(i)
            idx = self._orders[t].lookup(grams)
            hit = idx >= 0
            if not hit.any():
                continue
            owners = np.asarray(owner)[hit]
            per_word = np.bincount(owners, minlength=len(remaining))
            found_idx.append(idx[hit])
            found_weight.append(1.0 / per_word[owners])
            orders.append(t)
            scored += int((per_word > 0).sum())
            remaining = [w for w, n in zip(remaining, per_word, strict=True) if n == 0]
        gain = np.zeros(len(self.langs))
        for t, idx, weight in zip(orders, found_idx, found_weight, strict=True):
            table = self._orders[t]
            starts = table.indptr[idx].astype(np.int64)
            counts = table.indptr[idx + 1].astype(np.int64) - starts
            offsets = np.cumsum(counts) - counts
            pos = np.arange(int(counts.sum())) - np.repeat(offsets - starts, counts)
            gain += np.bincount(
                table.langs[pos], weights=table.gains[pos] * np.repeat(weight, counts), minlength=len(self.langs)
            )
        points = (PENALTY * scored - gain) / len(words)
        if length and cjk_chars / length > 0.5:
            points[self._non_cjk] = PENALTY + 1.0
        return points

    def topk(self, text: str, k: int) -> list[tuple[str, float]]:
        """The ``k`` best languages with their scores, macrolanguages collapsed (heliport's ``identify_topk``);
        ``[("zxx", 7.0)]`` for a text without letters."""
        points = self.scores(text)
        if points is None:
            return [("zxx", PENALTY)]
        out: list[tuple[str, float]] = []
        seen: set[str] = set()
        groups = 0  # heliport takes at most k groups of equal scores, so it may return fewer than k languages
        last = None
        for i in np.lexsort((self._tiebreak, points)):
            if points[i] != last:
                groups, last = groups + 1, points[i]
                if groups > k:
                    break
            lang = self._collapsed[i]
            if lang in seen:
                continue
            seen.add(lang)
            out.append((lang, float(points[i])))
            if len(out) >= k:
                break
        return out


_PARTS = ("keys", "indptr", "langs", "gains")


# -- the install step ---------------------------------------------------------------------------------------------


def fetch_sdist(dest_dir: Path) -> Path:
    """Download heliport's pinned source release from PyPI into ``dest_dir`` (checked against its sha256)."""
    import httpx

    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"heliport-{HELIPORT_VERSION}.tar.gz"
    if path.is_file() and _sha256(path) == SDIST_SHA256:
        return path
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    # the CA bundle pip is told to trust (PIP_CERT; a proxy's own CA), else httpx's default
    cafile = os.environ.get("PIP_CERT")
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cafile) if cafile else True
    client = httpx.Client(timeout=120, follow_redirects=True, verify=verify)
    with client:
        listing = client.get(f"{index}/heliport/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        name = f"heliport-{HELIPORT_VERSION}.tar.gz"
        entry = next((f for f in listing.json()["files"] if f["filename"] == name), None)  # PEP 691, as pip reads it
        if entry is None or entry["hashes"].get("sha256") != SDIST_SHA256:
            raise HeliModelError(f"{index} has no {name} with the sha256 pinned in heli_model.py")
        url = str(httpx.URL(f"{index}/heliport/").join(entry["url"]))
        tmp = path.with_suffix(".part")
        with client.stream("GET", url) as r, tmp.open("wb") as f:
            r.raise_for_status()
            for chunk in r.iter_bytes():
                f.write(chunk)
    if _sha256(tmp) != SDIST_SHA256:
        tmp.unlink()
        raise HeliModelError("the downloaded heliport sdist does not match its sha256; run the install again")
    tmp.rename(path)
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_meta(directory: Path) -> dict:
    """``meta.json`` of a finished build of this version; :class:`HeliModelError` otherwise."""
    meta_path = Path(directory) / "meta.json"
    if not meta_path.is_file():
        raise HeliModelError(f"no finished compact heliport model in {directory}")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT or meta.get("heliport_version") != HELIPORT_VERSION:
        raise HeliModelError(f"the compact heliport model in {directory} is of another version")
    return dict(meta)


def is_built(directory: Path | None = None) -> bool:
    try:
        read_meta(directory or default_dir())
    except HeliModelError:
        return False
    return True


def ensure_built(directory: Path | None = None) -> Path:
    """Build the compact model unless a finished one of this version is there (the install step)."""
    directory = directory or default_dir()
    if is_built(directory):
        return directory
    try:
        sdist = fetch_sdist(directory.parent / "heliport-sdist")
    except Exception:  # noqa: BLE001 - once more (a dropped connection, a download that fails its sha256)
        sdist = fetch_sdist(directory.parent / "heliport-sdist")
    return build(sdist, directory)


def build_in_background() -> threading.Thread:
    """``ensure_built`` in a daemon thread (a Space builds it after start-up; until then the wheel is used).
    A failure is printed, never raised: the detector keeps the wheel."""

    def run() -> None:
        try:
            ensure_built()
        except Exception as exc:  # noqa: BLE001 - offline or PyPI unreachable: the wheel's model stays in use
            print(f"compact heliport model not built ({type(exc).__name__}: {exc}); using the heliport wheel")

    global _building
    thread = threading.Thread(target=run, name="heli-model-build", daemon=True)
    _building = thread
    thread.start()
    return thread


_building: threading.Thread | None = None


def wait_for_build(timeout: float) -> None:
    """Wait (at most ``timeout`` s) for a build ``build_in_background`` started; return at once if none runs."""
    thread = _building
    if thread is not None and thread.is_alive():
        thread.join(timeout)


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else default_dir()
    if is_built(directory):
        print(f"[setup] compact heliport model ready in {directory}")
        return 0
    print(f"[setup] building the compact heliport model in {directory} (once; about a minute)")
    try:
        ensure_built(directory)
    except Exception as exc:  # noqa: BLE001 - the app works without it (the wheel's model): say why, go on
        print(f"[setup] compact heliport model NOT built ({type(exc).__name__}: {exc}); the app uses the heliport")
        print("[setup] wheel instead (about 860 MB of memory). Run the same command again when PyPI can be reached.")
    return 0
