"""The HF engine's sampler draws exactly the tempered, truncated distribution, reproducibly.

`inverse_cdf_sample` replaced `torch.multinomial`; these tests hold it to the distribution with a
chi-square test on many seeded draws (deterministic: the same seed always gives the same counts),
and check that top-k, top-p and temperature keep their meaning and that the recorded logprob is
still `token_logprobs` of the full tempered distribution.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_model_fixture import tiny_model_path  # noqa: E402

from toolgym.agents.base import SamplingParams  # noqa: E402
from toolgym.agents.engine import token_logprobs  # noqa: E402
from toolgym.agents.hf_engine import HFEngine, inverse_cdf_sample  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DRAWS = 200_000
# Upper 0.1 % points of the chi-square distribution, by degrees of freedom.
CHI2_CRITICAL_0_001 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}


def chi_square(counts: torch.Tensor, expected_probs: torch.Tensor) -> tuple[float, int]:
    """Pearson's statistic over the tokens with positive expected probability, and its df."""
    support = expected_probs > 0
    expected = expected_probs[support].double() * counts.sum()
    observed = counts[support].double()
    return float(((observed - expected) ** 2 / expected).sum()), int(support.sum()) - 1


def draw_counts(weights: torch.Tensor, seed: int, draws: int = DRAWS) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    tokens = inverse_cdf_sample(weights.expand(draws, -1), generator)
    return torch.bincount(tokens, minlength=weights.shape[-1])


def assert_matches(counts: torch.Tensor, expected_probs: torch.Tensor) -> None:
    statistic, df = chi_square(counts, expected_probs)
    assert statistic < CHI2_CRITICAL_0_001[df], (statistic, df, counts.tolist())
    assert counts[expected_probs == 0].sum() == 0, "a token with zero probability was drawn"


def test_inverse_cdf_sample_draws_each_index_with_its_probability() -> None:
    probs = torch.tensor([0.5, 0.25, 0.15, 0.07, 0.03, 0.0])
    assert_matches(draw_counts(probs, seed=0), probs)


def test_inverse_cdf_sample_ignores_the_scale_of_the_weights() -> None:
    weights = torch.tensor([3.0, 1.0, 0.0, 6.0])
    assert_matches(draw_counts(weights * 1e-3, seed=1), weights / weights.sum())


def test_inverse_cdf_sample_fails_a_distribution_it_does_not_sample() -> None:
    """The chi-square check can fail: counts of one distribution do not pass as another's."""
    counts = draw_counts(torch.tensor([0.5, 0.3, 0.2]), seed=2)
    statistic, df = chi_square(counts, torch.tensor([0.45, 0.35, 0.2]))
    assert statistic > CHI2_CRITICAL_0_001[df]


def test_inverse_cdf_sample_is_reproducible_from_the_generator_seed() -> None:
    weights = torch.softmax(torch.randn(16, 50, generator=torch.Generator().manual_seed(3)), dim=-1)

    def run(seed: int) -> list[int]:
        return inverse_cdf_sample(weights, torch.Generator().manual_seed(seed)).tolist()

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.fixture(scope="module")
def engine() -> HFEngine:
    return HFEngine.load(tiny_model_path(), device="cpu", seed=0)


LOGITS = torch.log(torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05]))


def engine_counts(engine: HFEngine, sampling: SamplingParams) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    engine.reseed(11)
    logits = LOGITS.expand(DRAWS, -1)
    tokens, logprobs = engine._sample(logits, sampling)
    return torch.bincount(tokens, minlength=LOGITS.shape[0]), tokens, logprobs


def test_engine_samples_the_tempered_distribution(engine) -> None:
    sampling = SamplingParams(temperature=0.5)
    counts, tokens, logprobs = engine_counts(engine, sampling)
    assert_matches(counts, torch.softmax(LOGITS / 0.5, dim=-1))
    assert torch.equal(logprobs, token_logprobs(LOGITS.expand(DRAWS, -1), tokens, 0.5))


def test_engine_top_k_draws_only_the_k_most_likely_in_proportion(engine) -> None:
    counts, tokens, logprobs = engine_counts(engine, SamplingParams(temperature=1.0, top_k=2))
    assert_matches(counts, torch.tensor([0.4, 0.3, 0.0, 0.0, 0.0]) / 0.7)
    # The recorded logprob is of the full tempered distribution, not the renormalised top-k one.
    assert torch.allclose(logprobs, LOGITS[tokens], atol=1e-6)


def test_engine_top_p_draws_only_the_nucleus_in_proportion(engine) -> None:
    # Cumulative mass before each token: 0, 0.4, 0.7, 0.85, 0.95; with top_p = 0.75 the nucleus is
    # the first three tokens (the third is the one whose mass reaches 0.75).
    counts, _, _ = engine_counts(engine, SamplingParams(temperature=1.0, top_p=0.75))
    assert_matches(counts, torch.tensor([0.4, 0.3, 0.15, 0.0, 0.0]) / 0.85)


def test_engine_sampling_repeats_after_reseed(engine) -> None:
    sampling = SamplingParams(temperature=1.0, top_k=4, top_p=0.9)
    _, first, _ = engine_counts(engine, sampling)
    _, second, _ = engine_counts(engine, sampling)
    assert torch.equal(first, second)


def test_inverse_cdf_sample_never_draws_a_zero_weight_at_either_end() -> None:
    weights = torch.tensor([0.0, 0.0, 1e-30, 0.0, 2.0, 0.0])
    counts = draw_counts(weights, seed=4, draws=50_000)
    assert counts.tolist() == [0, 0, counts[2].item(), 0, 50_000 - counts[2].item(), 0]
    assert counts[2] == 0  # 1e-30 of the mass: possible, but not in 50,000 draws
