"""Gumbel reranking (arXiv 2502.11116): the relaxed top-k, the masked FiD reader and the training step."""

from __future__ import annotations

import pytest
from tiny_bert import make_tiny_bert

from toolgym.retrievers.training.fid_reader import FiDReader, fit_reader
from toolgym.retrievers.training.gumbel_rerank import (
    CrossEncoderScorer,
    GumbelRerankConfig,
    RerankExample,
    gumbel_loss,
    hard_top_k,
    rank_passages,
    relaxed_top_k,
    train_reranker,
)
from toolgym.retrievers.training.tiny_models import make_fid_reader

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EXAMPLES = [
    RerankExample(
        f"where was person {i} born",
        (
            (f"Person {i}", f"person {i} was born in city{i}"),
            ("Noise", "unrelated words here"),
            ("Other", "more noise"),
        ),
        (f"city{i}",),
        (True, False, False),
    )
    for i in range(4)
]


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    path = make_fid_reader(tmp_path_factory.mktemp("fid") / "fid", d_model=32, heads=2)
    return FiDReader.from_pretrained(path, passage_max_length=32, answer_max_length=8).freeze()


@pytest.fixture()
def scorer(tmp_path):
    return CrossEncoderScorer.from_pretrained(make_tiny_bert(tmp_path / "ce", num_labels=1), max_length=32)


