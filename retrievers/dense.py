"""Dense retrieval: documents embedded by an `Encoder`, searched with FAISS (or exact torch top-k on a GPU).

Index types (FAISS wiki, "Guidelines to choose an index"):
- `flat`   exact inner product over L2-normalized rows (= cosine). The right choice up to ~1-2M
           passages; the only one that is exact.
- `hnsw`   graph index (M, efConstruction, efSearch): no training, near-exact recall, fast queries,
           4·d + 8·M bytes per vector; for millions of passages on CPU.
- `ivfpq`  inverted lists + product quantization (nlist, m, nbits, nprobe), trained on a sample:
           ~m bytes per vector, for corpora that do not fit in RAM as float32.

On a CUDA machine a flat index searches on the GPU: through faiss's GPU resources when the
installed faiss has them, otherwise as an exact fp16 torch matmul + top-k (faiss-cpu wheels have
no GPU code, and faiss GPU wheels often miss the local CUDA major). HNSW has no GPU form in faiss
and stays on the CPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.extras import require
from toolgym.retriever_contract import Document, Hit

from .docstore import DocStore, save_documents
from .encoders import Encoder, l2_normalize, load_encoder
from .manifest import IndexFormatError, IndexMismatchError, path_inside, read_manifest, write_manifest

logger = logging.getLogger(__name__)

BACKEND_NAME = "faiss"
INDEX_TYPES: tuple[str, ...] = ("flat", "hnsw", "ivfpq")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
INDEX_FILE = "faiss.index"
# A fixed query whose vector the manifest records: reloading with other weights changes it.
PROBE_TEXT = "ToolGym encoder probe: which river flows through Berlin?"
PROBE_MIN_COSINE = 0.99  # fp16 GPU vs fp32 CPU encodings of one model agree to > 0.999
# The torch GPU path scores (queries × documents) blocks of at most 1024 × 262,144 (1 GiB of float32).
_GPU_QUERY_CHUNK = 1024
FAISS_GPU_MAX_K = 2048
_GPU_DOC_CHUNK = 1 << 18


def _import_faiss() -> Any:
    return require("faiss", "retrieval", "the faiss backend (faiss-cpu)")


def faiss_has_gpu() -> bool:
    """True when the installed faiss was built with GPU support and sees a GPU."""
    faiss = _import_faiss()
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def default_nlist(n_vectors: int) -> int:
    """IVF lists: ~4·sqrt(N) (FAISS guideline), and at most N/39 so each list gets its 39 training points."""
    return max(1, min(int(4 * math.sqrt(n_vectors)), n_vectors // 39))


def default_pq_m(dim: int) -> int:
    """PQ sub-quantizers: the largest divisor of `dim` that is at most dim/4 (4 dims per 1-byte code)."""
    return max(m for m in range(1, max(1, dim // 4) + 1) if dim % m == 0)


def build_faiss_index(vectors: np.ndarray, index_type: str, params: dict[str, Any]) -> Any:
    """A CPU FAISS inner-product index of `index_type` holding `vectors` (float32, already normalized)."""
    faiss = _import_faiss()
    n_vectors, dim = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(params["hnsw_m"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(params["ef_construction"])
        index.hnsw.efSearch = int(params["ef_search"])
    elif index_type == "ivfpq":
        nlist, pq_m, nbits = int(params["nlist"]), int(params["pq_m"]), int(params["nbits"])
        if dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide the embedding dimension {dim}")
        sample_size = min(n_vectors, int(params["train_size"]))
        needed = max(nlist, 2**nbits)
        if sample_size < needed:
            raise ValueError(
                f"ivfpq needs at least {needed} training vectors (nlist={nlist}, 2**nbits={2**nbits}) but has "
                f"{sample_size}; lower nlist/nbits or use index_type='flat' for a corpus this small"
            )
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(int(params["seed"]))
        sample = vectors[np.sort(rng.choice(n_vectors, size=sample_size, replace=False))]
        index.train(sample)
        index.nprobe = int(params["nprobe"])
    else:
        raise ValueError(f"unknown index_type {index_type!r}; expected one of {INDEX_TYPES}")
    if n_vectors:
        index.add(vectors)
    return index


def chunked_top_k(queries: Any, vectors: Any, k: int, chunk: int = _GPU_DOC_CHUNK) -> tuple[Any, Any]:
    """Exact inner-product top-k of torch `queries` against `vectors`, `chunk` documents at a time.

    Running top-k lists are merged after each chunk, so the score block stays (queries × chunk)
    however large the corpus; scores come back as float32 whatever the vectors' dtype.
    """
    import torch

    best_scores = best_indices = None
    for start in range(0, vectors.shape[0], chunk):
        block = (queries @ vectors[start : start + chunk].T).float()
        scores, indices = block.topk(min(k, block.shape[1]), dim=1)
        indices = indices + start
        if best_scores is not None:
            merged = torch.cat([best_scores, scores], dim=1)
            scores, order = merged.topk(min(k, merged.shape[1]), dim=1)
            indices = torch.cat([best_indices, indices], dim=1).gather(1, order)
        best_scores, best_indices = scores, indices
    return best_scores, best_indices


class FaissRetriever:
    """Dense top-k search: `search(queries, k)` encodes the queries in batches and searches the index.

    Scores are inner products of L2-normalized vectors (cosine) when `normalize` is on (the default);
    IVF-PQ scores are approximate. Hits past the documents an ANN index can reach are dropped, so a
    hit list may be shorter than `k`.
    """

    def __init__(
        self,
        documents: Sequence[Document],
        encoder: Encoder | str,
        index_type: str = "flat",
        *,
        normalize: bool = True,
        hnsw_m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        nlist: int | None = None,
        pq_m: int | None = None,
        nbits: int = 8,
        nprobe: int = 16,
        train_size: int = 100_000,
        seed: int = 0,
        device: str = "auto",
        embeddings: np.ndarray | None = None,
        **encoder_options: Any,
    ):
        if index_type not in INDEX_TYPES:
            raise ValueError(f"unknown index_type {index_type!r}; expected one of {INDEX_TYPES}")
        if encoder_options and not isinstance(encoder, str):
            raise TypeError(f"encoder options {sorted(encoder_options)} only apply to an encoder spec string")
        if isinstance(encoder, str):
            if device != "auto":
                encoder_options.setdefault("device", device)
            encoder = load_encoder(encoder, **encoder_options)
        self.encoder = encoder
        self.documents = documents
        if embeddings is None:
            embeddings = self.encoder.encode_documents(documents)
        vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
        if vectors.shape != (len(documents), self.encoder.dim):
            raise ValueError(
                f"embeddings have shape {vectors.shape}, expected ({len(documents)}, {self.encoder.dim}) "
                "= (documents, encoder dim)"
            )
        if normalize:
            vectors = l2_normalize(vectors)
        self.index_type = index_type
        self.params: dict[str, Any] = {"index_type": index_type, "normalize": normalize}
        if index_type == "hnsw":
            self.params |= {"hnsw_m": hnsw_m, "ef_construction": ef_construction, "ef_search": ef_search}
        if index_type == "ivfpq":
            self.params |= {
                "nlist": nlist or default_nlist(len(vectors)),
                "pq_m": pq_m or default_pq_m(vectors.shape[1]),
                "nbits": nbits,
                "nprobe": nprobe,
                "train_size": train_size,
                "seed": seed,
            }
        self.index = build_faiss_index(vectors, index_type, self.params)
        self._attach_device(device)

    # --- device -----------------------------------------------------------------------------------

    def _attach_device(self, device: str) -> None:
        """Pick where searches run: faiss CPU, faiss GPU, or exact torch on CUDA (flat only)."""
        self.device = _resolve_device(device)
        self._search_index = self.index
        self._gpu_vectors = None
        if self.device != "cuda":
            return
        if self.index_type == "hnsw":
            logger.info("faiss has no GPU HNSW; searching on the CPU")
            return
        if faiss_has_gpu():
            faiss = _import_faiss()
            self._gpu_resources = faiss.StandardGpuResources()
            options = faiss.GpuClonerOptions()
            options.useFloat16 = True  # IVF-PQ with many sub-quantizers needs fp16 lookup tables on GPU
            self._search_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self.index, options)
            logger.info("searching with faiss on the GPU")
        elif self.index_type == "flat":
            import torch

            vectors = self.index.reconstruct_n(0, self.index.ntotal) if self.index.ntotal else np.zeros((0, 1))
            self._gpu_vectors = torch.from_numpy(np.ascontiguousarray(vectors)).to("cuda", torch.float16)
            logger.info("faiss has no GPU support here; exact fp16 torch search on CUDA")
        else:
            logger.info("faiss has no GPU support here; %s searches on the CPU", self.index_type)

    @property
    def search_backend(self) -> str:
        """Where searches run: 'faiss-cpu', 'faiss-gpu' or 'torch-cuda'."""
        if self._gpu_vectors is not None:
            return "torch-cuda"
        return "faiss-gpu" if self._search_index is not self.index else "faiss-cpu"

    def __len__(self) -> int:
        return len(self.documents)

    # --- search -----------------------------------------------------------------------------------

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        """Top-`k` hits per query, best first."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings; wrap a single query as [query]")
        if not queries or int(k) <= 0 or len(self.documents) == 0:
            return [[] for _ in queries]
        clean = [q if isinstance(q, str) else "" for q in queries]
        scores, indices = self.search_vectors(self.encoder.encode_queries(clean), k)
        return [self._hits(score_row, index_row) for score_row, index_row in zip(scores, indices)]

    def search_vectors(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, document indices), each (queries, min(k, N)); index -1 marks an empty slot."""
        k = min(int(k), len(self.documents))
        vectors = np.ascontiguousarray(query_vectors, dtype=np.float32)
        if self.params["normalize"]:
            vectors = l2_normalize(vectors)
        if self._gpu_vectors is not None:
            return self._torch_search(vectors, k)
        if k > FAISS_GPU_MAX_K and self._search_index is not self.index:
            return self.index.search(vectors, k)  # faiss GPU kernels select at most 2048 neighbours
        return self._search_index.search(vectors, k)

    def _torch_search(self, query_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        queries = torch.from_numpy(query_vectors).to(self._gpu_vectors.device, self._gpu_vectors.dtype)
        parts = [
            chunked_top_k(queries[start : start + _GPU_QUERY_CHUNK], self._gpu_vectors, k)
            for start in range(0, len(queries), _GPU_QUERY_CHUNK)
        ]
        scores = torch.cat([p[0] for p in parts]) if parts else torch.zeros((0, k))
        indices = torch.cat([p[1] for p in parts]) if parts else torch.zeros((0, k), dtype=torch.long)
        return scores.cpu().numpy(), indices.cpu().numpy()

    def _hits(self, scores: np.ndarray, indices: np.ndarray) -> list[Hit]:
        hits = []
        for score, index in zip(scores.tolist(), indices.tolist()):
            if index < 0:
                continue
            doc = self.documents[index]
            hits.append(Hit(doc.doc_id, float(score), doc.title, doc.text))
        return hits

    # --- persistence ------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the FAISS index, the document store and a manifest (backend, params, encoder, checksum)."""
        faiss = _import_faiss()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        write_manifest(
            directory,
            backend=BACKEND_NAME,
            params=self.params,
            n_documents=len(self.documents),
            docstore=save_documents(self.documents, directory),
            encoder=encoder_record(self.encoder),
            index_file=INDEX_FILE,
        )
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        encoder: Encoder | None = None,
        *,
        device: str = "auto",
        check_spec: bool = True,
        verify: bool | None = None,
        ef_search: int | None = None,
        nprobe: int | None = None,
        **encoder_options: Any,
    ) -> FaissRetriever:
        """Load an index written by `save`.

        Without `encoder`, the recorded encoder is rebuilt (`encoder_options` may set runtime knobs such
        as `batch_size` or `device`). A given encoder must match the recorded spec, options and dim, and
        either way the encoder must reproduce the recorded probe vector: a different model (or the same
        path holding other weights) is refused instead of returning silently wrong neighbours.
        `check_spec=False` accepts another spec (a model that moved) when the probe vector still matches.
        `verify` re-hashes the document store (None: when it is under 1 GiB). `ef_search` (HNSW) and
        `nprobe` (IVF-PQ) trade speed for recall at search time, without a rebuild.
        """
        faiss = _import_faiss()
        directory = Path(directory)
        manifest = read_manifest(directory, expect_backend=BACKEND_NAME)
        record = manifest.get("encoder")
        if not isinstance(record, dict) or not {"spec", "options", "dim", "probe"} <= set(record):
            raise IndexFormatError(f"{directory} records no usable encoder; rebuild the index")
        if encoder is None:
            if device != "auto":
                encoder_options.setdefault("device", device)
            encoder = load_encoder(record["spec"], **{**record["options"], **encoder_options})
        elif encoder_options:
            raise TypeError(f"encoder options {sorted(encoder_options)} only apply when no encoder is given")
        check_encoder(record, encoder, directory, check_spec=check_spec)
        documents = DocStore(directory, record=manifest.get("docstore"), verify=verify)
        index = faiss.read_index(str(path_inside(directory, manifest.get("index_file", INDEX_FILE))))
        if index.ntotal != len(documents):
            raise IndexFormatError(
                f"{directory}: the index holds {index.ntotal} vectors but the store {len(documents)} documents"
            )
        retriever = cls.__new__(cls)
        retriever.documents, retriever.encoder, retriever.index = documents, encoder, index
        retriever.params, retriever.index_type = dict(manifest["params"]), manifest["params"]["index_type"]
        if ef_search is not None and retriever.index_type == "hnsw":
            retriever.params["ef_search"] = int(ef_search)
        if nprobe is not None and retriever.index_type == "ivfpq":
            retriever.params["nprobe"] = int(nprobe)
        if retriever.index_type == "hnsw":
            index.hnsw.efSearch = int(retriever.params["ef_search"])
        if retriever.index_type == "ivfpq":
            index.nprobe = int(retriever.params["nprobe"])
        retriever._attach_device(device)
        logger.info("loaded %s faiss index of %d documents from %s", retriever.index_type, len(documents), directory)
        return retriever


