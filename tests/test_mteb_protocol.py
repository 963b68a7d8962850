"""MTEB's search protocol over our retrievers, on a generated BEIR folder (no Hub), cross-checked with pytrec_eval."""

from __future__ import annotations

import json
import random

import pytest

from toolgym.retrievers import build_retriever
from toolgym.retrievers.mteb_protocol import (
    MTEBSearchAdapter,
    evaluate_with_mteb,
    local_beir_task,
    read_beir_folder,
)

pytest.importorskip("mteb")
pytrec_eval = pytest.importorskip("pytrec_eval")

WORDS = [f"w{i}" for i in range(400)]


def write_beir_folder(folder, n_docs: int = 300, n_queries: int = 40, seed: int = 0):
    """A BEIR-format task: random-word documents; each query copies words from 1-2 relevant docs."""
    rng = random.Random(seed)
    (folder / "qrels").mkdir(parents=True)
    docs = {f"doc{i}": " ".join(rng.choices(WORDS, k=25)) for i in range(n_docs)}
    with open(folder / "corpus.jsonl", "w") as handle:
        for doc_id, text in docs.items():
            handle.write(json.dumps({"_id": doc_id, "title": f"t{doc_id[3:]}", "text": text}) + "\n")
    lines, queries = ["query-id\tcorpus-id\tscore"], []
    for q in range(n_queries):
        relevant = rng.sample(sorted(docs), k=rng.choice([1, 2]))
        words = [w for doc_id in relevant for w in rng.sample(docs[doc_id].split(), k=3)]
        queries.append({"_id": f"q{q}", "text": " ".join(words + rng.choices(WORDS, k=2))})
        lines += [f"q{q}\t{doc_id}\t{grade}" for doc_id, grade in zip(relevant, (2, 1))]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(q) + "\n" for q in queries) + '{"_id": "unjudged", "text": "w1"}\n'
    )
    (folder / "qrels" / "test.tsv").write_text("\r\n".join(lines) + "\r\n")  # CRLF, as in the BEIR zip
    return folder


@pytest.fixture(scope="module")
def beir_folder(tmp_path_factory):
    return write_beir_folder(tmp_path_factory.mktemp("beir") / "tiny_task")


def pytrec_ndcg_at_10(folder) -> float:
    documents, queries, qrels = read_beir_folder(folder)
    retriever = build_retriever("bm25s", documents)
    query_ids = list(queries)
    hits = retriever.search([queries[q] for q in query_ids], k=1000)
    run = {q: {h.doc_id: h.score for h in row} for q, row in zip(query_ids, hits)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return sum(per_query[q]["ndcg_cut_10"] for q in qrels) / len(qrels)


def test_read_beir_folder_keeps_only_judged_queries(beir_folder):
    documents, queries, qrels = read_beir_folder(beir_folder)
    assert len(documents) == 300 and documents[0].title == "t0"
    assert sorted(queries) == sorted(qrels) and "unjudged" not in queries


def test_mteb_ndcg_matches_pytrec_eval_on_our_run(beir_folder):
    adapter = MTEBSearchAdapter(factory=lambda docs: build_retriever("bm25s", docs), name="toolgym/bm25s")
    scores = evaluate_with_mteb(adapter, local_beir_task(beir_folder))
    expected = pytrec_ndcg_at_10(beir_folder)
    assert 0.3 < expected < 1.0  # a task with room either way, so agreement means something
    assert scores["ndcg_at_10"] == pytest.approx(expected, abs=1e-4)  # mteb rounds to 5 decimals
    assert scores["main_score"] == scores["ndcg_at_10"]


def test_an_already_built_retriever_must_index_the_tasks_corpus(beir_folder):
    documents, _, _ = read_beir_folder(beir_folder)
    adapter = MTEBSearchAdapter(build_retriever("bm25s", documents[:10]), name="toolgym/bm25s")
    with pytest.raises(ValueError, match="indexes 10 documents but the task's corpus has 300"):
        evaluate_with_mteb(adapter, local_beir_task(beir_folder))


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        MTEBSearchAdapter()
    with pytest.raises(ValueError, match="organization/model"):
        MTEBSearchAdapter(factory=lambda docs: None, name="bm25s")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        local_beir_task(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match=r"corpus\.jsonl is missing"):
        read_beir_folder(tmp_path / "half")


@pytest.mark.slow
def test_scifact_bm25s_through_mteb(shared_data):
    """bm25s on BEIR SciFact scored by mteb: 0.676 by our own pytrec_eval run (docs/benchmarks.md)."""
    adapter = MTEBSearchAdapter(factory=lambda docs: build_retriever("bm25s", docs), name="toolgym/bm25s")
    scores = evaluate_with_mteb(adapter, local_beir_task(shared_data / "beir_scifact"))
    assert scores["ndcg_at_10"] == pytest.approx(0.676, abs=0.002)
