"""Language detection for responses: the one module that uses ``langid``.

``check(text, target_code)`` answers "is this text in the target language?" for Aya's ISO 639-3 codes
(``nld``, ``arb``, ``plt``, ``zsm``, ``pes`` ...):

- ``LanguageCheck(detected, confidence, match)``: ``detected`` is an ISO 639-3 code (the target's own code when
  the text is in the target language), ``confidence`` langid's probability normalised over the candidate
  languages (0-1), ``match`` ``True``/``False``.
- Languages langid cannot recognise (Yoruba, Somali, Hausa, Igbo, Cebuano, ...) are **unsupported**: ``match`` is
  ``None`` (never a mismatch), and so for an empty text. ``is_supported`` / ``unsupported`` list them for the UI.
- Close languages that langid mixes up count as the same (Malay/Indonesian, Serbian/Croatian/Bosnian,
  Norwegian Bokmål/Nynorsk, Arabic varieties -> Arabic): a Moroccan-Arabic answer detected as "Arabic" matches.
- ``candidates`` restricts the languages considered (e.g. the target and English).

Speed: one classification takes well under 0.25 ms. We keep langid's model (loaded once per process, read-only,
thread-safe) but score it with a sparse pure-numpy path (only the features present in the text), so no BLAS call
(multithreaded OpenBLAS made langid's dense ``np.dot`` ~2.5 ms a call) and no global thread settings change.
The global ``langid`` module state is never touched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import langcodes
import numpy as np

MAX_CHARS = 2000  # detection reads the first 2000 characters: plenty for a language, bounded cost for long texts


@dataclass(frozen=True)
class LanguageCheck:
    detected: str | None  # ISO 639-3, None if nothing to detect
    confidence: float | None  # 0-1, normalised over the candidate languages
    match: bool | None  # None: target unsupported by the detector, or empty text


# Aya / ISO 639-3 codes whose langid equivalent langcodes cannot derive (or derives wrongly).
_OVERRIDES: dict[str, str | None] = {
    # Arabic varieties: langid knows one Arabic; a dialect answer is Arabic.
    **{
        code: "ar"
        for code in (
            "arb",
            "ary",
            "arz",
            "apc",
            "ajp",
            "ars",
            "acq",
            "aeb",
            "arq",
            "acm",
            "afb",
            "ayl",
            "apd",
            "abv",
            "ayp",
            "ara",
        )
    },
    "fil": "tl",
    "tgl": "tl",
    "yue": "zh",  # written Cantonese and Mandarin share the script; langid has one Chinese
    "cmn": "zh",
    "zho": "zh",
    "ckb": None,  # Central Kurdish (Arabic script): langid's "ku" is Kurmanji (Latin script)
    "hbs": "sr",
    "pbt": "ps",  # Southern Pashto
    "pst": "ps",
}
# Languages langid confuses with each other: a detection of any of them matches a target in the group.
_GROUPS: tuple[frozenset[str], ...] = (
    frozenset({"ms", "id"}),
    frozenset({"sr", "hr", "bs"}),
    frozenset({"no", "nb", "nn"}),
)

# Aya's languages (ISO 639-3 as in ``CohereForAI/aya_dataset``) with their names, for the UI's list of what the
# detector can and cannot check. Codes outside this list work too (mapped through langcodes).
AYA_LANGUAGES: dict[str, str] = {
    "afr": "Afrikaans",
    "amh": "Amharic",
    "arb": "Standard Arabic",
    "ary": "Moroccan Arabic",
    "arz": "Egyptian Arabic",
    "apc": "North Levantine Arabic",
    "ajp": "South Levantine Arabic",
    "ars": "Najdi Arabic",
    "acq": "Ta'izzi-Adeni Arabic",
    "aeb": "Tunisian Arabic",
    "arq": "Algerian Arabic",
    "azj": "North Azerbaijani",
    "bel": "Belarusian",
    "ben": "Bengali",
    "bjn": "Banjar",
    "bul": "Bulgarian",
    "cat": "Catalan",
    "ceb": "Cebuano",
    "ces": "Czech",
    "ckb": "Central Kurdish",
    "cym": "Welsh",
    "dan": "Danish",
    "deu": "German",
    "ell": "Greek",
    "eng": "English",
    "epo": "Esperanto",
    "est": "Estonian",
    "eus": "Basque",
    "fil": "Filipino",
    "fin": "Finnish",
    "fra": "French",
    "gla": "Scottish Gaelic",
    "gle": "Irish",
    "glg": "Galician",
    "guj": "Gujarati",
    "hat": "Haitian Creole",
    "hau": "Hausa",
    "heb": "Hebrew",
    "hin": "Hindi",
    "hun": "Hungarian",
    "hye": "Armenian",
    "ibo": "Igbo",
    "ind": "Indonesian",
    "isl": "Icelandic",
    "ita": "Italian",
    "jav": "Javanese",
    "jpn": "Japanese",
    "kan": "Kannada",
    "kat": "Georgian",
    "kaz": "Kazakh",
    "khm": "Khmer",
    "kir": "Kyrgyz",
    "kor": "Korean",
    "kur": "Kurdish",
    "lao": "Lao",
    "lit": "Lithuanian",
    "ltz": "Luxembourgish",
    "lvs": "Standard Latvian",
    "mal": "Malayalam",
    "mar": "Marathi",
    "mkd": "Macedonian",
    "mlt": "Maltese",
    "mni": "Manipuri",
    "mri": "Maori",
    "mya": "Burmese",
    "nij": "Ngaju",
    "nld": "Dutch",
    "nob": "Norwegian Bokmål",
    "npi": "Nepali",
    "nso": "Northern Sotho",
    "nya": "Nyanja",
    "pan": "Panjabi",
    "pbt": "Southern Pashto",
    "pes": "Iranian Persian",
    "plt": "Plateau Malagasy",
    "pol": "Polish",
    "por": "Portuguese",
    "ron": "Romanian",
    "rus": "Russian",
    "sin": "Sinhala",
    "slk": "Slovak",
    "slv": "Slovenian",
    "sna": "Shona",
    "snd": "Sindhi",
    "som": "Somali",
    "spa": "Spanish",
    "srp": "Serbian",
    "sun": "Sundanese",
    "swe": "Swedish",
    "swh": "Swahili",
    "tam": "Tamil",
    "tel": "Telugu",
    "tgk": "Tajik",
    "tha": "Thai",
    "tur": "Turkish",
    "twi": "Twi",
    "ukr": "Ukrainian",
    "urd": "Urdu",
    "uzn": "Northern Uzbek",
    "vie": "Vietnamese",
    "wol": "Wolof",
    "xho": "Xhosa",
    "yor": "Yoruba",
    "zho": "Chinese",
    "zsm": "Standard Malay",
    "zul": "Zulu",
}


# ---------------------------------------------------------------------------------------------------------------
# The model: langid's, loaded once, scored sparsely
# ---------------------------------------------------------------------------------------------------------------
class _Model:
    def __init__(self) -> None:
        from langid.langid import LanguageIdentifier, model  # our own instance; the global one stays untouched

        ident = LanguageIdentifier.from_modelstring(model, norm_probs=False)
        self.classes: list[str] = [str(c) for c in ident.nb_classes]
        self.index = {c: i for i, c in enumerate(self.classes)}
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

    def log_scores(self, text: str, columns: np.ndarray | None) -> np.ndarray:
        idx, counts = self.features(text)
        ptc = self.ptc[idx] if columns is None else self.ptc[np.ix_(idx, columns)]
        # Elementwise multiply and sum: no BLAS (BLAS thread start-up dominates such tiny products).
        scores = (ptc * counts[:, None]).sum(axis=0, dtype=np.float64)
        return scores + (self.pc if columns is None else self.pc[columns])


_MODEL: _Model | None = None
_MODEL_LOCK = threading.Lock()


def _model() -> _Model:
    global _MODEL
    if _MODEL is None:
        with _MODEL_LOCK:
            if _MODEL is None:
                _MODEL = _Model()
    return _MODEL


# ---------------------------------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------------------------------
def _langid_classes() -> frozenset[str]:
    return frozenset(_model().classes)


@lru_cache(maxsize=512)
def to_langid(code: str) -> str | None:
    """langid's code for an ISO 639-3 (or 639-1, or BCP 47) code, or ``None`` if langid cannot detect it."""
    code = (code or "").strip().lower().replace("_", "-")
    if not code:
        return None
    if code in _OVERRIDES:
        return _OVERRIDES[code]
    try:
        tag = langcodes.standardize_tag(code, macro=True)
    except (ValueError, langcodes.tag_parser.LanguageTagError):
        return None
    base = tag.split("-")[0]
    return base if base in _langid_classes() else None


