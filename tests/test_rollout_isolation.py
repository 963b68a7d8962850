"""Training rollouts on the shared episode loop: env failures, group keys, per-turn rewards, raw layout."""

from __future__ import annotations

import gymnasium as gym
import pytest

from toolgym.agents.base import SamplingParams
from toolgym.agents.drift import check_drift
from toolgym.agents.engine import Generation, TokenEngine
from toolgym.agents.rollout import Trajectory, collect_rollouts
from toolgym.envs.pool import EnvPool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("httpx")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=16, stop=("</search>", "</answer>"), seed=0)


class ScriptedTokenEngine:
    """A token engine that always 'samples' the same text: drives an env down a known path."""

    def __init__(self, tokenizer, text: str):
        self.ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        self.policy_version = 0
        self.calls = 0

    def generate(self, prompts, sampling, max_new_tokens=None) -> list[Generation]:
        self.calls += 1
        budgets = max_new_tokens or [sampling.max_tokens] * len(prompts)
        out = []
        for budget in budgets:
            ids = self.ids[:budget]
            out.append(Generation(ids, [-1.0] * len(ids), "stop" if len(ids) == len(self.ids) else "length"))
        return out

    def update_weights(self, weights) -> None:
        self.policy_version += 1

    def reseed(self, seed: int) -> None:
        pass


def _dead_backend_env(**kwargs) -> gym.Env:
    """Search-v0 whose retrieval server is down: a search step raises (a real RemoteRetriever failure)."""
    from toolgym.retrievers.remote import RemoteRetriever

    dead = RemoteRetriever("http://127.0.0.1:9", timeout_s=0.5, max_retries=0)
    return gym.make("toolgym:Search-v0", retriever=dead, **kwargs)


def test_the_scripted_engine_satisfies_the_protocol(engine) -> None:
    assert isinstance(ScriptedTokenEngine(engine.tokenizer, "x"), TokenEngine)
    assert isinstance(engine, TokenEngine)


def test_an_env_that_raises_at_step_or_reset_costs_one_trajectory(engine) -> None:
    scripted = ScriptedTokenEngine(engine.tokenizer, "<search>capital</search>")
    envs = [gym.make("toolgym:Search-v0", max_turns=2), _dead_backend_env(max_turns=2)]
    # Slot 0 (healthy) plays seed 0, slot 1 (dead backend) plays seed 1; seed 2 has a broken task row.
    options = [None, None, {"task": "not a task row"}, None]

    trajectories = collect_rollouts(
        scripted, engine.tokenizer, envs, [0, 1, 2, 3], SAMPLING, max_episode_tokens=4096, options=options
    )

    assert len(trajectories) == 4
    healthy, dead_step, dead_reset = trajectories[0], trajectories[1], trajectories[2]
    assert not healthy.failed and healthy.truncated and len(healthy.turn_spans) == 2
    assert dead_step.failed and dead_step.error["stage"] == "env"
    assert dead_step.error["type"] == "RetrieverUnavailableError" and "127.0.0.1:9" in dead_step.error["message"]
    assert dead_step.reward == 0.0 and dead_step.info["stop_reason"] == "error"
    assert len(dead_step.turn_spans) == 1 and dead_step.task_id  # it played one turn before the env raised
    assert dead_reset.failed and dead_reset.error["stage"] == "reset" and dead_reset.token_ids == []
    assert "task" in dead_reset.error["message"] and dead_reset.group_key.endswith("@seed=2#0")
    # The loop went on after both failures: seed 3 played on whichever env was free.
    assert trajectories[3].turn_spans and trajectories[3].seed == 3
    assert [t.sample_index for t in trajectories] == [0, 0, 0, 0]


def _keys_by_seed(trajectories: list[Trajectory], group_size: int) -> dict[int, tuple[str, str]]:
    keys = {}
    for start in range(0, len(trajectories), group_size):
        group = trajectories[start : start + group_size]
        assert len({t.group_key for t in group}) == 1 and len({t.seed for t in group}) == 1
        assert [t.sample_index for t in group] == list(range(group_size))
        keys[group[0].seed] = (group[0].group_key, group[0].task_id)
    return keys


