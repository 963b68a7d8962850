"""Retrieval evaluation: pytrec_eval metrics against hand-computed values, BEIR files, HotpotQA, the CLI."""

from __future__ import annotations

import argparse
import json
import math

import pytest

from toolgym.evals.retrieval import evaluate_hotpotqa
from toolgym.evals.retrieval_cli import add_eval_retrieval_command
from toolgym.retriever_contract import Document, Hit
from toolgym.retrievers.evaluation import (
    evaluate_retriever,
    evaluate_run,
    read_qrels,
    read_queries,
    run_queries,
)


class FixedRankings:
    """A retriever whose rankings are written down in the test, so every metric can be done by hand."""

    def __init__(self, rankings: dict[str, list[str]]):
        self.rankings = rankings

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        return [[Hit(d, 1.0, d, "") for d in self.rankings.get(q, [])[:k]] for q in queries]


QUERIES = {"q1": "first", "q2": "second", "q3": "third", "q4": "only non-relevant judged"}
QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 2}, "q3": {"d": 1}, "q4": {"e": 0}}
# q1 finds a at rank 2 and b at rank 4; q2 finds c first; q3 finds nothing; q4 has no relevant doc.
# Equal backend scores on purpose: ranks must come from the list order, not from trec_eval's tie-break.
RANKINGS = {"first": ["x", "a", "y", "b"], "second": ["c", "z"], "third": [], "only non-relevant judged": ["e"]}


def test_metrics_match_hand_computed_values():
    report = evaluate_retriever(FixedRankings(RANKINGS), QUERIES, QRELS, ks=(1, 3))
    ndcg3_q1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # one relevant at rank 2 of two relevant
    expected = {
        "ndcg@1": (0 + 1 + 0) / 3,
        "ndcg@3": (ndcg3_q1 + 1 + 0) / 3,
        "recall@1": (0 + 1 + 0) / 3,
        "recall@3": (0.5 + 1 + 0) / 3,
        "map@1": (0 + 1 + 0) / 3,
        "map@3": ((1 / 2) / 2 + 1 + 0) / 3,  # AP@3 of q1: precision 1/2 at a, over 2 relevant
        "mrr@10": (1 / 2 + 1 + 0) / 3,
    }
    assert report.n_queries == 3  # q4 has no relevant document: not judged
    assert report.metrics == pytest.approx(expected, abs=1e-9)


def test_run_keeps_the_retrievers_order_and_first_duplicate():
    class Duplicates:
        def search(self, queries, k):
            return [[Hit("a", 5.0, "", ""), Hit("b", 9.0, "", ""), Hit("a", 1.0, "", "")] for _ in queries]

    assert run_queries(Duplicates(), {"q": "x"}, k=10) == {"q": {"a": 2.0, "b": 1.0}}


def test_cutoffs_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        evaluate_run({}, QRELS, ks=(0,))


def test_qrels_without_matching_queries_is_a_clear_error():
    with pytest.raises(ValueError, match="same dataset"):
        evaluate_retriever(FixedRankings({}), {"other": "x"}, QRELS)


def test_read_beir_and_trec_files(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"_id": "1", "text": "alpha"}\n\n{"id": 2, "text": "béta"}\n', "utf-8")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n2\td3\t2\n")
    (tmp_path / "qrels.trec").write_text("1 0 d1 1\n2 0 d3 2\n")
    assert read_queries(tmp_path / "q.jsonl") == {"1": "alpha", "2": "béta"}
    assert read_qrels(tmp_path / "qrels.tsv") == {"1": {"d1": 1, "d2": 0}, "2": {"d3": 2}}
    assert read_qrels(tmp_path / "qrels.trec") == {"1": {"d1": 1}, "2": {"d3": 2}}


