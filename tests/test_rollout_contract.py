"""The rollout ↔ trainer contract without a model: Trajectory records, turn numbering, logprob scoring."""

from __future__ import annotations

import json

import pytest

from toolgym.agents.base import SamplingParams
from toolgym.agents.engine import sampling_record, token_entropy, token_logprobs
from toolgym.agents.trajectory import Trajectory, read_trajectories, write_trajectories
from toolgym.envs.base import list_tasks

torch = pytest.importorskip("torch")


def _three_turns() -> Trajectory:
    """prompt (4) | turn 1 (3) | obs (2) | turn 2 (2) | obs (3) | turn 3 (2) | closing (1)."""
    ids = list(range(100, 117))
    spans = [(4, 7), (9, 11), (14, 16)]
    mask = [int(any(a <= i < b for a, b in spans)) for i in range(len(ids))]
    return Trajectory(
        messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "é ☃"}],
        token_ids=ids,
        loss_mask=mask,
        logprobs=[-0.5 if m else 0.0 for m in mask],
        turn_spans=spans,
        reward=1.0,
        turn_rewards=[0.0, 0.25, 1.0],
        observation_spans=[(7, 9), (11, 14)],
        observations=[[{"role": "user", "content": "o1"}], [{"role": "user", "content": "o2"}]],
        prompt_length=4,
        seed=7,
        task_id="t-7",
        group_key="t-7@seed=7",
        sample_index=2,
        sampling=sampling_record(SamplingParams(temperature=0.7, top_p=0.9, top_k=20, seed=3), policy_version=5),
        layout="raw",
        info={"gold": ["x"], "first_gold_turn": 2},
    )


def test_span_of_turn_takes_the_envs_one_based_turn_numbers() -> None:
    trajectory = _three_turns()

    first_gold = trajectory.info["first_gold_turn"]
    assert trajectory.span_of_turn(first_gold) == (9, 11)
    assert trajectory.span_of_turn(1) == trajectory.turn_spans[0]
    assert trajectory.observation_of_turn(2) == [{"role": "user", "content": "o2"}]
    assert trajectory.observation_of_turn(3) == []  # the final turn has no observation
    for bad in (0, 4, -1, True):
        with pytest.raises(IndexError, match="count from 1"):
            trajectory.span_of_turn(bad)


def test_dict_round_trip_keeps_every_field_and_tuple_spans() -> None:
    trajectory = _three_turns()

    again = Trajectory.from_dict(json.loads(json.dumps(trajectory.to_dict())))

    assert again == trajectory
    assert isinstance(again.turn_spans[0], tuple) and isinstance(again.observation_spans[0], tuple)
    assert again.sampling == {
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": 20,
        "max_tokens": 512,
        "stop": [],
        "seed": 3,
        "policy_version": 5,
    }


def test_from_dict_reads_old_records_and_refuses_unknown_fields() -> None:
    record = _three_turns().to_dict()
    old = {k: v for k, v in record.items() if k not in ("turn_rewards", "group_key", "failed", "layout")}
    assert Trajectory.from_dict(old).layout == "chat" and Trajectory.from_dict(old).turn_rewards == []
    with pytest.raises(ValueError, match="unknown trajectory fields \\['rewardz'\\]"):
        Trajectory.from_dict({**record, "rewardz": 1})
    with pytest.raises(ValueError, match="layout"):
        Trajectory.from_dict({**record, "layout": "sideways"})


def test_jsonl_round_trip_and_append(tmp_path) -> None:
    first, second = _three_turns(), _three_turns()
    second.failed, second.error = True, {"stage": "env", "type": "RuntimeError", "message": "boom", "traceback": ""}
    path = tmp_path / "step_0" / "rollouts.jsonl"

    write_trajectories(path, [first])
    write_trajectories(path, [second], append=True)

    assert read_trajectories(path) == [first, second]
    assert "☃" in path.read_text(encoding="utf-8")  # readable, not \\u-escaped


