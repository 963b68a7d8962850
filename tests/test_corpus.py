"""Corpus readers: every format streams to the same Documents, bad rows name their file and line."""

from __future__ import annotations

import hashlib
import json

import pytest

from toolgym.retriever_contract import Document
from toolgym.retrievers.corpus import (
    CorpusFormatError,
    corpus_checksum,
    detect_format,
    document_from_record,
    iter_documents,
)


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_jsonl_with_id_title_text(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "title": "T", "text": "body"}, {"id": 7, "text": "x"}])
    assert list(iter_documents(path)) == [Document("a", "T", "body"), Document("7", "", "x")]


def test_flashrag_contents_split_into_title_and_text(tmp_path):
    records = [{"id": "0", "contents": "Plain Title\nthe text"}, {"id": "1", "contents": '"Quoted"\nQuoted text'}]
    docs = list(iter_documents(_write_jsonl(tmp_path / "c.jsonl", records)))
    # The first line is the title verbatim (Search-R1 shows `Title: "Quoted"` to the model).
    assert docs == [Document("0", "Plain Title", "the text"), Document("1", '"Quoted"', "Quoted text")]


def test_contents_without_newline_is_all_text(tmp_path):
    docs = list(iter_documents(_write_jsonl(tmp_path / "c.jsonl", [{"id": "0", "contents": "just text"}])))
    assert docs == [Document("0", "", "just text")]


def test_contents_repeating_a_given_title_drops_the_title_line():
    record = {"id": "0", "title": "Quoted", "contents": '"Quoted"\nthe text'}
    assert document_from_record(record, "x:1") == Document("0", "Quoted", "the text")


def test_beir_folder_reads_corpus_jsonl(tmp_path):
    _write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "", "text": "a"}])
    assert detect_format(tmp_path) == "beir"
    assert list(iter_documents(tmp_path)) == [Document("d1", "", "a")]


def test_folder_without_corpus_jsonl_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"without corpus\.jsonl"):
        list(iter_documents(tmp_path))


def test_json_array_of_records_streams(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"id": "a", "text": "x" * 3_000_000}, {"id": "b", "text": "y"}], indent=2))
    docs = list(iter_documents(path))
    assert detect_format(path) == "json-array"
    assert [d.doc_id for d in docs] == ["a", "b"] and len(docs[0].text) == 3_000_000


def test_hippo_rag_corpus_object(tmp_path):
    path = tmp_path / "corpus.json"
    path.write_text(json.dumps({"Alpha": ["One.", " Two."], "Beta": ["Three."]}, indent=4))
    assert detect_format(path) == "hotpotqa-corpus"
    assert list(iter_documents(path)) == [Document("Alpha", "Alpha", "One. Two."), Document("Beta", "Beta", "Three.")]


def test_original_hotpotqa_rows_give_each_paragraph_once(tmp_path):
    rows = [
        {"_id": "q1", "question": "?", "answer": "a", "context": [["A", ["a1.", " a2."]], ["B", ["b."]]]},
        {"_id": "q2", "question": "?", "answer": "a", "context": [["B", ["b."]], ["C", ["c."]]]},
    ]
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(rows))
    assert detect_format(path) == "hotpotqa"
    assert [d.doc_id for d in iter_documents(path)] == ["A", "B", "C"]
    assert next(iter(iter_documents(path))).text == "a1. a2."


def test_ircot_rows(tmp_path):
    row = {"question_id": "q", "question_text": "?", "contexts": [{"title": "A", "paragraph_text": "pa"}]}
    path = _write_jsonl(tmp_path / "ircot.jsonl", [row, row])
    assert list(iter_documents(path)) == [Document("A", "A", "pa")]


def test_bad_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n\n{"id": "b", "text": \n')
    with pytest.raises(CorpusFormatError, match=r"c\.jsonl:3: not valid JSON"):
        list(iter_documents(path))


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"title": "t", "text": "x"}, "no 'id', '_id' or 'docid'"),
        ({"id": "a", "text": 5}, "'text' must be a string"),
        ({"id": [1], "text": "x"}, "document id must be"),
        ({"id": "a"}, "none of 'text', 'contents' or 'title'"),
    ],
)
def test_bad_record_names_file_and_line(tmp_path, record, message):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "ok", "text": "x"}, record])
    with pytest.raises(CorpusFormatError, match=rf"c\.jsonl:2: .*{message}"):
        list(iter_documents(path))


def test_bad_element_in_json_array_names_its_line(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[\n {"id": "a", "text": "x"},\n {"text": "no id"}\n]')
    with pytest.raises(CorpusFormatError, match=r"c\.json:3: record has no 'id'"):
        list(iter_documents(path))


def test_truncated_json_array_is_a_clear_error(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('[{"id": "a", "text": "x"}, {"id": "b", "te')
    with pytest.raises(CorpusFormatError, match="not valid JSON"):
        list(iter_documents(path))


def test_empty_file_is_an_empty_corpus(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    assert list(iter_documents(path)) == []


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list(iter_documents(tmp_path / "nope.jsonl"))


def test_checksum_is_sha256_of_the_bytes(tmp_path):
    path = _write_jsonl(tmp_path / "c.jsonl", [{"id": "a", "text": "x"}])
    assert corpus_checksum(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_checksum_of_a_beir_folder_is_that_of_its_corpus_file(tmp_path):
    path = _write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "a", "text": "x"}])
    assert corpus_checksum(tmp_path) == corpus_checksum(path)


def test_iteration_is_lazy(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\nnot json\n')
    documents = iter_documents(path)
    assert next(documents) == Document("a", "", "x")  # the bad second line is not read yet


# --- the shared benchmark data -------------------------------------------------------------------


def test_scifact_beir_folder(shared_data):
    docs = list(iter_documents(shared_data / "beir_scifact"))
    assert len(docs) == 5183 and docs[0].doc_id == "4983" and docs[0].title.startswith("Microstructural")


def test_flashrag_wiki_sample(shared_data):
    docs = list(iter_documents(shared_data / "wiki_passages_sample" / "sample_data.jsonl"))
    assert len(docs) == 1000
    assert docs[0].title == '"Evan Morris"' and docs[0].text.startswith("Evan Morris Evan L. Morris")


def test_hotpotqa_files_agree_on_paragraphs(shared_data):
    folder = shared_data / "hotpotqa" / "hipporag_train_sample"
    from_corpus = {d.doc_id: d.text for d in iter_documents(folder / "hotpotqa_train_corpus.json")}
    from_rows = {d.doc_id: d.text for d in iter_documents(folder / "hotpotqa_train.json")}
    assert len(from_corpus) == 994 and from_rows == from_corpus


def test_ircot_dev_paragraphs_match_search_env_loader(shared_data):
    from toolgym.data import iter_jsonl
    from toolgym.envs.search.loaders import parse_row

    path = shared_data / "hotpotqa" / "ircot_processed" / "dev_subsampled.jsonl"
    expected: dict[str, Document] = {}
    for row in iter_jsonl(path):
        for doc in parse_row(row).documents or []:
            expected.setdefault(doc.doc_id, doc)
    assert list(iter_documents(path)) == list(expected.values())
