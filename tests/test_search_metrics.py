"""Golden cases for the QA scorers.

Expected values were computed with hotpotqa/hotpot's hotpot_evaluate_v1.py (commit 4c0fa5ea)
`normalize_answer` / `f1_score` / `exact_match_score` / `update_sp` on the same inputs.
"""

from __future__ import annotations

import pytest

from toolgym.envs.search.scoring import (
    answer_in_text,
    answer_scores,
    best_f1,
    exact_match_score,
    f1_score,
    normalize_answer,
    sub_exact_match_score,
    supporting_facts_scores,
    supporting_recall,
)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The  Quick, Brown fox!", "quick brown fox"),  # article, punctuation, spaces
        ("An apple a day", "apple day"),
        ("Theater", "theater"),  # articles only as whole words
        ("1928 – 2014", "1928 – 2014"),  # only ASCII punctuation is removed
    ],
)
def test_normalize_answer_matches_hotpotqa(text, normalized):
    assert normalize_answer(text) == normalized


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        ("the cat sat", "cat sat down", (0.8, 1.0, 2 / 3)),  # partial overlap
        ("x y y", "y y z", (2 / 3, 2 / 3, 2 / 3)),  # repeated tokens count as a multiset
        ("Columbus, Ohio", "Columbus", (2 / 3, 0.5, 1.0)),
        ("1928 – 2014", "1928 2014", (0.8, 2 / 3, 1.0)),
        ("yes sir", "yes", (0.0, 0.0, 0.0)),  # the yes/no rule: no partial credit against "yes"
        ("yes", "no", (0.0, 0.0, 0.0)),
        ("noanswer", "no answer", (0.0, 0.0, 0.0)),
        ("Yes.", "yes", (1.0, 1.0, 1.0)),
    ],
)
def test_f1_score_matches_hotpotqa(prediction, gold, expected):
    assert f1_score(prediction, gold) == pytest.approx(expected)


def test_exact_match_ignores_case_articles_and_punctuation():
    assert exact_match_score("The Chief of Protocol.", "chief of protocol")
    assert not exact_match_score("Chief of Protocol of the United States", "Chief of Protocol")


def test_best_alias_scores_take_the_maximum():
    scores = answer_scores("December 1972", ["14 December 1972 UTC", "December 1972"])
    assert scores == {"em": 1.0, "f1": 1.0, "subem": 1.0}
    assert best_f1("December", ["14 December 1972 UTC", "December 1972"]) == pytest.approx(2 / 3)


def test_missing_prediction_scores_zero():
    assert answer_scores(None, ["Paris"]) == {"em": 0.0, "f1": 0.0, "subem": 0.0}


def test_sub_exact_match_is_containment_of_the_gold():
    assert sub_exact_match_score("It is the city of Paris.", "Paris")
    assert not sub_exact_match_score("Paris", "Paris, France")


def test_answer_in_text_needs_whole_tokens():
    assert answer_in_text("Born in 1972 in Paris.", ["paris"])
    assert not answer_in_text("Born in 1972.", ["197"])


def test_supporting_recall_is_the_fraction_of_gold_docs_seen():
    assert supporting_recall(["a", "x", "a"], ["a", "b"]) == 0.5


def test_supporting_facts_scores_match_update_sp():
    scores = supporting_facts_scores([["A", 0], ["B", 1]], [["A", 0], ["C", 2]])
    assert scores == {"sp_em": 0.0, "sp_f1": 0.5, "sp_prec": 0.5, "sp_recall": 0.5}
    assert supporting_facts_scores([["A", 0]], [("A", 0)])["sp_em"] == 1.0
