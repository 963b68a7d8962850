"""Gymnasium citizenship: every env pickles, deep-copies mid-episode, and runs in every vector env.

Each env plays a fixed two-turn script (a tool call or search, then another turn) from fixed
seeds; every vectorization (SyncVectorEnv, AsyncVectorEnv with and without shared memory, and
`gym.make_vec` in both modes) must return exactly what single envs return, and a pickled or
deep-copied env must continue exactly as the original does.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import pickle
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import toolgym  # noqa: F401  (registers the ids)
from toolgym.spaces import MessageList
from toolgym.vector_spaces import MessageBuffers, MessageListBatch

CALC = '<tool_call>{"name": "calculator", "arguments": {"expression": "12*(3+4)"}}</tool_call>'
# id -> (make kwargs, a script of actions that keeps the episode going for two turns)
ENVS: dict[str, tuple[dict, list[str]]] = {
    "Math-v0": ({"tools": True, "max_turns": 3}, [CALC, "I will compute: " + CALC]),
    "FunctionCall-v0": (  # difficulty 3 holds every domain; the first call changes the world
        {"difficulty": 3},
        [
            '<tool_call>{"name": "mkdir", "arguments": {"dir_name": "/made_here"}}</tool_call>',
            '<tool_call>{"name": "ls", "arguments": {"path": "/"}}</tool_call><tool_call>{"name": "list_accounts", "arguments": {}}</tool_call>',
        ],
    ),
    "Search-v0": ({}, ["<search>capital city</search>", "<search>born in the year</search>"]),
}
SEEDS = [3, 11]


def _plain(value):
    """Observations and infos as plain JSON-able data, so results compare across processes."""
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


def _single_env_run(env_id: str) -> list:
    kwargs, script = ENVS[env_id]
    runs = []
    for seed in SEEDS:
        env = gym.make(env_id, **kwargs)
        observations = [env.reset(seed=seed)[0]]
        for action in script:
            observation, reward, terminated, truncated, _ = env.step(action)
            observations.append((observation, reward, terminated, truncated))
        runs.append(observations)
        env.close()
    return _plain(runs)


def _vector_run(vector_env: gym.vector.VectorEnv, env_id: str) -> list:
    _, script = ENVS[env_id]
    observations, _ = vector_env.reset(seed=SEEDS)
    steps = [list(observations)]
    for action in script:
        observation, reward, terminated, truncated, _ = vector_env.step(tuple([action] * len(SEEDS)))
        steps.append(
            [(o, float(r), bool(te), bool(tr)) for o, r, te, tr in zip(observation, reward, terminated, truncated)]
        )
    vector_env.close()
    per_env = [[step[i] for step in steps] for i in range(len(SEEDS))]
    return _plain(per_env)


def _factories(env_id: str) -> list:
    kwargs, _ = ENVS[env_id]
    return [lambda: gym.make(env_id, **kwargs) for _ in SEEDS]


VECTORIZATIONS = {
    "sync": lambda env_id: SyncVectorEnv(_factories(env_id)),
    "async-shared-memory": lambda env_id: AsyncVectorEnv(_factories(env_id)),  # Gymnasium's defaults
    "async-pipes": lambda env_id: AsyncVectorEnv(_factories(env_id), shared_memory=False),
    "make_vec-sync": lambda env_id: gym.make_vec(
        env_id, num_envs=len(SEEDS), vectorization_mode="sync", **ENVS[env_id][0]
    ),
    "make_vec-async": lambda env_id: gym.make_vec(
        env_id, num_envs=len(SEEDS), vectorization_mode="async", **ENVS[env_id][0]
    ),
}


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_every_vectorization_returns_what_single_envs_return(env_id):
    expected = _single_env_run(env_id)
    for name, make in VECTORIZATIONS.items():
        assert _vector_run(make(env_id), env_id) == expected, name


def test_async_vector_env_with_spawned_workers_and_shared_memory():
    """Under 'spawn' the env factory and the shared buffers are pickled into fresh interpreters."""
    vector_env = gym.make_vec(
        "Search-v0", num_envs=len(SEEDS), vectorization_mode="async", vector_kwargs={"context": "spawn"}
    )
    assert _vector_run(vector_env, "Search-v0") == _single_env_run("Search-v0")


def test_async_observations_copy_false_is_a_live_view_and_copy_true_a_tuple():
    shared = AsyncVectorEnv(_factories("Search-v0"), copy=False)
    view, _ = shared.reset(seed=SEEDS)
    first_question = view[0][0]["content"]
    shared.step(("<search>capital</search>", "<search>river</search>"))
    assert (
        isinstance(view, MessageListBatch) and view[0][0]["role"] == "user" and view[0][0]["content"] != first_question
    )
    shared.close()
    copying = AsyncVectorEnv(_factories("Search-v0"))
    observations, _ = copying.reset(seed=SEEDS)
    copying.close()
    assert type(observations) is tuple and observations[0][0]["content"] == first_question


def _continue(env: gym.Env, script: list[str]) -> list:
    results = []
    for action in script:
        results.append(env.step(action))
    results.append(env.reset())  # no seed: the env's own RNG state must have travelled too
    return _plain(results)


def _mid_episode(env_id: str) -> tuple[gym.Env, list[str]]:
    kwargs, script = ENVS[env_id]
    env = gym.make(env_id, **kwargs)
    env.reset(seed=5)
    env.step(script[0])
    return env, [script[1], script[0]]


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_a_pickled_env_continues_exactly_like_the_original(env_id):
    env, rest = _mid_episode(env_id)
    clone = pickle.loads(pickle.dumps(env))
    assert _continue(clone, rest) == _continue(env, rest)


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_a_deep_copy_mid_episode_continues_alike_and_leaves_the_original_alone(env_id):
    env, rest = _mid_episode(env_id)
    before = copy.deepcopy(env.unwrapped.transcript)
    clone = copy.deepcopy(env)
    from_clone = _continue(clone, rest)
    assert env.unwrapped.transcript == before  # stepping the copy did not touch the original
    assert from_clone == _continue(env, rest)


def test_pickled_envs_continue_alike_in_a_fresh_interpreter(tmp_path):
    """A fresh process has no index cache: Search-v0 rebuilds its bm25s index from the task."""
    payload = {}
    for env_id in sorted(ENVS):
        env, rest = _mid_episode(env_id)
        payload[env_id] = (pickle.dumps(env), rest)
        payload[env_id + "/expected"] = _continue(env, rest)
    (tmp_path / "envs.pickle").write_bytes(pickle.dumps({k: v for k, v in payload.items() if "/" not in k}))
    script = textwrap.dedent(
        """
        import json, pickle, sys
        import numpy as np
        def plain(value):
            return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
        out = {}
        for env_id, (blob, rest) in pickle.load(open(sys.argv[1], "rb")).items():
            env = pickle.loads(blob)
            out[env_id] = plain([env.step(a) for a in rest] + [env.reset()])
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "envs.pickle")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    for env_id in ENVS:
        assert results[env_id] == payload[env_id + "/expected"], env_id


