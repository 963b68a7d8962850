"""vLLM agent and engine. GPU tests skip without CUDA and vLLM; the CPU test checks the install hint."""

from __future__ import annotations

import sys

import pytest

from toolgym.agents.base import AgentRequest, SamplingParams
from toolgym.agents.specs import make_agent


def test_missing_vllm_names_the_extra_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # what `import vllm` sees when it is not installed

    with pytest.raises(ImportError, match=r'pip install "toolgym\[gpu\]"'):
        make_agent("vllm:any-model", SamplingParams())


def test_sampling_params_mapping_without_vllm_is_the_same_clear_error(monkeypatch) -> None:
    from toolgym.agents.vllm_agent import vllm_sampling_params

    monkeypatch.setitem(sys.modules, "vllm", None)

    with pytest.raises(ImportError, match="vLLM"):
        vllm_sampling_params(SamplingParams(stop=("</search>",)))


def _gpu_and_vllm() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    pytest.importorskip("vllm")


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory):
    _gpu_and_vllm()
    from toolgym.agents.tiny import make_tiny_model

    # vLLM's attention kernels need head sizes such as 64: 4 heads × 64.
    return make_tiny_model(tmp_path_factory.mktemp("vllm") / "tiny", hidden_size=256, seed=0)


ENGINE_KWARGS = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.3, "max_model_len": 4096}


@pytest.fixture(scope="module")
def vllm_agent(gpu_model):
    from toolgym.agents.vllm_agent import VLLMAgent

    return VLLMAgent(gpu_model, SamplingParams(temperature=0.0, max_tokens=16), **ENGINE_KWARGS)


@pytest.mark.gpu
def test_vllm_agent_answers_each_request_within_max_tokens(vllm_agent) -> None:
    requests = [AgentRequest(messages=[{"role": "user", "content": q}]) for q in ("a", "Who founded Vesas?", "2+2")]

    completions = vllm_agent.complete(requests)

    assert len(completions) == 3
    assert all(1 <= c.completion_tokens <= 16 and isinstance(c.action, str) for c in completions)


@pytest.mark.gpu
def test_vllm_greedy_matches_the_hf_engine(vllm_agent, gpu_model) -> None:
    from toolgym.agents.hf_agent import HFAgent

    requests = [AgentRequest(messages=[{"role": "user", "content": q}]) for q in ("a", "Who founded Vesas?")]
    hf = HFAgent(gpu_model, SamplingParams(temperature=0.0, max_tokens=16), device="cuda", dtype="float32")

    assert vllm_agent.act(requests) == hf.act(requests)


@pytest.mark.gpu
def test_vllm_rollouts_have_exact_masks_and_model_logprobs(vllm_agent, gpu_model) -> None:
    import torch

    from toolgym.agents.drift import check_drift
    from toolgym.agents.rollout import collect_rollouts
    from toolgym.envs.pool import EnvPool

    engine, tokenizer = vllm_agent.engine, vllm_agent.tokenizer
    sampling = SamplingParams(temperature=1.0, max_tokens=16, seed=0)
    with EnvPool.make("toolgym:Search-v0", 2, max_turns=2) as pool:
        trajectories = collect_rollouts(
            engine, tokenizer, pool, [0, 1], sampling, max_episode_tokens=2048, group_size=2
        )

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(gpu_model, dtype=torch.float32).cuda().eval()
    for trajectory in trajectories:
        assert check_drift(trajectory, tokenizer).ok
        inside = {i for a, b in trajectory.turn_spans for i in range(a, b)}
        assert trajectory.loss_mask == [int(i in inside) for i in range(len(trajectory.token_ids))]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([trajectory.token_ids], device="cuda")).logits[0].float()
        recomputed = torch.log_softmax(logits, dim=-1)
        positions = sorted(inside)
        expected = recomputed[[i - 1 for i in positions], [trajectory.token_ids[i] for i in positions]].cpu()
        assert torch.allclose(torch.tensor([trajectory.logprobs[i] for i in positions]), expected, atol=1e-2)
