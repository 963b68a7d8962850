"""`toolgym index build` / `toolgym index info` through their argparse handlers."""

from __future__ import annotations

import argparse
import json

import pytest

from toolgym.retrievers import load_index
from toolgym.retrievers.cli import add_index_command


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="toolgym")
    add_index_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    rows = [
        {"id": "a", "contents": "Paris\nParis is the capital of France."},
        {"id": "b", "contents": "Berlin\nBerlin is the capital of Germany."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_build_then_info(corpus, tmp_path, capsys):
    out = tmp_path / "index"
    assert run(["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(out), "--k1", "1.1"]) == 0
    assert "built bm25s index of 2 documents" in capsys.readouterr().out
    assert run(["index", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "bm25s" in info and "k1=1.1" in info and str(corpus) in info
    assert load_index(out).search(["France"], k=1)[0][0].doc_id == "a"


def test_info_json_is_the_manifest(corpus, tmp_path, capsys):
    run(
        ["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "i"), "--no-progress"]
    )
    capsys.readouterr()
    assert run(["index", "info", str(tmp_path / "i"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_documents"] == 2


def test_info_checks_a_corpus(corpus, tmp_path, capsys):
    run(["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "i")])
    assert run(["index", "info", str(tmp_path / "i"), "--corpus", str(corpus)]) == 0
    corpus.write_text(corpus.read_text().replace("France", "Spain"))
    assert run(["index", "info", str(tmp_path / "i"), "--corpus", str(corpus)]) == 1
    assert "is not the corpus" in capsys.readouterr().err


def test_stemmer_none_and_generic_param(corpus, tmp_path):
    argv = ["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "i")]
    assert run([*argv, "--stemmer", "none", "--param", "method=robertson"]) == 0
    manifest = json.loads((tmp_path / "i" / "toolgym_index.json").read_text())
    assert manifest["params"]["stemmer"] is None and manifest["params"]["method"] == "robertson"


def test_parameter_of_another_backend_is_an_error(corpus, tmp_path, capsys):
    argv = ["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "i")]
    assert run([*argv, "--heap", "2g"]) == 1
    assert "--heap does not apply to the bm25s backend" in capsys.readouterr().err


def test_missing_corpus_and_missing_index_are_errors(tmp_path, capsys):
    argv = [
        "index",
        "build",
        "--corpus",
        str(tmp_path / "nope.jsonl"),
        "--backend",
        "bm25s",
        "--out",
        str(tmp_path / "i"),
    ]
    assert run(argv) == 1
    assert run(["index", "info", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and not (tmp_path / "i").exists()


def test_index_without_action_prints_help(capsys):
    assert run(["index"]) == 2
    assert "build" in capsys.readouterr().out


def test_wired_into_toolgym_cli_when_available(corpus, tmp_path):
    from toolgym import cli

    if "index" not in cli.build_parser().format_help():
        pytest.skip("`toolgym index` is not wired into toolgym/cli.py yet")
    assert (
        cli.main(["index", "build", "--corpus", str(corpus), "--backend", "bm25s", "--out", str(tmp_path / "i")]) == 0
    )
    assert cli.main(["index", "info", str(tmp_path / "i")]) == 0
