"""Encoders: spec parsing, shapes, normalization, pooling (padding-invariant), prefixes, MiniLM sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_bert import make_tiny_bert

from toolgym.agents.tiny import make_tiny_model
from toolgym.retriever_contract import Document
from toolgym.retrievers.encoders import (
    Encoder,
    HFEncoder,
    document_text,
    load_encoder,
    minilm_path,
    parse_spec,
    pool_hidden_states,
)

SHORT = "river"
LONG = "the spree is a river that flows through saxony, brandenburg and berlin into the havel near spandau"


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("qwen"), vocab_size=512, hidden_size=32)


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("st:minilm", device="cpu", show_progress=False)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("st:minilm", ("st", "minilm", None)),
        ("st:sentence-transformers/all-MiniLM-L6-v2", ("st", "sentence-transformers/all-MiniLM-L6-v2", None)),
        ("hf:/models/e5", ("hf", "/models/e5", None)),
        ("hf:/models/qwen:last", ("hf", "/models/qwen", "last")),
        ("hf:intfloat/e5-base-v2:mean", ("hf", "intfloat/e5-base-v2", "mean")),
    ],
)
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["minilm", "xx:model", "st:", "hf:", "", None])
def test_bad_spec_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="encoder spec"):
        load_encoder(spec)


def test_document_text_joins_title_and_text_like_mteb():
    assert document_text(Document("d", "Spree", "A river.")) == "Spree A river."
    assert document_text(Document("d", "", "A river.")) == "A river."


def test_hf_encoder_shapes_dtype_and_unit_norm(bert_dir):
    encoder = load_encoder(f"hf:{bert_dir}", device="cpu", show_progress=False)
    vectors = encoder.encode_documents([Document("a", "Spree", "A river."), Document("b", "", "")])
    assert isinstance(encoder, Encoder)
    assert vectors.shape == (2, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_queries([]).shape == (0, 32)


def test_normalize_off_keeps_raw_norms(bert_dir):
    encoder = load_encoder(f"hf:{bert_dir}", device="cpu", normalize=False, show_progress=False)
    norms = np.linalg.norm(encoder.encode_queries([SHORT, LONG]), axis=1)
    assert not np.allclose(norms, 1.0, atol=1e-3)


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_bert_pooling_ignores_padding(bert_dir, pooling):
    encoder = load_encoder(f"hf:{bert_dir}:{pooling}", device="cpu", show_progress=False)
    alone = encoder.encode_queries([SHORT])
    padded = encoder.encode_queries([SHORT, LONG])[:1]  # SHORT is padded to LONG's length in this batch
    np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_pooling_modes_give_different_vectors(bert_dir):
    vectors = [
        load_encoder(f"hf:{bert_dir}:{p}", device="cpu", show_progress=False).encode_queries([LONG])[0]
        for p in ("mean", "cls", "last")
    ]
    assert not np.allclose(vectors[0], vectors[1]) and not np.allclose(vectors[0], vectors[2])


def test_causal_lm_last_token_pooling_ignores_padding(qwen_dir):
    """A Qwen2 causal LM (left-padding tokenizer) read out at its last real token, batched or alone."""
    encoder = load_encoder(f"hf:{qwen_dir}:last", device="cpu", append_eos=True, show_progress=False)
    alone = encoder.encode_queries([SHORT])
    batched = encoder.encode_queries([LONG, SHORT, "a medium length text"])
    assert encoder.dim == 32
    np.testing.assert_allclose(alone[0], batched[1], atol=1e-5)


def test_pool_hidden_states_hand_computed():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)  # rows: [[0,1],[2,3],[4,5]], [[6,7],...]
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert pool_hidden_states(hidden, right, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool_hidden_states(hidden, right, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert pool_hidden_states(hidden, right, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool_hidden_states(hidden, left, "last").tolist() == [[4.0, 5.0], [10.0, 11.0]]


def test_prefixes_apply_to_their_side_only(bert_dir):
    encoder = load_encoder(
        f"hf:{bert_dir}", device="cpu", query_prefix="query: ", document_prefix="passage: ", show_progress=False
    )
    plain = load_encoder(f"hf:{bert_dir}", device="cpu", show_progress=False)
    np.testing.assert_allclose(encoder.encode_queries([SHORT]), plain.encode_queries(["query: " + SHORT]), atol=1e-6)
    np.testing.assert_allclose(
        encoder.encode_documents([Document("d", "", SHORT)]), plain.encode_queries(["passage: " + SHORT]), atol=1e-6
    )


def test_batches_and_progress_bar_keep_input_order(bert_dir):
    texts = [LONG[: 5 * i + 3] for i in range(10)]
    one_batch = load_encoder(f"hf:{bert_dir}", device="cpu", batch_size=64, show_progress=False)
    small_batches = load_encoder(f"hf:{bert_dir}", device="cpu", batch_size=3, show_progress=True)
    np.testing.assert_allclose(small_batches.encode_queries(texts), one_batch.encode_queries(texts), atol=1e-5)


def test_single_string_and_non_strings_are_refused(bert_dir):
    encoder = load_encoder(f"hf:{bert_dir}", device="cpu", show_progress=False)
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode_queries("river")
    with pytest.raises(TypeError, match="item 1 is int"):
        encoder.encode_queries(["river", 3])


def test_unknown_pooling_and_conflicting_pooling_are_refused(bert_dir):
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        HFEncoder(str(bert_dir), pooling="max")
    with pytest.raises(ValueError, match="says pooling 'cls'"):
        load_encoder(f"hf:{bert_dir}:cls", pooling="mean")


def test_options_record_what_changes_vectors(bert_dir):
    encoder = load_encoder(f"hf:{bert_dir}:cls", device="cpu", query_prefix="q: ", max_length=64)
    assert encoder.spec == f"hf:{bert_dir}:cls"
    assert encoder.options == {
        "pooling": "cls",
        "query_prefix": "q: ",
        "document_prefix": "",
        "max_length": 64,
        "normalize": True,
        "append_eos": False,
    }


def test_minilm_puts_similar_sentences_closer(minilm):
    """Reference cosines from ../shared/notes/stack.md §5: 0.755 (paraphrase) and -0.105 (unrelated)."""
    [eating, bread, baby] = minilm.encode_queries(
        ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."]
    )
    assert minilm.dim == 384 and minilm.spec == "st:minilm"
    assert float(eating @ bread) == pytest.approx(0.755, abs=0.01)
    assert float(eating @ baby) == pytest.approx(-0.105, abs=0.01)


def test_hf_mean_pooling_reproduces_sentence_transformers_minilm(minilm):
    """all-MiniLM-L6-v2 is BERT + mean pooling + L2 norm: our HF path must give the same vectors."""
    hf = load_encoder(f"hf:{minilm_path()}:mean", device="cpu", max_length=256, show_progress=False)
    texts = ["A man is eating food.", LONG, "東京は日本の首都です。"]
    cosines = np.sum(hf.encode_queries(texts) * minilm.encode_queries(texts), axis=1)
    np.testing.assert_allclose(cosines, 1.0, atol=1e-4)


def test_lone_surrogates_are_encoded_as_the_replacement_character(bert_dir):
    """A JSON query "\\ud800 river" decodes to a lone surrogate, which HF tokenizers refuse with a TypeError."""
    encoder = load_encoder(f"hf:{bert_dir}", device="cpu", show_progress=False)
    vectors = encoder.encode_queries(["\ud800 river", "\ufffd river"])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
