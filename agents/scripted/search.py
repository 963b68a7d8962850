"""Scripted Search-v0 agents: an oracle (reads the gold) and a search-then-answer baseline (does not).

They speak whatever dialect the env announced in its reset info (`tool_format`), so one script
covers search_r1, hermes, python and openai episodes.
"""

from __future__ import annotations

import re
from typing import Any

from toolgym.agents.base import AgentRequest
from toolgym.dialects import SearchR1Dialect, dialect_of
from toolgym.envs.search.loaders import parse_row
from toolgym.envs.search.qa_metrics import normalize_answer
from toolgym.tool_calls import ToolCall

_DOC_LINE_RE = re.compile(r"^Doc \d+\(Title: (.*?)\) (.*)$")
_YEAR_RE = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_SPAN_RE = re.compile(r"[A-Z][\w'’-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'’-]*)*")
_WORD_RE = re.compile(r"\w+")
_YEAR_QUESTION_RE = re.compile(r"\b(what year|which year|when)\b", re.IGNORECASE)
# Capitalized words that start sentences in prose rather than name things.
_NOT_NAMES = frozenset({"the", "a", "an", "in", "on", "by", "born", "records", "its", "his", "her", "it", "he", "she"})
_STOPWORDS = frozenset(
    {"a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "was", "were"}
    | {"are", "be", "been", "which", "what", "who", "whom", "whose", "where", "when", "how", "why", "does", "did"}
    | {"do", "that", "this"}
)


def oracle(request: AgentRequest) -> str | dict[str, Any]:
    """Answer the gold (its first alias) at once, in the env's tool format."""
    task = parse_row(request.env_info["task"])
    return dialect_of(request.env_info).render_answer(task.answers[0])


def baseline(request: AgentRequest) -> str | dict[str, Any]:
    """Search-then-answer, without the gold: search the question text once, then answer.

    The answer is a span picked from the returned passages: the sentences are ranked by how many
    (crudely stemmed) content words they share with the question, best passage first, and the
    first candidate in the best sentence wins: a year for when / what-year questions, else a
    capitalized name that does not occur in the question. Falls back to the top hit's title.
    """
    dialect = dialect_of(request.env_info)
    question = _question(request.messages)
    passages = _latest_passages(request.messages, isinstance(dialect, SearchR1Dialect))
    if passages is None:
        return dialect.render([ToolCall("search", {"query": question}, id="call_0")])
    return dialect.render_answer(extract_answer(question, passages))


def _question(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str) and "Question:" in content:
            return content.rsplit("Question:", 1)[1].strip()
    return ""


def _latest_passages(messages: list[dict[str, Any]], search_r1: bool) -> list[tuple[str, str]] | None:
    """(title, text) pairs of the last search observation, or None before any search."""
    for message in reversed(messages):
        content = message.get("content")
        if not isinstance(content, str):
            continue
        is_observation = message.get("role") == "tool" or (
            search_r1 and message.get("role") == "user" and content.lstrip().startswith("<information>")
        )
        if is_observation:
            body = content.replace("<information>", "").replace("</information>", "")
            return [m.groups() for m in map(_DOC_LINE_RE.match, body.strip().splitlines()) if m]
    return None


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _WORD_RE.findall(text.lower()) if w not in _STOPWORDS}


def extract_answer(question: str, passages: list[tuple[str, str]]) -> str:
    """The baseline's answer heuristic over (title, text) passages (see `baseline`)."""
    question_norm = f" {normalize_answer(question)} "
    question_stems = _stems(question)
    want_year = bool(_YEAR_QUESTION_RE.search(question))
    sentences = []
    for rank, (_, text) in enumerate(passages):
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            sentences.append((-len(question_stems & _stems(sentence)), rank, sentence))
    for _, _, sentence in sorted(sentences, key=lambda s: (s[0], s[1])):
        candidates = _YEAR_RE.findall(sentence) if want_year else _SPAN_RE.findall(sentence)
        for candidate in candidates:
            if candidate.lower() in _NOT_NAMES:
                continue
            if f" {normalize_answer(candidate)} " not in question_norm:
                return candidate
    for title, _ in passages:
        if f" {normalize_answer(title)} " not in question_norm:
            return title
    return passages[0][0] if passages else "unknown"
