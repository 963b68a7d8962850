"""The bidirectional-reconstruction LLM embedder (arXiv 2509.03020) on a tiny causal LM built locally."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolgym.retriever_contract import Document
from toolgym.retrievers.encoders import load_encoder
from toolgym.retrievers.training.anchor_reconstruction import (
    StageIConfig,
    reconstruction_loss,
    stage_one_loss,
    target_batch,
    train_stage_one,
)
from toolgym.retrievers.training.contrastive import (
    StageIIConfig,
    contrastive_loss,
    false_negative_mask,
    info_nce_loss,
    train_stage_two,
)
from toolgym.retrievers.training.embedder import LLMEmbedder
from toolgym.retrievers.training.records import (
    TrainingRecord,
    read_records,
    records_from_beir,
    source_batches,
    write_records,
)
from toolgym.retrievers.training.tiny_models import make_causal_lm

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOPICS = ["volcano lava eruption", "piano music concert", "football goal match", "rain cloud weather"]
RECORDS = [
    TrainingRecord(f"tell me about {topic}", f"{topic} is described here with {topic} words", (f"{other} text",), "toy")
    for topic, other in zip(TOPICS, TOPICS[1:] + TOPICS[:1])
]


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    return make_causal_lm(
        tmp_path_factory.mktemp("lm") / "tiny-llama", hidden_size=32, heads=2, init_embeddings_from_minilm=False
    )


def fresh(base_path) -> LLMEmbedder:
    embedder = LLMEmbedder.from_pretrained(base_path)
    embedder.options.max_length = 32
    return embedder


def test_stage_one_reduces_the_reconstruction_loss(base_path):
    embedder = fresh(base_path)
    config = StageIConfig(steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=0, show_progress=False)
    losses = train_stage_one(embedder, RECORDS, config)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])


def test_stage_two_reduces_the_contrastive_loss_with_lora(base_path):
    embedder = fresh(base_path)
    config = StageIIConfig(steps=30, batch_size=4, learning_rate=3e-3, warmup_steps=0, lora=True, show_progress=False)
    losses = train_stage_two(embedder, RECORDS, config)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:3])
    trainable = {n for n, p in embedder.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n for n in trainable)


def encoding_pass_gradient(embedder, *, detach_anchor: bool):
    """|d loss / d (token embeddings of the anchor text)|, captured in the encoding pass only."""
    captured = []

    def keep(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    handle = embedder.model.get_input_embeddings().register_forward_hook(keep)
    anchor = embedder.anchor(["zebra xylophone"], is_query=False)
    handle.remove()
    anchor = anchor.detach() if detach_anchor else anchor
    reconstruction_loss(embedder, anchor, target_batch(embedder, ["quiet morning river"], 32)).backward()
    grad = captured[0].grad
    return 0.0 if grad is None else grad.abs().sum().item()


def test_gradients_reach_the_encoding_pass_through_the_anchor(base_path):
    embedder = fresh(base_path)
    assert encoding_pass_gradient(embedder, detach_anchor=False) > 0
    embedder.model.zero_grad()
    assert encoding_pass_gradient(embedder, detach_anchor=True) == 0.0


def test_reconstruction_loss_ignores_padding_and_position_shift(base_path):
    """Left padding with position ids from the mask: a row's loss is the same alone or next to a long row."""
    embedder = fresh(base_path)
    with torch.no_grad():
        anchor = embedder.anchor(["short"], is_query=False)
        alone = reconstruction_loss(embedder, anchor, target_batch(embedder, ["a b"], 32))
        batched_targets = target_batch(embedder, ["a b", "a much longer target text than the first"], 32)
        both_anchors = embedder.anchor(["short", "another"], is_query=False)
        # score only row 0 of the padded batch
        batched_targets["labels"][1] = -100
        batched = reconstruction_loss(embedder, both_anchors, batched_targets)
    assert batched.item() == pytest.approx(alone.item(), abs=1e-5)


def test_stage_one_loss_weights_q2d_by_alpha(base_path):
    embedder = fresh(base_path)
    with torch.no_grad():
        q2d = stage_one_loss(embedder, RECORDS[:2], StageIConfig(alpha=1.0)).item()
        d2q = stage_one_loss(embedder, RECORDS[:2], StageIConfig(alpha=0.0)).item()
        mixed = stage_one_loss(embedder, RECORDS[:2], StageIConfig(alpha=0.2)).item()
    assert mixed == pytest.approx(0.2 * q2d + 0.8 * d2q, rel=1e-4)


def test_info_nce_uses_in_batch_and_hard_negatives():
    query = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    positive = query.clone()
    hard = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [0.1, 1.0]]), dim=-1)
    without = info_nce_loss(query, positive, None, 50.0).item()
    with_hard = info_nce_loss(query, positive, hard, 50.0).item()
    assert with_hard > without  # near-duplicate hard negatives make the task harder


