"""Corpus format detection reads many records, never one, and refuses what it cannot tell apart;
repeated document ids are reported (issue: 1,000 id-less JSONL records were read as 2 documents)."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from toolgym.retrievers.cli import add_index_command
from toolgym.retrievers.corpus import CorpusFormatError, DuplicateIdError, detect_format, iter_documents
from toolgym.retrievers.index import build_index


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _index_build(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="toolgym")
    add_index_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["index", "build", *argv])
    return args.handler(args)


# --- records without an id ------------------------------------------------------------------------


@pytest.mark.parametrize("n_records", [1, 2, 1000])
def test_jsonl_records_without_ids_are_an_error_naming_the_expected_fields(tmp_path, n_records):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"title": f"t{i}", "text": f"x{i}"} for i in range(n_records)])
    with pytest.raises(CorpusFormatError, match=r"'id' \(or '_id' / 'docid'\)"):
        detect_format(path)
    with pytest.raises(CorpusFormatError, match="cannot tell the corpus format"):
        list(iter_documents(path))


def test_index_build_of_id_less_records_fails_and_writes_nothing(tmp_path, capsys):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"title": f"t{i}", "text": f"x{i}"} for i in range(1000)])
    assert _index_build(["--corpus", str(path), "--backend", "bm25s", "--out", str(tmp_path / "index")]) == 1
    assert "cannot tell the corpus format" in capsys.readouterr().err
    assert not (tmp_path / "index").exists()


def test_search_env_refuses_an_id_less_corpus(tmp_path):
    import gymnasium as gym

    import toolgym  # noqa: F401  (registers the ids)

    path = _write_jsonl(tmp_path / "c.jsonl", [{"title": f"t{i}", "text": f"x{i}"} for i in range(50)])
    with pytest.raises(CorpusFormatError, match="cannot tell the corpus format"):
        gym.make("Search-v0", dataset="nq_open", corpus=str(path))


def test_a_record_without_an_id_after_good_ones_is_named_by_line(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}, {"text": "z"}])
    assert detect_format(path) == "jsonl"
    with pytest.raises(CorpusFormatError, match=r"c\.jsonl:3: record has no 'id'"):
        list(iter_documents(path))


def test_hotpotqa_rows_mixed_with_corpus_records_are_ambiguous(tmp_path):
    row = {"question": "?", "answer": "a", "context": [["A", ["a."]]]}
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "d", "text": "x"}, row])
    with pytest.raises(CorpusFormatError, match="mixes HotpotQA rows and corpus records"):
        detect_format(path)


def test_json_array_of_id_less_records_is_an_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"title": "a", "text": "x"}, {"title": "b", "text": "y"}]))
    with pytest.raises(CorpusFormatError, match="none of the first 2 records has an id"):
        detect_format(path)


def test_hippo_rag_object_on_one_line_is_still_recognised(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps({"Alpha": ["One."], "Beta": ["Two.", " Three."]}))
    assert detect_format(path) == "hotpotqa-corpus"
    assert [d.doc_id for d in iter_documents(path)] == ["Alpha", "Beta"]


def test_single_line_record_is_one_document_not_a_title_map(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "only", "title": "T", "text": "body"}])
    assert [d.doc_id for d in iter_documents(path)] == ["only"]


def test_data_after_a_json_array_is_an_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[{"id": "a", "text": "x"}]\n[{"id": "b", "text": "y"}]\n')
    with pytest.raises(CorpusFormatError, match="unexpected data after the top-level JSON value"):
        list(iter_documents(path))


def test_an_explicit_format_skips_detection(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}])
    assert [d.doc_id for d in iter_documents(path, format="jsonl")] == ["a"]


# --- duplicate ids ----------------------------------------------------------------------------------


def _with_duplicates(tmp_path):
    records = [{"id": str(i % 40), "text": f"passage {i}"} for i in range(50)]  # ids 0..9 appear twice
    return _write_jsonl(tmp_path / "dup.jsonl", records)


def test_duplicate_ids_are_an_error_by_default_with_a_count(tmp_path):
    with pytest.raises(DuplicateIdError, match=r"10 records repeat the id of an earlier record \(10 ids"):
        list(iter_documents(_with_duplicates(tmp_path)))


def test_duplicate_ids_with_warn_keep_every_record_and_log_the_count(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="toolgym.retrievers.corpus"):
        documents = list(iter_documents(_with_duplicates(tmp_path), duplicate_ids="warn"))
    assert len(documents) == 50
    assert "10 records repeat the id" in caplog.text


def test_index_build_duplicate_ids_error_and_flag(tmp_path, capsys):
    corpus = _with_duplicates(tmp_path)
    out = tmp_path / "index"
    assert _index_build(["--corpus", str(corpus), "--backend", "bm25s", "--out", str(out)]) == 1
    assert "--allow-duplicate-ids" in capsys.readouterr().err and not out.exists()
    assert (
        _index_build(["--corpus", str(corpus), "--backend", "bm25s", "--out", str(out), "--allow-duplicate-ids"]) == 0
    )
    assert json.loads((out / "toolgym_index.json").read_text())["n_documents"] == 50


def test_build_index_refuses_duplicates_from_python(tmp_path):
    with pytest.raises(DuplicateIdError):
        build_index(_with_duplicates(tmp_path), "bm25s", tmp_path / "index", progress=False)


def test_hotpotqa_paragraphs_shared_by_questions_are_not_duplicates(tmp_path):
    rows = [
        {"question": "?", "answer": "a", "context": [["A", ["a."]], ["B", ["b."]]]},
        {"question": "?", "answer": "a", "context": [["B", ["b."]], ["C", ["c."]]]},
    ]
    path = _write_jsonl(tmp_path / "rows.jsonl", rows)
    assert [d.doc_id for d in iter_documents(path)] == ["A", "B", "C"]


def test_serve_retriever_corpus_option_applies_detection_and_the_duplicate_flag(tmp_path):
    from toolgym.retrievers.serve_cli import load_retriever

    def args(corpus, allow: bool) -> argparse.Namespace:
        return argparse.Namespace(index=None, corpus=str(corpus), url=None, backend="bm25s", params=[],
                                  allow_duplicate_ids=allow)  # fmt: skip

    id_less = _write_jsonl(tmp_path / "c.jsonl", [{"title": f"t{i}", "text": f"x{i}"} for i in range(20)])
    with pytest.raises(CorpusFormatError, match="cannot tell the corpus format"):
        load_retriever(args(id_less, allow=False))
    with pytest.raises(DuplicateIdError):
        load_retriever(args(_with_duplicates(tmp_path), allow=False))
    retriever, _ = load_retriever(args(_with_duplicates(tmp_path), allow=True))
    assert len(retriever) == 50