def test_a_bm25_retriever_pickles_and_deep_copies_with_its_stemmer():
    from toolgym.retriever_contract import Document
    from toolgym.retrievers.bm25 import BM25Retriever

    retriever = BM25Retriever([Document("a", "Rivers", "The rivers were running"), Document("b", "Cats", "A cat sat")])
    for clone in (pickle.loads(pickle.dumps(retriever)), copy.deepcopy(retriever)):
        assert clone.search(["river runs"], 2) == retriever.search(["river runs"], 2)
        assert clone.search(["river runs"], 2)[0][0].doc_id == "a"  # stemming still applies


def test_a_math_verifier_pickles_as_its_settings_and_is_shared_by_deepcopy():
    from toolgym.envs.math.verifier import MathVerifier

    verifier = MathVerifier(timeout_s=3.0, workers=2, string_match=False)
    clone = pickle.loads(pickle.dumps(verifier))
    assert (clone.timeout_s, len(clone._all_workers), clone.string_match) == (3.0, 2, False)
    assert copy.deepcopy(verifier) is verifier


# --- the shared-memory layout itself ------------------------------------------------------------


def test_buffers_round_trip_unicode_surrogates_and_spill_oversize_observations():
    buffers = MessageBuffers(3, multiprocessing, slot_bytes=128)
    small = [{"role": "tool", "content": "日本語 😀 \ud800", "tool_call_id": "c1", "name": "search"}]
    large = [{"role": "user", "content": "é" * 10_000}]
    buffers.write(0, small)
    buffers.write(1, large)  # 20 kB > the 128-byte slot: goes to the spill file
    assert buffers.read(0) == small and buffers.read(1) == large and buffers.read(2) == []
    buffers.write(1, small)  # back into the slot
    assert buffers.read(1) == small


