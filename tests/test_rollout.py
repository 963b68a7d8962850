"""Token-level rollouts on the tiny model: masks, logprobs, groups, budgets, stop strings."""

from __future__ import annotations

import pytest

from toolgym.agents.base import SamplingParams
from toolgym.agents.rollout import Trajectory, collect_rollouts
from toolgym.envs.pool import EnvPool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=24, stop=("</search>", "</answer>"), seed=0)


@pytest.fixture(scope="module")
def search_rollouts(engine) -> list[Trajectory]:
    with EnvPool.make("toolgym:Search-v0", 4, max_turns=3) as pool:
        return collect_rollouts(
            engine, engine.tokenizer, pool, [0, 1, 2], SAMPLING, max_episode_tokens=2048, group_size=2, layout="chat"
        )


def _chatml(message: dict) -> str:
    """ChatML written out by hand, independently of the template code under test."""
    if message["role"] == "tool":
        return f"<|im_start|>user\n<tool_response>\n{message['content']}\n</tool_response><|im_end|>\n"
    return f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n"


def _env_messages_after_each_turn(trajectory: Trajectory) -> list[list[dict]]:
    """The env/tool messages that follow each assistant turn in the transcript."""
    groups: list[list[dict]] = []
    for message in trajectory.messages[trajectory.messages.index(_first_assistant(trajectory)) :]:
        if message["role"] == "assistant":
            groups.append([])
        else:
            groups[-1].append(message)
    return groups


def _first_assistant(trajectory: Trajectory) -> dict:
    return next(m for m in trajectory.messages if m["role"] == "assistant")


def _assert_token_layout(trajectory: Trajectory, tokenizer) -> None:
    """loss_mask is 1 exactly on sampled turns; every other span is the end of turn plus env text
    (chat layout) or the raw observation text, with the end of turn after the last turn (raw layout)."""
    inside = {i for start, end in trajectory.turn_spans for i in range(start, end)}
    assert trajectory.loss_mask == [int(i in inside) for i in range(len(trajectory.token_ids))]
    assert all(lp == 0.0 for i, lp in enumerate(trajectory.logprobs) if i not in inside)
    assert all(lp <= 0.0 for i, lp in enumerate(trajectory.logprobs) if i in inside)
    assert len(trajectory.token_ids) == len(trajectory.loss_mask) == len(trajectory.logprobs)
    ends = [end for _, end in trajectory.turn_spans]
    starts = [*(start for start, _ in trajectory.turn_spans[1:]), len(trajectory.token_ids)]
    for turn, (end, next_start, env_messages) in enumerate(
        zip(ends, starts, _env_messages_after_each_turn(trajectory))
    ):
        sampled_eos = trajectory.finish_reasons[turn] == "eos"
        end_of_turn = "\n" if sampled_eos else "<|im_end|>\n"
        last = turn == len(ends) - 1
        if trajectory.layout == "raw":
            expected = end_of_turn if last else "".join(m["content"] for m in env_messages)
            if not last:
                assert trajectory.observation_spans[turn] == (end, next_start)
        else:
            expected = end_of_turn + "".join(_chatml(m) for m in env_messages)
            if next_start < len(trajectory.token_ids) or env_messages:
                expected += "<|im_start|>assistant\n"
        masked_ids = trajectory.token_ids[end:next_start]
        # The non-policy tokens are exactly the canonical tokenization of the hand-written ChatML.
        assert masked_ids == tokenizer(expected, add_special_tokens=False)["input_ids"], (turn, expected)


def test_search_episodes_run_to_the_end(search_rollouts) -> None:
    assert len(search_rollouts) == 6
    for trajectory in search_rollouts:
        assert trajectory.terminated or trajectory.truncated
        assert 1 <= len(trajectory.turn_spans) <= 3
        assert len(trajectory.turn_infos) == len(trajectory.turn_spans) == len(trajectory.actions)
        assert "stop_reason" in trajectory.info


