"""Parsing `KEY=VALUE` command-line options, shared by every `toolgym` sub-command."""

from __future__ import annotations

import argparse
import json
from typing import Any


def parse_key_value(text: str) -> tuple[str, Any]:
    """`"top_k=5"` -> `("top_k", 5)`: the value is read as JSON when it parses, else kept as text."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def key_value_argument(text: str) -> tuple[str, Any]:
    """`parse_key_value` as an argparse `type=`, so a malformed option is a usage error."""
    try:
        return parse_key_value(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
