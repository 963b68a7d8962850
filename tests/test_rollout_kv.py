"""KV reuse across turns (HFEngine): continuations encode only their suffix and score like a full recompute."""

from __future__ import annotations

import pytest
from tiny_model_fixture import tiny_model_path

from toolgym.agents.base import SamplingParams
from toolgym.agents.engine import token_logprobs
from toolgym.agents.hf_engine import HFEngine
from toolgym.agents.rollout import collect_rollouts
from toolgym.envs.pool import EnvPool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def _recomputed(model, ids: list[int], temperature: float) -> torch.Tensor:
    """Logprob of every token after the first under a full forward pass, via the shared function."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return token_logprobs(logits[:-1], torch.tensor(ids[1:]), temperature)


def _assert_matches_recompute(model, trajectories, temperature: float) -> None:
    for trajectory in trajectories:
        full = _recomputed(model, trajectory.token_ids, temperature)
        positions = [i for i, m in enumerate(trajectory.loss_mask) if m]
        rollout = torch.tensor([trajectory.logprobs[i] for i in positions])
        assert torch.allclose(rollout, full[[i - 1 for i in positions]], atol=1e-4), (rollout - full).abs().max()


@pytest.mark.parametrize("env_id", ["toolgym:Search-v0", "toolgym:Math-v0"])
def test_multi_turn_rollouts_reuse_the_cache_and_match_a_full_recompute(engine, env_id) -> None:
    reusing = HFEngine(engine.model, engine.tokenizer, batch_size=3, kv_cache_sequences=16)
    sampling = SamplingParams(temperature=0.8, max_tokens=12, seed=5)
    kwargs = {"max_turns": 3} if env_id.startswith("toolgym:Search") else {"tools": True, "max_turns": 3}
    with EnvPool.make(env_id, 5, **kwargs) as pool:  # 5 episodes in flight, batches of 3: mixed rows
        trajectories = collect_rollouts(reusing, engine.tokenizer, pool, [0, 1, 2, 3, 4], sampling, 4096)

    assert sum(len(t.turn_spans) for t in trajectories) > len(trajectories)  # there were later turns
    assert reusing.kv_cache.reused_tokens > reusing.kv_cache.encoded_tokens  # most prompt tokens came from cache
    _assert_matches_recompute(engine.model, trajectories, sampling.temperature)


def test_greedy_rollouts_are_the_same_with_and_without_reuse(engine) -> None:
    sampling = SamplingParams(temperature=0.0, max_tokens=10)
    runs = []
    for capacity in (0, 16):
        fresh = HFEngine(engine.model, engine.tokenizer, batch_size=4, kv_cache_sequences=capacity)
        with EnvPool.make("toolgym:Search-v0", 4, max_turns=3) as pool:
            runs.append(collect_rollouts(fresh, engine.tokenizer, pool, [0, 1, 2, 3], sampling, 4096))
        assert (fresh.kv_cache.reused_tokens > 0) == bool(capacity)
    off, on = runs
    assert [t.token_ids for t in off] == [t.token_ids for t in on]
    for a, b in zip(off, on):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def test_a_prompt_equal_to_a_cached_sequence_and_mixed_rows(engine) -> None:
    reusing = HFEngine(engine.model, engine.tokenizer, batch_size=8, kv_cache_sequences=8)
    sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=0)
    tokenizer = engine.tokenizer
    short, long = tokenizer("hello there")["input_ids"], tokenizer("a much longer opening prompt here")["input_ids"]
    first = reusing.generate([short, long], sampling)
    cached = [short + first[0].token_ids[:-1], long + first[1].token_ids]  # fully cached / one token past
    fresh = tokenizer("an unrelated prompt")["input_ids"]

    second = reusing.generate([*cached, fresh], sampling)

    assert reusing.kv_cache.reused_tokens == len(cached[0]) - 1 + len(cached[1]) - 1
    for prompt, generation in zip([*cached, fresh], second):
        ids = prompt + generation.token_ids
        expected = _recomputed(engine.model, ids, 1.0)[len(prompt) - 1 :]
        assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=1e-4)


def test_update_weights_bumps_the_version_and_drops_stale_keys_and_values(engine) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path())
    own = HFEngine(model, engine.tokenizer, kv_cache_sequences=8)
    sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=0)
    prompt = engine.tokenizer("the first turn")["input_ids"]
    [generation] = own.generate([prompt], sampling)
    assert len(own.kv_cache) == 1

    perturbed = {name: value + 0.05 * torch.randn_like(value) for name, value in model.state_dict().items()}
    own.update_weights(perturbed)
    continuation = prompt + generation.token_ids
    [after] = own.generate([continuation], sampling)

    assert own.policy_version == 1 and own.kv_cache.reused_tokens == 0
    expected = _recomputed(model, continuation + after.token_ids, 1.0)[len(continuation) - 1 :]
    assert torch.allclose(torch.tensor(after.logprobs), expected, atol=1e-4)
    own.update_weights(model)  # the engine's own module: nothing to load, the version still moves
    assert own.policy_version == 2 and len(own.kv_cache) == 0
    with pytest.raises(TypeError, match="state dict"):
        own.update_weights([1, 2])


def test_group_members_share_one_prefill_of_their_common_prompt(engine) -> None:
    sharing = HFEngine(engine.model, engine.tokenizer, batch_size=8, kv_cache_sequences=8)
    sampling = SamplingParams(temperature=1.0, max_tokens=8, seed=3)
    prompt = engine.tokenizer("the same question for every member of the group")["input_ids"]
    other = engine.tokenizer("another task")["input_ids"]

    generations = sharing.generate([prompt, prompt, other, prompt], sampling)

    assert sharing.kv_cache.encoded_tokens == len(prompt) + len(other)
    assert sharing.kv_cache.reused_tokens == 2 * len(prompt)
    assert len({tuple(g.token_ids) for g in (generations[0], generations[1], generations[3])}) > 1
    for ids, generation in zip([prompt, prompt, other, prompt], generations):
        expected = _recomputed(engine.model, ids + generation.token_ids, 1.0)[len(ids) - 1 :]
        assert torch.allclose(torch.tensor(generation.logprobs), expected, atol=1e-4)


def test_weights_changed_in_place_without_update_weights_drop_the_cache(engine) -> None:
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path())
    own = HFEngine(model, engine.tokenizer, kv_cache_sequences=8)
    sampling = SamplingParams(temperature=1.0, max_tokens=6, seed=0)
    prompt = engine.tokenizer("the first turn")["input_ids"]
    [generation] = own.generate([prompt], sampling)
    with torch.no_grad():  # an optimizer step on the shared module, the trainer forgetting update_weights
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    continuation = prompt + generation.token_ids

    [after] = own.generate([continuation], sampling)

    assert own.kv_cache.reused_tokens == 0
    expected = _recomputed(model, continuation + after.token_ids, 1.0)[len(continuation) - 1 :]
    assert torch.allclose(torch.tensor(after.logprobs), expected, atol=1e-4)
