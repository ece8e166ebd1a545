"""Unit tests of the Filter step: language resolution, normalisation, filters, the language table and the card."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
import yaml

from pipeline.core import languages
from pipeline.core.schema import FILTERED_COLUMNS, row_id
from pipeline.filter import filtered, sources


def _raw(rows: list[tuple]) -> pa.Table:
    """Aya-shaped rows: (prompt, response, language, code, annotation_type)."""
    return pa.table(
        {
            "inputs": [r[0] for r in rows],
            "targets": [r[1] for r in rows],
            "language": [r[2] for r in rows],
            "language_code": [r[3] for r in rows],
            "annotation_type": [r[4] if len(r) > 4 else "original-annotations" for r in rows],
            "user_id": [f"u{i}" for i in range(len(rows))],
        }
    )


def _source(rows: list[tuple]) -> sources.Source:
    table, dropped = sources.normalize(_raw(rows), sources.SourceSpec.aya())
    info = sources.SourceInfo("x/y", "train", None, "apache-2.0", False, table.num_rows, dropped_empty=dropped)
    return sources._build_source(table, info)


ROWS = [
    ("Hoe gaat het?", "Goed, dank je.", "Dutch", "nld"),
    ("Wat is een fiets?", "Een voertuig met twee wielen dat je met je benen aandrijft.", "Dutch", "nld"),
    ("Hoe gaat het?", "Prima!", "Dutch", "nld", "re-annotations"),
    ("Hola", "¡Hola! ¿En qué puedo ayudarte?", "Spanish", "spa"),
    ("  Hoe gaat het?  ", "Het gaat.", "Dutch", "nld", "re-annotations"),
    ("Kort", "Ja", "Dutch", "nld"),
    ("", "no prompt", "Dutch", "nld"),
    ("no response", "   ", "Dutch", "nld"),
    ("ما اسمك؟", "اسمي سارة.", "Standard Arabic", "arb"),
]


# --- languages ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Dutch", "dutch", "DUTCH", "nld", "nl", "Nederlands", " Dutch "])
def test_resolve_dutch_in_every_spelling(text):
    available = [("Dutch", "nld"), ("German", "deu"), ("Standard Arabic", "arb")]
    assert languages.resolve(text, available) == languages.Language("Dutch", "nld")


@pytest.mark.parametrize(
    "text,code",
    [("Arabic", "arb"), ("ar", "arb"), ("Malagasy", "plt"), ("mg", "plt"), ("sw", "swh"), ("日本語", "jpn")],
)
def test_resolve_macrolanguages_to_the_dataset_code(text, code):
    available = [
        ("Standard Arabic", "arb"),
        ("Moroccan Arabic", "ary"),
        ("Plateau Malagasy", "plt"),
        ("Swahili", "swh"),
        ("Japanese", "jpn"),
    ]
    assert languages.resolve(text, available).code == code


def test_resolve_prefers_the_exact_dialect_when_named():
    available = [("Standard Arabic", "arb"), ("Moroccan Arabic", "ary")]
    assert languages.resolve("Moroccan Arabic", available).code == "ary"
    assert languages.resolve("ary", available).code == "ary"


def test_unknown_language_lists_close_matches():
    available = [("Dutch", "nld"), ("Yoruba", "yor")]
    with pytest.raises(languages.UnknownLanguage, match=r"Did you mean: Dutch \(nld\)"):
        languages.resolve("Dutc", available)
    with pytest.raises(languages.UnknownLanguage, match=r"Did you mean: Yoruba \(yor\)"):
        languages.resolve("Yorba", available)
    with pytest.raises(languages.UnknownLanguage, match="Klingon is not in this dataset. It has: Dutch, Yoruba"):
        languages.resolve("Klingon", available)
    with pytest.raises(languages.UnknownLanguage, match="Choose a language"):
        languages.resolve("  ", available)


def test_resolve_without_dataset_and_tags():
    assert languages.resolve("nl") == languages.Language("Dutch", "nld")
    assert languages.resolve("Yoruba").code == "yor"
    with pytest.raises(languages.UnknownLanguage, match="not a language name or code"):
        languages.resolve("qwertyuiop")
    assert languages.hub_tag("nld") == "nl"
    assert languages.hub_tag("plt") == "plt"


# --- normalisation ------------------------------------------------------------------------------------------------
def test_normalize_maps_columns_ids_and_drops_empty_rows():
    src = _source(ROWS)
    t = src.table
    assert t.column_names[: len(FILTERED_COLUMNS)] == list(FILTERED_COLUMNS)
    assert src.info.dropped_empty == 2
    assert t.num_rows == len(ROWS) - 2
    for r in t.to_pylist():
        assert r["id"] == row_id(r["prompt"], r["response"])
    assert src.offsets["nld"][1] == 5 and src.offsets["spa"][1] == 1
    assert src.names == {"arb": "Standard Arabic", "nld": "Dutch", "spa": "Spanish"}
    assert src.annotation_types() == ["original-annotations", "re-annotations"]


def test_normalize_generic_mapping_with_codes_in_the_language_column():
    raw = pa.table({"q": ["Hallo", "Hello", "Hej"], "a": ["Hoi", "Hi", "Hej hej"], "lang": ["nl", "en", "??"]})
    spec = sources.SourceSpec.hub_dataset("o/d", prompt_col="q", response_col="a", language_col="lang")
    t, _ = sources.normalize(raw, spec)
    got = {r["prompt"]: (r["language"], r["language_code"], r["annotation_type"]) for r in t.to_pylist()}
    assert got == {"Hallo": ("Dutch", "nld", ""), "Hello": ("English", "eng", ""), "Hej": ("??", "??", "")}


def test_normalize_single_language_dataset():
    raw = pa.table({"prompt": ["a", "b"], "response": ["c", "d"]})
    spec = sources.SourceSpec.hub_dataset("o/d", language="Yoruba")
    t, _ = sources.normalize(raw, spec)
    assert set(t["language_code"].to_pylist()) == {"yor"}
    with pytest.raises(sources.DataError, match="no language column set"):
        sources.normalize(raw, sources.SourceSpec.hub_dataset("o/d"))


@pytest.mark.parametrize(
    "mapping,message",
    [
        (
            {"prompt_col": "question"},
            r"no column 'question' for the prompt\. Its columns are: prompt, response, n, "
            r"msgs",
        ),
        ({"response_col": "n"}, None),  # numbers become text
        ({"response_col": "msgs"}, r"Column 'msgs' holds list<item: string>, not text"),
        ({"language_col": "lang"}, r"no column 'lang' for the language"),
    ],
)
def test_bad_column_mapping(mapping, message):
    raw = pa.table({"prompt": ["a"], "response": ["b"], "n": [1], "msgs": [["x"]]})
    spec = sources.SourceSpec.hub_dataset("o/d", language="nl", **mapping)
    if message is None:
        t, _ = sources.normalize(raw, spec)
        assert t["response"].to_pylist() == ["1"]
    else:
        with pytest.raises(sources.DataError, match=message):
            sources.normalize(raw, spec)


# --- filters ------------------------------------------------------------------------------------------------------
def test_language_filter_and_dedup():
    src = _source(ROWS)
    plain = filtered.apply_filters(src, filtered.FilterSpec(language="nl", dedup=False))
    assert plain.column_names == list(FILTERED_COLUMNS)
    assert plain.num_rows == 5 and set(plain["language_code"].to_pylist()) == {"nld"}
    dedup = filtered.apply_filters(src, filtered.FilterSpec(language="Dutch", dedup=True))
    prompts = dedup["prompt"].to_pylist()
    assert len(prompts) == 3  # "Hoe gaat het?" thrice (once with spaces) → once
    assert [p.strip() for p in prompts].count("Hoe gaat het?") == 1
    # the first occurrence is the one kept
    kept = dedup.filter(pa.compute.equal(dedup["prompt"], "Hoe gaat het?"))
    assert kept["response"].to_pylist() == ["Goed, dank je."]


def test_dedup_keeps_a_later_duplicate_when_the_first_is_filtered_out():
    src = _source(ROWS)
    spec = filtered.FilterSpec(language="nld", annotation_types=("re-annotations",), dedup=True)
    t = filtered.apply_filters(src, spec)
    assert t["response"].to_pylist() == ["Prima!"]  # "  Hoe gaat het?  " is the same prompt, dropped


def test_length_and_annotation_filters():
    src = _source(ROWS)

    def n(**kw):
        return filtered.apply_filters(src, filtered.FilterSpec(language="nld", dedup=False, **kw)).num_rows

    assert n(min_prompt_chars=5) == 4  # "Kort" (4) dropped
    assert n(max_prompt_chars=4) == 1
    assert n(min_response_chars=10) == 2  # "Goed, dank je.", "Een voertuig ..."
    assert n(max_response_chars=6) == 2  # "Prima!", "Ja"
    assert n(min_prompt_chars=13, max_prompt_chars=13) == 3  # "Hoe gaat het?" counted without surrounding spaces
    assert n(annotation_types=("re-annotations",)) == 2
    assert n(annotation_types=("original-annotations",), min_response_chars=10) == 2
    assert n(min_response_chars=10_000) == 0


def test_seeded_sample_is_reproducible_and_bounded():
    rows = [(f"vraag {i}", f"antwoord {i}", "Dutch", "nld") for i in range(200)]
    src = _source(rows)
    a = filtered.apply_filters(src, filtered.FilterSpec(language="nl", sample=20, seed=7))
    b = filtered.apply_filters(src, filtered.FilterSpec(language="nl", sample=20, seed=7))
    c = filtered.apply_filters(src, filtered.FilterSpec(language="nl", sample=20, seed=8))
    assert a.num_rows == 20 and a["id"].to_pylist() == b["id"].to_pylist()
    assert a["id"].to_pylist() != c["id"].to_pylist()
    assert len(set(a["id"].to_pylist())) == 20
    assert filtered.apply_filters(src, filtered.FilterSpec(language="nl", sample=500)).num_rows == 200


def test_bad_filters_and_unknown_language():
    src = _source(ROWS)
    with pytest.raises(sources.DataError, match="minimum prompt length .* is above the maximum"):
        filtered.apply_filters(src, filtered.FilterSpec(language="nl", min_prompt_chars=50, max_prompt_chars=10))
    with pytest.raises(sources.DataError, match="Did you mean: Dutch"):
        filtered.filter_source(src, filtered.FilterSpec(language="Dutsh"))
    with pytest.raises(sources.DataError, match="cannot be negative"):
        filtered.apply_filters(src, filtered.FilterSpec(language="nl", sample=-1))


def test_filtered_set_provenance_and_names():
    src = _source(ROWS)
    fs = filtered.filter_source(src, filtered.FilterSpec(language="arabic"))
    assert (fs.language, fs.language_code, fs.rows) == ("Standard Arabic", "arb", 1)
    assert fs.spec.language == "arb"
    assert fs.default_repo_name("alice") == "alice/y-arb"
    aya = sources.SourceInfo(sources.AYA_ID, "train", None, "apache-2.0", False, 1)
    assert (
        filtered.FilteredSet(fs.table, aya, fs.spec, "Standard Arabic", "arb").default_repo_name("bob") == "bob/aya-arb"
    )


def test_language_table():
    src = _source(ROWS)
    lt = src.language_table().to_pylist()
    assert [r["code"] for r in lt] == ["nld", "spa", "arb"]  # most rows first, then by name (Spanish < Standard)
    nld = lt[0]
    assert nld["rows"] == 5 and nld["language"] == "Dutch"
    prompts = ["Hoe gaat het?", "Wat is een fiets?", "Hoe gaat het?", "Hoe gaat het?", "Kort"]
    assert nld["mean_prompt_chars"] == round(sum(map(len, prompts)) / 5)


# --- demo data ----------------------------------------------------------------------------------------------------
def test_demo_data_ships_and_is_labelled():
    src = sources.demo_source()
    assert src.info.is_demo and "demo" in src.info.label.lower()
    assert src.table.num_rows >= 250
    codes = set(src.offsets)
    assert {"nld", "spa", "fra", "deu", "arb", "rus", "hin", "jpn", "plt", "yor"} <= codes
    for code in codes:  # every language has exactly one duplicate prompt for dedup to remove
        start, n, unique = src.offsets[code]
        assert n - unique == 1, code
    raw = [json.loads(line) for line in sources.DEMO_FILE.read_text(encoding="utf-8").splitlines()]
    assert set(raw[0]) == {"inputs", "targets", "language", "language_code", "annotation_type", "user_id"}
    fs = filtered.filter_source(src, filtered.FilterSpec(language="Dutch"))
    assert fs.is_demo and sources.DEMO_LABEL in fs.summary()
    assert fs.default_repo_name("alice") == "alice/demo-nld"


# --- card ---------------------------------------------------------------------------------------------------------
def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_filter_card_states_source_filters_rows_and_language():
    src = _source(ROWS)
    src.info = sources.SourceInfo(sources.AYA_ID, "train", None, "apache-2.0", False, src.table.num_rows)
    fs = filtered.filter_source(src, filtered.FilterSpec(language="nl", min_response_chars=3, sample=2, seed=5))
    card = filtered.filter_card(fs, "alice/aya-nld")
    meta = _front_matter(card)
    assert meta["language"] == ["nl"]
    assert meta["license"] == "apache-2.0"
    assert meta["source_datasets"] == [sources.AYA_ID]
    assert meta["size_categories"] == ["n<1K"]
    assert "demo" not in meta["tags"]
    assert f"[{sources.AYA_ID}](https://huggingface.co/datasets/{sources.AYA_ID}), split `train`" in card
    assert "- language: Dutch (`nld`)" in card
    assert "- response length at least 3 characters" in card
    assert "- random sample of at most 2 rows (seed 5)" in card
    assert "- duplicate prompts dropped (first kept)" in card
    assert "Rows: **2**" in card
    assert 'load_dataset("alice/aya-nld", split="train")' in card


def test_demo_card_says_demo():
    fs = filtered.filter_source(sources.demo_source(), filtered.FilterSpec(language="yo"))
    card = filtered.filter_card(fs)
    meta = _front_matter(card)
    assert "demo" in meta["tags"] and "source_datasets" not in meta
    assert "NOT from Aya" in card and sources.DEMO_LABEL in card
    assert meta["language"] == ["yo"]


def test_downloads_roundtrip(tmp_path):
    import pyarrow.parquet as pq

    fs = filtered.filter_source(sources.demo_source(), filtered.FilterSpec(language="ja"))
    p = filtered.write_parquet(fs.table, tmp_path / "a.parquet")
    j = filtered.write_jsonl(fs.table, tmp_path / "a.jsonl")
    assert pq.read_table(p).to_pylist() == fs.table.to_pylist()
    assert [json.loads(line) for line in j.read_text(encoding="utf-8").splitlines()] == fs.table.to_pylist()
    assert not list(tmp_path.glob("*.part"))