def test_mask_is_one_exactly_on_sampled_tokens(search_rollouts, engine) -> None:
    for trajectory in search_rollouts:
        _assert_token_layout(trajectory, engine.tokenizer)


def test_prompt_is_the_template_render(search_rollouts, engine) -> None:
    trajectory = search_rollouts[0]
    prompt = "".join(_chatml(m) for m in trajectory.messages[:1]) + "<|im_start|>assistant\n"

    assert (
        trajectory.token_ids[: trajectory.prompt_length]
        == engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    )


def test_env_received_the_decoded_turns(search_rollouts, engine) -> None:
    for trajectory in search_rollouts:
        assistant = [m["content"] for m in trajectory.messages if m["role"] == "assistant"]
        assert trajectory.actions == assistant
        for (start, end), text, reason in zip(trajectory.turn_spans, assistant, trajectory.finish_reasons):
            ids = trajectory.token_ids[start:end][:-1] if reason == "eos" else trajectory.token_ids[start:end]
            assert engine.tokenizer.decode(ids, skip_special_tokens=False) == text


def test_logprobs_match_a_recomputation_by_the_model(search_rollouts, engine) -> None:
    for trajectory in search_rollouts:
        ids = torch.tensor([trajectory.token_ids])
        with torch.no_grad():
            logits = engine.model(input_ids=ids).logits[0].float()
        recomputed = torch.log_softmax(logits / SAMPLING.temperature, dim=-1)
        positions = [i for i, m in enumerate(trajectory.loss_mask) if m]
        expected = recomputed[[i - 1 for i in positions], [trajectory.token_ids[i] for i in positions]]
        rollout = torch.tensor([trajectory.logprobs[i] for i in positions])

        assert torch.allclose(rollout, expected, atol=1e-4), (rollout - expected).abs().max()


def test_groups_share_a_task_and_sample_independently(search_rollouts) -> None:
    groups = [search_rollouts[g * 2 : g * 2 + 2] for g in range(3)]

    for index, (first, second) in enumerate(groups):
        assert first.group == second.group == index
        assert first.task_id == second.task_id and first.seed == second.seed
        assert first.messages[0] == second.messages[0]
    assert len({g[0].task_id for g in groups}) == 3
    assert any(first.token_ids != second.token_ids for first, second in groups)


def test_same_seed_same_trajectories(engine, search_rollouts) -> None:
    with EnvPool.make("toolgym:Search-v0", 4, max_turns=3) as pool:
        again = collect_rollouts(
            engine, engine.tokenizer, pool, [0, 1, 2], SAMPLING, max_episode_tokens=2048, group_size=2, layout="chat"
        )

    assert [t.token_ids for t in again] == [t.token_ids for t in search_rollouts]


def test_math_tool_episodes_with_hermes_calls(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=16, seed=1)
    with EnvPool.make("toolgym:Math-v0", 3, tools=True, max_turns=3) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [0, 1, 2], sampling, max_episode_tokens=4096)

    assert len(trajectories) == 3
    for trajectory in trajectories:
        assert trajectory.terminated or trajectory.truncated
        assert len(trajectory.turn_spans) == 3 or trajectory.terminated
        assert trajectory.tools is None  # hermes instructions are in the system prompt, not the template
        _assert_token_layout(trajectory, engine.tokenizer)


def test_native_tool_calling_renders_schemas_and_tool_messages(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=12, seed=2)
    with EnvPool.make("toolgym:Search-v0", 2, tool_format="openai", max_turns=2) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [3, 4], sampling, max_episode_tokens=4096)

    for trajectory in trajectories:
        assert trajectory.tools and trajectory.tools[0]["function"]["name"] == "search"
        prompt = engine.tokenizer.decode(trajectory.token_ids[: trajectory.prompt_length])
        assert "# Tools" in prompt and '"name": "search"' in prompt
        assert all(isinstance(action, dict) and action["role"] == "assistant" for action in trajectory.actions)
        assert trajectory.terminated or trajectory.truncated


