"""Search-v0's wire text: Search-R1's prompt, passage formatting and corrective message, and the
`search` tool schema for the native dialects.

The search_r1 strings are copied verbatim from PeterGriffinJin/Search-R1 (commit a14dc3a4:
scripts/data_process/nq_search.py and search_r1/llm_agent/generation.py), typo included ("as
your want"), so checkpoints trained on Search-R1 see exactly the text they were trained on.
"""

from __future__ import annotations

from toolgym.retriever_contract import Hit

SEARCH_R1_PROMPT = (
    "Answer the given question. "
    "You must conduct reasoning inside <think> and </think> first every time you get new information. "
    "After reasoning, if you find you lack some knowledge, you can call a search engine by <search> query </search> "
    "and it will return the top searched results between <information> and </information>. "
    "You can search as many times as your want. "
    "If you find no further external knowledge needed, you can directly provide the answer inside <answer> and "
    "</answer>, without detailed illustrations. For example, <answer> Beijing </answer>. Question: {question}\n"
)

INVALID_ACTION_MESSAGE = (
    "\nMy previous action is invalid. If I want to search, I should put the query between <search> and </search>. "
    "If I want to give the final answer, I should put the answer between <answer> and </answer>. Let me try again.\n"
)

NATIVE_SYSTEM_PROMPT = (
    "Answer the given question. Use the search tool to look up facts you are missing; you can search as many "
    "times as you need. When you know the answer, reply without a tool call and give the answer inside "
    "<answer> and </answer>, without detailed illustrations. For example, <answer> Beijing </answer>."
)

NATIVE_INVALID_MESSAGE = (
    "Your previous turn could not be used: {errors}. To search, call the `search` tool with a JSON object "
    'like {{"query": "..."}}; to finish, reply with the answer inside <answer> and </answer>.'
)

NO_RESULTS = "No results found."
TRUNCATION_MARKER = "…[truncated]"

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the document collection and return the top passages for a query.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "The search query."}},
            "required": ["query"],
        },
    },
}


def search_r1_question(question: str) -> str:
    """Search-R1's question clean-up: strip, and end with a question mark."""
    question = question.strip()
    if question and not question.endswith("?"):
        question += "?"
    return question


def format_passages(hits: list[Hit], max_chars: int | None = None, no_results: str = NO_RESULTS) -> str:
    """Search-R1's `_passages2string`: `Doc i(Title: t) text` lines, optionally cut with a marker.

    With no hits it returns `no_results`: "" for the search_r1 dialect (Search-R1 then shows
    ``<information></information>``), a readable sentence for native tool messages.
    """
    if not hits:
        return no_results
    text = "\n".join(f"Doc {i + 1}(Title: {hit.title}) {hit.text}" for i, hit in enumerate(hits)).strip()
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + TRUNCATION_MARKER
    return text


def information_block(passages: str) -> str:
    """The observation Search-R1 appends after a `<search>` turn."""
    return f"\n\n<information>{passages}</information>\n\n"
