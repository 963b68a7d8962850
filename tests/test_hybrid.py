"""Hybrid fusion: RRF and weighted score fusion on hand-computed cases, and bm25s + dense end to end."""

from __future__ import annotations

import pytest

from toolgym.retriever_contract import Document, Hit, Retriever
from toolgym.retrievers import build_retriever
from toolgym.retrievers.hybrid import HybridRetriever, normalize_scores, rrf_scores, weighted_scores


class FixedRanking:
    """A retriever that returns the same scored list for every query (to check fusion arithmetic)."""

    def __init__(self, scored: list[tuple[str, float]]):
        self.scored = scored
        self.asked_k: list[int] = []

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        self.asked_k.append(k)
        return [[Hit(d, s, f"title {d}", f"text {d}") for d, s in self.scored[:k]] for _ in queries]


def test_rrf_hand_computed():
    fused = rrf_scores([["a", "b", "c"], ["c", "a"]], weights=(1.0, 1.0), rrf_k=60)
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61})


def test_weighted_rrf_scales_each_list():
    fused = rrf_scores([["a"], ["b"]], weights=(0.25, 0.75), rrf_k=0)
    assert fused == pytest.approx({"a": 0.25, "b": 0.75})


def test_minmax_and_zscore_normalization():
    assert normalize_scores([2.0, 4.0, 3.0], "minmax") == pytest.approx([0.0, 1.0, 0.5])
    assert normalize_scores([5.0, 5.0], "minmax") == [1.0, 1.0]
    assert normalize_scores([1.0, 3.0], "zscore") == pytest.approx([-1.0, 1.0])  # mean 2, population std 1
    assert normalize_scores([7.0], "zscore") == [0.0]
    assert normalize_scores([], "minmax") == []
    with pytest.raises(ValueError, match="unknown normalization 'l2'"):
        normalize_scores([1.0], "l2")


def test_weighted_fusion_hand_computed_with_missing_documents():
    # first: a=10 -> 1.0, b=6 -> 0.0 ; second: c=0.9 -> 1.0, a=0.5 -> 0.2, d=0.4 -> 0.0 (min-max)
    fused = weighted_scores([[("a", 10.0), ("b", 6.0)], [("c", 0.9), ("a", 0.5), ("d", 0.4)]], (0.6, 0.4), "minmax")
    # b and d are each missing from one list and get that list's floor (0.0 under min-max)
    assert fused == pytest.approx({"a": 0.6 * 1.0 + 0.4 * 0.2, "b": 0.0, "c": 0.4 * 1.0, "d": 0.0})


def test_weighted_zscore_missing_documents_get_the_lists_lowest_score():
    fused = weighted_scores([[("a", 3.0), ("b", 1.0)], [("c", 2.0), ("d", 0.0)]], (1.0, 1.0), "zscore")
    assert fused == pytest.approx({"a": 1.0 - 1.0, "b": -1.0 - 1.0, "c": 1.0 - 1.0, "d": -1.0 - 1.0})


def test_hybrid_rrf_order_scores_and_text():
    first = FixedRanking([("a", 9.0), ("b", 8.0), ("c", 7.0)])
    second = FixedRanking([("c", 0.9), ("d", 0.8), ("a", 0.1)])
    hybrid = HybridRetriever(first, second, "rrf", weights=(1.0, 1.0))
    [hits] = hybrid.search(["q"], k=4)
    # a: 1/61 + 1/63, c: 1/63 + 1/61 (tie, broken by best rank: both rank 1 -> by id), b: 1/62, d: 1/62 (b first by id)
    assert [h.doc_id for h in hits] == ["a", "c", "b", "d"]
    assert hits[0].score == pytest.approx(1 / 61 + 1 / 63) and hits[2].score == pytest.approx(1 / 62)
    assert hits[3] == Hit("d", pytest.approx(1 / 62), "title d", "text d")


def test_equal_weights_give_standard_rrf_order():
    first = FixedRanking([("a", 3.0), ("b", 2.0), ("c", 1.0)])
    second = FixedRanking([("b", 3.0), ("c", 2.0), ("a", 1.0)])
    halves = HybridRetriever(first, second).search(["q"], k=3)[0]
    ones = HybridRetriever(first, second, weights=(1.0, 1.0)).search(["q"], k=3)[0]
    assert [h.doc_id for h in halves] == [h.doc_id for h in ones] == ["b", "a", "c"]


def test_hybrid_weighted_fusion_end_to_end():
    first = FixedRanking([("a", 10.0), ("b", 6.0)])
    second = FixedRanking([("c", 0.9), ("a", 0.5), ("d", 0.4)])
    [hits] = HybridRetriever(first, second, "weighted", weights=(0.6, 0.4)).search(["q"], k=2)
    assert [(h.doc_id, h.score) for h in hits] == [("a", pytest.approx(0.68)), ("c", pytest.approx(0.4))]


def test_depth_and_k():
    first, second = FixedRanking([("a", 1.0)]), FixedRanking([("b", 1.0)])
    hybrid = HybridRetriever(first, second, depth=7)
    hybrid.search(["q"], k=3)
    hybrid.search(["q"], k=20)
    assert first.asked_k == second.asked_k == [7, 20]
    assert hybrid.search(["q"], k=0) == [[]] and hybrid.search([], k=3) == []
    with pytest.raises(TypeError, match="list of strings"):
        hybrid.search("q", k=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fusion": "max"}, "unknown fusion"),
        ({"weights": (1.0,)}, "weights"),
        ({"weights": (-1.0, 1.0)}, "weights"),
        ({"depth": 0}, "depth"),
        ({"normalization": "l1"}, "unknown normalization"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HybridRetriever(FixedRanking([]), FixedRanking([]), **kwargs)


def test_bm25s_plus_minilm_by_name():
    documents = [
        Document("paris", "Paris", "Paris is the capital and largest city of France."),
        Document("spree", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
        Document("tea", "Tea", "Tea is an aromatic beverage made by pouring hot water over cured leaves."),
        Document("lyon", "Lyon", "Lyon is a city in France known for its cuisine."),
    ]
    hybrid = build_retriever(
        "hybrid",
        documents,
        first="bm25s",
        second="faiss",
        second_kwargs={"encoder": "st:minilm", "device": "cpu", "show_progress": False},
        depth=4,
    )
    queries = ["seat of the French government", "river through Berlin"]
    bm25_hits = hybrid.first.search(queries, 4)
    dense_hits = hybrid.second.search(queries, 4)
    results = hybrid.search(queries, k=2)
    assert isinstance(hybrid, Retriever)
    for hits, lexical, dense in zip(results, bm25_hits, dense_hits):
        expected = rrf_scores([[h.doc_id for h in lexical], [h.doc_id for h in dense]], (0.5, 0.5), 60)
        assert [h.doc_id for h in hits] == sorted(expected, key=lambda d: -expected[d])[:2]
    assert results[1][0].doc_id == "spree"


@pytest.mark.parametrize("backend", ["faiss", "hybrid"])
def test_search_env_runs_with_dense_backends_by_name(backend):
    from toolgym.envs.search.env import SearchEnv

    dense = {"encoder": "st:minilm", "device": "cpu", "show_progress": False}
    kwargs = dense if backend == "faiss" else {"second_kwargs": dense}
    env = SearchEnv(retriever=backend, retriever_kwargs=kwargs, n_entities=20, top_k=2)
    observation, info = env.reset(seed=0)
    question = observation[-1]["content"]
    _, _, terminated, _, info = env.step(f"<search>{question[:200]}</search>")
    assert not terminated and len(info["retrieved_doc_ids"]) == 2
