"""Language codes for the language check: Aya's codes, the one macrolanguage/variant mapping, expected scripts.

Owns and promises:

- ``AYA_LANGUAGES``: Aya's 106 ISO 639-3 codes (as in ``CohereForAI/aya_dataset``) with English names.
- ``canonical(code)``: the one key every detector's labels and every target code are compared on. Macrolanguages and
  their members, and variants that detectors cannot tell apart, map to one key, here and nowhere else: Arabic
  varieties -> ``ar``; ``zsm``/``ind``/``msa`` -> ``ms``; ``swh`` -> ``sw``; ``plt`` -> ``mg``; ``npi`` -> ``ne``;
  ``lvs`` -> ``lv``; ``azj`` -> ``az``; ``fil``/``tgl`` -> ``fil``; ``srp``/``hrv``/``bos``/``hbs`` -> ``sh``;
  ``kur``/``kmr`` -> ``ku`` (``ckb``, Central Kurdish in Arabic script, stays apart); ``zho``/``cmn`` -> ``zh``;
  ``nob``/``nno`` -> ``no``; ``pes``/``prs`` -> ``fa``; ``pbt`` -> ``ps``; ``twi``/``aka`` -> ``ak``.
  Everything else goes through ``langcodes`` (``standardize_tag(macro=True)``). ``None`` for a code nobody knows.
- ``expected_scripts(code)``: the ISO 15924 scripts a language is written in: CLDR's likely script (through
  ``langcodes``) plus the second scripts in ``SECOND_SCRIPTS`` for languages CLDR lists as written in two.
- ``nearest_aya_code(code)``: the Aya code closest to any code or name, for messages about unknown codes.
"""

from __future__ import annotations

from functools import lru_cache

import langcodes

from pipeline.core import languages

# Aya's languages (ISO 639-3 as in ``CohereForAI/aya_dataset``) with their names.
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

# The one mapping of macrolanguages and variants (see the module docstring). Keys: ISO 639 codes as given;
# values: the canonical key. Codes not listed go through langcodes.
_MACRO: dict[str, str] = {
    **{
        code: "ar"
        for code in (
            "ara",
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
            "acw",
            "acx",
            "aec",
            "ayh",
            "ssh",
            "shu",
            "pga",
        )
    },
    **{code: "ms" for code in ("msa", "zsm", "zlm", "ind", "id", "ms", "min", "mfa", "max")},
    **{code: "sh" for code in ("hbs", "srp", "hrv", "bos", "sr", "hr", "bs", "sh", "cnr")},
    **{code: "no" for code in ("nor", "nob", "nno", "no", "nb", "nn")},
    **{code: "fil" for code in ("fil", "tgl", "tl")},
    **{code: "ku" for code in ("kur", "kmr", "ku")},
    **{code: "zh" for code in ("zho", "cmn", "chi", "zh")},
    **{code: "fa" for code in ("fas", "per", "pes", "prs", "fa")},
    **{code: "ps" for code in ("pus", "pbt", "pst", "pbu", "ps")},
    **{code: "ak" for code in ("aka", "twi", "fat", "ak", "tw")},
    **{code: "sw" for code in ("swa", "swh", "swc", "sw")},
    **{code: "mg" for code in ("mlg", "plt", "mg")},
    **{code: "ne" for code in ("nep", "npi", "ne")},
    **{code: "lv" for code in ("lav", "lvs", "ltg", "lv")},
    **{code: "az" for code in ("aze", "azj", "azb", "az")},
    **{code: "uz" for code in ("uzb", "uzn", "uzs", "uz")},
    **{code: "et" for code in ("est", "ekk", "et")},
    **{code: "sq" for code in ("sqi", "als", "aln", "sq")},
    **{code: "pa" for code in ("pan", "pnb", "pa")},
}

