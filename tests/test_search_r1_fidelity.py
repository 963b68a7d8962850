"""tool_format="search_r1" reproduces Search-R1's rollout step (PeterGriffinJin/Search-R1,
search_r1/llm_agent/generation.py): `_postprocess_responses` cuts the response, then
`postprocess_predictions` takes the first tagged block, `execute_predictions` formats the
observation, and `run_llm_loop` counts the turns."""

from __future__ import annotations

import pytest

from toolgym.dialects import get_dialect
from toolgym.envs.search.env import SearchEnv
from toolgym.retriever_contract import Hit
from toolgym.tool_calls import search_r1_cut

ROW = {"question": "who wrote the freedonian anthem", "answer": ["Rufus Firefly"]}
HIT = Hit("d1", 1.0, "Freedonia", "The anthem was written by Rufus Firefly.")


class CountingRetriever:
    """Returns `hits` for every query and counts the queries it was asked."""

    def __init__(self, hits: list[Hit]):
        self.hits = hits
        self.queries: list[str] = []

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        self.queries.extend(queries)
        return [list(self.hits[:k]) for _ in queries]


def _env(hits: list[Hit] | None = None, **kwargs) -> tuple[SearchEnv, CountingRetriever]:
    retriever = CountingRetriever([HIT] if hits is None else hits)
    env = SearchEnv([ROW], retriever=retriever, **kwargs)
    env.reset(options={"index": 0})
    return env, retriever


@pytest.mark.parametrize(
    ("response", "cut"),
    [
        ("<answer>open <search>q</search> </answer>", "<answer>open <search>q</search>"),
        ("<search>q</search><information>made up</information><answer>x</answer>", "<search>q</search>"),
        ("<answer>a</answer> then <answer>b</answer>", "<answer>a</answer>"),
        ("<answer>a</answer> then <search>q</search> more", "<answer>a</answer> then <search>q</search>"),
        ("no tags at all", "no tags at all"),
    ],
)
def test_the_response_is_cut_as_search_r1_cuts_it(response, cut):
    assert search_r1_cut(response) == cut


@pytest.mark.parametrize(
    ("response", "search", "answer"),
    [
        ("<answer>open <search>q</search> </answer>", "q", None),  # searches: the cut drops </answer>
        ("<think>x</think><search> q </search> <answer>y</answer>", "q", None),
        ("<answer>a</answer> then <search>q</search>", None, "a"),  # first block of the cut text
        ("<search>q1 <answer>a</answer>", None, "a"),  # no </search>: cut at </answer>
    ],
)
def test_the_action_is_the_first_block_of_the_cut_response(response, search, answer):
    parsed = get_dialect("search_r1").parse(response)
    assert [c.arguments["query"] for c in parsed.tool_calls] == ([search] if search else [])
    assert parsed.answer == answer


@pytest.mark.parametrize(
    ("response", "search", "answer"),
    [
        ("<search><answer>x</answer></search>", "<answer>x</answer>", None),  # nested: the outer block
        ("<answer><search>q</search></answer>", "q", None),  # the cut drops </answer>
        ("<search>a<search>b</search>", "a<search>b", None),  # the first opening to its first closing
        ("</search><search>q</search>", None, None),  # cut before the block: nothing to read
        ("<search>q</answer>", None, None),  # unclosed: invalid, not a search
        ("<Search>q</Search> <ANSWER>x</ANSWER>", None, None),  # tags are case-sensitive
        ("< search>q</search>", None, None),
        ("<search >q</search >", None, None),
        ("<search>\n\t q \u00a0</search>", "q", None),  # str.strip, as Search-R1's .strip()
        ("<search></search>", "", None),  # an empty query is still a search in Search-R1
        ("<answer>   </answer>", None, ""),
        ("x" * 250_000 + "<search>far</search>", "far", None),  # however long the response
        ("<answer>" * 100_000 + "<search>q</search>", "q", None),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else value,
)
def test_sibling_tag_layouts_read_as_search_r1s_regex_reads_them(response, search, answer):
    """Expected values are what Search-R1's `_postprocess_responses` cut followed by
    ``re.search(r"<(search|answer)>(.*?)</\\1>", text, re.DOTALL)`` and ``.strip()`` give."""
    parsed = get_dialect("search_r1").parse(response)
    assert [c.arguments["query"] for c in parsed.tool_calls] == ([] if search is None else [search])
    assert parsed.answer == answer
    if search is None and answer is None:
        assert parsed.errors


def test_an_answer_wrapping_a_search_searches_in_the_env():
    env, retriever = _env()
    observation, _, terminated, _, _ = env.step("<answer>open <search>anthem</search> </answer>")
    assert not terminated and retriever.queries == ["anthem"]
    assert observation[0]["content"].startswith("\n\n<information>Doc 1(Title: Freedonia)")


def test_no_hits_give_empty_information_as_in_search_r1():
    env, _ = _env(hits=[])
    observation, *_ = env.step("<search>nothing</search>")
    assert observation == [{"role": "user", "content": "\n\n<information></information>\n\n"}]


def test_native_dialects_still_say_no_results_in_words():
    env, _ = _env(hits=[], tool_format="hermes")
    observation, *_ = env.step('<tool_call>{"name": "search", "arguments": {"query": "x"}}</tool_call>')
    assert observation[0]["role"] == "tool" and observation[0]["content"] == "No results found."


def test_search_r1_turn_budget_adds_one_final_turn_whose_searches_do_not_run():
    env, retriever = _env(max_turns=2, turn_budget="search_r1")
    for turn in (1, 2):
        _, _, terminated, truncated, info = env.step(f"<search>q{turn}</search>")
        assert not (terminated or truncated)
    _, reward, terminated, truncated, info = env.step("<search>q3</search>")
    assert retriever.queries == ["q1", "q2"] and truncated and not terminated
    assert info["searches_skipped"] == 1 and info["metrics"]["n_searches"] == 2 and reward == 0.0


def test_search_r1_turn_budget_scores_an_answer_in_the_final_turn():
    env, _ = _env(max_turns=1, turn_budget="search_r1")
    _, info = env.reset(options={"index": 0})
    assert info["max_turns"] == 2
    env.step("<search>anthem</search>")
    _, reward, terminated, _, _ = env.step("<answer> Rufus Firefly </answer>")
    assert terminated and reward == 1.0


def test_the_default_budget_counts_every_turn():
    env, retriever = _env(max_turns=2)
    env.step("<search>q1</search>")
    _, _, _, truncated, _ = env.step("<search>q2</search>")
    assert truncated and retriever.queries == ["q1", "q2"]


def test_an_unknown_turn_budget_is_a_clear_error():
    with pytest.raises(ValueError, match="turn_budget"):
        SearchEnv([ROW], retriever=CountingRetriever([]), turn_budget="searches")
