"""HFAgent on the tiny local model: batching, stop strings, token limits, tool calls, specs."""

from __future__ import annotations

import pytest
from tiny_model_fixture import tiny_model_path

from toolgym.agents.base import AgentRequest, SamplingParams
from toolgym.agents.chat_format import action_from_text, truncate_at_stop
from toolgym.agents.specs import make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

pytest.importorskip("transformers")

GREEDY = SamplingParams(temperature=0.0, max_tokens=12)


@pytest.fixture(scope="module")
def agent():
    from toolgym.agents.hf_agent import HFAgent

    return HFAgent(tiny_model_path(), sampling=GREEDY, batch_size=4)


def _request(question: str, **env_info) -> AgentRequest:
    return AgentRequest(messages=[{"role": "user", "content": question}], env_info=env_info)


QUESTIONS = ["Who founded Vesas?", "What is 2 + 2?", "x", "A much longer question about the history of Zourounia?"]


def test_one_turn_per_request_within_max_tokens(agent) -> None:
    completions = agent.complete([_request(q) for q in QUESTIONS])

    assert len(completions) == len(QUESTIONS)
    for completion in completions:
        assert isinstance(completion.action, str)
        assert 1 <= completion.completion_tokens <= GREEDY.max_tokens
        assert completion.finish_reason in ("eos", "length")
        assert completion.finish_reason == "eos" or completion.completion_tokens == GREEDY.max_tokens


def test_batched_greedy_equals_one_at_a_time(agent) -> None:
    # Left padding and the attention mask must make batching invisible to each conversation.
    batched = agent.act([_request(q) for q in QUESTIONS])

    alone = [agent.act([_request(q)])[0] for q in QUESTIONS]

    assert batched == alone


def test_batches_larger_than_batch_size(agent) -> None:
    requests = [_request(q) for q in QUESTIONS * 3]  # 12 requests, batch_size 4

    turns = agent.act(requests)

    assert turns == agent.act([_request(q) for q in QUESTIONS]) * 3


def test_stop_string_cuts_after_the_stop_and_keeps_it(agent) -> None:
    long = SamplingParams(temperature=0.0, max_tokens=30)
    [free] = agent.complete([_request("Who founded Vesas?")], long)
    stop = free.text[8:12]  # a string the greedy model is known to produce, mid-turn
    assert stop.strip(), f"greedy text too short to pick a stop from: {free.text!r}"

    [stopped] = agent.complete(
        [_request("Who founded Vesas?")], SamplingParams(temperature=0.0, max_tokens=30, stop=(stop,))
    )

    assert stopped.finish_reason == "stop" and stopped.stop == stop
    assert stopped.text.endswith(stop)
    assert stopped.text == free.text[: free.text.index(stop) + len(stop)]
    assert stopped.completion_tokens < free.completion_tokens


def test_sampling_is_reproducible_with_a_seed() -> None:
    from toolgym.agents.hf_agent import HFAgent

    sampling = SamplingParams(temperature=1.0, max_tokens=10, seed=7)
    first = HFAgent(tiny_model_path(), sampling=sampling).act([_request(q) for q in QUESTIONS])
    second = HFAgent(tiny_model_path(), sampling=sampling).act([_request(q) for q in QUESTIONS])

    assert first == second
    assert len(set(first)) > 1


def test_native_tool_format_returns_an_assistant_message(agent) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    request = AgentRequest(messages=[{"role": "user", "content": "q"}], tools=tools, env_info={"tool_format": "openai"})

    [action] = agent.act([request])

    assert action["role"] == "assistant" and isinstance(action["content"], str)
    # The template received the tools: the prompt holds their schema.
    prompt = agent.tokenizer.decode(agent.prompt_ids(request))
    assert '"name": "search"' in prompt and "# Tools" in prompt


def test_hermes_blocks_become_openai_tool_calls() -> None:
    text = 'Let me look.\n<tool_call>\n{"name": "search", "arguments": {"query": "Vesas"}}\n</tool_call>\n<tool_call>{oops}</tool_call>'

    action = action_from_text(text, "openai")

    assert action["content"] == "Let me look."
    first, broken = action["tool_calls"]
    assert first["function"] == {"name": "search", "arguments": '{"query": "Vesas"}'}
    assert broken["function"] == {"name": "", "arguments": "{oops}"}  # the env answers it with a tool error
    assert action_from_text(text, "hermes") == text


def test_truncate_at_stop_uses_the_earliest_stop() -> None:
    assert truncate_at_stop("a </search> b </answer>", ["</answer>", "</search>"]) == ("a </search>", "</search>")
    assert truncate_at_stop("no stop here", ["</search>"]) == ("no stop here", None)


def test_make_agent_hf_spec_plays_a_search_episode() -> None:
    from toolgym.agents.episodes import play_episodes
    from toolgym.envs.pool import EnvPool

    agent = make_agent(f"hf:{tiny_model_path()}", SamplingParams(temperature=0.0, max_tokens=16))
    with EnvPool.make("toolgym:Search-v0", 2, max_turns=2) as pool:
        episodes = play_episodes(agent, pool, seeds=[0, 1])

    assert all(e.terminated or e.truncated for e in episodes)
    assert all(1 <= e.turns <= 2 for e in episodes)


def test_unknown_model_fails_with_a_clear_error(tmp_path) -> None:
    from toolgym.agents.hf_agent import HFAgent

    with pytest.raises(OSError, match="not a local folder"):
        HFAgent("no-such-org/no-such-model-toolgym", sampling=GREEDY)
    with pytest.raises(OSError, match="does not hold a transformers checkpoint"):
        HFAgent(tmp_path, sampling=GREEDY)
