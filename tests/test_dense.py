"""FaissRetriever: exactness of flat search, ANN recall, awkward inputs, persistence and encoder checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_bert import make_tiny_bert

from toolgym.retriever_contract import Document, Retriever
from toolgym.retrievers import build_retriever
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.dense import FaissRetriever, chunked_top_k, default_nlist, default_pq_m
from toolgym.retrievers.encoders import load_encoder
from toolgym.retrievers.index import build_index, load_index
from toolgym.retrievers.manifest import MANIFEST_FILE, IndexMismatchError

DIM = 32  # the tiny BERT's hidden size


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), seed=0)


@pytest.fixture(scope="module")
def encoder(bert_dir):
    return load_encoder(f"hf:{bert_dir}", device="cpu", show_progress=False)


def clustered(n: int, seed: int, clusters: int = 20) -> np.ndarray:
    """Unit vectors around `clusters` centres: the neighbourhood structure ANN indexes rely on."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, DIM))
    points = centres[rng.integers(clusters, size=n)] + 0.35 * rng.normal(size=(n, DIM))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def numbered_docs(n: int) -> list[Document]:
    return [Document(f"d{i}", f"title {i}", f"text number {i}") for i in range(n)]


@pytest.fixture(scope="module")
def vectors():
    return clustered(2000, seed=1), clustered(50, seed=2)


def brute_force_top_k(documents: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ documents.T), axis=1, kind="stable")[:, :k]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found.tolist(), exact.tolist())]))


def test_flat_search_is_exact(encoder, vectors):
    documents, queries = vectors
    retriever = FaissRetriever(numbered_docs(len(documents)), encoder, embeddings=documents, device="cpu")
    scores, indices = retriever.search_vectors(queries, 10)
    exact = brute_force_top_k(documents, queries, 10)
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ documents.T, exact, axis=1), atol=1e-5)
    assert recall_at_k(indices, exact) == 1.0


def test_hnsw_recall_on_clustered_vectors(encoder, vectors):
    documents, queries = vectors
    retriever = FaissRetriever(
        numbered_docs(len(documents)), encoder, "hnsw", embeddings=documents, hnsw_m=16, ef_search=64, device="cpu"
    )
    _, indices = retriever.search_vectors(queries, 10)
    assert recall_at_k(indices, brute_force_top_k(documents, queries, 10)) >= 0.95


def test_ivfpq_recall_on_clustered_vectors(encoder, vectors):
    documents, queries = vectors
    retriever = FaissRetriever(
        numbered_docs(len(documents)), encoder, "ivfpq", embeddings=documents, nlist=16, pq_m=16, nbits=6, device="cpu"
    )
    _, indices = retriever.search_vectors(queries, 10)
    exact = brute_force_top_k(documents, queries, 10)
    nearest_found = np.mean([row_exact[0] in row for row, row_exact in zip(indices.tolist(), exact.tolist())])
    assert nearest_found >= 0.95  # faiss's "1-recall@10": PQ codes are lossy, the true nearest stays in the top 10
    assert recall_at_k(indices, exact) >= 0.6


def test_default_ivfpq_parameters():
    assert [default_pq_m(d) for d in (32, 384, 768, 30)] == [8, 96, 192, 6]
    assert [default_nlist(n) for n in (10, 1000, 1_000_000)] == [1, 25, 4000]


def test_chunked_top_k_merges_chunks_exactly(vectors):
    """The GPU path's exact search, run on CPU tensors with chunks smaller than k and than the corpus."""
    torch = pytest.importorskip("torch")
    documents, queries = vectors
    scores, indices = chunked_top_k(torch.from_numpy(queries), torch.from_numpy(documents), k=10, chunk=7)
    exact = brute_force_top_k(documents, queries, 10)
    assert recall_at_k(indices.numpy(), exact) == 1.0
    np.testing.assert_allclose(scores.numpy(), np.take_along_axis(queries @ documents.T, exact, axis=1), atol=1e-5)


def test_ivfpq_on_too_few_vectors_is_a_clear_error(encoder):
    with pytest.raises(ValueError, match="at least 256 training vectors"):
        FaissRetriever(numbered_docs(100), encoder, "ivfpq", embeddings=clustered(100, seed=3), nlist=2)


def test_text_search_encodes_queries_and_returns_hits(encoder):
    documents = numbered_docs(30)
    retriever = FaissRetriever(documents, encoder, device="cpu")
    queries = ["title 7 text number 7", "title 21 text number 21"]
    results = retriever.search(queries, k=5)
    _, indices = retriever.search_vectors(encoder.encode_queries(queries), 5)
    assert [[h.doc_id for h in hits] for hits in results] == [[f"d{i}" for i in row] for row in indices.tolist()]
    best = documents[indices[0][0]]
    assert (results[0][0].title, results[0][0].text) == (best.title, best.text)
    assert all(hits[i].score >= hits[i + 1].score for hits in results for i in range(len(hits) - 1))


def test_awkward_calls(encoder):
    retriever = FaissRetriever(numbered_docs(4), encoder, device="cpu")
    assert len(retriever.search(["anything"], k=100)[0]) == 4
    assert retriever.search(["anything"], k=0) == [[]]
    assert retriever.search([], k=3) == []
    assert len(retriever.search(["", "東京 🚀", "x" * 10_000], k=2)[2]) == 2
    assert FaissRetriever([], encoder, device="cpu").search(["anything"], k=3) == [[]]
    with pytest.raises(TypeError, match="list of strings"):
        retriever.search("anything", k=1)


