"""The bm25s backend: ranking, awkward queries, persistence and the SciFact reference score."""

from __future__ import annotations

import json

import pytest

from toolgym.retriever_contract import Document, Retriever
from toolgym.retrievers import build_retriever
from toolgym.retrievers.bm25 import METADATA_FILE, BM25Retriever

DOCS = [
    Document("d1", "Paris", "Paris is the capital and largest city of France."),
    Document("d2", "Berlin", "Berlin is the capital of Germany, on the river Spree."),
    Document("d3", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
    Document("d4", "東京", "東京は日本の首都です。 Tokyo is the capital of Japan."),
]


@pytest.fixture(scope="module")
def retriever() -> BM25Retriever:
    return BM25Retriever(DOCS)


def test_build_retriever_returns_a_retriever():
    assert isinstance(build_retriever("bm25s", DOCS), Retriever)


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown retriever backend 'nope'"):
        build_retriever("nope", DOCS)


def test_ranking_puts_the_matching_document_first(retriever):
    [hits] = retriever.search(["capital of France"], k=2)
    assert hits[0].doc_id == "d1" and hits[0].title == "Paris" and hits[0].score > 0


def test_title_is_indexed(retriever):
    [hits] = retriever.search(["Spree"], k=1)
    assert hits[0].doc_id == "d3"  # "Spree" is the title of d3 and only a mention in d2


def test_stemming_matches_inflected_forms(retriever):
    [hits] = retriever.search(["flowing rivers"], k=1)
    assert hits[0].doc_id == "d3"


def test_batched_search_keeps_query_order(retriever):
    results = retriever.search(["Germany", "Japan"], k=1)
    assert [hits[0].doc_id for hits in results] == ["d2", "d4"]


@pytest.mark.parametrize("query", ["", "   ", "the of and", "zzqxv", "!!!", "\x00\ud800"])
def test_queries_without_known_tokens_return_no_hits(retriever, query):
    assert retriever.search([query], k=3) == [[]]


def test_k_larger_than_corpus_returns_only_matching_documents(retriever):
    [hits] = retriever.search(["capital"], k=1000)
    assert sorted(h.doc_id for h in hits) == ["d1", "d2", "d4"]


def test_zero_k_and_empty_batch(retriever):
    assert retriever.search(["capital"], k=0) == [[]]
    assert retriever.search([], k=3) == []


def test_unicode_query_finds_unicode_document(retriever):
    [hits] = retriever.search(["東京は日本の首都です"], k=1)
    assert hits[0].doc_id == "d4"


def test_single_string_instead_of_list_is_refused(retriever):
    with pytest.raises(TypeError, match="list of strings"):
        retriever.search("capital", k=1)


def test_empty_corpus_searches_to_nothing():
    assert BM25Retriever([]).search(["anything"], k=3) == [[]]


def test_corpus_without_an_indexable_token_searches_to_nothing(tmp_path):
    """bm25s drops stopwords and one-letter tokens; a corpus of only those has an empty vocabulary,
    which bm25s's own `index` cannot take (it raised "max() arg is an empty sequence")."""
    documents = [Document("a", "", ""), Document("b", "the", "a x")]
    retriever = BM25Retriever(documents)
    assert retriever.search(["the x", "river"], k=3) == [[], []]
    assert BM25Retriever.load(retriever.save(tmp_path / "index")).search(["river"], k=3) == [[]]


def test_save_load_round_trip(retriever, tmp_path):
    retriever.save(tmp_path / "index")
    loaded = BM25Retriever.load(tmp_path / "index")
    queries = ["capital of France", "river through Berlin", "Japan"]
    assert loaded.search(queries, k=3) == retriever.search(queries, k=3)
    assert loaded.params == retriever.params


def test_load_refuses_another_backend(retriever, tmp_path):
    retriever.save(tmp_path)
    metadata = json.loads((tmp_path / METADATA_FILE).read_text())
    (tmp_path / METADATA_FILE).write_text(json.dumps({**metadata, "backend": "faiss"}))
    with pytest.raises(ValueError, match="'faiss' index"):
        BM25Retriever.load(tmp_path)


def test_load_refuses_a_changed_corpus(retriever, tmp_path):
    retriever.save(tmp_path)
    documents = tmp_path / "documents.jsonl"
    documents.write_text(documents.read_text().replace("France", "Spain"))
    with pytest.raises(ValueError, match="checksum"):
        BM25Retriever.load(tmp_path)