def test_bad_files_name_the_problem(tmp_path):
    (tmp_path / "q.jsonl").write_text('{"_id": "1"}\n')
    (tmp_path / "bad.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\thigh\n")
    with pytest.raises(ValueError, match=r"q.jsonl:1: a query needs"):
        read_queries(tmp_path / "q.jsonl")
    with pytest.raises(ValueError, match=r"bad.tsv:2: relevance 'high'"):
        read_qrels(tmp_path / "bad.tsv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_qrels(tmp_path / "missing.tsv")


def _ircot_row(question_id: str, question: str, paragraphs: list[tuple[str, str, bool]]) -> dict:
    return {
        "question_id": question_id,
        "question_text": question,
        "answers_objects": [{"spans": ["x"]}],
        "contexts": [{"title": t, "paragraph_text": p, "is_supporting": s} for t, p, s in paragraphs],
    }


def test_hotpotqa_supporting_recall_on_a_hand_made_case():
    rows = [
        _ircot_row("h1", "Where was the composer of Ode born?", [
            ("Ode", "Ode is a song by the composer Arvo Lind.", True),
            ("Arvo Lind", "Arvo Lind was born in Tartu.", True),
            ("Tartu", "Tartu is a city.", False),
        ]),
        _ircot_row("h2", "Which river flows through Tartu?", [
            ("Emajõgi", "The Emajõgi flows through Tartu.", True),
            ("Tartu", "Tartu is a city.", False),  # shared title: one document in the shared corpus
        ]),
    ]  # fmt: skip
    rankings = {
        "Where was the composer of Ode born?": ["Ode", "Tartu", "Arvo Lind"],
        "Which river flows through Tartu?": ["Tartu", "Emajõgi"],
    }
    report = evaluate_hotpotqa(rows, FixedRankings(rankings), ks=(1, 2, 3))
    assert report.extra["n_documents"] == 4
    assert report.metrics["recall@1"] == pytest.approx((1 / 2 + 0) / 2)
    assert report.metrics["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert report.metrics["recall@3"] == pytest.approx(1.0)
    assert report.metrics["all_supporting@2"] == pytest.approx(1 / 2)
    for k in (1, 2, 3):
        assert report.metrics[f"supporting_recall@{k}"] == pytest.approx(report.metrics[f"recall@{k}"])


def test_hotpotqa_bm25s_on_the_ircot_dev_set(shared_data):
    """IRCoT dev 500, shared corpus of 4,858 paragraphs, bm25s: recall@10 0.906 and recall@2 0.583
    measured when written (with the supporting recall Search-v0 reports agreeing)."""
    from toolgym.envs.search.loaders import load_rows

    report = evaluate_hotpotqa(load_rows("hotpotqa"), ks=(2, 10))
    assert report.n_queries == 500 and report.extra["n_documents"] == 4858
    assert report.metrics["recall@10"] == pytest.approx(0.906, abs=0.01)
    assert report.metrics["recall@2"] == pytest.approx(0.583, abs=0.01)
    assert report.metrics["supporting_recall@10"] == pytest.approx(report.metrics["recall@10"])


# --- the CLI -------------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="toolgym eval")
    add_eval_retrieval_command(parser.add_subparsers())
    args = parser.parse_args(["retrieval", *argv])
    return args.handler(args)


def test_cli_scifact_bm25s_reaches_the_reference(shared_data, tmp_path, capsys):
    """BEIR SciFact test, bm25s title+text k1=0.9 b=0.4: nDCG@10 0.676 (shared/data/README.md);
    Anserini's flat BM25 0.6789."""
    folder = shared_data / "beir_scifact"
    out = tmp_path / "scifact.json"
    code = run_cli(
        "--corpus", str(folder), "--backend", "bm25s", "--queries", str(folder / "queries.jsonl"),
        "--qrels", str(folder / "qrels" / "test.tsv"), "--k", "10", "100", "--out", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert code == 0 and "ndcg@10" in capsys.readouterr().out
    assert report["n_queries"] == 300
    assert report["metrics"]["ndcg@10"] == pytest.approx(0.676, abs=0.003)
    assert report["metrics"]["recall@100"] > report["metrics"]["recall@10"] > 0.75


@pytest.fixture
def tiny_beir(tmp_path):
    docs = [Document("d1", "Paris", "capital of France"), Document("d2", "Berlin", "capital of Germany")]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": d.doc_id, "title": d.title, "text": d.text}) + "\n" for d in docs))
    (tmp_path / "queries.jsonl").write_text('{"_id": "1", "text": "France"}\n{"_id": "2", "text": "Germany"}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td1\t1\n")
    return tmp_path


def _cli_metrics(tiny_beir, *source: str) -> dict:
    out = tiny_beir / "out.json"
    code = run_cli(*source, "--queries", str(tiny_beir / "queries.jsonl"), "--qrels", str(tiny_beir / "qrels.tsv"),
                   "--k", "1", "--out", str(out))  # fmt: skip
    assert code == 0
    return json.loads(out.read_text())["metrics"]


def test_cli_index_corpus_and_server_give_the_same_numbers(tiny_beir):
    from toolgym.retrievers.bm25 import BM25Retriever
    from toolgym.retrievers.corpus import iter_documents
    from toolgym.retrievers.index import build_index
    from toolgym.retrievers.server import running_server

    build_index(tiny_beir / "corpus.jsonl", "bm25s", tiny_beir / "index", progress=False)
    from_corpus = _cli_metrics(tiny_beir, "--corpus", str(tiny_beir / "corpus.jsonl"))
    from_index = _cli_metrics(tiny_beir, "--index", str(tiny_beir / "index"))
    with running_server(BM25Retriever(list(iter_documents(tiny_beir / "corpus.jsonl")))) as url:
        from_server = _cli_metrics(tiny_beir, "--url", url)
    assert from_corpus == from_index == from_server
    assert from_corpus["recall@1"] == pytest.approx(0.5)  # q1 finds d1 first; q2 finds d2, not d1


def test_cli_errors_are_exit_code_2(tiny_beir, capsys):
    assert run_cli("--corpus", str(tiny_beir / "corpus.jsonl")) == 2
    assert "--queries FILE and --qrels FILE" in capsys.readouterr().err
    assert run_cli("--queries", str(tiny_beir / "nope.jsonl"), "--qrels", "x", "--corpus", "y") == 2
    assert "does not exist" in capsys.readouterr().err
    assert run_cli("--hotpotqa", "--queries", "q", "--qrels", "r") == 2


def test_cli_hotpotqa_applies_backend_params_and_refuses_unknown_ones(shared_data, capsys):
    def metric_lines(output: str) -> list[str]:
        return [line for line in output.splitlines() if "@" in line]  # not the timing line

    assert run_cli("--hotpotqa", "--k", "2", "--param", "k1=0.1", "--param", "b=0.0") == 0
    tuned = metric_lines(capsys.readouterr().out)
    assert run_cli("--hotpotqa", "--k", "2") == 0
    default = metric_lines(capsys.readouterr().out)
    assert tuned and tuned != default  # k1 and b reached the index: the rankings changed
    assert run_cli("--hotpotqa", "--k", "2", "--param", "no_such_knob=1") == 2
    assert "no_such_knob" in capsys.readouterr().err
