"""Unit tests of the pure aggregation and agreement functions (pipeline/agreement.py); figures computed by hand."""

from __future__ import annotations

import pytest

from pipeline.judge import agreement as ag
from pipeline.judge.agreement import Answer


@pytest.mark.parametrize(
    ("ratings", "candidates", "expected"),
    [
        ([5, 2], None, 0),
        ([2, 5], None, 1),
        ([4, 4], None, -1),
        ([3, 4, 4], None, -1),
        ([3, 5, 4], None, 1),
        ([None, 4], None, None),  # one rated: no preference
        ([None, None], None, None),
        ([5, 2, 4], [1, 2], 2),  # only the candidates count
        ([float("nan"), 3, 1], None, 1),
        ([4.5, 4.5 + 1e-12], None, -1),  # float noise is a tie
    ],
)
def test_preference_from_ratings(ratings, candidates, expected):
    assert ag.preference_from_ratings(ratings, candidates) == expected


def test_rating_margin():
    assert ag.rating_margin([5, 2]) == 3
    assert ag.rating_margin([3, 5, 4]) == 1
    assert ag.rating_margin([4, 4]) == 0
    assert ag.rating_margin([None, 4]) is None


def test_mean_ratings_aligned_with_responses():
    answers = [Answer("a", {0: 5, 1: 2}), Answer("b", {0: 4, 2: 3}), Answer("c", {5: 1})]  # 5: out of range
    assert ag.mean_ratings(answers, 3) == [4.5, 2.0, 3.0]
    assert ag.mean_ratings([], 2) == [None, None]


def test_majority_clear_and_unanimous():
    assert ag.majority_preference([1, 1, 0]) == (1, pytest.approx(2 / 3))
    assert ag.majority_preference([0]) == (0, 1.0)
    assert ag.majority_preference([-1, -1]) == (-1, 1.0)
    assert ag.majority_preference([]) == (None, None)
    assert ag.majority_preference([None, 2]) == (2, 1.0)


def test_majority_split_broken_by_mean_ratings():
    # 1:1 between responses 1 and 2; the mean ratings prefer 1, one of the leaders
    assert ag.majority_preference([2, 1], [2.5, 4.5, 4.0]) == (1, 0.5)
    # ratings prefer response 0, which nobody voted for: a tie
    assert ag.majority_preference([2, 1], [5, 3, 3]) == (-1, 0.5)
    # ratings tie between the leaders: a tie
    assert ag.majority_preference([2, 1], [1, 4, 4]) == (-1, 0.5)
    # "tie" against a response: the ratings decide
    assert ag.majority_preference([-1, 0], [4, 2]) == (0, 0.5)
    assert ag.majority_preference([-1, 0], [3, 3]) == (-1, 0.5)
    # no ratings at all
    assert ag.majority_preference([0, 1]) == (-1, 0.5)


def test_aggregate_answers_full_row():
    answers = [
        Answer("a", {0: 2, 1: 4, 2: 5}, preference=2, improved_response="rewrite by a"),
        Answer("b", {0: 3, 1: 5, 2: 3}, preference=1, improved_response="  "),
    ]
    row = ag.aggregate_answers(answers, 3)
    assert row == {
        "n_annotators": 2,
        "human_ratings": [2.5, 4.5, 4.0],
        "human_preference": 1,
        "agreement": 0.5,
        "improved_response": None,  # a rewrote response 2, not the final preference; b left it blank
    }


def test_aggregate_improved_response_from_the_majority_latest_first():
    answers = [
        Answer("a", {}, preference=0, improved_response="first", submitted_at=10.0),
        Answer("b", {}, preference=0, improved_response=" second ", submitted_at=20.0),
        Answer("c", {}, preference=1, improved_response="minority"),
    ]
    row = ag.aggregate_answers(answers, 2)
    assert row["human_preference"] == 0
    assert row["agreement"] == pytest.approx(2 / 3)
    assert row["improved_response"] == "second"
    # without timestamps: the last one in the given order
    no_time = [Answer("a", {}, 0, "x"), Answer("b", {}, 0, "y")]
    assert ag.aggregate_answers(no_time, 2)["improved_response"] == "y"


