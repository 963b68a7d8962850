"""Which environment and keyword arguments evaluate a dataset name.

`toolgym eval --dataset NAME` needs an env id and its constructor arguments. This module is only
that routing table: the rows themselves are read by the envs' own readers
(`toolgym.envs.search.readers`, `toolgym.envs.math.readers`, `toolgym.envs.function_call.readers`),
so a format is parsed in exactly one place (DESIGN.md, "Where data readers and scorers live").

Every folder of the shared benchmark data is reachable: HotpotQA and NQ-open (Search-v0), MATH,
MATH-500 and GSM8K (Math-v0), BFCL v3/v4 (FunctionCall-v0); the passage collections
(`wiki_passages_sample`, the HotpotQA train-sample corpus) are corpora for Search-v0's `corpus=`;
BEIR SciFact has queries and relevance judgements but no answers, so it is scored by
`toolgym eval retrieval`, not by an agent episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolgym.envs.search.readers import NAMED_CORPORA

SEARCH, MATH, FUNCTION_CALL = "Search-v0", "Math-v0", "FunctionCall-v0"
ENV_IDS = (SEARCH, MATH, FUNCTION_CALL)


def _named_datasets() -> dict[str, str]:
    """Dataset name -> env id, from the envs' own tables of named shared datasets."""
    from toolgym.envs.math.readers import SHARED_DATASETS
    from toolgym.envs.search.readers import NAMED_DATASETS

    named = dict.fromkeys(NAMED_DATASETS, SEARCH)
    for name, splits in SHARED_DATASETS.items():
        named.update(dict.fromkeys([name, *(f"{name}:{split}" for split in splits)], MATH))
    return named


NAMED: dict[str, str] = _named_datasets()
ALIASES = {"hotpot_qa": "hotpotqa", "math-500": "math500", "math_500": "math500", "nq-open": "nq_open"}
BFCL_PREFIXES = ("bfcl", "bfcl_v3", "bfcl_v4")
RETRIEVAL_ONLY = {"beir_scifact", "scifact", "beir:scifact"}
# Hugging Face hub ids whose env is unambiguous (others need --env).
HF_HINTS = {"hotpot": SEARCH, "nq_open": SEARCH, "natural_questions": SEARCH, "gsm8k": MATH, "math": MATH}


class DatasetError(ValueError):
    """A dataset name that cannot be routed, with what to use instead."""


@dataclass(frozen=True)
class DatasetChoice:
    """The env that evaluates a dataset, and the keyword arguments that select it."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def known_names() -> list[str]:
    """Dataset names accepted by `toolgym eval --dataset` (besides paths and `hf:` ids)."""
    return [*NAMED, "bfcl[:<category>[,<category>…]]", "bfcl_v4[:…]", "procedural"]


def resolve_dataset(spec: str | None, env_id: str | None = None) -> DatasetChoice:
    """Route a dataset spec (and an optional explicit env id) to an env and its kwargs.

    `procedural`, file paths and unhinted `hf:` ids need `env_id`; a named benchmark checks that
    `env_id`, when given, is the env that can score it.
    """
    env_id = _canonical_env(env_id) if env_id else None
    if spec is None or spec == "procedural":
        if env_id is None:
            raise DatasetError(f"--dataset procedural needs --env (one of {', '.join(ENV_IDS)})")
        return DatasetChoice(env_id, {"dataset": "procedural"})
    name = ALIASES.get(spec, spec)
    if name.lower() in RETRIEVAL_ONLY:
        raise DatasetError(
            f"{spec!r} is a retrieval benchmark (queries and relevance judgements, no answers): "
            "score a retriever on it with `toolgym eval retrieval`"
        )
    if name in NAMED_CORPORA:
        raise DatasetError(
            f"{spec!r} is a passage collection, not a question set: use it as Search-v0's corpus, e.g. "
            f"--dataset nq_open --env-kwargs corpus={name}"
        )
    if name in NAMED:
        choice = DatasetChoice(NAMED[name], {"dataset": name})
    elif name.split(":", 1)[0] in BFCL_PREFIXES:
        choice = DatasetChoice(FUNCTION_CALL, {"dataset": name})
    elif name.startswith("hf:"):
        guessed = next((env for hint, env in HF_HINTS.items() if hint in name.lower()), None)
        if env_id is None and guessed is None:
            raise DatasetError(f"cannot tell which env scores {spec!r}: pass --env (one of {', '.join(ENV_IDS)})")
        return DatasetChoice(env_id or guessed, {"dataset": name})
    elif Path(name).expanduser().is_file():
        if env_id is None:
            raise DatasetError(f"dataset file {spec!r} needs --env to say which env reads it ({', '.join(ENV_IDS)})")
        return DatasetChoice(env_id, {"dataset": str(Path(name).expanduser().resolve())})
    else:
        raise DatasetError(
            f"unknown dataset {spec!r}: use one of {', '.join(known_names())}, a path to a data file "
            "(with --env), or 'hf:<name>' (with --env)"
        )
    if env_id is not None and env_id != choice.env_id:
        raise DatasetError(f"dataset {spec!r} is scored by {choice.env_id}, not {env_id}; drop --env or fix it")
    return choice


def resolve_env_kwargs(env_id: str, dataset_spec: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Say before a run directory is made when an answer-only dataset has no corpus to search.

    The env refuses the same thing when it is built; this only moves the error ahead of any output.
    Named corpora (`corpus=wiki_passages_sample`) are resolved by Search-v0 itself.
    """
    from toolgym.envs.search.readers import is_answer_only

    needs_corpus = env_id == SEARCH and dataset_spec is not None and is_answer_only(dataset_spec)
    if needs_corpus and "corpus" not in kwargs and "retriever" not in kwargs:
        raise DatasetError(
            f"{dataset_spec!r} has questions but no paragraphs: pass a corpus, e.g. --env-kwargs "
            f"corpus=<path to a JSONL corpus> (for a smoke test: corpus=wiki_passages_sample)"
        )
    return dict(kwargs)


def _canonical_env(env_id: str) -> str:
    bare = env_id.split(":")[-1]
    if bare not in ENV_IDS:
        raise DatasetError(f"unknown env {env_id!r}; choose one of {', '.join(ENV_IDS)}")
    return bare
