"""Rerank stage mechanics with tiny random cross-encoders (order follows the model, batching, depth).

The models are random, so these tests check plumbing, not quality: reranking quality needs a
trained cross-encoder, which the retriever-training work will provide.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_bert import make_tiny_bert

from toolgym.retriever_contract import Document
from toolgym.retrievers import build_retriever
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.rerank import (
    RerankRetriever,
    SequenceClassificationReranker,
    load_reranker,
    passage_text,
)

DOCUMENTS = [Document(f"d{i}", f"river {i}", f"the river number {i} flows {'far ' * i}to the sea") for i in range(12)]
QUERIES = ["river flows to the sea", "river number 3"]


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("ce"), seed=3, num_labels=1)


@pytest.fixture(scope="module")
def reranker(cross_encoder_dir):
    return load_reranker(f"hf:{cross_encoder_dir}", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def base():
    return BM25Retriever(DOCUMENTS)


def count_forward_batches(model) -> list[int]:
    """Record the batch size of every forward pass of `model`."""
    sizes: list[int] = []
    model.register_forward_hook(
        lambda module, args, kwargs, output: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    return sizes


def test_order_follows_the_models_scores(base, reranker):
    reranked = RerankRetriever(base, reranker, depth=6).search(QUERIES, k=6)
    for query, hits, base_hits in zip(QUERIES, reranked, base.search(QUERIES, 6)):
        expected = reranker.score([(query, passage_text(h)) for h in base_hits])
        assert {h.doc_id for h in hits} == {h.doc_id for h in base_hits}  # same head, new order
        assert [h.score for h in hits] == pytest.approx(sorted(expected.tolist(), reverse=True), abs=1e-5)
    assert any([h.doc_id for h in r] != [h.doc_id for h in b] for r, b in zip(reranked, base.search(QUERIES, 6)))


def test_pairs_are_scored_in_batches_across_queries(base, cross_encoder_dir):
    reranker = SequenceClassificationReranker(str(cross_encoder_dir), device="cpu", batch_size=5)
    sizes = count_forward_batches(reranker.model)
    RerankRetriever(base, reranker, depth=4).search(QUERIES, k=2)
    assert sizes == [5, 3]  # 2 queries x depth 4 = 8 pairs in one pooled list


def test_depth_bounds_the_candidates_and_k_above_depth_reranks_k(base, reranker):
    [shallow] = RerankRetriever(base, reranker, depth=3).search(QUERIES[:1], k=2)
    [deep] = RerankRetriever(base, reranker, depth=2).search(QUERIES[:1], k=5)
    [base_hits] = base.search(QUERIES[:1], 5)
    assert {h.doc_id for h in shallow} <= {h.doc_id for h in base_hits[:3]} and len(shallow) == 2
    assert {h.doc_id for h in deep} == {h.doc_id for h in base_hits} and len(deep) == 5


def test_sentence_transformers_cross_encoder_ranks_like_the_hf_model(base, cross_encoder_dir, reranker):
    """The ce: backend applies a sigmoid to the same logit: different scores, identical order."""
    ce = load_reranker(f"ce:{cross_encoder_dir}", device="cpu", batch_size=4)
    with_ce = RerankRetriever(base, ce, depth=8).search(QUERIES, k=8)
    with_hf = RerankRetriever(base, reranker, depth=8).search(QUERIES, k=8)
    assert [[h.doc_id for h in hits] for hits in with_ce] == [[h.doc_id for h in hits] for hits in with_hf]
    assert all(0.0 < h.score < 1.0 for hits in with_ce for h in hits)


def test_two_label_model_scores_yes_minus_no(tmp_path):
    reranker = load_reranker(f"hf:{make_tiny_bert(tmp_path, seed=4, num_labels=2)}", device="cpu")
    pairs = [("river", "a river"), ("river", "a mountain")]
    encoded = reranker.tokenizer([q for q, _ in pairs], [p for _, p in pairs], padding=True, return_tensors="pt")
    logits = reranker.model(**encoded).logits.detach().numpy()
    np.testing.assert_allclose(reranker.score(pairs), logits[:, 1] - logits[:, 0], atol=1e-5)


def test_build_retriever_rerank_option(cross_encoder_dir):
    retriever = build_retriever(
        "bm25s", DOCUMENTS, rerank=load_reranker(f"hf:{cross_encoder_dir}", device="cpu"), rerank_depth=5
    )
    assert isinstance(retriever, RerankRetriever) and retriever.depth == 5
    assert len(retriever.search(QUERIES, k=3)[0]) == 3


def test_awkward_calls_and_bad_specs(base, reranker, tmp_path):
    stage = RerankRetriever(base, reranker)
    assert stage.search(["zzqxv unknown words"], k=3) == [[]]  # the base found nothing: nothing to score
    assert stage.search([], k=3) == [] and stage.search(QUERIES, k=0) == [[], []]
    with pytest.raises(TypeError, match="list of strings"):
        stage.search("river", k=1)
    with pytest.raises(ValueError, match="reranker spec"):
        load_reranker("cross:model")
    with pytest.raises(ValueError, match="3 labels"):
        load_reranker(f"hf:{make_tiny_bert(tmp_path, num_labels=3)}", device="cpu")
    with pytest.raises(ValueError, match="depth"):
        RerankRetriever(base, reranker, depth=0)


def test_lone_surrogates_in_queries_and_passages_are_scored(reranker):
    """HF tokenizers refuse lone surrogates; the reranker scores them as U+FFFD instead of raising."""
    scores = reranker.score([("\ud800 river", "a river\udfff"), ("\ufffd river", "a river\ufffd")])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)


def test_a_query_longer_than_max_length_is_truncated_not_an_error(cross_encoder_dir):
    """Truncating only the passage fails when the query alone fills max_length; both sides are cut instead."""
    reranker = load_reranker(f"hf:{cross_encoder_dir}", device="cpu", max_length=16)
    scores = reranker.score([(" ".join(["question"] * 40), "a short passage"), ("short", "passage")])
    assert scores.shape == (2,) and np.isfinite(scores).all()
