"""Scoring ToolGym retrievers with `mteb` (2.x) on local BEIR folders, with no Hugging Face Hub access.

Two pieces:
- `local_beir_task(folder)`: an `AbsTaskRetrieval` whose `load_data` reads a BEIR folder
  (`corpus.jsonl`, `queries.jsonl`, `qrels/<split>.tsv`) from disk. mteb's own loader asks the
  Hub for the dataset's configs first, so built-in tasks cannot run offline.
- `MTEBSearchAdapter(retriever | factory)`: mteb's `SearchProtocol` (`index(corpus, ...)`,
  `search(queries, ..., top_k) -> {query_id: {doc_id: score}}`, `mteb_model_meta`) around any
  `Retriever`, or a factory that builds one from the task's corpus (`index` is called per split).

    task = local_beir_task("../shared/data/beir_scifact")
    adapter = MTEBSearchAdapter(factory=lambda docs: build_retriever("bm25s", docs), name="toolgym/bm25s")
    scores = evaluate_with_mteb(adapter, task)        # {"ndcg_at_10": 0.676, "recall_at_100": ..., ...}

mteb sorts each query's results by score, so a retriever whose scores are not monotone in its own
ranking (none of ours) would be scored on a different order than it returned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toolgym.extras import require
from toolgym.retriever_contract import Document, Retriever

from .evaluation import read_beir_folder

logger = logging.getLogger(__name__)

RetrieverFactory = Callable[[Sequence[Document]], Retriever]


def _require_mteb() -> Any:
    return require("mteb", "retrieval", "MTEB scoring")


def _task_class(folder: Path, split: str, name: str) -> type:
    """A task class for one folder. mteb keeps `metadata` on the class (`unload_data` drops instance
    copies), so each folder gets its own subclass; defined on use so importing this module skips mteb."""
    mteb = _require_mteb()
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData

    def load_data(self: Any, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        documents, queries, qrels = read_beir_folder(folder, split)
        corpus = Dataset.from_list([{"id": d.doc_id, "title": d.title, "text": d.text} for d in documents])
        query_rows = Dataset.from_list([{"id": q, "text": text} for q, text in queries.items()])
        split_data = RetrievalSplitData(corpus=corpus, queries=query_rows, relevant_docs=qrels, top_ranked=None)
        self.dataset = {"default": {split: split_data}}
        self.data_loaded = True

    metadata = mteb.TaskMetadata(
        name=name,
        description=f"BEIR-format retrieval task read from {folder}",
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        main_score="ndcg_at_10",
        eval_langs=["eng-Latn"],
        eval_splits=[split],
        dataset={"path": f"local/{folder.name}", "revision": "local"},
    )
    namespace = {"metadata": metadata, "load_data": load_data, "folder": folder, "split": split}
    return type("LocalBeirRetrieval", (AbsTaskRetrieval,), namespace)


def local_beir_task(folder: str | Path, *, split: str = "test", name: str | None = None) -> Any:
    """An mteb retrieval task over the BEIR folder `folder` (its `qrels/<split>.tsv`), scored by nDCG@10."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"BEIR folder {str(folder)!r} does not exist")
    name = name or "Local" + "".join(part.title() for part in folder.name.replace("-", "_").split("_"))
    return _task_class(folder, split, name)()


class MTEBSearchAdapter:
    """mteb's `SearchProtocol` over a ToolGym retriever (given, or built by `factory` from each corpus).

    A given retriever must already index the task's corpus; `index` then only checks the document
    count. Reranking tasks (`top_ranked`) keep, per query, only the hits among its candidates.
    """

    def __init__(
        self,
        retriever: Retriever | None = None,
        *,
        factory: RetrieverFactory | None = None,
        name: str = "toolgym/retriever",
        revision: str = "local",
        batch_size: int = 1024,
    ):
        if (retriever is None) == (factory is None):
            raise ValueError("give exactly one of `retriever` (already indexed) or `factory` (documents -> retriever)")
        if "/" not in name:
            raise ValueError(f"name {name!r} must look like 'organization/model' (mteb's model-name rule)")
        self.retriever, self.factory = retriever, factory
        self.name, self.revision, self.batch_size = name, revision, batch_size

    @property
    def mteb_model_meta(self) -> Any:
        """A minimal ModelMeta: mteb needs a name and revision for its result files."""
        from mteb.models.model_meta import ModelMeta

        return ModelMeta.create_empty(overwrites={"name": self.name, "revision": self.revision})

    def index(self, corpus: Any, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "", **kwargs: Any):
        """Build the retriever over mteb's corpus rows (`id`, `title`, `text`), or check the given one."""
        documents = [Document(str(row["id"]), str(row.get("title") or ""), str(row["text"] or "")) for row in corpus]
        if self.factory is not None:
            self.retriever = self.factory(documents)
            logger.info("indexed %d documents for %s/%s", len(documents), hf_subset, hf_split)
            return
        indexed = getattr(self.retriever, "documents", None)
        if indexed is not None and len(indexed) != len(documents):
            raise ValueError(
                f"the retriever indexes {len(indexed)} documents but the task's corpus has {len(documents)}; "
                "pass factory= to index the task's corpus instead"
            )

    def search(
        self,
        queries: Any,
        *,
        top_k: int,
        top_ranked: dict[str, list[str]] | None = None,
        task_metadata: Any = None,
        hf_split: str = "",
        hf_subset: str = "",
        **kwargs: Any,
    ) -> dict[str, dict[str, float]]:
        """{query_id: {doc_id: score}} with up to `top_k` documents per query."""
        if self.retriever is None:
            raise RuntimeError("search before index: mteb calls index(corpus) first")
        ids = [str(row["id"]) for row in queries]
        texts = [str(row["text"]) for row in queries]
        results: dict[str, dict[str, float]] = {}
        for start in range(0, len(ids), self.batch_size):
            batch_ids = ids[start : start + self.batch_size]
            for query_id, hits in zip(batch_ids, self.retriever.search(texts[start : start + self.batch_size], top_k)):
                allowed = set(top_ranked[query_id]) if top_ranked and query_id in top_ranked else None
                results[query_id] = {
                    hit.doc_id: float(hit.score) for hit in hits if allowed is None or hit.doc_id in allowed
                }
        return results


def evaluate_with_mteb(adapter: MTEBSearchAdapter, task: Any, *, split: str | None = None) -> dict[str, float]:
    """Run `mteb.evaluate` (no result cache, no Hub) and return the split's scores (`ndcg_at_10`, ...)."""
    mteb = _require_mteb()
    result = mteb.evaluate(adapter, task, cache=None, show_progress_bar=False)
    split = split or task.metadata.eval_splits[0]
    [scores] = result.task_results[0].scores[split]
    return {key: value for key, value in scores.items() if isinstance(value, (int, float))}


__all__ = ["MTEBSearchAdapter", "evaluate_with_mteb", "local_beir_task"]
