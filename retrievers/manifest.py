"""The index manifest, `toolgym_index.json`: what an index directory holds and how it was built.

    {"format": "toolgym-index", "format_version": 2, "backend": "bm25s",
     "params": {"k1": 0.9, ...}, "encoder": null | {"spec": "st:minilm", ...},
     "settings_sha256": "…", "n_documents": 5183,
     "docstore": {"file", "bytes", "sha256", "n_documents"},
     "corpus": {"path", "sha256", "bytes", "format"} | null, "toolgym_version": "0.1.0", ...}

An index folder is read as untrusted input: `read_manifest` validates the file against
`MANIFEST_SCHEMA` (one clear error naming the field, never a KeyError later), recomputes
`settings_sha256` over the settings that decide search results (backend, params, encoder), so an
edited stemmer, stopword list or k1 is refused instead of silently changing results, and every file
a manifest names is opened through `path_inside`, which keeps it inside the index folder.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

MANIFEST_FILE = "toolgym_index.json"
FORMAT_NAME = "toolgym-index"
FORMAT_VERSION = 2
"""Version 2 added `settings_sha256`; version-1 indexes are refused with advice to rebuild them."""

# A file a manifest names: a relative path of plain segments, no `..`, no leading `/` or drive.
_RELATIVE_FILE = r"^(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ToolGym index manifest",
    "type": "object",
    "required": ["format", "format_version", "backend", "params", "settings_sha256", "n_documents", "docstore"],
    "properties": {
        "format": {"const": FORMAT_NAME},
        "format_version": {"const": FORMAT_VERSION},
        "backend": {"type": "string", "minLength": 1},
        "params": {"type": "object"},
        "encoder": {"type": ["object", "null"]},
        "settings_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "n_documents": {"type": "integer", "minimum": 0},
        "docstore": {
            "type": "object",
            "required": ["n_documents", "bytes", "sha256"],
            "properties": {
                "file": {"type": "string", "pattern": _RELATIVE_FILE},
                "n_documents": {"type": "integer", "minimum": 0},
                "bytes": {"type": "integer", "minimum": 0},
                "sha256": {"type": "string"},
            },
        },
        "corpus": {"type": ["object", "null"]},
        "index_file": {"type": "string", "pattern": _RELATIVE_FILE},
    },
}


class IndexMismatchError(ValueError):
    """The index exists but is not the one asked for (another backend, another corpus, edited settings)."""


class IndexFormatError(ValueError):
    """The folder is not a readable ToolGym index (missing, corrupt or invalid manifest)."""


def _toolgym_version() -> str:
    import toolgym

    return toolgym.__version__


def settings_checksum(backend: str, params: dict[str, Any], encoder: dict[str, Any] | None) -> str:
    """SHA-256 of the settings that decide an index's results, in a canonical JSON form."""
    canonical = json.dumps(
        {"backend": backend, "params": params, "encoder": encoder}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _write(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", "utf-8")


def write_manifest(
    directory: str | Path,
    *,
    backend: str,
    params: dict[str, Any],
    n_documents: int,
    docstore: dict[str, Any],
    encoder: dict[str, Any] | None = None,
    corpus: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Write the manifest of the index in `directory` (called by each backend's `save`)."""
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "backend": backend,
        "params": params,
        "encoder": encoder,
        "settings_sha256": settings_checksum(backend, params, encoder),
        "n_documents": int(n_documents),
        "docstore": docstore,
        "corpus": corpus,
        "toolgym_version": _toolgym_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    _write(Path(directory), manifest)
    return manifest


def update_manifest(directory: str | Path, **fields: Any) -> dict[str, Any]:
    """Add or replace descriptive top-level fields (e.g. the corpus record after a build).

    The settings (`backend`, `params`, `encoder`) are fixed when the index is written; changing
    them here would make the checksum lie, so it is refused.
    """
    fixed = sorted({"backend", "params", "encoder", "settings_sha256"} & set(fields))
    if fixed:
        raise ValueError(f"update_manifest cannot change {fixed}: they are fixed when the index is built")
    manifest = read_manifest(directory)
    manifest.update(fields)
    _write(Path(directory), manifest)
    return manifest


def _schema_error(manifest: Any) -> str | None:
    """The first schema violation, as 'field: problem', or None when the manifest is valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(manifest))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(top level)"
    message = error.message if len(error.message) <= 200 else error.message[:200] + "…"
    return f"{where}: {message}"


def read_manifest(directory: str | Path, expect_backend: str | None = None) -> dict[str, Any]:
    """The validated manifest of the index in `directory`.

    Raises FileNotFoundError (no index), IndexFormatError (corrupt, invalid or an older format) or
    IndexMismatchError (another backend than `expect_backend`, or settings edited since the build).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"index directory {str(directory)!r} does not exist; build one with `toolgym index build`"
        )
    path = directory / MANIFEST_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} has no {MANIFEST_FILE}, so it is not a ToolGym index (or its build did not finish); "
            "build one with `toolgym index build`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise IndexFormatError(f"{path} is corrupt ({exc}); rebuild the index") from exc
    if not isinstance(manifest, dict):
        raise IndexFormatError(f"{path} is not a ToolGym index manifest (not a JSON object); rebuild the index")
    version = manifest.get("format_version")
    if isinstance(version, int) and version != FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} has format version {version}; this ToolGym reads version {FORMAT_VERSION} "
            "(version 1 has no settings checksum); rebuild the index with `toolgym index build`"
        )
    problem = _schema_error(manifest)
    if problem is not None:
        raise IndexFormatError(f"{path} is not a valid ToolGym index manifest ({problem}); rebuild the index")
    if expect_backend is not None and manifest["backend"] != expect_backend:
        raise IndexMismatchError(
            f"{directory} holds a {manifest['backend']!r} index, not {expect_backend!r}; "
            f"load it with backend {manifest['backend']!r} or rebuild it with --backend {expect_backend}"
        )
    expected = settings_checksum(manifest["backend"], manifest["params"], manifest.get("encoder"))
    if manifest["settings_sha256"] != expected:
        raise IndexMismatchError(
            f"{path}: backend, params or encoder differ from the settings the index was built with "
            f"(settings_sha256 does not match): e.g. an edited stemmer or stopword list would silently change "
            f"results; rebuild the index with the settings you want instead of editing the manifest"
        )
    return manifest