def test_reading_a_corrupt_line_names_the_line(tmp_path) -> None:
    path = tmp_path / "rollouts.jsonl"
    write_trajectories(path, [_three_turns()])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"messages": [\n')

    with pytest.raises(ValueError, match=r"rollouts\.jsonl:2"):
        read_trajectories(path)


def test_numpy_values_in_env_infos_are_written_as_json(tmp_path) -> None:
    np = pytest.importorskip("numpy")
    trajectory = _three_turns()
    trajectory.info = {"score": np.float32(0.5), "ids": np.arange(2)}

    write_trajectories(tmp_path / "r.jsonl", [trajectory])

    assert read_trajectories(tmp_path / "r.jsonl")[0].info == {"score": 0.5, "ids": [0, 1]}


def test_properties() -> None:
    trajectory = _three_turns()
    assert trajectory.num_generated_tokens == 7
    assert trajectory.response_length == 13
    assert trajectory.num_turns == 3


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_token_logprobs_is_log_softmax_at_the_temperature(temperature) -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 11, generator=generator)
    ids = torch.randint(0, 11, (2, 5), generator=generator)
    scale = temperature or 1.0  # greedy decoding is scored at T = 1

    expected = torch.log_softmax(logits / scale, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)

    assert torch.allclose(token_logprobs(logits, ids, temperature), expected, atol=1e-6)
    assert token_logprobs(logits.to(torch.bfloat16), ids, temperature).dtype == torch.float32


def test_token_entropy() -> None:
    uniform = torch.zeros(3, 8)
    peaked = torch.tensor([[50.0] + [0.0] * 7])
    assert torch.allclose(token_entropy(uniform), torch.full((3,), float(torch.log(torch.tensor(8.0)))))
    assert token_entropy(peaked).item() < 1e-6


def test_list_tasks_is_indexed_like_reset_options() -> None:
    import gymnasium as gym

    env = gym.make("toolgym:Math-v0")
    tasks = list_tasks(env)
    _, info = env.reset(options={"index": 3})

    assert len(tasks) > 3
    assert env.unwrapped.task_identifier(env.unwrapped.load_task(tasks[3], 3)) == info["task_id"]
    with pytest.raises(TypeError, match="ToolGym env"):
        list_tasks(gym.make("CartPole-v1"))


def test_sampling_params_refuse_a_negative_top_k() -> None:
    with pytest.raises(ValueError, match="top_k"):
        SamplingParams(top_k=-1)


def test_episode_rows_round_trip_through_the_schema_dataclass() -> None:
    from toolgym.agents.episodes import EpisodeRow

    row = EpisodeRow(3, 1, 42, task_id="t", rewards=[0.0, 1.0], reward=1.0, turns=2, extra={"attempt": 2})
    record = row.to_dict()

    assert "category" not in record and record["attempt"] == 2 and record["rewards"] == [0.0, 1.0]
    assert EpisodeRow.from_dict(json.loads(json.dumps(record))) == row
    assert EpisodeRow.from_dict({**record, "category": "simple"}).to_dict()["category"] == "simple"


class _AlwaysSearch:
    def act(self, requests):
        return ["<search>capital</search>" for _ in requests]


def test_the_eval_loop_isolates_a_dead_retrieval_server_like_rollouts_do() -> None:
    pytest.importorskip("httpx")
    import gymnasium as gym

    from toolgym.agents.episodes import Job, play_safely
    from toolgym.envs.pool import EnvPool
    from toolgym.envs.wrappers import SafeEnv
    from toolgym.retrievers.remote import RemoteRetriever

    dead = RemoteRetriever("http://127.0.0.1:9", timeout_s=0.5, max_retries=0)
    pool = EnvPool(
        [
            SafeEnv(gym.make("toolgym:Search-v0", max_turns=2)),
            SafeEnv(gym.make("toolgym:Search-v0", max_turns=2, retriever=dead)),
        ]
    )
    rows = []
    with pool:
        clock = play_safely(_AlwaysSearch(), pool, [Job(0, 0, 0), Job(1, 0, 1), Job(2, 0, 2)], rows.append)

    by_task = {row["task_index"]: row for row in rows}
    # Job 1 fails on the dead env at its first search; its freed slot takes job 2, which fails the same way.
    assert len(rows) == 3 and clock.episodes == 3 and clock.failed == 2
    assert by_task[0]["error"] is None and by_task[0]["turns"] == 2 and by_task[0]["truncated"]
    for index in (1, 2):
        assert by_task[index]["error"]["stage"] == "env" and by_task[index]["turns"] == 0
        assert by_task[index]["error"]["type"] == "RetrieverUnavailableError"


