"""The Export step's rules, formats, split, numbers and card, on hand-built rows (no services)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from pipeline import export as ex
from pipeline.core import schema
from pipeline.core.schema import RunMeta


# --- builders ------------------------------------------------------------------------------------------------
def raw_row(
    rid: str,
    responses: list[str],
    ratings: list[int | None],
    *,
    prompt: str | None = None,
    match: list[bool | None] | None = None,
    langs: list[str | None] | None = None,
    status: str = schema.STATUS_OK,
    target: str = "nld",
    sources: list[str] | None = None,
    system_prompt: str = "Antwoord in het Nederlands.",
) -> dict:
    n = len(responses)
    return {
        "id": rid,
        "prompt": prompt if prompt is not None else f"Vraag {rid}?",
        "system_prompt": system_prompt,
        "target_language": target,
        "responses": responses,
        "response_sources": sources or ["human"] + [f"org/model-{k}" for k in range(1, n)],
        "ratings": ratings,
        "rationales": [None] * n,
        "detected_languages": langs or ["nld"] * n,
        "language_confidences": [0.9] * n,
        "language_match": match or [True] * n,
        "judge_model": "org/judge",
        "aspect": "overall-rating",
        "status": status,
        "error": "" if status == schema.STATUS_OK else "failed",
    }


def ann_row(rid: str, human_ratings, preference, *, n: int = 2, agreement: float = 1.0, improved=None) -> dict:
    return {
        "id": rid,
        "n_annotators": n,
        "human_ratings": human_ratings,
        "human_preference": preference,
        "agreement": agreement,
        "improved_response": improved,
    }


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows)


def annotations(rows: list[dict]) -> pa.Table:
    schema_ = pa.schema(
        [
            ("id", pa.string()),
            ("n_annotators", pa.int64()),
            ("human_ratings", pa.list_(pa.float64())),
            ("human_preference", pa.int64()),
            ("agreement", pa.float64()),
            ("improved_response", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema_)


def select(rows, anns=None, **rules):
    return ex.select_pairs(table(rows), annotations(anns) if anns else None, ex.ExportRules(**rules))


def only(sel: ex.Selection) -> ex.PreferencePair:
    assert len(sel.pairs) == 1, sel.pairs
    return sel.pairs[0]


FILLER = raw_row("filler", ["Goed antwoord.", "Slecht."], [5, 1], prompt="Een andere vraag?")


# --- the judge alone -----------------------------------------------------------------------------------------
def test_judge_two_responses_best_is_chosen():
    sel = select([raw_row("a", ["mens", "model"], [2, 4])])
    p = only(sel)
    assert (p.chosen, p.rejected) == ("model", "mens")
    assert (p.chosen_rating, p.rejected_rating, p.margin) == (4, 2, 2)
    assert (p.chosen_model, p.rejected_model) == ("org/model-1", "human")
    assert p.preference_source == "judge" and p.n_annotators == 0 and not p.tie
    assert sel.counts["kept"] == 1 and sel.counts["from_judge"] == 1


def test_three_responses_best_against_worst():
    p = only(select([raw_row("a", ["x", "y", "z"], [3, 5, 1])]))
    assert (p.chosen, p.rejected, p.margin) == ("y", "z", 4)


def test_all_pairs_option_gives_every_pair_above_the_margin():
    sel = select([raw_row("a", ["x", "y", "z"], [5, 4, 1])], pairing="all_pairs", min_margin=2)
    got = {(p.chosen, p.rejected) for p in sel.pairs}
    assert got == {("x", "z"), ("y", "z")}  # x>y has margin 1 < 2
    assert sel.counts["kept"] == 1 and sel.counts["pairs"] == 2 and sel.counts["margin"] == 0
    assert len({p.id for p in sel.pairs}) == 2 and all(p.id.startswith("a-") for p in sel.pairs)


def test_all_pairs_row_whose_every_pair_fails_is_counted_once():
    sel = select([raw_row("a", ["x", "y", "z"], [3, 2, 2]), FILLER], pairing="all_pairs", min_margin=2)
    assert sel.counts["margin"] == 1 and sel.counts["kept"] == 1


def test_ties_dropped_by_default_and_kept_with_the_flag():
    rows = [raw_row("t", ["mens", "model"], [4, 4]), FILLER]
    sel = select(rows)
    assert sel.counts["tie"] == 1 and [p.id for p in sel.pairs] == ["filler"]
    kept = select(rows, keep_ties=True)
    tie = next(p for p in kept.pairs if p.id == "t")
    assert tie.tie and (tie.chosen, tie.rejected) == ("mens", "model") and tie.margin == 0
    assert kept.counts["ties_kept"] == 1 and kept.counts["tie"] == 0


def test_kept_tie_still_needs_different_texts():
    sel = select([raw_row("t", ["zelfde", " zelfde "], [4, 4]), FILLER], keep_ties=True)
    assert sel.counts["identical"] == 1 and [p.id for p in sel.pairs] == ["filler"]


def test_margin_below_minimum_dropped():
    rows = [raw_row("m", ["a", "b"], [4, 3]), FILLER]
    assert select(rows, min_margin=2).counts["margin"] == 1
    assert select(rows, min_margin=1).counts["margin"] == 0


def test_min_chosen_rating():
    rows = [raw_row("low", ["a", "b"], [3, 1]), FILLER]
    sel = select(rows, min_chosen_rating=4)
    assert sel.counts["chosen_rating"] == 1 and [p.id for p in sel.pairs] == ["filler"]
    assert select(rows).counts["chosen_rating"] == 0


def test_language_mismatch_dropped_by_default_option_keeps_it():
    rows = [raw_row("en", ["mens", "English answer"], [2, 5], match=[True, False], langs=["nld", "eng"]), FILLER]
    sel = select(rows)
    assert sel.counts["language_mismatch"] == 1 and [p.id for p in sel.pairs] == ["filler"]
    kept = select(rows, drop_language_mismatch=False)
    p = next(p for p in kept.pairs if p.id == "en")
    assert p.chosen_language == "eng" and p.rejected_language == "nld"


def test_rejected_in_another_language_is_fine():
    p = only(select([raw_row("r", ["mens", "English"], [5, 2], match=[True, False])]))
    assert p.chosen == "mens"


def test_unsupported_language_kept_and_counted():
    rows = [raw_row("yo", ["ènìyàn", "àwòṣe"], [5, 2], match=[None, None], langs=[None, None], target="yor")]
    sel = select(rows)
    assert sel.counts["kept"] == 1 and sel.counts["language_unchecked"] == 1 and sel.counts["language_mismatch"] == 0


@pytest.mark.parametrize(
    "status,rule",
    [
        (schema.STATUS_GENERATION_FAILED, "generation_failed"),
        (schema.STATUS_JUDGE_FAILED, "judge_failed"),
        (schema.STATUS_JUDGE_UNPARSEABLE, "judge_failed"),
    ],
)
def test_failed_rows_dropped(status, rule):
    second = "" if status == schema.STATUS_GENERATION_FAILED else "model"
    sel = select([raw_row("f", ["mens", second], [None, None], status=status), FILLER])
    assert sel.counts[rule] == 1 and [p.id for p in sel.pairs] == ["filler"]


def test_unparseable_judge_with_human_answer_uses_the_humans():
    rows = [raw_row("h", ["mens", "model"], [None, None], status=schema.STATUS_JUDGE_UNPARSEABLE)]
    p = only(select(rows, [ann_row("h", [2.0, 4.5], 1)]))
    assert p.preference_source == "human" and p.chosen == "model" and p.margin == 2.5


def test_empty_responses_never_emitted():
    sel = select([raw_row("e", ["mens", "   "], [5, 1]), raw_row("p", ["a", "b"], [5, 1], prompt="  "), FILLER])
    assert sel.counts["too_few_responses"] == 1 and sel.counts["empty_prompt"] == 1
    # with three responses, the empty one is skipped and the other two make the pair
    p = only(select([raw_row("3", ["x", "", "z"], [4, 1, 2])]))
    assert (p.chosen, p.rejected) == ("x", "z")


def test_unrated_responses_skipped():
    p = only(select([raw_row("u", ["x", "y", "z"], [4, None, 2])]))
    assert (p.chosen, p.rejected) == ("x", "z")
    assert select([raw_row("u", ["x", "y"], [4, None]), FILLER]).counts["too_few_responses"] == 1


def test_duplicate_prompts_collapsed_keeping_human_then_margin():
    rows = [
        raw_row("a", ["x1", "y1"], [4, 3], prompt="Dezelfde  vraag?"),
        raw_row("b", ["x2", "y2"], [5, 1], prompt="Dezelfde vraag?"),
        raw_row("c", ["x3", "y3"], [5, 4], prompt=" Dezelfde vraag? "),
    ]
    sel = select(rows)
    assert [p.id for p in sel.pairs] == ["b"] and sel.counts["duplicate_prompt"] == 2
    with_human = select(rows, [ann_row("c", [5.0, 2.0], 0)])
    assert [p.id for p in with_human.pairs] == ["c"]
    assert len(select(rows, dedupe_prompts=False).pairs) == 3


def test_duplicate_ids_keep_the_first():
    rows = [raw_row("d", ["x", "y"], [5, 1]), raw_row("d", ["p", "q"], [1, 5], prompt="Anders?")]
    sel = select(rows)
    assert [p.chosen for p in sel.pairs] == ["x"] and sel.counts["duplicate_id"] == 1
    assert any("id" in note for note in sel.notes)


# --- human annotations ---------------------------------------------------------------------------------------
def test_human_preference_overrides_the_judge():
    p = only(select([raw_row("h", ["mens", "model"], [5, 2])], [ann_row("h", [3.0, 4.0], 1, n=3, agreement=0.67)]))
    assert (p.chosen, p.rejected) == ("model", "mens")
    assert p.preference_source == "human" and p.n_annotators == 3 and p.agreement == pytest.approx(0.67)
    assert (p.chosen_rating, p.rejected_rating, p.margin) == (4.0, 3.0, 1.0)


def test_human_tie_dropped_even_when_the_judge_prefers():
    sel = select([raw_row("h", ["mens", "model"], [5, 2]), FILLER], [ann_row("h", [4.0, 4.0], -1)])
    assert sel.counts["tie"] == 1


def test_judge_is_the_fallback_where_nobody_answered():
    rows = [raw_row("h", ["a", "b"], [5, 1]), raw_row("j", ["c", "d"], [1, 5])]
    anns = [ann_row("h", [1.0, 5.0], 1), ann_row("j", [None, None], None, n=0)]
    sel = select(rows, anns)
    by_id = {p.id: p for p in sel.pairs}
    assert by_id["h"].preference_source == "human" and by_id["h"].chosen == "b"
    assert by_id["j"].preference_source == "judge" and by_id["j"].chosen == "d"
    assert sel.counts["from_human"] == 1 and sel.counts["from_judge"] == 1


def test_unusable_human_answer_falls_back_to_the_judge():
    rows = [raw_row("p", ["a", "b"], [1, 5])]
    anns = [ann_row("p", [4.0, None], None, n=1)]  # one response rated, no vote: no pair from the humans
    p = only(select(rows, anns))
    assert p.preference_source == "judge" and p.chosen == "b"
    assert (
        select(rows + [FILLER], anns + [ann_row("filler", [5.0, 1.0], 0)], preference_source="human").counts[
            "too_few_responses"
        ]
        == 1
    )


def test_judge_only_ignores_annotations():
    p = only(select([raw_row("h", ["a", "b"], [5, 1])], [ann_row("h", [1.0, 5.0], 1)], preference_source="judge"))
    assert p.preference_source == "judge" and p.chosen == "a" and p.n_annotators == 0


def test_human_only_drops_rows_nobody_answered():
    rows = [raw_row("h", ["a", "b"], [5, 1]), raw_row("j", ["c", "d"], [1, 5])]
    sel = select(rows, [ann_row("h", [1.0, 5.0], 1)], preference_source="human")
    assert [p.id for p in sel.pairs] == ["h"] and sel.counts["no_human_answer"] == 1
    with pytest.raises(ex.ExportError, match="no human annotations"):
        select(rows, preference_source="human")


def test_human_ratings_without_stated_preference():
    p = only(select([raw_row("h", ["a", "b", "c"], [5, 4, 1])], [ann_row("h", [2.0, 4.5, 3.0], None)]))
    assert (p.chosen, p.rejected, p.margin) == ("b", "a", 2.5)


def test_human_preference_with_three_responses_rejects_the_humans_worst():
    p = only(select([raw_row("h", ["a", "b", "c"], [5, 4, 1])], [ann_row("h", [2.0, 5.0, 3.0], 1)]))
    assert (p.chosen, p.rejected) == ("b", "a")


def test_improved_response_option():
    rows = [raw_row("h", ["mens", "model"], [5, 2])]
    anns = [ann_row("h", [3.0, 4.0], 1, improved="Een beter antwoord.")]
    plain = only(select(rows, anns))
    assert plain.chosen == "model"
    p = only(select(rows, anns, use_improved_response=True))
    assert (p.chosen, p.rejected) == ("Een beter antwoord.", "model")
    assert p.chosen_model == ex.IMPROVED_SOURCE and p.rejected_model == "org/model-1" and p.margin is None
    all_pairs = select(rows, anns, use_improved_response=True, pairing="all_pairs")
    assert {(q.chosen, q.rejected) for q in all_pairs.pairs} == {("Een beter antwoord.", "model"), ("model", "mens")}
    assert all_pairs.counts["improved_used"] == 1


def test_improved_response_equal_to_the_original_is_ignored():
    rows = [raw_row("h", ["mens", "model"], [5, 2])]
    p = only(select(rows, [ann_row("h", [3.0, 4.0], 1, improved=" model ")], use_improved_response=True))
    assert (p.chosen, p.rejected) == ("model", "mens")


def test_rows_discarded_by_annotators():
    rows = [raw_row("d", ["a", "b"], [5, 1]), raw_row("k", ["c", "d"], [5, 1])]
    anns = [
        dict(ann_row("d", [None, None], None, n=0), n_discarded=2),
        dict(ann_row("k", [5.0, 1.0], 0, n=2), n_discarded=1),
    ]
    sel = ex.select_pairs(table(rows), pa.Table.from_pylist(anns))
    assert [p.id for p in sel.pairs] == ["k"] and sel.counts["discarded"] == 1
    kept = ex.select_pairs(table(rows), pa.Table.from_pylist(anns), ex.ExportRules(drop_discarded=False))
    assert [p.id for p in kept.pairs] == ["d", "k"] and kept.pairs[0].preference_source == "judge"


def test_annotation_problems_are_counted():
    rows = [raw_row("h", ["a", "b"], [5, 1])]
    anns = [ann_row("h", [5.0, 1.0], 0, n=1), ann_row("h", [1.0, 5.0], 1, n=3), ann_row("zz", [1.0, 2.0], 1)]
    sel = select(rows, anns)
    assert sel.counts["annotations_unmatched"] == 1 and sel.counts["annotations_duplicate"] == 1
    assert only(sel).chosen == "b"  # the annotation with 3 annotators wins


# --- bad input -----------------------------------------------------------------------------------------------
def test_every_row_dropped_says_which_rule_dropped_how_many():
    rows = [
        raw_row("t1", ["a", "b"], [3, 3]),
        raw_row("t2", ["c", "d"], [2, 2]),
        raw_row("l", ["e", "f"], [1, 5], match=[True, False]),
        raw_row("g", ["h", ""], [None, None], status=schema.STATUS_GENERATION_FAILED),
    ]
    with pytest.raises(ex.ExportError) as err:
        select(rows)
    msg = str(err.value)
    assert "Every row was dropped (4 in the input)" in msg
    assert "tie: 2" in msg and "chosen response not in the target language: 1" in msg
    assert "generation failed: 1" in msg and "keep ties" in msg


def test_mixed_languages_need_a_choice_then_the_rest_is_counted():
    rows = [
        raw_row("n", ["a", "b"], [5, 1]),
        raw_row("f", ["c", "d"], [5, 1], target="fra"),
        raw_row("f2", ["e", "g"], [5, 1], target="fra"),
    ]
    with pytest.raises(ex.ExportError, match=r"mixes 2 target languages: fra \(2 rows\), nld \(1 rows\)"):
        select(rows)
    sel = ex.select_pairs(table(rows), None, ex.ExportRules(), target_language="fra")
    assert [p.id for p in sel.pairs] == ["f", "f2"] and sel.counts["other_language"] == 1
    assert any("mixes target languages" in n for n in sel.notes)
    with pytest.raises(ex.ExportError, match="No row has target language 'deu'"):
        ex.select_pairs(table(rows), None, target_language="deu")


def test_missing_columns_are_named():
    t = table([raw_row("a", ["x", "y"], [5, 1])]).drop_columns(["ratings", "language_match"])
    with pytest.raises(ex.ExportError, match="lacks the columns ratings, language_match"):
        ex.select_pairs(t)
    bad_ann = pa.table({"id": ["a"], "human_preference": [1]})
    with pytest.raises(ex.ExportError, match="annotations table lacks the columns n_annotators, human_ratings"):
        ex.select_pairs(table([raw_row("a", ["x", "y"], [5, 1])]), bad_ann)


@pytest.mark.parametrize(
    "kwargs", [{"preference_source": "crowd"}, {"pairing": "some"}, {"min_margin": -1}, {"min_chosen_rating": 7}]
)
def test_bad_rules_refused(kwargs):
    with pytest.raises(ex.ExportError):
        ex.ExportRules(**kwargs)


# --- formats -------------------------------------------------------------------------------------------------
ROWS = [
    raw_row("a", ["Amsterdam.", "Parijs."], [5, 1], prompt="Wat is de hoofdstad van Nederland?"),
    raw_row("b", ["x", "y", "z"], [2, 5, 1], prompt="Noem een letter."),
]


def _roles(messages):
    return [m["role"] for m in messages]


def test_standard_format_structure():
    result = ex.build_export(table(ROWS), fmt="standard")
    rows = result.table.to_pylist()
    assert rows[0]["prompt"] == "Wat is de hoofdstad van Nederland?"
    assert (rows[0]["chosen"], rows[0]["rejected"]) == ("Amsterdam.", "Parijs.")
    assert result.table.column_names[:3] == ["prompt", "chosen", "rejected"]
    assert set(ex.EXTRA_COLUMNS) <= set(result.table.column_names)
    for row in rows:
        assert all(isinstance(row[k], str) and row[k].strip() for k in ("prompt", "chosen", "rejected"))
        assert not ex.is_conversational(row) and ex.check_trl_example(row, "standard") == []


@pytest.mark.parametrize("include_system", [False, True])
def test_conversational_format_structure(include_system):
    result = ex.build_export(table(ROWS), fmt="conversational", include_system=include_system)
    row = result.table.to_pylist()[0]
    expected_prompt = [{"role": "user", "content": "Wat is de hoofdstad van Nederland?"}]
    if include_system:
        expected_prompt.insert(0, {"role": "system", "content": "Antwoord in het Nederlands."})
    assert row["prompt"] == expected_prompt
    assert row["chosen"] == [{"role": "assistant", "content": "Amsterdam."}]
    assert row["rejected"] == [{"role": "assistant", "content": "Parijs."}]
    for row in result.table.to_pylist():
        assert ex.is_conversational(row) and ex.check_trl_example(row, "conversational") == []


@pytest.mark.parametrize("include_system", [False, True])
def test_recipe_format_structure_and_trl_extracts_the_conversational_form(include_system):
    recipe = ex.build_export(table(ROWS), fmt="recipe", include_system=include_system).table.to_pylist()
    conv = ex.build_export(table(ROWS), fmt="conversational", include_system=include_system).table.to_pylist()
    row = recipe[0]
    assert row["prompt"] == "Wat is de hoofdstad van Nederland?"
    assert _roles(row["chosen"]) == (["system"] if include_system else []) + ["user", "assistant"]
    assert row["chosen"][-2:] == [
        {"role": "user", "content": "Wat is de hoofdstad van Nederland?"},
        {"role": "assistant", "content": "Amsterdam."},
    ]
    for r, c in zip(recipe, conv):
        assert ex.check_trl_example(r, "recipe") == []
        extracted = ex.extract_prompt({k: r[k] for k in ("prompt", "chosen", "rejected")})
        assert extracted == {k: c[k] for k in ("prompt", "chosen", "rejected")}


@pytest.mark.parametrize(
    "example,fmt,problem",
    [
        ({"prompt": "p", "chosen": "a"}, "standard", "missing key 'rejected'"),
        ({"prompt": "p", "chosen": "a", "rejected": "a "}, "standard", "same text"),
        ({"prompt": " ", "chosen": "a", "rejected": "b"}, "standard", "prompt has an empty text"),
        (
            {
                "prompt": [{"role": "user", "content": "p"}],
                "chosen": [{"role": "user", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "conversational",
            "one assistant message",
        ),
        (
            {
                "prompt": [{"role": "assistant", "content": "p"}],
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "conversational",
            "prompt roles",
        ),
        (
            {
                "prompt": "p",
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            "conversational",
            "lists of messages",
        ),
        (
            {
                "prompt": "p",
                "chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": ""}],
                "rejected": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "b"}],
            },
            "recipe",
            "chosen has an empty text",
        ),
        (
            {
                "prompt": "p",
                "chosen": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "a"}],
                "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
            },
            "recipe",
            "share the same prompt",
        ),
    ],
)
def test_trl_check_catches_bad_examples(example, fmt, problem):
    assert any(problem in p for p in ex.check_trl_example(example, fmt))


def test_every_format_has_the_arrow_schema_datasets_reads():
    for fmt in ex.FORMATS:
        t = ex.build_export(table(ROWS), fmt=fmt).table
        assert t.schema == ex.output_schema(fmt)
        assert t.column("id").to_pylist() == ["a", "b"]


# --- split ---------------------------------------------------------------------------------------------------
def _many(n: int) -> list[dict]:
    return [raw_row(f"r{i}", [f"a{i}", f"b{i}", f"c{i}"], [5, 3, 1], prompt=f"Vraag {i}?") for i in range(n)]


def test_split_is_seeded_and_by_prompt():
    rows = _many(20)
    a = ex.build_export(table(rows), rules=ex.ExportRules(pairing="all_pairs"), test_size=0.25, seed=7)
    b = ex.build_export(table(rows), rules=ex.ExportRules(pairing="all_pairs"), test_size=0.25, seed=7)
    c = ex.build_export(table(rows), rules=ex.ExportRules(pairing="all_pairs"), test_size=0.25, seed=8)
    assert a.splits["test"].to_pylist() == b.splits["test"].to_pylist()
    ids = lambda r, s: {i.split("-")[0] for i in r.splits[s].column("id").to_pylist()}  # noqa: E731
    assert len(ids(a, "test")) == 5 and len(ids(a, "train")) == 15 and not ids(a, "test") & ids(a, "train")
    assert a.splits["test"].num_rows == 15  # 3 pairs per prompt stay together
    assert ids(a, "test") != ids(c, "test")
    assert ex.build_export(table(rows), test_size=3).splits["test"].num_rows == 3


@pytest.mark.parametrize("size", [20, 1.5, -0.1])
def test_bad_split_sizes(size):
    with pytest.raises(ex.ExportError):
        ex.build_export(table(_many(20)), test_size=size)


# --- numbers -------------------------------------------------------------------------------------------------
def test_agreement_hand_computed():
    rows = [raw_row(f"r{i}", ["a", "b"], judge) for i, judge in enumerate([[5, 1], [5, 1], [1, 5], [3, 3]])]
    # humans: 0, 1, 1, 0  — judge: 0, 0, 1, tie
    anns = [ann_row(f"r{i}", [None, None], pref) for i, pref in enumerate([0, 1, 1, 0])]
    ag = ex.select_pairs(table(rows), annotations(anns)).agreement
    assert ag["rows"] == 4 and ag["agree"] == 2 and ag["share"] == 0.5
    assert ag["outcomes"] == {
        "judge agrees": 2,
        "judge disagrees": 1,
        "judge says tie, humans do not": 1,
        "humans say tie, judge does not": 0,
    }
    # kappa: p_o = 0.5; humans {0:2, 1:2}, judge {0:2, 1:1, -1:1}: p_e = (2*2 + 2*1) / 16 = 0.375
    assert ag["kappa"] == pytest.approx((0.5 - 0.375) / (1 - 0.375))


# --- card ----------------------------------------------------------------------------------------------------
META = {
    "source_dataset": "CohereForAI/aya_dataset",
    "source_license": "apache-2.0",
    "language": "Dutch",
    "generator_models": ["org/model-1"],
    "judge_model": "org/judge",
    "system_prompt": "Antwoord in het Nederlands. ``` <script>alert(1)</script>",
}


def test_card_metadata():
    rows = [raw_row("a", ["x", "y"], [5, 1]), raw_row("b", ["p", "q"], [1, 5])]
    judge_only = ex.build_export(table(rows))
    md = ex.card_metadata(judge_only, META)
    assert md["language"] == ["nl"] and md["license"] == "apache-2.0"
    assert md["source_datasets"] == ["CohereForAI/aya_dataset"] and md["task_categories"] == ["text-generation"]
    assert {"dpo", "orpo", "distilabel", "dutch"} <= set(md["tags"]) and "argilla" not in md["tags"]
    assert md["size_categories"] == ["n<1K"]
    with_humans = ex.build_export(table(rows), annotations([ann_row("a", [5.0, 1.0], 0)]))
    assert "argilla" in ex.card_metadata(with_humans, META)["tags"]


def test_the_card_names_the_source_of_the_human_preferences():
    """Panel labels are one person's, in the app; Argilla's are annotators': the card says which, and how many."""
    rows = [raw_row("a", ["x", "y"], [5, 1]), raw_row("b", ["p", "q"], [1, 5])]
    with_humans = ex.build_export(table(rows), annotations([ann_row("a", [5.0, 1.0], 0)]))
    panel = ex.as_run_meta(META).replace(
        human_feedback=schema.HumanFeedback(panel_rows=1, panel_people=1, set_aside=11)
    )
    body = ex.card_body(with_humans, panel)
    assert "1 rows labelled by 1 person in DPO Studio&#x27;s judge-check panel" in body
    assert "Argilla" not in body and "11 panel label(s) were set aside" in body
    assert "argilla" not in ex.card_metadata(with_humans, panel)["tags"]
    argilla = ex.as_run_meta(META).replace(human_feedback=schema.HumanFeedback(argilla_rows=1, argilla_annotators=3))
    assert "1 rows answered in Argilla by 3 annotators" in ex.card_body(with_humans, argilla)
    assert "argilla" in ex.card_metadata(with_humans, argilla)["tags"]
    # the run's metadata keeps it through its JSON
    assert schema.RunMeta.from_dict(argilla.to_dict()).human_feedback == argilla.human_feedback


