"""CLI: `toolgym index build` and `toolgym index info` (argparse only at import time)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from toolgym.cli_help import HelpFormatter, show_help
from toolgym.cli_values import key_value_argument

from .backends import INDEX_BACKENDS

INDEX_DESCRIPTION = """\
Build a retrieval index directory from a corpus, or describe one.

An index directory holds the backend's files, a document store (documents.jsonl + offsets) and
toolgym_index.json, which records the backend, its parameters, the encoder (dense), the corpus
path and its SHA-256. Loading it with another backend, or against a changed corpus, is an error.

Corpora: JSONL (id/_id, title, text or FlashRAG's contents="title\\ntext"), a BEIR folder,
HotpotQA rows (original or IRCoT-processed: every paragraph once, id = title) and HippoRAG's
{title: [sentences]} corpus.
"""

BUILD_EPILOG = """\
examples:
  toolgym index build --corpus ../shared/data/beir_scifact --backend bm25s --out indexes/scifact-bm25s
  toolgym index build --corpus ../shared/data/beir_scifact --backend pyserini --out indexes/scifact-lucene \\
      --threads 2 --heap 2g
  toolgym index build --corpus ../shared/data/wiki_passages_sample/sample_data.jsonl --backend faiss \\
      --encoder st:minilm --out indexes/wiki-minilm --param index_type=hnsw
  toolgym index info indexes/scifact-bm25s

backend parameters (unset ones keep the backend's default):
  bm25s     --k1 0.9 --b 0.4 --stemmer english --stopwords en   (--stemmer none: no stemming)
  pyserini  --k1 0.9 --b 0.4 --threads N --heap 4g              (Porter stemmer + stopwords: Anserini's)
  faiss     --encoder SPEC (st:minilm, st:<path>, hf:<path>[:mean|cls|last]) --param index_type=flat|hnsw|ivfpq
  any       --param KEY=VALUE (VALUE parsed as JSON when it can be)
"""

INFO_EPILOG = """\
examples:
  toolgym index info indexes/scifact-bm25s
  toolgym index info indexes/scifact-bm25s --json
  toolgym index info indexes/scifact-bm25s --corpus ../shared/data/beir_scifact   # exit 1 if it changed
"""


def add_index_command(subparsers: Any) -> None:
    """Add `index build` and `index info` to the `toolgym` command's subparsers."""
    index = subparsers.add_parser(
        "index",
        help="build a retrieval index from a corpus (bm25s, pyserini, faiss) or describe one",
        description=INDEX_DESCRIPTION,
        epilog=BUILD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = index.add_subparsers(dest="index_command", metavar="ACTION")
    index.set_defaults(handler=show_help(index))

    build = actions.add_parser(
        "build",
        help="index a corpus into a new directory",
        description=INDEX_DESCRIPTION,
        epilog=BUILD_EPILOG,
        formatter_class=HelpFormatter,
    )
    build.add_argument("--corpus", required=True, metavar="PATH", help="corpus file or BEIR folder")
    build.add_argument("--backend", required=True, choices=INDEX_BACKENDS, help="index type")
    build.add_argument("--out", required=True, metavar="DIR", help="index directory to create (new or empty)")
    build.add_argument("--format", dest="corpus_format", default=None, help="corpus format (default: detected)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    build.add_argument(
        "--allow-duplicate-ids",
        action="store_true",
        help="keep records that repeat a document id (counted in a warning) instead of failing",
    )
    build.add_argument("--no-progress", action="store_true", help="no progress display (logs only)")
    sparse = build.add_argument_group("BM25 (bm25s, pyserini)")
    sparse.add_argument("--k1", type=float, default=None, help="term-frequency saturation (default 0.9)")
    sparse.add_argument("--b", type=float, default=None, help="length normalization (default 0.4)")
    sparse.add_argument("--stemmer", default=None, help="bm25s: PyStemmer language or 'none' (default english)")
    sparse.add_argument("--stopwords", default=None, help="bm25s: stopword list or 'none' (default en)")
    sparse.add_argument("--threads", type=int, default=None, help="pyserini: indexing threads (default: cores, ≤ 8)")
    sparse.add_argument("--heap", default=None, help="pyserini: Java max heap, e.g. 4g (default: 1/4 of RAM)")
    dense = build.add_argument_group("dense (faiss)")
    dense.add_argument("--encoder", default=None, help="encoder spec, e.g. st:minilm or hf:<path>:mean")
    build.add_argument(
        "--param",
        action="append",
        type=key_value_argument,
        default=[],
        metavar="KEY=VALUE",
        help="any other backend parameter",
    )
    build.set_defaults(handler=run_index_build)

    info = actions.add_parser(
        "info",
        help="describe an index directory",
        description=INDEX_DESCRIPTION,
        epilog=INFO_EPILOG,
        formatter_class=HelpFormatter,
    )
    info.add_argument("index_dir", metavar="DIR", help="an index directory")
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.add_argument("--corpus", metavar="PATH", default=None, help="also check the index was built from PATH")
    info.set_defaults(handler=run_index_info)


def _build_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    names = {"bm25s": ("k1", "b", "stemmer", "stopwords"), "pyserini": ("k1", "b", "threads", "heap")}
    for name in ("k1", "b", "stemmer", "stopwords", "threads", "heap"):
        value = getattr(args, name)
        if value is None:
            continue
        if name not in names.get(args.backend, ()):
            raise ValueError(f"--{name} does not apply to the {args.backend} backend")
        params[name] = None if name in ("stemmer", "stopwords") and value.lower() == "none" else value
    if args.encoder is not None:
        if args.backend != "faiss":
            raise ValueError(f"--encoder applies to the faiss backend, not {args.backend}")
        params["encoder"] = args.encoder
    params.update(dict(args.param))
    return params


def run_index_build(args: argparse.Namespace) -> int:
    """Handler of `toolgym index build`: prints a summary of the new index."""
    from .index import build_index

    try:
        params = _build_params(args)
        manifest = build_index(
            args.corpus,
            args.backend,
            args.out,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            corpus_format=args.corpus_format,
            duplicate_ids="warn" if args.allow_duplicate_ids else "error",
            **params,
        )
    except (FileNotFoundError, FileExistsError, ValueError, ImportError, RuntimeError, TypeError) as exc:
        print(f"toolgym index build: error: {exc}", file=sys.stderr)
        return 1
    print(f"built {manifest['backend']} index of {manifest['n_documents']} documents in {manifest['build_seconds']} s")
    print(f"  {args.out}")
    return 0


def _size_on_disk(directory: Any) -> int:
    from pathlib import Path

    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


def run_index_info(args: argparse.Namespace) -> int:
    """Handler of `toolgym index info`: the manifest, readably (or as JSON), and an optional corpus check."""
    from .manifest import IndexMismatchError, check_corpus, read_manifest

    try:
        manifest = read_manifest(args.index_dir)
        if args.corpus is not None:
            check_corpus(manifest, args.corpus, args.index_dir)
    except IndexMismatchError as exc:
        print(f"toolgym index info: mismatch: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"toolgym index info: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(manifest, indent=1, ensure_ascii=False))
        return 0
    corpus = manifest.get("corpus") or {}
    encoder = manifest.get("encoder") or {}
    rows = [
        ("backend", manifest["backend"]),
        ("documents", f"{manifest.get('n_documents', '?'):,}" if isinstance(manifest.get("n_documents"), int) else "?"),
        ("params", ", ".join(f"{k}={v}" for k, v in (manifest.get("params") or {}).items()) or "-"),
        ("encoder", encoder.get("spec", "-") if encoder else "-"),
        ("settings sha256", manifest["settings_sha256"]),
        ("corpus", corpus.get("path", "- (saved from in-memory documents)")),
        ("corpus sha256", corpus.get("sha256", "-")),
        ("corpus format", corpus.get("format", "-")),
        ("size on disk", f"{_size_on_disk(args.index_dir) / 2**20:.1f} MiB"),
        ("built", f"{manifest.get('created', '?')} with toolgym {manifest.get('toolgym_version', '?')}"),
    ]
    if manifest.get("build_seconds") is not None:
        rows.append(("build time", f"{manifest['build_seconds']} s"))
    if args.corpus is not None:
        rows.append(("corpus check", f"matches {args.corpus}"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


__all__ = ["add_index_command", "run_index_build", "run_index_info"]