def path_inside(directory: str | Path, name: str) -> Path:
    """`directory / name`, refusing a name that is absolute, climbs out with `..` or links outside."""
    directory = Path(directory)
    candidate = Path(name)
    if not name or candidate.is_absolute() or candidate.drive or ".." in candidate.parts:
        raise IndexFormatError(f"{directory / MANIFEST_FILE} names the file {name!r}, which is not inside the index")
    path = directory / candidate
    if not path.resolve().is_relative_to(directory.resolve()):
        raise IndexFormatError(f"{path} leads outside the index folder {directory}; rebuild the index")
    return path


def check_corpus(manifest: dict[str, Any], corpus_path: str | Path, directory: str | Path) -> None:
    """Raise IndexMismatchError unless the index was built from exactly the bytes at `corpus_path`."""
    from .corpus import corpus_checksum

    recorded = manifest.get("corpus") or {}
    if not recorded.get("sha256"):
        raise IndexMismatchError(
            f"{directory} records no corpus checksum (it was saved from in-memory documents), so it cannot be "
            f"checked against {str(corpus_path)!r}; rebuild it with `toolgym index build --corpus {corpus_path}`"
        )
    actual = corpus_checksum(corpus_path)
    if actual != recorded["sha256"]:
        raise IndexMismatchError(
            f"corpus {str(corpus_path)!r} (sha256 {actual[:12]}…) is not the corpus {directory} was built from "
            f"({recorded.get('path')!r}, sha256 {recorded['sha256'][:12]}…); rebuild the index"
        )


__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA",
    "IndexFormatError",
    "IndexMismatchError",
    "check_corpus",
    "path_inside",
    "read_manifest",
    "settings_checksum",
    "update_manifest",
    "write_manifest",
]