def test_group_keys_do_not_depend_on_the_order_of_the_seeds(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=0)
    with EnvPool.make("toolgym:Math-v0", 3) as pool:
        forward = collect_rollouts(engine, engine.tokenizer, pool, [5, 6, 7], sampling, 2048, group_size=2)
        shuffled = collect_rollouts(engine, engine.tokenizer, pool, [7, 5, 6], sampling, 2048, group_size=2)

    assert _keys_by_seed(forward, 2) == _keys_by_seed(shuffled, 2)
    assert len({key for key, _ in _keys_by_seed(forward, 2).values()}) == 3
    assert all(t.task_id in t.group_key for t in forward)
    assert [t.group for t in shuffled] == [0, 0, 1, 1, 2, 2]  # positions do change


def test_sample_offset_continues_a_groups_sample_indices(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=1)
    with EnvPool.make("toolgym:Math-v0", 2) as pool:
        first = collect_rollouts(engine, engine.tokenizer, pool, [4], sampling, 2048, group_size=2)
        more = collect_rollouts(engine, engine.tokenizer, pool, [4], sampling, 2048, group_size=2, sample_offset=2)

    assert [t.sample_index for t in first + more] == [0, 1, 2, 3]
    assert len({t.group_key for t in first + more}) == 1


def test_per_turn_rewards_are_the_envs_step_rewards(engine) -> None:
    # Whatever the env pays per step, a replay of the same actions must pay the same.
    sampling = SamplingParams(temperature=1.0, max_tokens=24, seed=2)
    with EnvPool.make("toolgym:Search-v0", 2, max_turns=3) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [0, 1], sampling, 4096)

    env = gym.make("toolgym:Search-v0", max_turns=3)
    for trajectory in trajectories:
        env.reset(seed=trajectory.seed)
        replayed = [float(env.step(action)[1]) for action in trajectory.actions]
        assert trajectory.turn_rewards == replayed
        assert len(trajectory.turn_rewards) == len(trajectory.turn_spans) == len(trajectory.turn_infos)
        assert trajectory.turn_rewards[-1] == trajectory.reward


def test_a_correct_answer_pays_on_its_turn(engine) -> None:
    env = gym.make("toolgym:Search-v0")
    _, info = env.reset(seed=0)
    gold = info["task"]["answer"]  # the task row, given to scripted baselines
    scripted = ScriptedTokenEngine(engine.tokenizer, f"<answer>{gold}</answer>")

    [trajectory] = collect_rollouts(scripted, engine.tokenizer, [env], [0], SAMPLING, 4096)

    assert trajectory.turn_rewards == [1.0] and trajectory.reward == 1.0 and trajectory.terminated


def test_raw_layout_appends_search_r1_information_blocks_inside_the_turn(engine) -> None:
    scripted = ScriptedTokenEngine(engine.tokenizer, "<search>capital</search>")
    with EnvPool.make("toolgym:Search-v0", 1, max_turns=3) as pool:
        [raw] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096)
        [chat] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096, layout="chat")

    decode = engine.tokenizer.decode
    assert raw.layout == "raw" and chat.layout == "chat"
    assert len(raw.observation_spans) == 2
    for turn, (start, end) in enumerate(raw.observation_spans, start=1):
        text = decode(raw.token_ids[start:end])
        assert text.startswith("\n\n<information>") and text.endswith("</information>\n\n")
        assert "<|im_start|>" not in text and "<|im_end|>" not in text
        assert set(raw.loss_mask[start:end]) == {0}
        assert raw.observation_of_turn(turn)[0]["content"] == text
    # The assistant turn stays open: one <|im_start|>assistant, one <|im_end|> at the very end.
    whole = decode(raw.token_ids)
    assert whole.count("<|im_start|>assistant") == 1 and whole.endswith("<|im_end|>\n")
    assert decode(chat.token_ids).count("<|im_start|>assistant") == 3
    assert check_drift(raw, engine.tokenizer).ok and check_drift(chat, engine.tokenizer).ok
    assert raw.loss_mask.count(1) == chat.loss_mask.count(1)


