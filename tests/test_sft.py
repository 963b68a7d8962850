"""SFT warm-up: demonstrations laid out like rollouts, loss on assistant tokens only, and it learns."""

from __future__ import annotations

import gymnasium as gym
import pytest

import toolgym  # noqa: F401
from toolgym.agents.token_stream import TokenStream
from toolgym.envs.search.world import world_from_row
from toolgym.trainers.sft import from_messages, sft_loss, sft_train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def played_demo() -> list[dict]:
    """Search, read the result, answer: played against the real Search-v0."""
    env = gym.make("Search-v0", max_turns=2, hops=1, top_k=1)
    messages, info = env.reset(seed=0, options={"index": 0})
    row = info["task"]
    subject = world_from_row(row).entities[row["supporting_doc_ids"][0]]
    search = f"<search> {subject.name}</search>"
    observation, *_ = env.step(search)
    answer = f"<answer> {info['task']['answer']}</answer>"
    return [*messages, {"role": "assistant", "content": search}, *observation, {"role": "assistant", "content": answer}]


@pytest.mark.parametrize("layout", ["raw", "chat"])
def test_demonstration_masks_exactly_the_assistant_turns(engine, layout):
    tokenizer = engine.tokenizer
    messages = played_demo()
    demo = from_messages(tokenizer, messages, layout=layout)
    prompt = TokenStream(tokenizer).prompt_ids(messages[:1], None)
    assert demo.token_ids[: len(prompt)] == prompt and not any(demo.loss_mask[: len(prompt)])
    trained = tokenizer.decode([t for t, m in zip(demo.token_ids, demo.loss_mask) if m])
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    eos = tokenizer.decode(TokenStream(tokenizer).closing_ids(None)[:1])
    expected = "".join(a + eos for a in assistant) if layout == "chat" else "".join(assistant)
    assert trained == expected  # the observation (search results) is never a target
    observation = messages[2]["content"].strip()
    assert observation and observation[:30] not in trained


def test_sft_lowers_the_loss_on_its_demonstrations(engine):
    import copy

    model = copy.deepcopy(engine.model)
    demos = [from_messages(engine.tokenizer, played_demo(), layout="raw")] * 4
    before, _ = sft_loss(model, demos, engine.pad_token_id)
    losses = sft_train(model, demos, steps=15, batch_size=4, learning_rate=1e-2, pad_token_id=engine.pad_token_id)
    assert len(losses) == 15 and losses[-1] < 0.5 * float(before.detach())


def test_a_message_list_without_an_assistant_turn_is_refused(engine):
    with pytest.raises(ValueError, match="assistant"):
        from_messages(engine.tokenizer, [{"role": "user", "content": "hi"}])
