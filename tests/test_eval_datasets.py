"""Dataset routing of `toolgym eval`, and the oracle scoring 1.0 on each real benchmark."""

from __future__ import annotations

import gymnasium as gym
import pytest

from toolgym.evals.cli import parse_env_kwargs
from toolgym.evals.datasets import DatasetError, resolve_dataset, resolve_env_kwargs
from toolgym.evals.harness import run_eval


@pytest.mark.parametrize(
    ("spec", "env_id"),
    [
        ("hotpotqa", "Search-v0"),
        ("hotpotqa:train_sample", "Search-v0"),
        ("nq_open", "Search-v0"),
        ("math500", "Math-v0"),
        ("math:train", "Math-v0"),
        ("gsm8k", "Math-v0"),
        ("bfcl:simple", "FunctionCall-v0"),
        ("bfcl_v4:simple_python,multiple", "FunctionCall-v0"),
        ("hf:hotpot_qa:distractor", "Search-v0"),
    ],
)
def test_named_datasets_route_to_their_env(spec, env_id):
    choice = resolve_dataset(spec)
    assert choice.env_id == env_id and choice.env_kwargs["dataset"] == spec


@pytest.mark.parametrize(
    ("spec", "env", "message"),
    [
        ("beir_scifact", None, "toolgym eval retrieval"),
        ("wiki_passages_sample", None, "corpus=wiki_passages_sample"),
        ("procedural", None, "needs --env"),
        ("hf:someone/unknown", None, "pass --env"),
        ("math500", "Search-v0", "scored by Math-v0"),
        ("no-such-set", None, "unknown dataset"),
    ],
)
def test_unroutable_datasets_say_what_to_do(spec, env, message):
    with pytest.raises(DatasetError, match=message):
        resolve_dataset(spec, env)


def test_env_kwargs_parse_as_pairs_or_json():
    assert parse_env_kwargs(["top_k=5", "corpus=a.jsonl", "hops=null"]) == {
        "top_k": 5,
        "corpus": "a.jsonl",
        "hops": None,
    }
    assert parse_env_kwargs(['{"tools": true, "max_turns": 4}']) == {"tools": True, "max_turns": 4}
    with pytest.raises(ValueError, match="key=value"):
        parse_env_kwargs(["top_k"])


def test_answer_only_search_datasets_need_a_corpus_and_named_corpora_resolve(shared_data):
    with pytest.raises(DatasetError, match="corpus="):
        resolve_env_kwargs("Search-v0", "nq_open", {"dataset": "nq_open"})
    kwargs = resolve_env_kwargs("Search-v0", "nq_open", {"dataset": "nq_open", "corpus": "wiki_passages_sample"})
    env = gym.make("toolgym:Search-v0", **kwargs)  # Search-v0 resolves the named corpus itself
    assert env.unwrapped.corpus == "wiki_passages_sample" and env.reset(seed=0)[0]


@pytest.mark.parametrize(
    ("dataset", "metric"),
    [("hotpotqa", "em"), ("math500", "correct"), ("gsm8k", "correct"), ("bfcl:irrelevance", "ast_match")],
)
def test_the_oracle_scores_one_on_each_benchmark(shared_data, tmp_path, dataset, metric):
    outcome = run_eval(
        tmp_path / "run",
        {"dataset": dataset, "agent": "scripted:oracle", "limit": 6},
        concurrency=3,
        show_progress=False,
    )

    assert outcome.summary["primary_metric"] == metric
    assert outcome.summary["accuracy"]["mean"] == 1.0 and outcome.summary["errors"] == 0


def test_bfcl_runs_report_per_category_accuracy_and_the_non_live_summary(shared_data, tmp_path):
    outcome = run_eval(
        tmp_path / "run",
        {"dataset": "bfcl:parallel,parallel_multiple", "agent": "scripted:baseline"},
        show_progress=False,
    )

    bfcl = outcome.summary["bfcl"]
    assert set(bfcl["per_category"]) == {"parallel", "parallel_multiple"}
    assert sum(c["total"] for c in bfcl["per_category"].values()) == outcome.summary["episodes"] == 400
    parallel, both = (bfcl["per_category"][c]["accuracy"] for c in ("parallel", "parallel_multiple"))
    assert bfcl["non_live"]["summary_ast"] == pytest.approx((parallel + both) / 2)  # the two present, unweighted
    assert bfcl["non_live"]["missing"][:3] == ["simple", "java", "javascript"]