def test_relaxed_top_k_is_a_soft_mask_summing_to_about_k():
    w = torch.randn(64, 20, generator=torch.Generator().manual_seed(9)).requires_grad_()
    mask = relaxed_top_k(w, 5, kappa=1.0, tau=0.5, generator=torch.Generator().manual_seed(0))
    assert mask.min() >= 0 and mask.max() <= 1
    # k samples can pick the same passage, so the sum is at most k and close to it at low τ
    assert 3.5 < mask.sum(-1).mean().item() <= 5.0 + 1e-5
    mask.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_relaxed_top_k_becomes_binary_as_tau_drops():
    """τ→0: every Gumbel-softmax sample is one-hot, so M̂ is a 0/1 mask of at most k passages."""
    w = torch.randn(32, 10, generator=torch.Generator().manual_seed(7))
    mask = relaxed_top_k(w, 3, kappa=1.0, tau=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.all((mask < 1e-3) | (mask > 1 - 1e-3))
    assert torch.all((mask > 0.5).sum(-1) <= 3)


def test_relaxed_top_k_approaches_the_hard_top_k_as_kappa_grows_and_tau_drops():
    """κ→∞, τ→0: the noise no longer reorders passages, each sample is the arg-max, so M̂ is the
    hard top-1 (exactly the hard top-k for k = 1) and never leaves the hard top-k for k > 1. The k
    samples are drawn with replacement: the paper's stated caveat that the top-k is approximate."""
    w = torch.randn(64, 10, generator=torch.Generator().manual_seed(8))
    generator = torch.Generator().manual_seed(0)
    assert torch.allclose(relaxed_top_k(w, 1, kappa=1e4, tau=1e-3, generator=generator), hard_top_k(w, 1))
    soft = relaxed_top_k(w, 4, kappa=1e4, tau=1e-3, generator=generator)
    assert torch.all(soft <= hard_top_k(w, 4) + 1e-6)
    assert torch.all(soft.gather(-1, w.argmax(-1, keepdim=True)) > 1 - 1e-6)


def test_relaxed_top_k_covers_the_hard_top_k_when_scores_are_tied_above_the_rest():
    """k tied high scores with τ→0: the samples spread over the tie, and in expectation M̂ puts its mass
    on the hard top-k set only."""
    w = torch.tensor([[2.0, 2.0, 2.0, -3.0, -3.0, -3.0]]).repeat(2000, 1)
    mask = relaxed_top_k(w, 3, kappa=5.0, tau=1e-3, generator=torch.Generator().manual_seed(0)).mean(0)
    assert mask[:3].min() > 0.6 and mask[3:].max() < 0.01


def test_reader_parameters_receive_no_gradient_and_the_reranker_does(reader, scorer):
    config = GumbelRerankConfig(k=2)
    loss = gumbel_loss(scorer, reader, EXAMPLES[:2], config, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None for p in reader.model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in scorer.model.parameters())


def test_masked_passages_are_invisible_to_the_reader(reader):
    questions, answers = ["who"], ["city0"]
    passages = [[("A", "person was born in city0"), ("B", "noise words")]]
    changed = [[("A", "person was born in city0"), ("Z", "completely different and much longer text here")]]
    mask = torch.tensor([[1.0, 0.0]])
    with torch.no_grad():
        before = reader.loss(questions, passages, answers, mask)
        after = reader.loss(questions, changed, answers, mask)
        visible_before = reader.loss(questions, passages, answers, None)
        visible_after = reader.loss(questions, changed, answers, None)
    assert after.item() == pytest.approx(before.item(), abs=1e-6)
    assert visible_after.item() != pytest.approx(visible_before.item(), abs=1e-6)  # the check can fail


def test_gumbel_training_changes_only_the_reranker_and_ranks_by_score(reader, scorer):
    before = [p.detach().clone() for p in reader.model.parameters()]
    config = GumbelRerankConfig(k=1, steps=3, batch_size=2, learning_rate=1e-3, warmup_steps=0, show_progress=False)
    losses = train_reranker(scorer, EXAMPLES, config, reader=reader)
    assert len(losses) == 3 and all(loss == loss for loss in losses)
    assert all(torch.equal(a, b) for a, b in zip(before, reader.model.parameters()))
    rankings = rank_passages(scorer, EXAMPLES)
    assert all(sorted(r) == [0, 1, 2] for r in rankings)


def test_supervised_baseline_learns_the_gold_passage(scorer):
    config = GumbelRerankConfig(objective="supervised", steps=40, batch_size=4, learning_rate=3e-3, show_progress=False)
    losses = train_reranker(scorer, EXAMPLES, config)
    assert losses[-1] < losses[0]
    assert sum(r[0] == 0 for r in rank_passages(scorer, EXAMPLES)) >= 3


def test_fitting_the_reader_lowers_its_answer_loss(tmp_path):
    reader = FiDReader.from_pretrained(make_fid_reader(tmp_path / "fid", d_model=32, heads=2), passage_max_length=32)
    questions = [ex.question for ex in EXAMPLES]
    passages = [list(ex.passages) for ex in EXAMPLES]
    answers = [ex.answers[0] for ex in EXAMPLES]
    losses = fit_reader(
        reader, questions, passages, answers, steps=40, batch_size=4, learning_rate=3e-3, show_progress=False
    )
    assert losses[-1] < 0.5 * losses[0]
    assert not any(p.requires_grad for p in reader.model.parameters())


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="k must be in"):
        relaxed_top_k(torch.zeros(1, 3), 4, kappa=1.0, tau=0.5)
    with pytest.raises(ValueError, match="objective must be one of"):
        train_reranker(None, EXAMPLES, GumbelRerankConfig(objective="pointwise"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tau": 0.0}, "tau .* must be > 0"),
        ({"tau": -1.0}, "tau .* must be > 0"),
        ({"kappa": -1.0}, "kappa .* must be >= 0"),
        ({"k": 0}, "k .* must be >= 1"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
    ],
)
def test_bad_hyper_parameters_are_named_when_the_config_is_made(options, message):
    with pytest.raises(ValueError, match=message):
        GumbelRerankConfig(**options)


def test_a_zero_temperature_is_refused_not_turned_into_nan():
    with pytest.raises(ValueError, match="tau"):
        relaxed_top_k(torch.zeros(1, 3), 2, kappa=1.0, tau=0.0)


def test_k_above_the_passages_of_any_example_fails_before_training():
    # the scorer is never touched: the check runs before the first step
    with pytest.raises(ValueError, match="k=4 is more than the 3 passages of 4 example"):
        train_reranker(None, EXAMPLES, GumbelRerankConfig(k=4), reader=object())


def test_missing_model_folders_are_named_not_looked_up_on_the_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"reranker base .* is not a folder"):
        CrossEncoderScorer.from_pretrained(tmp_path / "no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"FiD reader folder .* has no config\.json"):
        FiDReader.from_pretrained(tmp_path / "empty")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_a_fully_hidden_passage_gets_a_finite_bias_and_gradient_in_every_dtype(reader, dtype):
    dtype = getattr(torch, dtype)
    token_mask = torch.tensor([[[1, 1, 0], [1, 0, 0]]])
    doc_mask = torch.tensor([[1.0, 0.0]], requires_grad=True)
    bias = reader.cross_attention_bias(token_mask, doc_mask, dtype)
    real = bias[token_mask.reshape(1, 1, 1, -1).bool()]
    assert torch.isfinite(real).all() and real.dtype == dtype
    assert real[-1] < -20  # the hidden passage is pushed far down, not to -inf
    real.float().sum().backward()
    assert torch.isfinite(doc_mask.grad).all()


def test_ranking_examples_with_different_passage_counts_scores_each_its_own(scorer):
    """2 + 4 passages used to be reshaped to (2, 3), handing one example's scores to the other."""
    ragged = [EXAMPLES[0], RerankExample("q", EXAMPLES[1].passages + EXAMPLES[2].passages[:1], ("a",), (True,) * 4)]
    ragged = [RerankExample(ragged[0].question, ragged[0].passages[:2], ("a",), (True, False)), ragged[1]]
    together = rank_passages(scorer, ragged, batch_size=2)
    alone = [rank_passages(scorer, [example])[0] for example in ragged]
    assert together == alone
    assert sorted(together[0]) == [0, 1] and sorted(together[1]) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="same number"):
        scorer.scores(ragged)