def test_false_negative_mask_covers_shared_positives_and_multi_positive_queries():
    queries = ["q1", "q2", "q3", "q3"]
    positives = ["p1", "p1", "p3", "p4"]
    candidates = [*positives, "p1", "p3", "x"]  # in-batch positives, then hard negatives
    mask = false_negative_mask(queries, positives, candidates)
    assert mask.tolist() == [
        [False, True, False, False, True, False, False],  # q1: q2's positive and a hard negative are p1 too
        [True, False, False, False, True, False, False],
        [False, False, False, True, False, True, False],  # q3 has p3 and p4: neither is its negative
        [False, False, True, False, False, True, False],
    ]


@pytest.mark.parametrize(
    "pairs",
    [
        [("first question", "the same passage"), ("second question", "the same passage")],
        [("one question", "first relevant passage"), ("one question", "second relevant passage")],
    ],
)
def test_contrastive_loss_never_counts_a_relevant_document_as_negative(base_path, pairs):
    """Duplicate positives in a batch are false negatives: with only those candidates, the loss is 0."""
    embedder = fresh(base_path)
    batch = [TrainingRecord(q, p, (), "toy") for q, p in pairs]
    with torch.no_grad():
        loss = contrastive_loss(embedder, batch, StageIIConfig(hard_negatives=0)).item()
    assert loss == pytest.approx(0.0, abs=1e-6)


def test_hard_negatives_without_any_negative_in_the_records_is_named(base_path):
    records = [TrainingRecord(r.query, r.positive, (), r.source) for r in RECORDS]
    with pytest.raises(ValueError, match="no training record has negatives"):
        train_stage_two(fresh(base_path), records, StageIIConfig(steps=1, batch_size=2, lora=False))
    losses = train_stage_two(
        fresh(base_path), records, StageIIConfig(steps=1, batch_size=2, hard_negatives=0, lora=False)
    )
    assert len(losses) == 1


def test_missing_base_folder_and_bad_sizes_are_named(base_path, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"base causal LM .* is not a folder"):
        LLMEmbedder.from_pretrained(tmp_path / "no-such-model")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        list(source_batches(RECORDS, 0))
    embedder = fresh(base_path)
    embedder.options.max_length = 1
    with pytest.raises(ValueError, match="max_length must be >= 2"):
        embedder.embed(["text"], is_query=False)


def test_saved_embedder_plugs_into_the_dense_encoder(base_path, tmp_path):
    embedder = fresh(base_path)
    folder = embedder.save_pretrained(tmp_path / "embedder")
    encoder = load_encoder(f"hf:{folder}:last", device="cpu", show_progress=False)
    assert encoder.options["append_eos"] and encoder.options["query_prefix"] == embedder.options.query_instruction
    texts = ["one document", "a second and longer document with more words"]
    dense = encoder.encode_documents([Document(str(i), "", t) for i, t in enumerate(texts)])
    with torch.no_grad():
        ours = embedder.embed(texts, is_query=False).numpy()
    np.testing.assert_allclose(dense, ours, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(dense, axis=1), 1.0, atol=1e-5)


def test_records_round_trip_and_bad_rows_name_the_field(tmp_path):
    path = tmp_path / "records.jsonl"
    write_records(RECORDS, path)
    assert read_records(path) == RECORDS
    path.write_text(json.dumps({"query": "q", "positive": ""}) + "\n")
    with pytest.raises(ValueError, match="line 1: field 'positive'"):
        read_records(path)


@pytest.mark.shared_data
def test_beir_train_qrels_become_records_with_hard_negatives(shared_data):
    records = records_from_beir(shared_data / "beir_scifact", split="train", n_negatives=2)
    assert len(records) >= 800 and all(len(r.negatives) == 2 for r in records)
    assert all(r.positive not in r.negatives for r in records)


def _gathered_info_nce_rank(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    generator = torch.Generator().manual_seed(0)
    rows = [torch.nn.functional.normalize(torch.randn(4, 8, generator=generator), dim=-1) for _ in range(3)]
    local = [r[2 * rank : 2 * rank + 2].clone().requires_grad_() for r in rows]
    loss = info_nce_loss(*local, 50.0)
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": [t.grad / world for t in local]}, f"{out_dir}/rank{rank}.pt")
    # Both ranks must be past their collectives before either tears gloo down: a rank that exits
    # while its peer still runs the backward's all-gather aborts ("terminate called without an
    # active exception"), which failed this test now and then on a loaded machine.
    dist.barrier()
    dist.destroy_process_group()


def test_info_nce_gathers_across_ranks_like_one_big_batch(tmp_path):
    """Two gloo ranks with half the rows each: the same loss as one process with all rows, and the
    gradients (averaged over ranks, as the training loop does) match too."""
    import torch.multiprocessing as mp

    mp.spawn(_gathered_info_nce_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    generator = torch.Generator().manual_seed(0)
    rows = [
        torch.nn.functional.normalize(torch.randn(4, 8, generator=generator), dim=-1).requires_grad_() for _ in range(3)
    ]
    reference = info_nce_loss(*rows, 50.0)
    reference.backward()
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result["loss"].item() == pytest.approx(reference.item(), rel=1e-5)
        for got, full in zip(result["grads"], rows):
            torch.testing.assert_close(got, full.grad[2 * rank : 2 * rank + 2], rtol=1e-4, atol=1e-6)
