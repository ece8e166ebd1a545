"""pipeline.langcheck's detector layer: macrolanguage mapping, the script check, routing by measurement, the UI
text for each coverage level, and the Hub fastText model for real (a tiny model the tests train, served by the fake
Hub, downloaded through huggingface_hub, cached, loaded, used; a corrupt download; an unreachable Hub)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline import langcheck
from pipeline.langcheck import codes, fasttext_hub, heliport_detector, routing
from tests.fixtures import tiny_fasttext

ENGLISH = "The weather is lovely today, so we are going to walk along the river after lunch with the children."
YORUBA = "Ìlú Èkó jẹ́ ìlú tó tóbi jùlọ ní orílẹ̀-èdè Nàìjíríà, ó sì jẹ́ ibùdó òwò pàtàkì fún gbogbo ìwọ̀ oòrùn Áfíríkà."
DUTCH = "De hoofdstad van Nederland is Amsterdam, al zetelen de regering en het parlement in Den Haag."


# --- one mapping of macrolanguages and variants -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("arb", "ary"),
        ("arb", "arz"),
        ("arb", "ara"),
        ("zsm", "ind"),
        ("zsm", "msa"),
        ("swh", "swa"),
        ("plt", "mlg"),
        ("npi", "nep"),
        ("lvs", "lav"),
        ("azj", "aze"),
        ("fil", "tgl"),
        ("srp", "hrv"),
        ("srp", "hbs"),
        ("kur", "kmr"),
        ("zho", "cmn"),
        ("nob", "nno"),
        ("pes", "fas"),
    ],
)
def test_macrolanguages_and_variants_share_one_key(a, b):
    assert codes.canonical(a) == codes.canonical(b) is not None


def test_close_but_different_languages_stay_apart():
    assert codes.canonical("ckb") != codes.canonical("kmr")  # Central Kurdish (Arabic script) is not Kurmanji
    assert codes.canonical("nld") != codes.canonical("afr")
    assert codes.canonical("xx1") is None


def test_detector_labels_use_the_same_mapping():
    assert heliport_detector.label_key("msaind") == codes.canonical("ind")
    assert heliport_detector.label_key("hbssrp") == codes.canonical("srp")
    assert heliport_detector.label_key("cmn") == codes.canonical("zho")
    assert heliport_detector.label_key("und") is None
    assert fasttext_hub.label_key("__label__arb_Arab") == codes.canonical("ary")
    assert fasttext_hub.label_key("__label__zxx_Latn") is None


def test_a_dialect_answer_detected_as_arabic_matches():
    arabic = "القاهرة هي عاصمة مصر وأكبر مدينة في العالم العربي من حيث عدد السكان."
    result = langcheck.check(arabic, "ary")
    assert result.match is True and result.detected == "ary"


# --- the script check, for every language --------------------------------------------------------------------------
def test_every_aya_code_gets_at_least_the_script_check():
    for code in codes.AYA_LANGUAGES:
        cov = langcheck.coverage(code)
        assert cov.scripts, code
        assert cov.level in ("offline", "hub", "script"), code


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("amh", "Selam, endet neh? Ine dehna negn, ameseginalehu."),  # Amharic in Latin letters
        ("mni", "Eikhoi Manipur gi mi oi, eigi mamang leikai da leire."),  # Manipuri in Latin: no detector knows it
        ("rus", "Moskva yavlyaetsya stolitsey Rossii i krupneyshim gorodom strany."),
        ("jpn", ENGLISH),
    ],
)
def test_the_wrong_script_is_a_mismatch_even_without_a_detector(code, text):
    result = langcheck.check(text, code)
    assert result.match is False and result.detected is None  # no detector's guess for a foreign script
    assert result.detector == "script"
    assert "Latin" in result.reason


def test_languages_written_in_two_scripts_accept_both():
    assert langcheck.check("Београд је главни град Србије и највећи град у земљи.", "srp").match is True
    assert langcheck.check("Beograd je glavni grad Srbije i najveći grad u zemlji.", "srp").match is True


@pytest.mark.parametrize(
    "text", ["", "   ", "12345 !!!", "🙂🙂🎉 👍", "```python\nprint(1)\n```", "x = f(a[0]) + g(b);"]
)
def test_no_letters_is_never_a_verdict(text):
    result = langcheck.check(text, "nld")
    assert result.match is None
    assert "no letters" in result.reason


def test_mixed_scripts_are_reported_not_judged():
    result = langcheck.check("Hello world, this is a long English part. Привет мир, это русская часть текста.", "rus")
    assert result.match is None
    assert "mixed scripts" in result.reason and "Cyrillic" in result.reason and "Latin" in result.reason


def test_code_is_set_aside_and_the_prose_is_checked():
    answer = f"{DUTCH}\n\n```python\ndef hoofdstad():\n    return 'Amsterdam'\n```\nGebruik `hoofdstad()` zo."
    assert langcheck.check(answer, "nld").match is True


# --- routing by measurement ---------------------------------------------------------------------------------------
def test_the_routing_table_is_what_the_rule_gives_for_its_own_figures():
    table = routing.table()
    assert set(codes.AYA_LANGUAGES) <= set(table)
    knows = {
        code: [d for d in ("langid", "heliport") if codes.canonical(code) in langcheck.detector(d).keys()]
        for code in codes.AYA_LANGUAGES
    }
    figures = {code: dict(r.measured) for code, r in table.items() if r.measured}
    hub_keys = fasttext_hub.hub_detector("glotlid").keys()
    hub_knows = {c for c in codes.AYA_LANGUAGES if codes.canonical(c) in hub_keys}
    again = routing.choose_routes(list(codes.AYA_LANGUAGES), knows, figures, hub_knows)
    for code in codes.AYA_LANGUAGES:
        assert (again[code].offline, again[code].hub) == (table[code].offline, table[code].hub), code


def test_the_rule_prefers_the_better_measured_detector_and_drops_poor_ones():
    good, poor = routing.Figures(0.95, 0.001, 0.0, 40), routing.Figures(0.3, 0.0, 0.0, 40)
    fm = routing.Figures(0.97, 0.05, 0.0, 40)  # higher recall, but accepts 5% of other languages
    routes = routing.choose_routes(
        ["aaa", "bbb", "ccc", "ddd"],
        {"aaa": ["langid", "heliport"], "bbb": ["langid", "heliport"], "ccc": ["langid"], "ddd": []},
        {"aaa": {"langid": poor, "heliport": good}, "bbb": {"langid": good, "heliport": fm}, "ccc": {"langid": poor}},
        hub_knows={"ccc", "ddd"},
    )
    assert routes["aaa"].offline == "heliport"
    assert routes["bbb"].offline == "langid"
    assert routes["ccc"].offline is None and routes["ccc"].hub == "hub"  # recall under MIN_RECALL: not used
    assert routes["ddd"].hub == "hub"


def test_languages_langid_cannot_see_get_a_detector():
    # Yoruba: "unsupported" with langid alone; now a detector checks it and an English answer is caught
    assert langcheck.coverage("yor").level == "offline"
    assert langcheck.check(YORUBA, "yor").match is True
    english = langcheck.check(ENGLISH, "yor")
    assert english.match is False and english.detected == "eng"
    assert langcheck.coverage("yor").detector == english.detector


def test_a_language_known_only_in_one_script_is_not_judged_in_the_other():
    import json

    from pipeline.langcheck import script

    one_script = {c: r for c, r in routing.table().items() if r.figures and r.figures.unchecked_scripts}
    assert one_script  # the table found some (e.g. Uzbek, written in Latin and Cyrillic)
    eval_set = Path(__file__).resolve().parent.parent / "bench" / "data" / "langcheck_eval.jsonl"
    rows = [json.loads(line) for line in eval_set.read_text(encoding="utf-8").splitlines()]
    for code, r in one_script.items():
        assert r.figures is not None
        unchecked = r.figures.unchecked_scripts[0]
        text = next(
            row["text"]
            for row in rows
            if row["code"] == code and script.letters_by_script(row["text"]).most_common(1)[0][0] == unchecked
        )
        result = langcheck.check(text, code)
        assert result.match is None, (code, result)
        assert script.script_name(unchecked) in result.reason
        assert f"does not recognise it in {script.script_name(unchecked)} script" in langcheck.describe(code)


# --- what people see ----------------------------------------------------------------------------------------------
def test_ui_text_for_each_coverage_level(monkeypatch):
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "glotlid")
    fasttext_hub.reset()
    nld = langcheck.describe("nld")
    assert f"checked by {langcheck.coverage('nld').label}" in nld and "measured recall" in nld
    yor = langcheck.describe("yor")
    assert "checked by heliport" in yor and "%" in yor
    wol = langcheck.coverage("wol")
    assert wol.level == "hub" and wol.label == "GlotLID (download 1.6 GB on first use)"
    assert "GlotLID (download 1.6 GB on first use)" in langcheck.describe("wol")
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "off")
    assert langcheck.coverage("wol").label == "script only"
    assert "script only" in langcheck.describe("wol") and "Latin" in langcheck.describe("wol")
    assert langcheck.coverage("wol").level == "script"


def test_an_unknown_code_names_the_nearest_aya_code():
    cov = langcheck.coverage("Yoruba")
    assert cov.level == "unknown" and "'yor'" in cov.note
    result = langcheck.check(YORUBA, "Yoruba")
    assert result.match is None and "'yor'" in result.reason
    assert langcheck.nearest_aya_code("ara") == "arb"
    assert langcheck.nearest_aya_code("nl") == "nld"


# --- the Hub fastText model, for real -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_model() -> bytes:
    return tiny_fasttext.train(tiny_fasttext.demo_samples())


@pytest.fixture
def glotlid_hub(fake_hub, tiny_model, monkeypatch):
    """The fake Hub serving the tiny model as cis-lmu/glotlid; an empty Hub cache for it; fresh detectors."""
    from huggingface_hub import constants

    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "glotlid")
    cache = Path(constants.HF_HUB_CACHE) / "models--cis-lmu--glotlid"
    shutil.rmtree(cache, ignore_errors=True)
    fake_hub.add_repo("cis-lmu/glotlid", {"model.bin": tiny_model, "README.md": "tiny test model"}, repo_type="model")
    fasttext_hub.reset()
    yield fake_hub
    fasttext_hub.reset()
    shutil.rmtree(cache, ignore_errors=True)


def _downloads(hub) -> int:
    return sum(1 for method, path, _ in hub.requests if method == "GET" and path.endswith("/resolve/main/model.bin"))


def test_hub_model_is_downloaded_cached_loaded_and_used(glotlid_hub):
    before = _downloads(glotlid_hub)
    first = langcheck.check(ENGLISH, "wol")  # Wolof: no offline detector knows it, so the Hub model is needed
    assert first.match is None and "GlotLID" in first.reason  # while it downloads: said, never an error
    hub = fasttext_hub.hub_detector("glotlid")
    assert hub.wait(60), hub.status()
    assert _downloads(glotlid_hub) == before + 1
    result = langcheck.check(ENGLISH, "wol")
    assert result.detector == "glotlid" and result.match is False and result.detected == "eng"
    assert langcheck.coverage("wol").label == "GlotLID"
    # the model is a real fastText model: it tells the demo languages apart
    assert hub.predict(DUTCH).key == codes.canonical("nld")
    assert hub.predict(YORUBA).key == codes.canonical("yor")
    # cached: a new process (fresh detector) loads it from disk even with the Hub down
    fasttext_hub.reset()
    with glotlid_hub.unreachable():
        again = fasttext_hub.hub_detector("glotlid")
        again.start()
        assert again.wait(60), again.status()
    assert _downloads(glotlid_hub) == before + 1


def test_a_partial_download_is_deleted_and_fetched_again(glotlid_hub):
    hub = fasttext_hub.hub_detector("glotlid")
    hub.start()
    assert hub.wait(60)
    blob = hub._path.resolve()
    blob.write_bytes(blob.read_bytes()[: blob.stat().st_size // 2])  # a download cut in half
    before = _downloads(glotlid_hub)
    fasttext_hub.reset()
    fresh = fasttext_hub.hub_detector("glotlid")
    fresh.start()
    assert fresh.wait(60), fresh.status()
    assert _downloads(glotlid_hub) == before + 1
    assert fresh.predict(DUTCH).key == codes.canonical("nld")


def test_a_corrupt_model_on_the_hub_falls_back_and_says_so(glotlid_hub, tiny_model):
    glotlid_hub.add_repo("cis-lmu/glotlid", {"model.bin": b"not a fasttext model" * 100}, repo_type="model")
    before = _downloads(glotlid_hub)
    hub = fasttext_hub.hub_detector("glotlid")
    hub.start()
    assert not hub.wait(60)
    status = hub.status()
    assert status.state == "failed" and "corrupt" in status.message
    assert _downloads(glotlid_hub) == before + 2  # retried once
    result = langcheck.check(ENGLISH, "wol")
    assert result.match is None and "corrupt" in result.reason
    cov = langcheck.coverage("wol")
    assert cov.level == "script" and "script only" in cov.note
    cached = list((Path(hub_cache()) / "models--cis-lmu--glotlid" / "blobs").glob("*"))
    assert not [p for p in cached if p.stat().st_size == len(b"not a fasttext model" * 100)]  # deleted


def hub_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def test_an_unreachable_hub_falls_back_and_says_so(glotlid_hub):
    with glotlid_hub.unreachable():
        first = langcheck.check(ENGLISH, "wol")
        hub = fasttext_hub.hub_detector("glotlid")
        assert not hub.wait(60)
        result = langcheck.check(ENGLISH, "wol")
    assert first.match is None
    assert result.match is None and result.detector == "script"
    assert "could not be downloaded" in result.reason and "script check only" in result.reason
    assert "script only" in langcheck.describe("wol")
    # the offline detectors are untouched
    assert langcheck.check(YORUBA, "yor").match is True


# --- where people see it: Filter and Pipeline tabs, the export card, the generated pipeline.py --------------------
def test_filter_tab_says_which_detector_checks_the_chosen_language():
    from ui import filter_tab
    from ui.session import Session

    session = Session()
    values = {**filter_tab.FILTER_DEFAULTS, "language": "yor", "repo_name": ""}
    filter_tab.on_load(session, {**filter_tab.LOAD_DEFAULTS, "source": filter_tab.SRC_DEMO, "language": None}, None)
    count = filter_tab.on_filter(session, values, None)["count"]
    cov = langcheck.coverage("yor")
    assert f"checked by {cov.label}" in count and f"{cov.recall:.0%}" in count


def test_pipeline_tab_names_the_detector_in_its_note_and_language_column(monkeypatch):
    import pandas as pd

    from pipeline.filter import filtered, sources
    from ui import pipeline_view

    yoruba = filtered.filter_source(sources.demo_source(), filtered.FilterSpec(language="yor"))
    note = pipeline_view._data_note(yoruba)
    assert "checked by heliport" in note and "measured recall" in note
    frame = pd.DataFrame(
        [{"status": "ok", "prompt": "p", "human": "a", "human rating": 5, "human lang": "yes", "error": ""}]
    )
    view = pipeline_view.latest_view(frame, "yor")["value"]
    assert "Language (heliport)" in view.columns and view["Language (heliport)"][0] == "human: yes"
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "off")
    assert "Language (script only)" in pipeline_view.latest_view(frame, "wol")["value"].columns


def test_export_card_names_the_detector_and_its_version():
    from pipeline.export import card

    line = card._language_check("yor")
    assert f"`heliport` {heliport_detector.DETECTOR.version()}" in line and "measured recall" in line
    assert "langid" in card._language_check("nld")


def _script_consts_and_detector(code: str):
    import ast

    from pipeline.core.schema import RunMeta
    from pipeline.generate import recipe

    script = recipe.render_pipeline_script(RunMeta(language_code=code, language=codes.language_name(code)), data="a/b")
    tree = ast.parse(script)
    consts = {
        n.targets[0].id: ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id.isupper()
    }
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "make_language_detector")
    namespace = dict(consts)
    exec(compile(ast.Module(body=[func], type_ignores=[]), "pipeline.py", "exec"), namespace)
    return consts, namespace["make_language_detector"]


@pytest.mark.parametrize(("code", "own", "other"), [("yor", YORUBA, ENGLISH), ("nld", DUTCH, ENGLISH)])
def test_generated_pipeline_script_checks_with_the_same_detector(code, own, other):
    consts, make = _script_consts_and_detector(code)
    assert consts["LANGUAGE_DETECTOR"] == langcheck.coverage(code).detector
    detect = make()
    assert detect(own) in consts["TARGET_LABELS"]
    assert detect(other) not in consts["TARGET_LABELS"]


def test_generated_pipeline_script_uses_the_hub_model_for_hub_languages(monkeypatch):
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "glotlid")
    consts, _ = _script_consts_and_detector("wol")
    assert consts["LANGUAGE_DETECTOR"] == "glotlid" and consts["LANGUAGE_MODEL_REPO"] == "cis-lmu/glotlid"
    assert "wol_Latn" in consts["TARGET_LABELS"]


def test_openlid_is_selectable(monkeypatch):
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "openlid")
    cov = langcheck.coverage("wol")
    assert cov.detector == "openlid" and cov.label.startswith("OpenLID (download")
    assert langcheck.detector_spec("wol").hub_repo == fasttext_hub.HUB_MODELS["openlid"].repo_id
    # a language GlotLID knows but OpenLID's published labels do not (Ngaju) falls to the script check
    assert "nij" not in {label.split("_")[0] for label in fasttext_hub.published_labels()["openlid"]}
    assert langcheck.coverage("nij").level == "script" and langcheck.detector_spec("nij").detector == "script"
    monkeypatch.setenv(fasttext_hub.MODEL_ENV, "glotlid")
    assert langcheck.coverage("nij").level == "hub"


def test_download_progress_is_reported(glotlid_hub):
    """While the file is coming in, the status says how much of it is there (from the partial file on disk)."""
    from huggingface_hub import constants

    hub = fasttext_hub.hub_detector("glotlid")
    blobs = Path(constants.HF_HUB_CACHE) / "models--cis-lmu--glotlid" / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / "0123.incomplete").write_bytes(b"x" * 400)
    hub._state, hub._size = "downloading", 1000  # as _download_and_load sets them once the Hub gave the size
    status = hub.status()
    assert status.progress == pytest.approx(0.4) and "40% of" in status.message


def test_raw_card_names_the_detector_and_its_version():
    from pipeline.core.schema import RunMeta
    from pipeline.generate import card as raw_card

    card = raw_card.render_raw_card(RunMeta(language_code="yor", language="Yoruba"))
    assert f"`heliport` {heliport_detector.DETECTOR.version()} on every answer" in card
    assert "measured recall" in card