def test_episode_token_budget_truncates(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=64, seed=3)
    with EnvPool.make("toolgym:Search-v0", 2, max_turns=4) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [0, 1], sampling, max_episode_tokens=300)

    for trajectory in trajectories:
        assert len(trajectory.token_ids) <= 300
        _assert_token_layout(trajectory, engine.tokenizer)
    assert any(
        t.info.get("stop_reason") == "max_episode_tokens" and t.truncated and t.reward == 0 for t in trajectories
    )


def test_stop_strings_end_a_turn_on_the_completing_token(engine) -> None:
    sampling = SamplingParams(temperature=1.0, max_tokens=24, stop=("e",), seed=4)
    with EnvPool.make("toolgym:Search-v0", 4, max_turns=2) as pool:
        trajectories = collect_rollouts(engine, engine.tokenizer, pool, [0, 1, 2, 3], sampling, max_episode_tokens=2048)

    decode = engine.tokenizer.decode
    stopped = [
        trajectory.token_ids[start:end]
        for trajectory in trajectories
        for (start, end), reason in zip(trajectory.turn_spans, trajectory.finish_reasons)
        if reason == "stop"
    ]
    assert stopped, "no turn hit the stop string"
    for ids in stopped:
        assert "e" in decode(ids) and "e" not in decode(ids[:-1])


def test_prompt_longer_than_the_budget_gives_an_empty_truncated_trajectory(engine) -> None:
    with EnvPool.make("toolgym:Search-v0", 1) as pool:
        [trajectory] = collect_rollouts(engine, engine.tokenizer, pool, [0], SAMPLING, max_episode_tokens=10)

    assert trajectory.truncated and trajectory.turn_spans == []
    assert trajectory.info["stop_reason"] == "max_episode_tokens"


def test_bad_arguments_are_refused(engine) -> None:
    with EnvPool.make("toolgym:Search-v0", 1) as pool:
        with pytest.raises(ValueError, match="group_size"):
            collect_rollouts(engine, engine.tokenizer, pool, [0], SAMPLING, max_episode_tokens=100, group_size=0)
        with pytest.raises(ValueError, match="options"):
            collect_rollouts(
                engine, engine.tokenizer, pool, [0], SAMPLING, max_episode_tokens=100, options=[None, None]
            )


def test_a_plain_list_of_envs_works_and_single_turn_math_terminates(engine) -> None:
    import gymnasium as gym

    envs = [gym.make("toolgym:Math-v0"), gym.make("toolgym:Math-v0")]
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=5)

    trajectories = collect_rollouts(engine, engine.tokenizer, envs, [0, 1, 2], sampling, max_episode_tokens=1024)

    assert [len(t.turn_spans) for t in trajectories] == [1, 1, 1]
    assert all(t.terminated and t.info["stop_reason"] in ("answer", "no_answer") for t in trajectories)
    for trajectory in trajectories:
        _assert_token_layout(trajectory, engine.tokenizer)


@pytest.mark.parametrize(
    ("stops", "random_weights_hit_one"),
    [(("</search>", "</answer>"), False), (("e", " the"), True), (("a ",), True), (("é", "s"), True)],
)
def test_skipping_tokens_that_cannot_end_a_stop_changes_no_generation(
    engine, monkeypatch, stops, random_weights_hit_one
) -> None:
    """The engine decodes the tail only for tokens holding a stop's last character; same tokens either way."""
    prompts = [engine.tokenizer("Where was Tarvo born? <search>")["input_ids"], engine.tokenizer("x")["input_ids"]]
    sampling = SamplingParams(temperature=1.0, max_tokens=40, stop=stops, seed=5)

    def generate() -> list:
        engine.kv_cache.clear()
        engine.reseed(5)
        return [(g.token_ids, g.finish_reason, g.stop) for g in engine.generate(prompts * 8, sampling)]

    filtered = generate()
    monkeypatch.setattr(type(engine), "_stop_enders", lambda self, stops: None)
    assert generate() == filtered
    assert any(reason == "stop" for _, reason, _ in filtered) == random_weights_hit_one