def is_supported(code: str) -> bool:
    """Whether the detector can check ``code`` (an Aya ISO 639-3 code)."""
    return to_langid(code) is not None


def unsupported(codes: Iterable[str] | None = None) -> list[str]:
    """The codes (default: all of Aya's) the detector cannot check: their responses get ``match=None``."""
    return sorted({c for c in (AYA_LANGUAGES if codes is None else codes) if c and not is_supported(c)})


def unsupported_names(codes: Iterable[str] | None = None) -> list[str]:
    """``unsupported`` as "Name (code)" for people."""
    return [f"{AYA_LANGUAGES.get(c, c)} ({c})" for c in unsupported(codes)]


@lru_cache(maxsize=256)
def _accepted(langid_code: str) -> frozenset[str]:
    for group in _GROUPS:
        if langid_code in group:
            return group
    return frozenset({langid_code})


@lru_cache(maxsize=256)
def _alpha3(langid_code: str) -> str:
    try:
        return langcodes.Language.get(langid_code).to_alpha3()
    except Exception:  # noqa: BLE001 - fall back to langid's own code
        return langid_code


@lru_cache(maxsize=128)
def _columns(candidates: frozenset[str] | None) -> np.ndarray | None:
    if candidates is None:
        return None
    model = _model()
    cols = sorted(model.index[c] for c in candidates if c in model.index)
    return np.asarray(cols, dtype=np.intp)