# Languages CLDR lists as written in a second script besides the likely one (Unicode CLDR supplemental
# languageData, "secondary" scripts with a sizeable written use).
SECOND_SCRIPTS: dict[str, tuple[str, ...]] = {
    "sh": ("Cyrl", "Latn"),
    "uz": ("Cyrl",),
    "az": ("Cyrl",),
    "kk": ("Latn",),
    "mni": ("Mtei",),
    "sd": ("Deva",),
    "pa": ("Arab",),
    "zh": ("Hant",),
    "ha": ("Arab",),
    "ms": ("Arab",),
}
# Scripts that stand for a combination (Japanese and Korean mix their scripts; Chinese is Han).
COMPOSITE_SCRIPTS: dict[str, frozenset[str]] = {
    "Jpan": frozenset({"Hani", "Hira", "Kana"}),
    "Kore": frozenset({"Hang", "Hani"}),
    "Hans": frozenset({"Hani"}),
    "Hant": frozenset({"Hani"}),
}


def _clean(code: str) -> str:
    return (code or "").strip().replace("_", "-")


@lru_cache(maxsize=2048)
def canonical(code: str) -> str | None:
    """The key a language is compared on (see the module docstring), or ``None`` for an unknown code."""
    code = _clean(code)
    if not code:
        return None
    base = code.split("-")[0].lower()
    if base in _MACRO:
        return _MACRO[base]
    try:
        tag = langcodes.standardize_tag(code, macro=True)
    except (ValueError, langcodes.tag_parser.LanguageTagError):
        return None
    lang = tag.split("-")[0].lower()
    if lang in _MACRO:
        return _MACRO[lang]
    if lang in ("und", "zxx", "mul", "mis"):
        return None
    if not langcodes.Language.get(lang).is_valid():
        return None
    return lang


@lru_cache(maxsize=1024)
def to_iso3(code: str) -> str:
    """An ISO 639-3 code for a canonical key or any code (Aya's own codes first), e.g. ``ms`` -> ``msa``."""
    if code in AYA_LANGUAGES:
        return code
    try:
        return str(langcodes.Language.get(code).to_alpha3())
    except (ValueError, LookupError, langcodes.tag_parser.LanguageTagError):
        return code


@lru_cache(maxsize=1024)
def expected_scripts(code: str) -> frozenset[str]:
    """ISO 15924 scripts ``code`` is written in (individual scripts: Japanese is Hani+Hira+Kana). Empty if unknown."""
    key = canonical(code)
    if key is None:
        return frozenset()
    scripts: set[str] = set()
    for tag in (_clean(code), key):
        try:
            lang = langcodes.Language.get(tag)
        except (ValueError, langcodes.tag_parser.LanguageTagError):
            continue
        if lang.script:
            scripts.add(lang.script)
            break
        likely = lang.maximize()
        # CLDR has no entry for the code when maximize() only adds the default "Latn-US" of an unknown language.
        if likely.script and not (likely.territory == "US" and lang.language not in ("en", "eng")):
            scripts.add(likely.script)
            break
    scripts.update(SECOND_SCRIPTS.get(key, ()))
    out: set[str] = set()
    for script in scripts:
        out |= COMPOSITE_SCRIPTS.get(script, frozenset({script}))
    return frozenset(out)


def language_name(code: str) -> str:
    """A readable name for a code (Aya's list first), e.g. ``nld`` -> ``Dutch``."""
    return AYA_LANGUAGES.get(code) or languages.display_name(_clean(code)) or code


@lru_cache(maxsize=512)
def nearest_aya_code(code: str) -> str | None:
    """The Aya code nearest to ``code`` (a code of another standard, a variant, or a language name)."""
    text = _clean(code)
    if not text:
        return None
    if text in AYA_LANGUAGES:
        return text
    key = canonical(text)
    if key is not None:
        for aya in AYA_LANGUAGES:
            if canonical(aya) == key:
                return aya
        try:
            match, distance = langcodes.closest_match(key, list(AYA_LANGUAGES), max_distance=25)
        except (ValueError, langcodes.tag_parser.LanguageTagError):
            match, distance = "und", 1000
        if match != "und" and distance <= 25:
            return str(match)
    lowered = text.lower()
    for aya, name in AYA_LANGUAGES.items():
        if lowered == name.lower() or (len(lowered) >= 4 and lowered in name.lower()):
            return aya
    import difflib

    names = {name.lower(): aya for aya, name in AYA_LANGUAGES.items()}
    close = difflib.get_close_matches(lowered, list(names) + list(AYA_LANGUAGES), n=1, cutoff=0.6)
    if close:
        return names.get(close[0], close[0])
    return None