def test_aggregate_ignores_preferences_out_of_range():
    answers = [Answer("a", {0: 4, 1: 2}, preference=3), Answer("b", {0: 4, 1: 2}, preference=None)]
    row = ag.aggregate_answers(answers, 2)
    assert row["human_preference"] is None and row["agreement"] is None
    assert row["n_annotators"] == 2 and row["human_ratings"] == [4.0, 2.0]


def test_human_choice_falls_back_to_ratings():
    assert ag.human_choice(1, [5, 1]) == 1
    assert ag.human_choice(-1, [5, 1]) == -1
    assert ag.human_choice(None, [5, 1]) == 0
    assert ag.human_choice(None, [None, None]) is None
    assert ag.human_choice(float("nan"), [1, 5]) == 1


def test_cohens_kappa_by_hand():
    # p_o = 3/5; rater A: {0: 2, 1: 2, -1: 1}, rater B: {0: 3, 1: 2}; p_e = (2*3 + 2*2 + 1*0) / 25 = 10/25
    pairs = [(0, 0), (0, 0), (1, 1), (1, 0), (-1, 1)]
    assert ag.cohens_kappa(pairs) == pytest.approx((3 / 5 - 10 / 25) / (1 - 10 / 25))
    assert ag.cohens_kappa(pairs) == pytest.approx(1 / 3)


def test_cohens_kappa_edges():
    assert ag.cohens_kappa([]) is None
    assert ag.cohens_kappa([(0, 0), (0, 0)]) == 1.0  # chance agreement is 1: the documented convention
    assert ag.cohens_kappa([(0, 1), (0, 1)]) == 0.0  # p_e = 0, p_o = 0
    assert ag.cohens_kappa([(0, 1), (1, 0)]) == pytest.approx(-1.0)
    assert ag.cohens_kappa([(0, 0), (1, 1), (-1, -1)]) == pytest.approx(1.0)


def test_judge_human_agreement_outcomes():
    pairs = [(0, 0), (1, 1), (-1, -1), (0, 1), (-1, 0), (1, -1), (None, 0), (0, None)]
    result = ag.judge_human_agreement(pairs)
    assert result["rows"] == 6
    assert result["agree"] == 3
    assert result["share"] == pytest.approx(0.5)
    assert result["outcomes"] == {
        ag.OUTCOME_AGREE: 3,
        ag.OUTCOME_DISAGREE: 1,
        ag.OUTCOME_JUDGE_TIE: 1,
        ag.OUTCOME_HUMAN_TIE: 1,
    }
    # judge labels {0: 2, 1: 2, -1: 2}, human labels {0: 2, 1: 2, -1: 2}: p_e = 12/36, p_o = 3/6
    assert result["kappa"] == pytest.approx((0.5 - 1 / 3) / (1 - 1 / 3))
    empty = ag.judge_human_agreement([(None, 1)])
    assert empty["rows"] == 0 and empty["share"] is None and empty["kappa"] is None


def test_rating_difference():
    result = ag.rating_difference([([5, 2], [4.5, 2.5]), ([None, 3], [1, 4]), ([4], [None])])
    assert result == {"responses": 3, "mean_abs_diff": pytest.approx((0.5 + 0.5 + 1) / 3)}
    assert ag.rating_difference([]) == {"responses": 0, "mean_abs_diff": None}


def test_annotator_agreement_and_progress():
    rows = [
        {"n_annotators": 2, "agreement": 1.0},
        {"n_annotators": 3, "agreement": 2 / 3},
        {"n_annotators": 1, "agreement": 1.0},  # one person: not inter-annotator agreement
        {"n_annotators": 2, "agreement": None},
    ]
    result = ag.annotator_agreement(rows)
    assert result["records"] == 2 and result["unanimous"] == 1
    assert result["mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert ag.progress(10, 4, 3) == {"total": 10, "annotated": 4, "pending": 6, "share": 0.4, "completed": 3}
    assert ag.progress(0, 0)["share"] is None