def _candidate_set(candidates: Iterable[str] | None, target: str | None) -> frozenset[str] | None:
    """langid codes to consider (always including the target's), or None for all of langid's languages."""
    if candidates is None:
        return None
    out: set[str] = set()
    for code in candidates:
        mapped = to_langid(code) or (code if code in _langid_classes() else None)
        if mapped:
            out |= _accepted(mapped)
    if target:
        out |= _accepted(target)
    if len(out) < 2:
        raise ValueError("Give at least two detectable candidate languages (e.g. the target and 'eng').")
    return frozenset(out)


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


# ---------------------------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------------------------
def detect(text: str, candidates: Iterable[str] | None = None) -> tuple[str | None, float | None]:
    """(ISO 639-3 code, confidence) of ``text`` among ``candidates`` (ISO codes; default all 97 of langid's).
    ``(None, None)`` for a text without letters."""
    text = (text or "")[:MAX_CHARS]
    if not _has_letters(text):
        return None, None
    cand = _candidate_set(candidates, None)
    code, confidence = _classify(text, cand)
    return _alpha3(code), confidence


def _classify(text: str, candidates: frozenset[str] | None) -> tuple[str, float]:
    model = _model()
    columns = _columns(candidates)
    scores = model.log_scores(text, columns)
    best = int(np.argmax(scores))
    # softmax confidence of the best class (langid's norm_probs, computed stably)
    confidence = 1.0 / float(np.exp(scores - scores[best]).sum())
    cls = model.classes[best] if columns is None else model.classes[int(columns[best])]
    return cls, confidence


def check(text: str, target_code: str, candidates: Iterable[str] | None = None) -> LanguageCheck:
    """Is ``text`` in the language ``target_code`` (ISO 639-3, as in Aya)?

    ``match`` is ``None`` when the target is unsupported (see ``unsupported``) or the text has no letters;
    ``detected`` is then still given for a non-empty text when possible."""
    text = (text or "")[:MAX_CHARS]
    if not _has_letters(text):
        return LanguageCheck(None, None, None)
    target = to_langid(target_code)
    cand = _candidate_set(candidates, target)
    code, confidence = _classify(text, cand)
    if target is None:
        return LanguageCheck(_alpha3(code), confidence, None)
    if code in _accepted(target):
        return LanguageCheck(target_code, confidence, True)
    return LanguageCheck(_alpha3(code), confidence, False)


def check_many(texts: Sequence[str], target_code: str, candidates: Iterable[str] | None = None) -> list[LanguageCheck]:
    """``check`` for each text (same order)."""
    candidates = list(candidates) if candidates is not None else None
    return [check(text, target_code, candidates) for text in texts]


def language_name(code: str) -> str:
    """A readable name for an ISO code (Aya's list first), e.g. ``nld`` -> ``Dutch``."""
    if code in AYA_LANGUAGES:
        return AYA_LANGUAGES[code]
    return code


def warm_up() -> None:
    """Load the model now (about a second) rather than on the first check."""
    _model()
