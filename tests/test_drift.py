"""The drift check: silent on the tiny model's own template, loud on planted mismatches."""

from __future__ import annotations

import dataclasses

import pytest
from tiny_model_fixture import tiny_model_path

from toolgym.agents.base import SamplingParams
from toolgym.agents.chat_format import ChatTemplateError, suffix_text
from toolgym.agents.drift import check_drift
from toolgym.agents.rollout import Trajectory, collect_rollouts
from toolgym.envs.pool import EnvPool

pytestmark = pytest.mark.usefixtures("one_torch_thread")

transformers = pytest.importorskip("transformers")

SAMPLING = SamplingParams(temperature=1.0, max_tokens=16, seed=0)
THINK_STUB = "<think>\n\n</think>\n\n"


def _rollouts(engine, tokenizer, env_id: str, layout: str = "auto", **env_kwargs) -> list[Trajectory]:
    with EnvPool.make(env_id, 2, **env_kwargs) as pool:
        return collect_rollouts(engine, tokenizer, pool, [0, 1], SAMPLING, max_episode_tokens=4096, layout=layout)


@pytest.fixture(scope="module")
def search_rollouts(engine) -> list[Trajectory]:
    return _rollouts(engine, engine.tokenizer, "toolgym:Search-v0", layout="chat", max_turns=3)


@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [
        ("toolgym:Search-v0", {"max_turns": 3}),  # search_r1: the raw layout
        ("toolgym:Search-v0", {"max_turns": 3, "layout": "chat"}),
        ("toolgym:Search-v0", {"max_turns": 2, "tool_format": "openai"}),
        ("toolgym:Math-v0", {"tools": True, "max_turns": 3}),
    ],
)
def test_no_drift_on_the_tiny_models_own_template(engine, env_id, env_kwargs) -> None:
    for trajectory in _rollouts(engine, engine.tokenizer, env_id, **env_kwargs):
        report = check_drift(trajectory, engine.tokenizer)

        assert report.ok, report.message
        assert len(trajectory.turn_spans) >= 1


def test_thinking_stub_in_the_generation_prompt_is_caught(engine) -> None:
    # Qwen3 with enable_thinking=False: the generation prompt carries an empty think block that a
    # full render of the finished conversation does not show.
    planted = transformers.AutoTokenizer.from_pretrained(tiny_model_path())
    planted.chat_template = planted.chat_template.replace(
        "{{- '<|im_start|>assistant\\n' }}{%- endif %}",
        "{{- '<|im_start|>assistant\\n" + "<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
    )
    assert THINK_STUB in planted.apply_chat_template(
        [{"role": "user", "content": "q"}], tokenize=False, add_generation_prompt=True
    )
    [trajectory, _] = _rollouts(engine, planted, "toolgym:Search-v0", layout="chat", max_turns=2)

    report = check_drift(trajectory, planted)

    assert not report.ok and report.kind == "text"
    assert report.token_index < trajectory.prompt_length and not report.in_generated_span
    assert planted.decode(trajectory.token_ids[report.token_index : trajectory.prompt_length]).startswith("<think>")
    assert "<think>" in report.actual and "<think>" not in report.expected
    assert f"drift at token {report.token_index}" in str(report)


def test_dropped_newline_at_a_turn_boundary_is_caught(engine, search_rollouts) -> None:
    # verl#6501: incremental rendering that loses the "\n" after <|im_end|>.
    trajectory = next(t for t in search_rollouts if len(t.turn_spans) >= 2)
    newline = engine.tokenizer.convert_tokens_to_ids("Ċ")  # byte-level "\n"
    end_of_first_turn = trajectory.turn_spans[0][1]
    position = trajectory.token_ids.index(newline, end_of_first_turn)
    broken = _delete_token(trajectory, position)

    report = check_drift(broken, engine.tokenizer)

    assert not report.ok and report.kind == "text"
    assert report.token_index == position
    assert "\\n" in repr(report.expected[report.expected.index("<|im_end|>") :])


def test_same_text_other_tokens_in_an_env_span_is_caught(engine, search_rollouts) -> None:
    # An env message tokenized piecewise (non-canonically) decodes to the same text but is not
    # what a server rendering the conversation would feed the model.
    trajectory = search_rollouts[0]
    tokenizer = engine.tokenizer
    end_of_first_turn = trajectory.turn_spans[0][1]
    position = next(
        i
        for i in range(
            end_of_first_turn,
            trajectory.turn_spans[1][0] if len(trajectory.turn_spans) > 1 else len(trajectory.token_ids),
        )
        if len(tokenizer.convert_ids_to_tokens(trajectory.token_ids[i])) >= 3
        and trajectory.token_ids[i] not in tokenizer.all_special_ids
    )
    pieces = tokenizer.convert_tokens_to_ids(list(tokenizer.convert_ids_to_tokens(trajectory.token_ids[position])))
    broken = _replace_token(trajectory, position, pieces)
    assert tokenizer.decode(broken.token_ids) == tokenizer.decode(trajectory.token_ids)

    report = check_drift(broken, tokenizer)

    assert not report.ok and report.kind == "tokens"
    assert report.token_index == position


def test_non_canonical_sampled_tokens_are_not_drift(engine, search_rollouts) -> None:
    trajectory = search_rollouts[0]
    start, _ = trajectory.turn_spans[0]
    tokenizer = engine.tokenizer
    position = next(
        i
        for i in range(start, trajectory.turn_spans[0][1])
        if len(tokenizer.convert_ids_to_tokens(trajectory.token_ids[i])) >= 2
    )
    pieces = tokenizer.convert_tokens_to_ids(list(tokenizer.convert_ids_to_tokens(trajectory.token_ids[position])))
    resampled = _replace_token(trajectory, position, pieces, generated=True)

    report = check_drift(resampled, tokenizer)

    assert report.ok, report.message
    assert report.retokenized_turns >= 1


def test_suffix_refuses_a_template_that_rewrites_earlier_turns(engine) -> None:
    rewriting = transformers.AutoTokenizer.from_pretrained(tiny_model_path())
    # Renders the last message's role differently: adding a message changes earlier text.
    rewriting.chat_template = (
        "{% for m in messages %}{% if loop.last %}<|im_start|>last\n{% else %}<|im_start|>{{ m['role'] }}\n{% endif %}"
        "{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )

    with pytest.raises(ChatTemplateError, match="not prefix-preserving"):
        suffix_text(rewriting, [{"role": "user", "content": "observation"}])


def _delete_token(trajectory: Trajectory, position: int) -> Trajectory:
    return _replace_token(trajectory, position, [])


def _replace_token(trajectory: Trajectory, position: int, ids: list[int], generated: bool = False) -> Trajectory:
    """A copy with one token replaced by `ids`, masks, logprobs and later spans shifted to match."""
    shift = len(ids) - 1

    def splice(values: list, fill) -> list:
        return values[:position] + [fill] * len(ids) + values[position + 1 :]

    spans = [
        (start + (shift if start > position else 0), end + (shift if end > position else 0))
        for start, end in trajectory.turn_spans
    ]
    return dataclasses.replace(
        trajectory,
        token_ids=trajectory.token_ids[:position] + ids + trajectory.token_ids[position + 1 :],
        loss_mask=splice(trajectory.loss_mask, int(generated)),
        logprobs=splice(trajectory.logprobs, 0.0),
        turn_spans=spans,
    )
