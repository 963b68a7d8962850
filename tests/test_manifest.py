"""Index manifests are untrusted input: validated against a schema, checked against the checksum of
the settings the index was built with, and never allowed to name a file outside the index folder."""

from __future__ import annotations

import json

import pytest

from toolgym.retriever_contract import Document
from toolgym.retrievers import load_index
from toolgym.retrievers.bm25 import BM25Retriever
from toolgym.retrievers.manifest import (
    MANIFEST_FILE,
    IndexFormatError,
    IndexMismatchError,
    path_inside,
    read_manifest,
    settings_checksum,
    update_manifest,
)

DOCS = [
    Document("d1", "Running", "She was running in the races every morning."),
    Document("d2", "The run", "A run of the test suite."),
    Document("d3", "Paris", "Paris is the capital of France."),
]


@pytest.fixture
def index_dir(tmp_path):
    BM25Retriever(DOCS).save(tmp_path / "index")
    return tmp_path / "index"


def _edit(index_dir, **changes) -> None:
    path = index_dir / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        if value is _DELETE:
            manifest.pop(key)
        else:
            manifest[key] = value
    path.write_text(json.dumps(manifest))


_DELETE = object()


def test_a_saved_index_records_the_checksum_of_its_settings(index_dir):
    manifest = read_manifest(index_dir)
    assert manifest["settings_sha256"] == settings_checksum("bm25s", manifest["params"], None)


@pytest.mark.parametrize("params", [_DELETE, None, "k1=0.9", []])
def test_missing_or_malformed_params_is_a_clear_error(index_dir, params):
    _edit(index_dir, params=params)
    with pytest.raises(IndexFormatError, match=r"params.*rebuild the index"):
        load_index(index_dir)


@pytest.mark.parametrize(
    "change",
    [{"stemmer": None}, {"stemmer": "porter"}, {"stopwords": None}, {"stopwords": "de"}, {"k1": 2.0}],
)
def test_an_edited_setting_is_refused_not_silently_used(index_dir, change):
    """Without the check, stemmer=None would make 'running' stop matching 'Running' with no error."""
    params = read_manifest(index_dir)["params"]
    _edit(index_dir, params={**params, **change})
    with pytest.raises(IndexMismatchError, match="differ from the settings the index was built with"):
        load_index(index_dir)


def test_an_edited_checksum_without_matching_settings_is_refused(index_dir):
    _edit(index_dir, settings_sha256="0" * 64)
    with pytest.raises(IndexMismatchError, match="settings_sha256 does not match"):
        read_manifest(index_dir)


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.index", "sub/../../outside.index", "..", ""])
def test_index_file_outside_the_folder_is_refused(index_dir, name):
    _edit(index_dir, index_file=name)
    with pytest.raises(IndexFormatError, match="index_file"):
        read_manifest(index_dir)


@pytest.mark.parametrize("name", ["/etc/passwd", "../documents.jsonl"])
def test_docstore_file_outside_the_folder_is_refused(index_dir, name):
    record = read_manifest(index_dir)["docstore"]
    _edit(index_dir, docstore={**record, "file": name})
    with pytest.raises(IndexFormatError, match="docstore/file"):
        read_manifest(index_dir)


def test_path_inside_refuses_absolute_parent_and_symlinked_escapes(tmp_path):
    folder = tmp_path / "index"
    folder.mkdir()
    (tmp_path / "secret").write_text("not yours")
    (folder / "link").symlink_to(tmp_path / "secret")
    assert path_inside(folder, "faiss.index") == folder / "faiss.index"
    for name in ("/etc/passwd", "../secret", "a/../../secret", "link"):
        with pytest.raises(IndexFormatError):
            path_inside(folder, name)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("n_documents", -1, "n_documents"),
        ("n_documents", "3", "n_documents"),
        ("docstore", None, "docstore"),
        ("format", "other-index", "format"),
        ("backend", 7, "backend"),
    ],
)
def test_schema_violations_name_the_field(index_dir, field, value, message):
    _edit(index_dir, **{field: value})
    with pytest.raises(IndexFormatError, match=message):
        read_manifest(index_dir)


def test_an_older_format_version_says_to_rebuild(index_dir):
    _edit(index_dir, format_version=1, settings_sha256=_DELETE)
    with pytest.raises(IndexFormatError, match=r"format version 1.*rebuild the index"):
        read_manifest(index_dir)


def test_update_manifest_cannot_change_the_settings(index_dir):
    with pytest.raises(ValueError, match="fixed when the index is built"):
        update_manifest(index_dir, params={"k1": 3.0})
    assert update_manifest(index_dir, note="descriptive fields are fine")["note"] == "descriptive fields are fine"
    assert load_index(index_dir).search(["capital of France"], k=1)[0][0].doc_id == "d3"