def test_drift_check_catches_a_raw_observation_rendered_as_a_chat_turn(engine) -> None:
    scripted = ScriptedTokenEngine(engine.tokenizer, "<search>capital</search>")
    with EnvPool.make("toolgym:Search-v0", 1, max_turns=2) as pool:
        [raw] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096)
    start, end = raw.observation_spans[0]
    as_chat_turn = engine.tokenizer(
        "<|im_end|>\n<|im_start|>user\n" + engine.tokenizer.decode(raw.token_ids[start:end]) + "<|im_end|>\n"
        "<|im_start|>assistant\n",
        add_special_tokens=False,
    )["input_ids"]
    shift = len(as_chat_turn) - (end - start)
    broken = Trajectory.from_dict(
        {
            **raw.to_dict(),
            "token_ids": raw.token_ids[:start] + as_chat_turn + raw.token_ids[end:],
            "loss_mask": raw.loss_mask[:start] + [0] * len(as_chat_turn) + raw.loss_mask[end:],
            "logprobs": raw.logprobs[:start] + [0.0] * len(as_chat_turn) + raw.logprobs[end:],
            "turn_spans": [raw.turn_spans[0], *[(a + shift, b + shift) for a, b in raw.turn_spans[1:]]],
        }
    )

    report = check_drift(broken, engine.tokenizer)

    assert not report.ok and report.kind == "text" and report.token_index == start


def test_drift_check_catches_a_raw_observation_tokenized_piecewise(engine) -> None:
    scripted = ScriptedTokenEngine(engine.tokenizer, "<search>capital</search>")
    with EnvPool.make("toolgym:Search-v0", 1, max_turns=2) as pool:
        [raw] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096)
    tokenizer = engine.tokenizer
    start, end = raw.observation_spans[0]
    position = next(i for i in range(start, end) if len(tokenizer.convert_ids_to_tokens(raw.token_ids[i])) >= 3)
    pieces = tokenizer.convert_tokens_to_ids(list(tokenizer.convert_ids_to_tokens(raw.token_ids[position])))
    shift = len(pieces) - 1
    broken = Trajectory.from_dict(
        {
            **raw.to_dict(),
            "token_ids": raw.token_ids[:position] + pieces + raw.token_ids[position + 1 :],
            "loss_mask": raw.loss_mask[:position] + [0] * len(pieces) + raw.loss_mask[position + 1 :],
            "logprobs": raw.logprobs[:position] + [0.0] * len(pieces) + raw.logprobs[position + 1 :],
            "turn_spans": [raw.turn_spans[0], *[(a + shift, b + shift) for a, b in raw.turn_spans[1:]]],
        }
    )
    assert tokenizer.decode(broken.token_ids) == tokenizer.decode(raw.token_ids)

    report = check_drift(broken, tokenizer)

    assert not report.ok and report.kind == "tokens" and report.token_index == position


def test_unknown_layout_is_refused(engine) -> None:
    with EnvPool.make("toolgym:Math-v0", 1) as pool, pytest.raises(ValueError, match="layout"):
        collect_rollouts(engine, engine.tokenizer, pool, [0], SAMPLING, 1024, layout="sideways")


def test_the_sampling_record_holds_the_policy_version(engine) -> None:
    scripted = ScriptedTokenEngine(engine.tokenizer, "<answer>x</answer>")
    scripted.update_weights(None)
    with EnvPool.make("toolgym:Search-v0", 1) as pool:
        [by_engine] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096)
        [explicit] = collect_rollouts(scripted, engine.tokenizer, pool, [0], SAMPLING, 4096, policy_version=9)

    assert by_engine.sampling["policy_version"] == 1 and explicit.sampling["policy_version"] == 9
    assert by_engine.sampling["temperature"] == 1.0 and by_engine.sampling["stop"] == ["</search>", "</answer>"]
