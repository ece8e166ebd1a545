"""Unit tests of pipeline/argilla_io.py parts that need no server: URLs, credentials, names, guidelines, the records
to send (order, mapping, metadata, suggestions) and the mapping of answers back to raw indices."""

from __future__ import annotations

from types import SimpleNamespace

import pyarrow as pa
import pytest

from pipeline import argilla as aio
from pipeline.core import languages, schema


def raw_row(rid: str, responses, ratings, **extra) -> dict:
    n = len(responses)
    row = {
        "id": rid, "prompt": f"prompt {rid}", "system_prompt": "", "target_language": "nld",
        "responses": responses, "response_sources": ["human"] + [f"org/model-{i}" for i in range(1, n)],
        "ratings": ratings, "rationales": [None] * n, "detected_languages": ["nld"] * n,
        "language_confidences": [0.9] * n, "language_match": [True] * n, "judge_model": "org/judge",
        "aspect": "overall-rating", "status": schema.STATUS_OK, "error": "",
    }  # fmt: skip
    row.update(extra)
    return row


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("https://owner-argilla.hf.space/", "https://owner-argilla.hf.space"),
        ("owner-argilla.hf.space", "https://owner-argilla.hf.space"),
        ("https://owner-argilla.hf.space/api/v1", "https://owner-argilla.hf.space"),
        ("https://owner-argilla.hf.space/datasets", "https://owner-argilla.hf.space"),
        ("https://owner-argilla.hf.space/dataset/0b1c/annotation-mode", "https://owner-argilla.hf.space"),
        ("https://huggingface.co/spaces/My_Org/argilla.v2", "https://my-org-argilla-v2.hf.space"),
        ("localhost:6900", "http://localhost:6900"),
        ("http://127.0.0.1:6900/", "http://127.0.0.1:6900"),
        ("https://example.org/argilla/", "https://example.org/argilla"),
        ("  ", ""),
    ],
)
def test_normalize_url(typed, expected):
    assert aio.normalize_url(typed) == expected


def test_credentials_override_then_secrets(monkeypatch):
    monkeypatch.delenv(aio.ENV_URL, raising=False)
    monkeypatch.delenv(aio.ENV_KEY, raising=False)
    with pytest.raises(aio.ArgillaIOError, match="No Argilla URL"):
        aio.resolve_credentials("", "k")
    with pytest.raises(aio.ArgillaIOError, match="No Argilla API key"):
        aio.resolve_credentials("https://a.hf.space", "")
    with pytest.raises(aio.ArgillaIOError, match="must start with https"):
        aio.resolve_credentials("ftp://a.example", "k")
    monkeypatch.setenv(aio.ENV_URL, "https://space-argilla.hf.space")
    monkeypatch.setenv(aio.ENV_KEY, "secret-from-space")
    assert aio.env_url() == "https://space-argilla.hf.space" and aio.env_key_set()
    assert aio.resolve_credentials(None, None) == ("https://space-argilla.hf.space", "secret-from-space")
    assert aio.resolve_credentials("https://mine.hf.space", "typed") == ("https://mine.hf.space", "typed")


def test_connection_repr_hides_the_client():
    conn = aio.Connection(url="u", username="alice", role="owner", client=SimpleNamespace(api_key="SECRET"))
    assert "SECRET" not in repr(conn)


def test_default_dataset_name():
    assert aio.default_dataset_name("Alice_B", "Dutch") == "dpo-dutch-alice-b"
    assert aio.default_dataset_name(None, "nld") == "dpo-nld"
    assert aio.default_dataset_name("bob", None) == "dpo-bob"


def test_language_names_have_one_owner():
    assert languages.display_name("nld") == "Dutch"
    assert languages.display_name("xx-bad") == "xx-bad"
    assert languages.display_name(None) == ""
    assert languages.label("nld") == "Dutch (nld)" and languages.label(None, "none") == "none"
    assert languages.hub_tag("nld") == "nl" and languages.hub_tag("plt") == "plt" and languages.hub_tag("") == ""


def test_guidelines_template_renders_placeholders():
    text = aio.render_guidelines("Dutch", 3, "org/judge")
    assert "Dutch" in text and "3 responses" in text and "org/judge" in text
    assert "$language" not in text and "$judge_model" not in text
    assert aio.render_guidelines(None)  # a generic text when the language is unknown
    assert aio.render_guidelines("X", template="Hello $language $unknown") == "Hello X $unknown"
    assert len(aio.render_guidelines("X", template="a" * 20000)) == aio.GUIDELINES_MAX_CHARS


def test_guidelines_come_in_the_language_when_a_template_exists():
    assert {"nld", "spa"} <= set(aio.guidelines_languages())
    dutch = aio.render_guidelines("Dutch", 3, "org/judge", code="nld")
    assert "Nederlands" in dutch and "3 antwoorden" in dutch and "org/judge" in dutch and "$" not in dutch
    assert "español" in aio.render_guidelines("Spanish", code="spa")
    english = aio.render_guidelines("Yoruba", 2, code="yor")  # no Yoruba template: the English one
    assert english == aio.render_guidelines("Yoruba", 2) and "Yoruba" in english
    assert aio.guidelines_path("../etc") == aio.GUIDELINES_TEMPLATE  # a code is never a path