def test_card_body_says_how_it_was_made_and_how_to_load_it():
    rows = [raw_row("a", ["x", "y"], [5, 1]), raw_row("b", ["p", "q"], [1, 5]), raw_row("t", ["r", "s"], [3, 3])]
    result = ex.build_export(table(rows), fmt="conversational", test_size=1)
    body = ex.card_body(result, META, "alice/dutch-dpo")
    assert "CohereForAI/aya_dataset" in body and "apache-2.0" in body and "Dutch" in body
    assert "`org/model-1`" in body and "`org/judge`" in body
    assert "| Ties | dropped |" in body and "Tie (equal ratings, or annotators said tie) | 1 |" in body
    assert "| Rows kept | 2 |" in body
    assert (
        'load_dataset("alice/dutch-dpo")' in body and "DPOTrainer(" in body and 'eval_dataset=dataset["test"]' in body
    )
    # the system prompt is fenced with a fence longer than any backtick run inside it
    assert "````text\nAntwoord in het Nederlands. ``` <script>alert(1)</script>\n````" in body
    assert "hf_" not in body


def test_card_escapes_untrusted_model_names():
    rows = [raw_row("a", ["x", "y"], [5, 1], sources=["human", "<img src=x onerror=alert(1)>"])]
    body = ex.card_body(ex.build_export(table(rows)), {}, "alice/x")
    assert "<img" not in body and "&lt;img" in body


