"""Search-v0's row formats as schemas: IRCoT and original HotpotQA, answer-only rows, world rows.

The world-row schema bounds the numbers that size the generated world (`WorldConfig`'s limits),
so a row cannot ask for a world that takes minutes to build or exhausts memory.
"""

from __future__ import annotations

from typing import Any

from toolgym.envs.rows import RowFormat, TaskRowError, check_row

from .world import MAX_DISTRACTORS, MAX_ENTITIES, MAX_PARAGRAPHS_PER_ENTITY, MAX_SEED, MIN_ENTITIES, PAGE_STYLES

ENV_ID = "Search-v0"
_STRING = {"type": "string"}
_ID = {"type": ["string", "integer"]}
_ANSWERS = {"anyOf": [{"type": ["string", "number"]}, {"type": "array", "items": {"type": ["string", "number"]}}]}

IRCOT_ROW = RowFormat(
    "IRCoT HotpotQA format: question_text, answers_objects, contexts",
    {
        "type": "object",
        "required": ["question_text", "contexts", "answers_objects"],
        "properties": {
            "question_id": _ID,
            "question_text": {"type": "string", "minLength": 1},
            "answers_objects": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"spans": {"type": "array", "items": _STRING}},
                },
            },
            "contexts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["title"],
                    "properties": {"title": _STRING, "paragraph_text": _STRING, "is_supporting": {"type": "boolean"}},
                },
            },
        },
    },
)
_HF_CONTEXT = {
    "type": "object",
    "required": ["title", "sentences"],
    "properties": {
        "title": {"type": "array", "items": _STRING},
        "sentences": {"type": "array", "items": {"type": "array", "items": _STRING}},
    },
}
_PAIR_CONTEXT = {
    "type": "array",
    "items": {
        "type": "array",
        "minItems": 2,
        "prefixItems": [_STRING, {"type": "array", "items": _STRING}],
    },
}
HOTPOTQA_ROW = RowFormat(
    "HotpotQA format: question, answer, context",
    {
        "type": "object",
        "required": ["question", "answer", "context"],
        "properties": {
            "_id": _ID,
            "id": _ID,
            "question": {"type": "string", "minLength": 1},
            "answer": _ANSWERS,
            "context": {"anyOf": [_PAIR_CONTEXT, _HF_CONTEXT]},
            "supporting_facts": {
                "anyOf": [
                    {"type": "array", "items": {"type": "array", "minItems": 1, "prefixItems": [_STRING]}},
                    {"type": "object", "properties": {"title": {"type": "array", "items": _STRING}}},
                ]
            },
        },
    },
)
WORLD_CONFIG_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "seed": {"type": "integer", "minimum": -MAX_SEED, "maximum": MAX_SEED},
        "n_entities": {"type": "integer", "minimum": MIN_ENTITIES, "maximum": MAX_ENTITIES},
        "n_distractors": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_DISTRACTORS},
        "paragraphs_per_entity": {"type": "integer", "minimum": 1, "maximum": MAX_PARAGRAPHS_PER_ENTITY},
        "page_style": {"enum": list(PAGE_STYLES)},
    },
}
WORLD_ROW = RowFormat(
    "procedural world row: question, answers, world",
    {
        "type": "object",
        "required": ["question", "answers", "world"],
        "properties": {
            "id": _ID,
            "question": {"type": "string", "minLength": 1},
            "answers": _ANSWERS,
            "world": WORLD_CONFIG_SCHEMA,
            "supporting_doc_ids": {"type": "array", "items": _STRING},
            "question_index": {"type": "integer"},
        },
    },
)
ANSWER_ONLY_ROW = RowFormat(
    "answer-only format (NQ-open / FlashRAG / HotpotQA questions): question, answer",
    {
        "type": "object",
        "required": ["question"],
        "properties": {
            "id": _ID,
            "_id": _ID,
            "question": {"type": "string", "minLength": 1},
            "answer": _ANSWERS,
            "answers": _ANSWERS,
            "golden_answers": _ANSWERS,
            "supporting_doc_ids": {"type": "array", "items": _STRING},
        },
    },
)


def search_row_format(row: Any, checked: bool = True) -> RowFormat:
    """Which format a row is in (from its keys), validated unless `checked` is False; raises
    `TaskRowError` naming the field."""
    if not isinstance(row, dict):
        raise TaskRowError(ENV_ID, "options['task']", f"must be a task row (a dict), got {type(row).__name__}")
    if "question_text" in row or "contexts" in row:
        row_format = IRCOT_ROW
    elif "context" in row:
        row_format = HOTPOTQA_ROW
    elif "world" in row:
        row_format = WORLD_ROW
    elif "question" in row:
        row_format = ANSWER_ONLY_ROW
    else:
        raise TaskRowError(
            ENV_ID,
            "question",
            f"is missing; got keys {sorted(row)[:10]}: expected HotpotQA (question/answer/context), IRCoT "
            "(question_text/answers_objects/contexts), NQ-open (question/answer) or a procedural world row",
        )
    if checked:
        check_row(ENV_ID, row, row_format)
    return row_format