def encoder_record(encoder: Encoder) -> dict[str, Any]:
    """What the manifest keeps about an encoder: enough to rebuild it and to recognise another one."""
    probe = encoder.encode_queries([PROBE_TEXT])[0]
    return {
        "spec": encoder.spec,
        "options": encoder.options,
        "dim": int(encoder.dim),
        "probe_text": PROBE_TEXT,
        "probe": [round(float(x), 6) for x in probe],
    }


def check_encoder(record: dict[str, Any], encoder: Encoder, directory: Path, *, check_spec: bool = True) -> None:
    """Raise IndexMismatchError naming both sides when `encoder` is not the one the index was built with."""
    built = f"{record['spec']} {record['options']}"
    given = f"{encoder.spec} {encoder.options}"
    advice = "load without an encoder to rebuild the recorded one, or rebuild the index with this encoder"
    if check_spec and encoder.spec != record["spec"]:
        raise IndexMismatchError(f"{directory} was built with encoder {built}, not {given}; {advice}")
    if encoder.options != record["options"] or int(encoder.dim) != int(record["dim"]):
        raise IndexMismatchError(
            f"{directory} was built with encoder {built} (dim {record['dim']}), not {given} (dim {encoder.dim}); {advice}"
        )
    stored = np.asarray(record["probe"], dtype=np.float32)
    probe = encoder.encode_queries([record.get("probe_text", PROBE_TEXT)])[0]
    cosine = float(stored @ probe / max(float(np.linalg.norm(stored) * np.linalg.norm(probe)), 1e-12))
    if cosine < PROBE_MIN_COSINE:
        raise IndexMismatchError(
            f"encoder {encoder.spec!r} embeds the probe text differently from the model {directory} was built with "
            f"(cosine {cosine:.4f} < {PROBE_MIN_COSINE}): the weights changed; rebuild the index"
        )


__all__ = ["BACKEND_NAME", "INDEX_TYPES", "FaissRetriever", "build_faiss_index", "default_nlist", "default_pq_m"]