def test_wrong_embedding_shape_and_unknown_index_type_are_refused(encoder):
    with pytest.raises(ValueError, match=r"expected \(3, 32\)"):
        FaissRetriever(numbered_docs(3), encoder, embeddings=np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="unknown index_type 'lsh'"):
        FaissRetriever(numbered_docs(3), encoder, "lsh")


def test_minilm_finds_paraphrases_on_a_small_corpus():
    documents = [
        Document("paris", "Paris", "Paris is the capital and largest city of France."),
        Document("spree", "Spree", "The Spree is a river that flows through Saxony and Berlin."),
        Document("python", "Python", "Python is a programming language that emphasises readability."),
        Document("tea", "Tea", "Tea is an aromatic beverage made by pouring hot water over cured leaves."),
    ]
    retriever = build_retriever("faiss", documents, encoder="st:minilm", device="cpu", show_progress=False)
    queries = ["Which French city is the seat of government?", "a drink brewed from leaves", "coding languages"]
    assert isinstance(retriever, Retriever)
    assert [hits[0].doc_id for hits in retriever.search(queries, k=1)] == ["paris", "tea", "python"]


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_save_load_round_trip_rebuilds_the_encoder(encoder, tmp_path, index_type):
    documents = numbered_docs(40)
    retriever = FaissRetriever(documents, encoder, index_type, device="cpu")
    retriever.save(tmp_path / "index")
    loaded = FaissRetriever.load(tmp_path / "index", device="cpu", show_progress=False)
    queries = ["title 3", "text number 17", "nothing like it"]
    assert loaded.search(queries, k=5) == retriever.search(queries, k=5)
    assert loaded.params == retriever.params and loaded.encoder.spec == encoder.spec
    manifest = json.loads((tmp_path / "index" / MANIFEST_FILE).read_text())
    assert manifest["backend"] == "faiss" and manifest["encoder"]["spec"] == encoder.spec


def test_load_can_retune_hnsw_search(encoder, tmp_path):
    FaissRetriever(numbered_docs(40), encoder, "hnsw", ef_search=128, device="cpu").save(tmp_path)
    loaded = FaissRetriever.load(tmp_path, device="cpu", ef_search=16)
    assert loaded.params["ef_search"] == loaded.index.hnsw.efSearch == 16


def test_load_refuses_another_encoder(encoder, bert_dir, tmp_path):
    FaissRetriever(numbered_docs(5), encoder, device="cpu").save(tmp_path)
    other_pooling = load_encoder(f"hf:{bert_dir}:cls", device="cpu", show_progress=False)
    with pytest.raises(IndexMismatchError, match="was built with encoder"):
        FaissRetriever.load(tmp_path, encoder=other_pooling)
    other_model = load_encoder(f"hf:{make_tiny_bert(tmp_path / 'other', seed=1)}", device="cpu")
    with pytest.raises(IndexMismatchError, match="was built with encoder"):
        FaissRetriever.load(tmp_path, encoder=other_model)
    with pytest.raises(IndexMismatchError, match="embeds the probe text differently"):
        FaissRetriever.load(tmp_path, encoder=other_model, check_spec=False)


def test_load_refuses_weights_changed_in_place(tmp_path):
    model_dir = make_tiny_bert(tmp_path / "model", seed=0)
    FaissRetriever(numbered_docs(5), f"hf:{model_dir}", device="cpu", show_progress=False).save(tmp_path / "index")
    make_tiny_bert(model_dir, seed=7)  # same path, other weights
    with pytest.raises(IndexMismatchError, match="the weights changed"):
        FaissRetriever.load(tmp_path / "index")


def test_load_refuses_another_backend(tmp_path):
    BM25Retriever(numbered_docs(5)).save(tmp_path)
    with pytest.raises(IndexMismatchError, match="'bm25s' index, not 'faiss'"):
        FaissRetriever.load(tmp_path)


def test_index_build_and_load_index_with_the_faiss_backend(bert_dir, tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text}) + "\n" for d in numbered_docs(12))
    )
    manifest = build_index(corpus, "faiss", tmp_path / "index", encoder=f"hf:{bert_dir}:mean", progress=False)
    retriever = load_index(tmp_path / "index", expect_backend="faiss", corpus_path=corpus, device="cpu")
    assert manifest["encoder"]["spec"] == f"hf:{bert_dir}:mean" and manifest["n_documents"] == 12
    assert isinstance(retriever, FaissRetriever)
    assert retriever.search(["title 4 text number 4"], k=3)[0][0].doc_id.startswith("d")


@pytest.mark.gpu
def test_gpu_search_matches_cpu_search(encoder, vectors):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    documents, queries = vectors
    cpu = FaissRetriever(numbered_docs(len(documents)), encoder, embeddings=documents, device="cpu")
    gpu = FaissRetriever(numbered_docs(len(documents)), encoder, embeddings=documents, device="cuda")
    cpu_scores, cpu_indices = cpu.search_vectors(queries, 10)
    gpu_scores, gpu_indices = gpu.search_vectors(queries, 10)
    assert gpu.search_backend in ("faiss-gpu", "torch-cuda")
    np.testing.assert_allclose(gpu_scores, cpu_scores, atol=2e-3)  # fp16 on the torch path
    assert recall_at_k(gpu_indices, cpu_indices) >= 0.99
