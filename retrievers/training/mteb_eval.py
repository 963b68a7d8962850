"""MTEB scores of a trained embedder folder, through the dense FAISS retriever it plugs into.

Offline: `local_beir_task` reads a BEIR folder from disk (mteb's own loaders need the Hub). Online
users can pass standard MTEB task names ("SciFact", "NFCorpus", ...). Either way the model is
loaded exactly as Search-v0 would load it (`hf:<folder>:last`, options from the folder), so the
numbers describe the retriever that gets deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.retrievers.mteb_protocol import MTEBSearchAdapter, evaluate_with_mteb, local_beir_task


def dense_adapter(model_folder: str | Path, *, name: str | None = None, **encoder_options: Any) -> MTEBSearchAdapter:
    """mteb's search protocol over a FAISS flat index of the task's corpus, encoded by the folder's model."""
    from toolgym.retrievers import build_retriever

    spec = f"hf:{model_folder}:last"
    options = {"device": "cpu", "show_progress": False, **encoder_options}
    return MTEBSearchAdapter(
        factory=lambda documents: build_retriever("faiss", documents, encoder=spec, **options),
        name=name or f"toolgym/{Path(model_folder).name}",
    )


def evaluate_on_beir_folder(
    model_folder: str | Path, beir_folder: str | Path, *, split: str = "test", **encoder_options: Any
) -> dict[str, float]:
    """nDCG@10 (mteb's `main_score`), recall@k, MRR@k, ... on a local BEIR folder's `split`."""
    return evaluate_with_mteb(dense_adapter(model_folder, **encoder_options), local_beir_task(beir_folder, split=split))


def evaluate_on_mteb_tasks(
    model_folder: str | Path, task_names: Sequence[str], **encoder_options: Any
) -> dict[str, dict[str, float]]:
    """Standard MTEB retrieval tasks by name (downloads them: needs the Hub)."""
    import mteb

    adapter = dense_adapter(model_folder, **encoder_options)
    return {task.metadata.name: evaluate_with_mteb(adapter, task) for task in mteb.get_tasks(tasks=list(task_names))}


__all__ = ["dense_adapter", "evaluate_on_beir_folder", "evaluate_on_mteb_tasks"]