def test_lone_surrogates_and_nan_round_trip_in_valid_utf8(tmp_path) -> None:
    trajectory = _three_turns()
    trajectory.observations = [[{"role": "user", "content": "bad \ud800 text"}], []]
    trajectory.turn_rewards = [float("nan"), 0.0, 1.0]
    path = write_trajectories(tmp_path / "r.jsonl", [trajectory])

    path.read_bytes().decode("utf-8")  # valid UTF-8
    [again] = read_trajectories(path)

    assert again.observations[0][0]["content"] == "bad \ud800 text"
    assert again.turn_rewards[0] != again.turn_rewards[0]  # NaN survives


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_fused_logprobs_and_entropy_match_the_separate_functions(temperature) -> None:
    """The trainer's fused logprobs and logged entropy equal `token_logprobs` and `token_entropy`,
    gradients included; with an entropy bonus the entropy stays in the graph."""
    from toolgym.agents.engine import _logprob_with_logged_entropy, token_logprobs_and_entropy

    generator = torch.Generator().manual_seed(1)
    logits = (torch.randn(3, 4, 50, generator=generator) * 4).requires_grad_()
    ids = torch.randint(0, 50, (3, 4), generator=generator)

    _, bonus_entropy = token_logprobs_and_entropy(logits, ids, temperature, entropy_grad=True)
    assert bonus_entropy.requires_grad
    logprobs, logged = token_logprobs_and_entropy(logits, ids, temperature)  # the fused autograd function
    assert not logged.requires_grad  # logged entropy stays out of the graph unless the bonus needs it
    assert torch.allclose(logprobs, token_logprobs(logits, ids, temperature), atol=1e-5)
    assert torch.allclose(logged, token_entropy(logits, temperature), atol=1e-5)
    weights = torch.randn(3, 4, generator=generator)
    (grad_fused,) = torch.autograd.grad((logprobs * weights).sum(), logits)
    (grad_reference,) = torch.autograd.grad((token_logprobs(logits, ids, temperature) * weights).sum(), logits)
    assert torch.allclose(grad_fused, grad_reference, atol=1e-5)
    fused = _logprob_with_logged_entropy()
    small_ids = torch.randint(0, 6, (2, 3), generator=generator)
    assert torch.autograd.gradcheck(
        lambda x: fused.apply(x, small_ids)[0],
        (torch.randn(2, 3, 6, dtype=torch.float64, generator=generator).requires_grad_(),),
    )


def test_fused_logprobs_are_the_same_whatever_the_chunk_size(monkeypatch) -> None:
    """The fused function works in row chunks; chunk boundaries change no value or gradient."""
    from toolgym.agents import engine
    from toolgym.agents.engine import token_logprobs_and_entropy

    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 7, 40, generator=generator) * 3
    ids = torch.randint(0, 40, (5, 7), generator=generator)
    weights = torch.randn(5, 7, generator=generator)

    def run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = logits.clone().requires_grad_()
        logprobs, entropy = token_logprobs_and_entropy(x, ids, 0.8)
        (grad,) = torch.autograd.grad((logprobs * weights).sum(), x)
        return logprobs.detach(), entropy, grad

    whole = run()
    for elements in (40, 100, 120, 1):  # one row, two rows, three rows (a ragged last chunk), one row
        monkeypatch.setattr(engine, "LOGIT_CHUNK_ELEMENTS", elements)
        for ours, reference in zip(run(), whole):
            assert torch.allclose(ours, reference, atol=1e-6)