def test_plan_records_shuffles_per_record_and_records_the_mapping():
    rows = [raw_row(f"r{i}", [f"human {i}", f"model {i}"], [5, 2]) for i in range(12)]
    plan = aio.plan_records(pa.Table.from_pylist(rows), seed=7)
    assert plan.n_slots == 2 and not plan.skipped and len(plan.records) == 12
    orders = [r.order for r in plan.records]
    assert [0, 1] in orders and [1, 0] in orders  # shuffled per record, not one order for all
    for planned, row in zip(plan.records, rows):
        for k, index in enumerate(planned.order, start=1):
            assert planned.fields[f"response_{k}"] == row["responses"][index]
            assert planned.metadata[f"source_index_{k}"] == index
            assert planned.metadata[f"judge_rating_{k}"] == row["ratings"][index]
            assert planned.suggestions[f"rating_{k}"] == row["ratings"][index]
        assert planned.metadata["order_seed"] == 7
    # the same seed gives the same order; keep_order gives the recipe's order
    assert [r.order for r in aio.plan_records(rows, seed=7).records] == orders
    assert all(r.order == [0, 1] for r in aio.plan_records(rows, keep_order=True).records)
    assert [r.order for r in aio.plan_records(rows, seed=8).records] != orders


def test_plan_records_metadata_and_skips():
    rows = [
        raw_row("a", ["h", "m1", "m2"], [3, 5, 4], detected_languages=["nld", "eng", None],
                language_confidences=[0.9, 0.8, None], language_match=[True, False, None]),
        raw_row("b", ["h", None], [None, None], status=schema.STATUS_GENERATION_FAILED),
        raw_row("c", ["h", "m"], [None, None], status=schema.STATUS_JUDGE_UNPARSEABLE),
        raw_row("d", ["h", "m1", "m2", "m3", "m4"], [1, 2, 3, 4, 5]),
        raw_row("", ["h", "m"], [1, 2]),
        raw_row("c", ["h", "m (rerun)"], [2, 4]),  # duplicate id: the last one wins
    ]  # fmt: skip
    plan = aio.plan_records(rows, keep_order=True, suggestions=False)
    assert [r.id for r in plan.records] == ["a", "d", "c"]
    assert plan.skipped == {aio.SKIP_FEW_RESPONSES: 1, aio.SKIP_NO_ID: 1, aio.SKIP_DUPLICATE: 1}
    assert plan.truncated == 1 and plan.n_slots == 4
    a, d, c = plan.records
    assert a.metadata["language_2"] == "eng" and a.metadata["language_3"] == "unknown"
    assert a.metadata["language_match_1"] == "yes" and a.metadata["language_match_2"] == "no"
    assert a.metadata["language_match_3"] == "unsupported" and a.metadata["all_in_language"] == "unknown"
    assert "language_confidence_3" not in a.metadata
    assert a.metadata["rating_margin"] == 1 and a.metadata["n_responses"] == 3 and a.metadata["raw_responses"] == 3
    assert a.metadata["generator_model"] == ["org/model-1", "org/model-2"]
    assert a.metadata["judge_model"] == "org/judge" and a.suggestions == {}
    assert d.order == [0, 1, 2, 3] and d.metadata["raw_responses"] == 5
    assert c.fields["response_2"] == "m (rerun)" and c.metadata["rating_margin"] == 2
    failed = aio.plan_records([raw_row("x", ["h", "m"], [None, None])]).records[0]
    assert "rating_margin" not in failed.metadata and "judge_rating_1" not in failed.metadata
    assert failed.suggestions == {} and failed.metadata["status"] == schema.STATUS_OK


def _response(user, status, **values):
    return SimpleNamespace(user_id=user, status=status, values={q: {"value": v} for q, v in values.items()})


def test_record_answers_map_slots_back_to_raw_indices():
    order = [2, 0, 1]  # response_1 shows raw 2, response_2 shows raw 0, response_3 shows raw 1
    responses = [
        _response("u1", "submitted", rating_1=5, rating_2=1, rating_3=3, preference="response_1",
                  improved_response="better"),
        _response("u2", SimpleNamespace(value="submitted"), rating_2=4, preference="tie"),
        _response("u3", "discarded"),
        _response("u4", "draft", rating_1=1, preference="response_2"),
        {"user_id": "u5", "status": "submitted", "values": {"preference": {"value": "response_9"}}},
    ]  # fmt: skip
    answers, discarded = aio.record_answers(responses, order, {"u1": "alice"})
    assert discarded == 1
    by_user = {a.user: a for a in answers}
    assert set(by_user) == {"alice", "u2", "u5"}  # drafts and discards are not answers
    assert by_user["alice"].ratings == {2: 5, 0: 1, 1: 3}
    assert by_user["alice"].preference == 2 and by_user["alice"].improved_response == "better"
    assert by_user["u2"].preference == -1 and by_user["u2"].ratings == {0: 4}
    assert by_user["u5"].preference is None  # a label that is not a shown response


def test_annotations_table_schema():
    table = schema.annotations_table([{"id": "a", "n_annotators": 1, "human_ratings": [4.0, None],
                                    "human_preference": 0, "agreement": 1.0, "improved_response": None,
                                    "judge_ratings": [5.0, 2.0], "judge_preference": 0, "n_discarded": 0}])  # fmt: skip
    assert table.column_names == [*schema.ANNOTATION_COLUMNS, *aio.EXTRA_ANNOTATION_COLUMNS]
    assert table.to_pylist()[0]["human_ratings"] == [4.0, None]
    assert schema.annotations_table([]).num_rows == 0
