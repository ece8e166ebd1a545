"""pipeline.langcheck: ISO 639-3 mapping, detection, unsupported languages, candidate sets."""

from __future__ import annotations

import langid
import pytest

from pipeline import langcheck
from pipeline.langcheck import LanguageCheck, check, check_many, detect

TEXTS = {
    "nld": "De hoofdstad van Nederland is Amsterdam, al zetelen de regering en het parlement in Den Haag.",
    "eng": "The quick brown fox jumps over the lazy dog while the children play in the garden.",
    "fra": "Le chat dort sur le canapé pendant que nous préparons le dîner pour toute la famille.",
    "deu": "Die Hauptstadt von Deutschland ist Berlin, und dort leben mehr als drei Millionen Menschen.",
    "spa": "La ciudad de Madrid es la capital de España y tiene muchos museos importantes.",
    "arb": "القاهرة هي عاصمة مصر وأكبر مدينة في العالم العربي من حيث عدد السكان.",
    "pes": "تهران پایتخت ایران است و بزرگترین شهر این کشور به شمار می‌رود.",
    "plt": "Antananarivo no renivohitr'i Madagasikara ary tanàna lehibe indrindra ao amin'ny firenena.",
    "zsm": "Kuala Lumpur ialah ibu negara Malaysia dan merupakan bandar terbesar di negara ini.",
    "rus": "Москва является столицей России и крупнейшим городом страны.",
    "jpn": "東京は日本の首都であり、世界最大の都市圏の一つです。",
    "hin": "नई दिल्ली भारत की राजधानी है और यह एक बहुत बड़ा शहर है।",
    "swh": "Nairobi ni mji mkuu wa Kenya na ni mji mkubwa zaidi nchini humo.",
}


@pytest.mark.parametrize("code", sorted(TEXTS))
def test_known_languages_match(code):
    result = check(TEXTS[code], code)
    assert result == LanguageCheck(code, result.confidence, True)
    assert 0.5 < result.confidence <= 1.0


def test_mismatch_names_the_detected_language():
    result = check(TEXTS["eng"], "nld")
    assert result.match is False
    assert result.detected == "eng"


@pytest.mark.parametrize(
    ("code", "langid_code"),
    [
        ("nld", "nl"),
        ("arb", "ar"),
        ("ary", "ar"),
        ("arz", "ar"),
        ("plt", "mg"),
        ("zsm", "ms"),
        ("pes", "fa"),
        ("swh", "sw"),
        ("npi", "ne"),
        ("fil", "tl"),
        ("nob", "nb"),
        ("zho", "zh"),
        ("eng", "en"),
        ("nl", "nl"),
    ],
)
def test_iso_639_3_codes_map_to_langid(code, langid_code):
    assert langcheck.to_langid(code) == langid_code
    assert langcheck.is_supported(code)


@pytest.mark.parametrize("code", ["yor", "som", "hau", "ibo", "ceb", "ckb", ""])
def test_unsupported_languages_are_never_a_mismatch(code):
    result = check("Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní orílẹ̀-èdè Nàìjíríà.", code)
    assert result.match is None
    assert not langcheck.is_supported(code)


def test_unsupported_list_for_the_ui():
    missing = langcheck.unsupported()
    assert {"yor", "som", "hau"} <= set(missing)
    assert "nld" not in missing and "plt" not in missing
    assert "Yoruba (yor)" in langcheck.unsupported_names()
    assert langcheck.unsupported(["nld", "yor"]) == ["yor"]


def test_empty_or_letterless_text_is_not_judged():
    assert check("", "nld") == LanguageCheck(None, None, None)
    assert check("   ", "nld") == LanguageCheck(None, None, None)
    assert check("12345 !!!", "nld") == LanguageCheck(None, None, None)


def test_close_languages_count_as_the_target():
    indonesian = "Jakarta adalah ibu kota Indonesia dan merupakan kota terbesar di negara ini."
    assert check(indonesian, "zsm").match is True


def test_candidates_restrict_the_choice():
    # Afrikaans is close to Dutch; with only Dutch and English as candidates it cannot win.
    afrikaans = "Ek het gister na die winkel gegaan om brood en melk te koop vir die kinders."
    assert detect(afrikaans)[0] == "afr"
    restricted = check(afrikaans, "nld", candidates=["nld", "eng"])
    assert restricted.detected in ("nld", "eng")
    assert detect(TEXTS["fra"], candidates=["nld", "eng", "fra"])[0] == "fra"
    with pytest.raises(ValueError):
        check("text", "nld", candidates=["yor"])  # only one detectable language left


def test_agrees_with_plain_langid():
    for text in TEXTS.values():
        ours = detect(text)[0]
        theirs = langid.classify(text)[0]
        assert langcheck.to_langid(ours) == theirs or langcheck._accepted(theirs) == langcheck._accepted(
            langcheck.to_langid(ours)
        )


def test_check_many_keeps_order():
    results = check_many([TEXTS["nld"], TEXTS["eng"], ""], "nld")
    assert [r.match for r in results] == [True, False, None]


def test_global_langid_state_is_untouched():
    check(TEXTS["nld"], "nld", candidates=["nld", "eng"])
    # the module-level identifier still considers all 97 languages
    assert langid.classify(TEXTS["jpn"])[0] == "ja"
