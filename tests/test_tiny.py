"""The tiny local chat model: loads like a hub checkpoint, round-trips text, renders tools."""

from __future__ import annotations

import json

import pytest
from tiny_model_fixture import tiny_model_path

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(tiny_model_path())


def test_autotokenizer_matches_the_trained_tokenizer(tokenizer) -> None:
    # transformers 5 rebuilds a qwen2 tokenizer's pre-tokenizer on load; ids must not change.
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(tiny_model_path() / "tokenizer.json"))
    text = 'Doc 1(Title: Zourounia) <search> who founded Vesas? </search>\n\n{"a": 1}\t日本 é'

    assert tokenizer(text, add_special_tokens=False)["input_ids"] == raw.encode(text, add_special_tokens=False).ids
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_special_tokens_and_left_padding(tokenizer) -> None:
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|pad|>"
    assert tokenizer.padding_side == "left"
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") != tokenizer.unk_token_id
    batch = tokenizer(["a", "a b c d"], padding=True)
    assert batch["attention_mask"][0][0] == 0  # the short row is padded on the left


def test_env_protocol_tags_are_few_tokens(tokenizer) -> None:
    # The tokenizer was trained on the envs' own text, so their tags are single tokens or close.
    for tag in ("<search>", "</answer>", "<tool_call>", "<information>"):
        assert len(tokenizer(tag, add_special_tokens=False)["input_ids"]) <= 3, tag


def test_chat_template_renders_tools_calls_and_tool_results(tokenizer) -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "search", "arguments": {"query": "x"}}}],
        },
        {"role": "tool", "content": "R1"},
        {"role": "tool", "content": "R2"},
    ]

    text = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)

    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert json.dumps(tools[0]) in text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "search", "arguments": {"query": "x"}}\n</tool_call><|im_end|>\n'
        in text
    )
    assert text.endswith(
        "<|im_start|>user\n<tool_response>\nR1\n</tool_response>\n<tool_response>\nR2\n</tool_response><|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_model_loads_and_runs(tokenizer) -> None:
    torch = pytest.importorskip("torch")
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path())
    ids = tokenizer("hello world", return_tensors="pt")["input_ids"]

    with torch.no_grad():
        logits = model(input_ids=ids).logits

    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    assert model.config.eos_token_id == tokenizer.eos_token_id


def test_make_tiny_model_is_deterministic(tmp_path) -> None:
    from toolgym.agents.tiny import make_tiny_model

    texts = ["hello world", "tool call", "hello tool"] * 10
    first = make_tiny_model(tmp_path / "a", vocab_size=300, texts=texts, seed=3)
    second = make_tiny_model(tmp_path / "b", vocab_size=300, texts=texts, seed=3)

    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()


def test_whole_tokens_survive_a_save_and_load_as_single_tokens(tmp_path) -> None:
    """`whole_tokens` (the recipe's Search-R1 tags) encode as one token each after AutoTokenizer
    reloads the folder, text round-trips, and a prefix of a tag is not mistaken for the tag."""
    from transformers import AutoTokenizer

    from toolgym.agents.tiny import make_tiny_model

    tags = ["<search>", "</search>", "<answer>", "</answer>"]
    texts = ["Where was Tarvo born? search answer information"] * 20
    folder = make_tiny_model(tmp_path / "m", vocab_size=300, texts=texts, whole_tokens=tags)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = "Who?<search> Tarvo</search>\n\n<answer> Osdravel</answer>"

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]

    assert all(
        tokenizer(tag, add_special_tokens=False)["input_ids"] == [tokenizer.convert_tokens_to_ids(tag)] for tag in tags
    )
    assert sum(token in tags for token in tokenizer.convert_ids_to_tokens(ids)) == 4
    assert tokenizer.decode(ids) == text
    assert len(tokenizer("</sear", add_special_tokens=False)["input_ids"]) > 1