def test_the_batch_view_indexes_slices_and_deep_copies_to_a_tuple():
    buffers = MessageBuffers(2, multiprocessing)
    view = MessageListBatch(buffers)
    buffers.write(1, [{"role": "user", "content": "hi"}])
    assert view[-1] == view[1] == [{"role": "user", "content": "hi"}] and view[0:1] == ([],)
    assert copy.deepcopy(view) == ([], [{"role": "user", "content": "hi"}])
    with pytest.raises(IndexError):
        view[2]


def test_vector_observation_space_is_a_tuple_of_message_lists():
    vector_env = SyncVectorEnv(_factories("Math-v0"))
    observations, _ = vector_env.reset(seed=SEEDS)
    assert vector_env.observation_space.contains(tuple(observations))
    assert all(isinstance(space, MessageList) for space in vector_env.observation_space.spaces)
    assert np.all(vector_env.step((CALC, CALC))[1] == 0.0)
    vector_env.close()


def test_async_shared_memory_with_autoreset_disabled_and_a_reset_mask():
    """The loop LLM trainers want: no auto-reset, then reset only the sub-envs that finished."""
    vector_env = AsyncVectorEnv(
        [lambda: gym.make("Search-v0", max_turns=1) for _ in SEEDS], autoreset_mode=gym.vector.AutoresetMode.DISABLED
    )
    first, _ = vector_env.reset(seed=SEEDS)
    _, _, _, truncated, _ = vector_env.step(("<search>capital</search>", "<search>river</search>"))
    assert truncated.all()
    again, _ = vector_env.reset(options={"reset_mask": np.array([True, False])})
    vector_env.close()
    assert again[0] != first[0] and again[1] == []  # env 0 has a new task; env 1 still shows its last step


def test_an_observation_larger_than_its_slot_crosses_processes_intact():
    """A 400k-character passage (over the 256 KiB slot) travels through the spill file, uncut."""
    from toolgym.envs.search.env import SearchEnv
    from toolgym.vector_spaces import SLOT_BYTES

    text = "Ada wrote the long treatise. " + "détail " * 60_000
    row = {"question": "Who wrote it?", "answer": "Ada", "context": [["Ada", [text]], ["Bob", ["Bob read it."]]]}
    factories = [
        lambda: SearchEnv(dataset=[row], max_observation_chars=1_000_000) for _ in SEEDS
    ]  # over the 100k default
    results = []
    for vector_env in (SyncVectorEnv(factories), AsyncVectorEnv(factories)):
        vector_env.reset(seed=SEEDS)
        observations, *_ = vector_env.step(("<search>Ada treatise</search>",) * len(SEEDS))
        vector_env.close()
        results.append(observations)
    assert len(results[1][0][0]["content"].encode()) > SLOT_BYTES and text.strip() in results[1][0][0]["content"]
    assert results[0] == results[1]
