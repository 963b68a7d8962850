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


def _integer_at_least(text: str, low: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse `type=` for counts that must be at least 1 (batch sizes, lengths, k)."""
    return _integer_at_least(text, 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An argparse `type=` for counts where 0 means "none" or "skip" (steps, negatives)."""
    return _integer_at_least(text, 0, "an integer >= 0")
