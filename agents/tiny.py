"""A tiny Qwen2 chat model built locally, for tests, benchmarks and offline demos.

Nothing is downloaded: the BPE tokenizer is trained here on text the project generates itself
(the procedural worlds' questions and passages, the env protocols' prompts and tags, and every
printable ASCII character), and the model's weights are random. The recipe follows the measured
notes (../shared/notes/stack.md §6): transformers 5 loads a `qwen2` folder with `Qwen2Tokenizer`,
which rebuilds the normalizer and pre-tokenizer, so the tokenizer is trained with Qwen's exact
pre-tokenizer regex and NFC; otherwise ids change after a save/load round trip.

The chat template is Qwen2.5's shape (ChatML): tool schemas in the system turn, assistant
`tool_calls` as hermes ``<tool_call>`` blocks, tool results as ``<tool_response>`` blocks in a user
turn. So native tool calling, the hermes dialect and token-level rollouts all work with it.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

from toolgym.extras import require

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]
QWEN_PRETOKENIZER_REGEX = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

# Qwen2.5's ChatML template, reduced to what ToolGym's envs send: an optional system message,
# tools rendered in the system turn, assistant tool calls as hermes blocks, and consecutive tool
# messages grouped in one user turn. Whitespace is explicit; no Jinja block trimming is relied on.
TINY_CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}"
    "{%- else %}{{- 'You are a helpful assistant.' }}{%- endif %}"
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    'within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, '
    '\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}'
    "{%- elif messages and messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' and loop.first %}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}{{- message['content'] or '' }}"
    "{%- for call in message['tool_calls'] or [] %}"
    "{%- if call['function'] is defined %}{%- set call = call['function'] %}{%- endif %}"
    "{%- if message['content'] or not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": \"' + call['name'] + '\", \"arguments\": ' }}"
    "{%- if call['arguments'] is string %}{{- call['arguments'] }}{%- else %}{{- call['arguments'] | tojson }}{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- elif message['role'] == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def tokenizer_training_texts(n_search: int = 300, n_math: int = 300) -> list[str]:
    """Text the project generates itself: env prompts, tags, tool schemas, worlds, ASCII coverage."""
    from toolgym.dialects import get_dialect
    from toolgym.envs.math.calculator import CALCULATOR_SCHEMA
    from toolgym.envs.math.env import CORRECTION, DEFAULT_SYSTEM_PROMPT, TOOLS_PROMPT
    from toolgym.envs.math.world import generate_problem
    from toolgym.envs.search import protocol
    from toolgym.envs.search.world import WorldConfig, get_world

    texts: list[str] = [
        protocol.SEARCH_R1_PROMPT,
        protocol.INVALID_ACTION_MESSAGE,
        protocol.NATIVE_SYSTEM_PROMPT,
        protocol.NATIVE_INVALID_MESSAGE,
        DEFAULT_SYSTEM_PROMPT,
        TOOLS_PROMPT,
        CORRECTION,
    ]
    for tools in ([protocol.SEARCH_TOOL], [CALCULATOR_SCHEMA]):
        texts += [get_dialect(fmt).instructions(tools) for fmt in ("hermes", "python", "openai")]
        texts += [json.dumps(tool) for tool in tools]
    tags = "<think> </think> <search> </search> <answer> </answer> <information> </information> "
    tags += "<tool_call> </tool_call> <tool_response> </tool_response> <tools> </tools> \\boxed{ }"
    texts += [tags] * 20
    world = get_world(WorldConfig())
    texts += [f"Doc 1(Title: {doc.title}) {doc.text}" for doc in world.documents[:n_search]]
    for index in range(n_search):
        row = world.question_row(index)
        texts.append(f"{row['question']} <answer> {row['answer']} </answer>")
    for seed in range(n_math):
        row = generate_problem(seed)
        texts.append(f"{row['problem']} The answer is \\boxed{{{row['answer']}}}.")
        texts.append(
            f'<tool_call>\n{{"name": "calculator", "arguments": {{"expression": "{seed} * 7 + 3"}}}}\n</tool_call>'
        )
    texts += [" ".join(string.printable)] * 5  # every ASCII character, without merging them all
    return texts


def make_tiny_model(
    out_dir: str | Path,
    vocab_size: int = 2048,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    texts: Iterable[str] | None = None,
    max_position_embeddings: int = 4096,
    init_std: float = 0.25,
    whole_tokens: Sequence[str] = (),
) -> Path:
    """Write a tiny Qwen2 chat model (config, random weights, tokenizer, template) to `out_dir`.

    Loads with `AutoTokenizer` / `AutoModelForCausalLM` like any hub checkpoint; eos is
    `<|im_end|>`, the pad token `<|pad|>`, padding on the left (for batched generation).
    `init_std` is larger than a real model's 0.02 so that greedy decoding of the random weights
    varies with its context instead of repeating one token, which makes tests meaningful.
    `whole_tokens` are strings that always encode as one token of their own (e.g. Search-R1's
    tags `<search>`, `</search>`), as a real model's vocabulary often has them: a tiny model then
    emits a tag in one step instead of spelling it from byte pieces.
    """
    torch = require("torch", "hf", "the tiny model")
    require("transformers", "hf", "the tiny model")
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    if hidden_size % 8:
        raise ValueError(f"hidden_size must be a multiple of 8 (4 heads of even size), got {hidden_size}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZER_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(texts) if texts is not None else tokenizer_training_texts(), trainer=trainer)
    if whole_tokens:
        from tokenizers import AddedToken

        tokenizer.add_tokens([AddedToken(token, normalized=False, special=False) for token in whole_tokens])
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
        padding_side="left",
    )
    hf_tokenizer.chat_template = TINY_CHAT_TEMPLATE
    hf_tokenizer.padding_side = "left"

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(hf_tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
        bos_token_id=None,
        initializer_range=init_std,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = hf_tokenizer.eos_token_id
    model.generation_config.pad_token_id = hf_tokenizer.pad_token_id
    model.save_pretrained(out)
    hf_tokenizer.save_pretrained(out)
    return out