# --- files ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_files_round_trip(tmp_path, suffix):
    result = ex.build_export(table(ROWS), fmt="conversational", test_size=1)
    paths = ex.write_export(result, tmp_path / f"out{suffix}")
    assert set(paths) == {"train", "test"} and paths["test"].name == f"out-test{suffix}"
    for name, path in paths.items():
        back = ex.read_table(path)
        assert back.to_pylist() == result.splits[name].to_pylist()
    if suffix == ".jsonl":
        first = json.loads(paths["train"].read_text(encoding="utf-8").splitlines()[0])
        assert first["chosen"][0]["role"] == "assistant"


def test_read_table_errors(tmp_path):
    with pytest.raises(ex.ExportError, match="does not exist"):
        ex.read_table(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(ex.ExportError, match="line 2"):
        ex.read_table(bad)
    with pytest.raises(ex.ExportError, match="parquet or .jsonl"):
        ex.read_table(tmp_path / "x.csv")


def test_card_reads_the_pipelines_checkpoint_meta():
    meta = {
        "fingerprint": "abc",
        "settings": {
            "generators": [{"kind": "serverless", "model": "org/gen-a"}, {"model": "org/gen-b"}],
            "judge": {"model": "org/the-judge"},
            "system_prompt": "Wees kort.",
            "aspect": "honesty",
        },
        "source": {"dataset": "CohereForAI/aya_dataset", "license": "apache-2.0", "language": "Dutch"},
    }
    run = RunMeta.from_dict(meta)  # the older checkpoint shape: read by RunMeta.from_dict
    flat = {
        "source_dataset": run.source.dataset,
        "source_license": run.source.license,
        "language_name": run.language_name,
        "generator_models": run.models,
        "judge_model": run.judge_model,
        "system_prompt": run.system_prompt,
        "aspect": run.aspect,
    }
    assert flat == {
        "source_dataset": "CohereForAI/aya_dataset",
        "source_license": "apache-2.0",
        "language_name": "Dutch",
        "generator_models": ["org/gen-a", "org/gen-b"],
        "judge_model": "org/the-judge",
        "system_prompt": "Wees kort.",
        "aspect": "honesty",
    }
    result = ex.build_export(table([raw_row("a", ["x", "y"], [5, 1])]))
    body = ex.card_body(result, meta, "alice/x")
    assert "`org/gen-a`, `org/gen-b`" in body and "`org/the-judge`" in body and "Wees kort." in body
    assert ex.card_metadata(result, meta)["license"] == "apache-2.0"


def test_card_reads_the_session_raw_meta():
    # the shape pipeline.generate.recipe.build_raw_meta gave session.raw_meta before RunMeta
    raw_meta = {
        "models": ["org/gen-a"],
        "generators": [{"kind": "serverless", "model": "org/gen-a"}],
        "system_prompt": "Wees kort.",
        "judge": {"model": "org/the-judge"},
        "judge_model": "org/the-judge",
        "aspect": "overall-rating",
        "settings": {"generation": {"max_new_tokens": 512}},
        "source": {"dataset": "CohereForAI/aya_dataset", "split": "train", "license": "apache-2.0"},
        "license": "apache-2.0",
        "language": "Dutch",
        "language_code": "nld",
        "rows": 1,
        "counts": {"ok": 1},
    }
    run = RunMeta.from_dict(raw_meta)  # the dict the app wrote before RunMeta (dpo_studio.json of older pushes)
    flat = {
        "source_dataset": run.source.dataset,
        "source_license": run.source.license,
        "language_name": run.language_name,
        "generator_models": run.models,
        "judge_model": run.judge_model,
        "system_prompt": run.system_prompt,
        "aspect": run.aspect,
    }
    assert flat == {
        "source_dataset": "CohereForAI/aya_dataset",
        "source_license": "apache-2.0",
        "language_name": "Dutch",
        "generator_models": ["org/gen-a"],
        "judge_model": "org/the-judge",
        "system_prompt": "Wees kort.",
        "aspect": "overall-rating",
    }
    assert ex.default_repo_name("nld", raw_meta) == "aya-dutch-dpo" == ex.default_repo_name("nld", run)


def test_the_other_steps_typed_tables_export():
    """Raw results typed as the Pipeline writes them and annotations typed as the Argilla pull writes them."""
    from pipeline.generate import raw_schema

    rows = [
        raw_row("a", ["mens", "model"], [5, 2]),
        raw_row("u", ["ènìyàn", "àwòṣe"], [None, 4], match=[None, None], langs=[None, None]),
    ]
    raw = pa.Table.from_pylist(rows, schema=raw_schema())
    anns = [dict(ann_row("a", [2.0, 4.0], 1), judge_ratings=[5.0, 2.0], judge_preference=0, n_discarded=0)]
    ann = pa.Table.from_pylist(anns, schema=schema.ANNOTATION_SCHEMA)
    sel = ex.select_pairs(raw, ann)
    assert [(p.id, p.chosen, p.preference_source) for p in sel.pairs] == [("a", "model", "human")]
    assert sel.counts["too_few_responses"] == 1  # "u" has one rating only
    assert sel.agreement["rows"] == 1 and sel.agreement["agree"] == 0


def test_every_row_inconsistent_says_what_to_do():
    """A judge whose verdicts all flip with the order (SmolLM2 on the demo data): the message points to a better
    judge, the judge check, people, or keeping the inconsistent rows."""
    msg = ex.no_rows_message({"input": 11, "inconsistent": 11})
    assert "inconsistent" in msg.lower() and "stronger judge model" in msg and "judge check" in msg
    assert "keep inconsistent rows" in msg
