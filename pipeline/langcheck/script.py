"""The script check: which Unicode scripts a text is written in, against the scripts its language uses.

Owns and promises:

- ``letters_by_script(text)``: counts of letters per ISO 15924 script (digits, punctuation, emoji and combining
  marks are not letters). A letter's script comes from its Unicode character name (``unicodedata``, no model).
- ``strip_code(text)``: the text without fenced/inline code and lines that look like code, so a code answer is
  judged on its prose only (a code-only answer has no letters left).
- ``check_script(text, expected)``: a ``ScriptVerdict``: ``"ok"`` (at least 80% of the letters in an expected
  script), ``"wrong"`` (at most 20%: e.g. an Amharic answer in Latin letters), ``"mixed"`` (between, with each
  script's share), or ``"no letters"``. Reasons are written for people.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

OK_SHARE = 0.8  # at least this share of letters in an expected script: the script is right
WRONG_SHARE = 0.2  # at most this share: the script is wrong; in between: mixed

# First word(s) of Unicode character names -> ISO 15924 code (letters only; names that are not a script, such as
# "MODIFIER", fall back to "Zyyy", common).
_NAME_TO_SCRIPT: dict[str, str] = {
    "LATIN": "Latn",
    "CYRILLIC": "Cyrl",
    "GREEK": "Grek",
    "ARABIC": "Arab",
    "HEBREW": "Hebr",
    "DEVANAGARI": "Deva",
    "BENGALI": "Beng",
    "GURMUKHI": "Guru",
    "GUJARATI": "Gujr",
    "ORIYA": "Orya",
    "TAMIL": "Taml",
    "TELUGU": "Telu",
    "KANNADA": "Knda",
    "MALAYALAM": "Mlym",
    "SINHALA": "Sinh",
    "THAI": "Thai",
    "LAO": "Laoo",
    "TIBETAN": "Tibt",
    "MYANMAR": "Mymr",
    "GEORGIAN": "Geor",
    "ARMENIAN": "Armn",
    "ETHIOPIC": "Ethi",
    "KHMER": "Khmr",
    "HANGUL": "Hang",
    "HIRAGANA": "Hira",
    "KATAKANA": "Kana",
    "CJK": "Hani",
    "MEETEI": "Mtei",
    "THAANA": "Thaa",
    "TIFINAGH": "Tfng",
    "SYRIAC": "Syrc",
    "MONGOLIAN": "Mong",
    "CHEROKEE": "Cher",
    "CANADIAN": "Cans",
    "OL": "Olck",
    "NKO": "Nkoo",
    "VAI": "Vaii",
    "JAVANESE": "Java",
    "BALINESE": "Bali",
    "SUNDANESE": "Sund",
    "TAGALOG": "Tglg",
    "BOPOMOFO": "Bopo",
    "YI": "Yiii",
    "ADLAM": "Adlm",
    "SAMARITAN": "Samr",
    "GLAGOLITIC": "Glag",
    "RUNIC": "Runr",
    "OGHAM": "Ogam",
    "COPTIC": "Copt",
}
SCRIPT_NAMES: dict[str, str] = {
    "Latn": "Latin",
    "Cyrl": "Cyrillic",
    "Grek": "Greek",
    "Arab": "Arabic",
    "Hebr": "Hebrew",
    "Deva": "Devanagari",
    "Beng": "Bengali",
    "Guru": "Gurmukhi",
    "Gujr": "Gujarati",
    "Orya": "Odia",
    "Taml": "Tamil",
    "Telu": "Telugu",
    "Knda": "Kannada",
    "Mlym": "Malayalam",
    "Sinh": "Sinhala",
    "Thai": "Thai",
    "Laoo": "Lao",
    "Tibt": "Tibetan",
    "Mymr": "Myanmar",
    "Geor": "Georgian",
    "Armn": "Armenian",
    "Ethi": "Ethiopic",
    "Khmr": "Khmer",
    "Hang": "Hangul",
    "Hira": "Hiragana",
    "Kana": "Katakana",
    "Hani": "Han",
    "Mtei": "Meitei Mayek",
    "Thaa": "Thaana",
    "Tfng": "Tifinagh",
    "Zyyy": "other",
}


@lru_cache(maxsize=65536)
def _script_of(ch: str) -> str:
    name = unicodedata.name(ch, "")
    first = name.split(" ", 1)[0]
    if first == "HALFWIDTH" or first == "FULLWIDTH":
        parts = name.split(" ")
        first = parts[1] if len(parts) > 1 else first
    return _NAME_TO_SCRIPT.get(first, "Zyyy")


def script_name(code: str) -> str:
    return SCRIPT_NAMES.get(code, code)


def letters_by_script(text: str) -> Counter[str]:
    """Letters of ``text`` counted per ISO 15924 script."""
    counts: Counter[str] = Counter()
    for ch, n in Counter(text).items():  # distinct characters only: counting is done in C
        if ch.isalpha():
            counts[_script_of(ch)] += n
    return counts


_FENCED = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE = re.compile(r"`[^`\n]*`")


_ANY_CODE_CHAR = re.compile(r"[{}\[\]()<>=;_/\\*+|&$#@%^~]")


def _looks_like_code(line: str) -> bool:
    visible = len(line) - sum(line.count(c) for c in " \t\r\f\v")
    if visible < 3:
        return False
    return len(_ANY_CODE_CHAR.findall(line)) / visible >= 0.15


def strip_code(text: str) -> str:
    """``text`` without fenced and inline code and without lines that look like code."""
    if "`" in text:
        text = _INLINE.sub(" ", _FENCED.sub("\n", text))
    if not _ANY_CODE_CHAR.search(text):
        return text
    return "\n".join(line for line in text.splitlines() if not _looks_like_code(line))


@dataclass(frozen=True)
class ScriptVerdict:
    status: str  # "ok" | "wrong" | "mixed" | "no letters"
    dominant: str | None  # ISO 15924 code of the most frequent script, None without letters
    shares: tuple[tuple[str, float], ...]  # (script, share of letters), largest first
    reason: str


def describe_shares(shares: tuple[tuple[str, float], ...], top: int = 3) -> str:
    return ", ".join(f"{round(share * 100)}% {script_name(s)}" for s, share in shares[:top])


def check_script(text: str, expected: frozenset[str]) -> ScriptVerdict:
    """Is ``text`` (code already stripped) written in one of the ``expected`` scripts? See the module docstring."""
    return verdict_from_counts(letters_by_script(text), expected)


def verdict_from_counts(counts: Counter[str], expected: frozenset[str]) -> ScriptVerdict:
    """``check_script`` from letters already counted (``letters_by_script``)."""
    total = sum(counts.values())
    if not total:
        return ScriptVerdict("no letters", None, (), "no letters to check (empty, numbers, emoji or code only)")
    shares = tuple((s, n / total) for s, n in counts.most_common())
    dominant = shares[0][0]
    if not expected:
        return ScriptVerdict("ok", dominant, shares, "the language's script is unknown")
    in_expected = sum(n for s, n in counts.items() if s in expected) / total
    wanted = " or ".join(sorted(script_name(s) for s in expected))
    if in_expected >= OK_SHARE:
        return ScriptVerdict("ok", dominant, shares, f"written in {wanted} as expected")
    if in_expected <= WRONG_SHARE:
        return ScriptVerdict("wrong", dominant, shares, f"written in {script_name(dominant)} script; expected {wanted}")
    return ScriptVerdict("mixed", dominant, shares, f"mixed scripts: {describe_shares(shares)}")
