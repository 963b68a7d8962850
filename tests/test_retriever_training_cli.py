"""`toolgym train-retriever` end to end on toy models, and the trained folders plugged into Search-v0."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

pytest.importorskip("torch")
pytest.importorskip("faiss")
pytest.importorskip("mteb")

from test_mteb_protocol import write_beir_folder

import toolgym  # noqa: F401  (registers Search-v0)
from toolgym.cli import main
from toolgym.retrievers.training.records import read_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    out = tmp_path_factory.mktemp("bases")
    assert main(["train-retriever", "tiny-bases", "--out", str(out), "--small"]) == 0
    return out


def test_records_embedder_and_search_v0_with_the_trained_folders(bases, tmp_path, capsys):
    beir = write_beir_folder(tmp_path / "task", n_docs=60, n_queries=12)
    (beir / "qrels" / "train.tsv").write_text((beir / "qrels" / "test.tsv").read_text())
    records = tmp_path / "records.jsonl"
    assert main(["train-retriever", "records", "beir", "--folder", str(beir), "--out", str(records)]) == 0
    assert len(read_records(records)) >= 12
    out = tmp_path / "embedder"
    argv = [
        "train-retriever",
        "embedder",
        "--base",
        str(bases / "causal-lm"),
        "--records",
        str(records),
        "--out",
        str(out),
        "--stage1-steps",
        "2",
        "--stage2-steps",
        "2",
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--lora",
        "--eval-beir",
        str(beir),
    ]
    capsys.readouterr()
    assert main(argv) == 0
    assert (out / "toolgym_encoder.json").is_file() and not (out / "adapter_config.json").exists()

    env = gym.make(
        "toolgym:Search-v0",
        retriever="faiss",
        retriever_kwargs={
            "encoder": f"hf:{out}:last",
            "device": "cpu",
            "show_progress": False,
            "rerank": f"hf:{bases / 'cross-encoder'}",
            "rerank_depth": 5,
        },
        top_k=3,
    )
    env.reset(seed=0)
    observation, *_ = env.step("<search>capital city</search>")
    assert observation and observation[0]["content"]
    env.close()


def test_embedder_summary_reports_mteb_scores(bases, tmp_path, capsys):
    beir = write_beir_folder(tmp_path / "task", n_docs=40, n_queries=8)
    records = tmp_path / "records.jsonl"
    main(
        [
            "train-retriever",
            "records",
            "beir",
            "--folder",
            str(beir),
            "--split",
            "test",
            "--out",
            str(records),
            "--negatives",
            "random",
            "--n-negatives",
            "1",
        ]
    )
    capsys.readouterr()
    argv = [
        "train-retriever",
        "embedder",
        "--base",
        str(bases / "causal-lm"),
        "--records",
        str(records),
        "--out",
        str(tmp_path / "e"),
        "--stage1-steps",
        "0",
        "--stage2-steps",
        "1",
        "--batch-size",
        "4",
        "--max-length",
        "32",
        "--eval-beir",
        str(beir),
    ]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.0 <= summary["mteb"]["ndcg_at_10"] <= 1.0 and summary["encoder_spec"].endswith(":last")


@pytest.mark.shared_data
def test_reranker_command_trains_through_the_reader_and_reports_recall(bases, tmp_path, capsys, shared_data):
    argv = [
        "train-retriever",
        "reranker",
        "--base",
        str(bases / "cross-encoder"),
        "--reader",
        str(bases / "fid-reader"),
        "--fit-reader-steps",
        "1",
        "--train",
        "4",
        "--eval",
        "4",
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--max-length",
        "32",
        "--out",
        str(tmp_path / "rr"),
    ]
    capsys.readouterr()
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"recall@5", "indirect_recall@5", "reader_em@5"} <= set(summary["after"])
    assert (tmp_path / "rr" / "config.json").is_file()


def test_gumbel_without_a_reader_is_a_clear_error(bases, tmp_path, capsys):
    argv = ["train-retriever", "reranker", "--base", str(bases / "cross-encoder"), "--out", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "--reader" in capsys.readouterr().err


@pytest.mark.slow  # about two minutes on 2 cores: SciFact BM25 mining, toy training, Search-v0 with both models
@pytest.mark.shared_data
def test_readme_training_commands_run_as_written(shared_data, tmp_path):
    from readme_blocks import checkout_like_folder, code_blocks, readme_sections
    from test_readme_commands import run_blocks

    blocks = code_blocks(readme_sections()["Training the retrieval models"], "bash")
    assert blocks
    work = checkout_like_folder(tmp_path, shared_data)
    run_blocks(blocks, work, shared_data, timeout=900)
    assert (work / "models" / "scifact-embedder" / "toolgym_encoder.json").is_file()
    assert (work / "models" / "gumbel-reranker" / "config.json").is_file()


def test_bad_inputs_are_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "records.jsonl"
    bad.write_text('{"query": "q"}\n')
    argv = ["train-retriever", "embedder", "--base", str(tmp_path / "missing"), "--records", str(bad), "--out", "x"]
    assert main(argv) == 2
    assert "line 1: field 'positive'" in capsys.readouterr().err
    assert main(["train-retriever", "records", "beir", "--folder", str(tmp_path / "nope"), "--out", "r.jsonl"]) == 2
    assert "is missing" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["embedder", "--batch-size", "0"], "--batch-size: expected an integer >= 1"),
        (["embedder", "--max-length", "-3"], "--max-length: expected an integer >= 1"),
        (["embedder", "--stage1-steps", "-1"], "--stage1-steps: expected an integer >= 0"),
        (["embedder", "--device", "foo"], "--device 'foo' is not a torch device"),
        (["embedder", "--records", "{noneg}"], "no training record has negatives"),
        (["embedder", "--base", "{missing}"], "base causal LM '.*' is not a folder"),
        (["embedder", "--eval-beir", "{missing}"], "--eval-beir '.*' is not a folder"),
        (["reranker", "--k", "0"], "--k: expected an integer >= 1"),
        (["reranker", "--k", "50"], "k=50 is more than the 10 passages"),
        (["reranker", "--tau", "0"], "tau .* must be > 0"),
        (["reranker", "--reader", "{missing}"], "FiD reader '.*' is not a folder"),
        (["reranker", "--base", "{missing}", "--fit-reader-steps", "50"], "reranker base '.*' is not a folder"),
        (["embedder", "--no-such-option", "1"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_bad_options_are_one_clear_error_before_any_training(bases, tmp_path, capsys, argv, message):
    import contextlib
    import re

    noneg = tmp_path / "noneg.jsonl"
    noneg.write_text('{"query": "a question", "positive": "a passage"}\n{"query": "b", "positive": "c"}\n')
    fill = {"{noneg}": str(noneg), "{missing}": str(tmp_path / "missing-model")}
    argv = [fill.get(arg, arg) for arg in argv]
    out = tmp_path / "out"
    if argv[0] == "embedder":  # a valid run (the last of a repeated option wins), then the bad option
        defaults = ["--base", str(bases / "causal-lm"), "--records", str(noneg), "--max-length", "16"]
        defaults += ["--stage1-steps", "1", "--stage2-steps", "1"]
        defaults += [] if "--records" in argv else ["--hard-negatives", "0"]
    else:
        defaults = ["--base", str(bases / "cross-encoder"), "--reader", str(bases / "fid-reader")]
        defaults += ["--train", "2", "--eval", "0", "--steps", "1", "--max-length", "32"]
    capsys.readouterr()
    usage_error = "expected an integer" in message or "unrecognized" in message  # argparse exits with 2
    with pytest.raises(SystemExit) if usage_error else contextlib.nullcontext():
        assert main(["train-retriever", *argv[:1], *defaults, *argv[1:], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert "Traceback" not in err
    assert not out.exists()  # it failed before training or saving anything


@pytest.mark.parametrize("dataset", ["hotpotqa:question_only", "nq_open"])
def test_records_from_rows_without_supporting_paragraphs_is_an_error_not_an_empty_file(tmp_path, capsys, dataset):
    out = tmp_path / "records.jsonl"
    assert main(["train-retriever", "records", "hotpotqa", "--dataset", dataset, "--out", str(out)]) == 2
    assert "gave no training records" in capsys.readouterr().err
    assert not out.exists()
