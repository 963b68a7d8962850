"""Agent specs: one string names any agent, e.g. on the command line.

scripted:<name>            a scripted baseline (oracle, baseline, random)
py:<module>:<function>     any Python callable `f(requests) -> turns` (or an object with `act`)
openai:<base_url>#<model>  any OpenAI-compatible chat-completions endpoint (vLLM, commercial APIs)
hf:<path-or-hub-id>        a local transformers model (batched, KV cache, chat template, stop strings)
vllm:<model>               vLLM's offline engine (GPU only; pip install "toolgym[gpu]")
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Agent, AgentRequest, SamplingParams

SPEC_PREFIXES = ("scripted", "py", "openai", "hf", "vllm")


class CallableAgent:
    """Adapts a plain function `f(list[AgentRequest]) -> list[turn]` to the Agent protocol."""

    def __init__(self, function: Any, name: str = ""):
        self.function = function
        self.name = name

    def act(self, requests: list[AgentRequest]) -> list[Any]:
        turns = self.function(requests)
        if not isinstance(turns, list) or len(turns) != len(requests):
            count = len(turns) if isinstance(turns, list) else type(turns).__name__
            raise ValueError(f"{self.name or 'the callable'} must return a list of {len(requests)} turns, got {count}")
        return turns


def make_agent(spec: str, sampling: SamplingParams | None = None, **options: Any) -> Agent:
    """Build the agent a spec names; `options` go to the agent's constructor."""
    prefix, _, rest = spec.partition(":")
    if not rest:
        raise ValueError(f"agent spec {spec!r} needs the form <kind>:<target>; kinds: {', '.join(SPEC_PREFIXES)}")
    if prefix == "scripted":
        from .scripted import ScriptedAgent

        return ScriptedAgent(rest, **options)
    if prefix == "py":
        return _python_agent(rest, options)
    if prefix == "openai":
        from .openai_agent import OpenAIAgent, parse_openai_spec

        base_url, model = parse_openai_spec(rest)
        return OpenAIAgent(base_url, model, sampling, **options)
    if prefix == "hf":
        from .hf_agent import HFAgent

        return HFAgent(rest, sampling=sampling, **options)
    if prefix == "vllm":
        from .vllm_agent import VLLMAgent

        return VLLMAgent(rest, sampling=sampling, **options)
    raise ValueError(f"unknown agent kind {prefix!r} in {spec!r}; expected one of {', '.join(SPEC_PREFIXES)}")


def _python_agent(target: str, options: dict[str, Any]) -> Agent:
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise ValueError(f"py agent spec needs py:<module>:<function>, got py:{target}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} for agent py:{target}: {exc}") from exc
    obj = getattr(module, attribute, None)
    if obj is None:
        raise ValueError(f"module {module_name!r} has no attribute {attribute!r}")
    if isinstance(obj, type):
        obj = obj(**options)
    if hasattr(obj, "act"):
        return obj
    if callable(obj):
        return CallableAgent(obj, name=f"py:{target}")
    raise ValueError(f"py:{target} is neither callable nor an object with an act() method")
