"""Which environment and keyword arguments evaluate a dataset name.

`toolgym eval --dataset NAME` needs an env id and its constructor arguments. This module is only
that routing table: the rows themselves are read by the envs' own loaders
(`toolgym.envs.search.loaders`, `toolgym.envs.math.data`, `toolgym.envs.function_call.bfcl_data`),
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

SEARCH, MATH, FUNCTION_CALL = "Search-v0", "Math-v0", "FunctionCall-v0"
ENV_IDS = (SEARCH, MATH, FUNCTION_CALL)

# name -> (env id, extra kwargs). The env's loader resolves the name against the shared data.
NAMED: dict[str, tuple[str, dict[str, Any]]] = {
    "hotpotqa": (SEARCH, {}),
    "hotpotqa:train_sample": (SEARCH, {}),
    "hotpotqa:question_only": (SEARCH, {}),
    "nq_open": (SEARCH, {}),
    "nq_open:efficientqa": (SEARCH, {}),
    "math500": (MATH, {}),
    "math": (MATH, {}),
    "math:test": (MATH, {}),
    "math:train": (MATH, {}),
    "gsm8k": (MATH, {}),
    "gsm8k:test": (MATH, {}),
    "gsm8k:train": (MATH, {}),
}
ALIASES = {"hotpot_qa": "hotpotqa", "math-500": "math500", "math_500": "math500", "nq-open": "nq_open"}
BFCL_PREFIXES = ("bfcl", "bfcl_v3", "bfcl_v4")
# Passage collections in the shared data folder, usable as Search-v0's `corpus=<name>`.
CORPORA: dict[str, str] = {
    "wiki_passages_sample": "wiki_passages_sample/sample_data.jsonl",
    "hotpotqa_train_corpus": "hotpotqa/hipporag_train_sample/hotpotqa_train_corpus.json",
}
RETRIEVAL_ONLY = {"beir_scifact", "scifact", "beir:scifact"}
# Hugging Face hub ids whose env is unambiguous (others need --env).
HF_HINTS = {"hotpot": SEARCH, "nq_open": SEARCH, "natural_questions": SEARCH, "gsm8k": MATH, "math": MATH}
NEEDS_CORPUS = {"hotpotqa:question_only", "nq_open", "nq_open:efficientqa"}


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
    if name in CORPORA:
        raise DatasetError(
            f"{spec!r} is a passage collection, not a question set: use it as Search-v0's corpus, e.g. "
            f"--dataset nq_open --env-kwargs corpus={name}"
        )
    if name in NAMED:
        choice = DatasetChoice(NAMED[name][0], {"dataset": name, **NAMED[name][1]})
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
    """Resolve named corpora (`corpus=wiki_passages_sample`) and say early when a corpus is missing."""
    kwargs = dict(kwargs)
    corpus = kwargs.get("corpus")
    if env_id == SEARCH and isinstance(corpus, str) and corpus in CORPORA:
        from toolgym.data import require_shared_data

        kwargs["corpus"] = str(require_shared_data(CORPORA[corpus]))
    if env_id == SEARCH and dataset_spec in NEEDS_CORPUS and "corpus" not in kwargs and "retriever" not in kwargs:
        raise DatasetError(
            f"{dataset_spec!r} has questions but no paragraphs: pass a corpus, e.g. --env-kwargs "
            f"corpus=<path to a JSONL corpus> (for a smoke test: corpus=wiki_passages_sample)"
        )
    return kwargs


def _canonical_env(env_id: str) -> str:
    bare = env_id.split(":")[-1]
    if bare not in ENV_IDS:
        raise DatasetError(f"unknown env {env_id!r}; choose one of {', '.join(ENV_IDS)}")
    return bare
