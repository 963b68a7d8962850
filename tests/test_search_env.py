"""Search-v0: the Gymnasium contract, Search-R1's protocol, native tool calls and per-turn info."""

from __future__ import annotations

import json
import subprocess
import sys

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from toolgym.envs.base import EpisodeError
from toolgym.envs.search import protocol
from toolgym.envs.search.env import SearchEnv
from toolgym.retriever_contract import Hit

IRCOT_ROW = {
    "question_id": "q1",
    "question_text": "Which city is the capital of Freedonia",
    "answers_objects": [{"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["Fredville"]}],
    "contexts": [
        {
            "id": "0",
            "title": "Freedonia",
            "paragraph_text": "Freedonia is a country. Its capital is Fredville.",
            "is_supporting": True,
        },
        {
            "id": "1",
            "title": "Sylvania",
            "paragraph_text": "Sylvania borders Freedonia to the north.",
            "is_supporting": False,
        },
        {"id": "2", "title": "Fredville", "paragraph_text": "Fredville lies on the Fred river.", "is_supporting": True},
    ],
}


def _new(**kwargs) -> SearchEnv:
    return SearchEnv(**kwargs)


@pytest.mark.parametrize("tool_format", ["search_r1", "hermes"])
def test_passes_gymnasium_check_env(tool_format):
    check_env(SearchEnv(tool_format=tool_format), skip_render_check=True)


def test_gym_make_works_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym, time\n"
        "t = time.perf_counter()\n"
        "env = gym.make('toolgym:Search-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(round(time.perf_counter() - t, 3), info['env'], obs[0]['role'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    seconds, env_id, role = out.stdout.split()
    assert (env_id, role) == ("Search-v0", "user")
    assert float(seconds) < 5.0  # world + index build included; about 0.4 s on the reference machine


def test_same_seed_gives_the_same_task():
    first, second = SearchEnv(), SearchEnv()
    assert first.reset(seed=11) == second.reset(seed=11)
    assert first.reset(seed=11)[1]["task_id"] != first.reset(seed=12)[1]["task_id"]


def test_search_r1_prompt_is_verbatim():
    env = SearchEnv(dataset=[IRCOT_ROW])
    messages, info = env.reset(seed=0)
    assert messages == [
        {"role": "user", "content": protocol.SEARCH_R1_PROMPT.format(question=IRCOT_ROW["question_text"] + "?")}
    ]
    assert messages[0]["content"].endswith(
        "For example, <answer> Beijing </answer>. Question: Which city is the capital of Freedonia?\n"
    )
    assert (
        info["tools"] == [] and info["task"] == IRCOT_ROW and info["supporting_doc_ids"] == ["Freedonia", "Fredville"]
    )


def test_search_returns_search_r1_information_block():
    env = SearchEnv(dataset=[IRCOT_ROW], top_k=2)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(
        "<think>look it up</think><search> capital of Freedonia </search>"
    )
    assert obs == [
        {
            "role": "user",
            "content": "\n\n<information>Doc 1(Title: Freedonia) Freedonia is a country. Its capital is Fredville.\n"
            "Doc 2(Title: Sylvania) Sylvania borders Freedonia to the north.</information>\n\n",
        }
    ]
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["retrieved_doc_ids"] == ["Freedonia", "Sylvania"]
    assert info["gold_in_observation"] is True
    assert info["tool_calls"] == [{"id": None, "name": "search", "arguments": {"query": "capital of Freedonia"}}]


def test_answer_ends_the_episode_with_metrics():
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    env.step("<search>Sylvania</search>")
    env.step("<search>capital of Freedonia</search>")
    obs, reward, terminated, truncated, info = env.step("<answer> the Fredville. </answer>")
    assert (obs, reward, terminated, truncated) == ([], 1.0, True, False)
    assert info["stop_reason"] == "answer" and info["gold"] == ["Fredville"] and info["answer"] == "the Fredville."
    metrics = info["metrics"]
    assert metrics["em"] == 1.0 and metrics["n_searches"] == 2
    assert metrics["first_gold_turn"] == 2  # turn 1's passages did not contain "Fredville"
    assert metrics["supporting_recall"] == 0.5  # Freedonia retrieved, Fredville never


def test_first_complete_block_wins():
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    *_, info = env.step("<answer>Fredville</answer> then <search>more</search>")
    assert info["answer"] == "Fredville"
    env.reset(seed=0)
    _, _, terminated, _, info = env.step("<answer>never closed <search>Freedonia</search>")
    assert not terminated and info["tool_calls"][0]["arguments"]["query"] == "Freedonia"


def test_multiple_answers_take_the_first_in_search_r1():
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    *_, reward, _, _, info = env.step("<answer>Sylvania</answer><answer>Fredville</answer>")
    assert info["answer"] == "Sylvania" and reward == 0.0


@pytest.mark.parametrize("action", ["I think it is Fredville.", "<search>unclosed", "<answer>unclosed", ""])
def test_invalid_search_r1_turn_gets_the_corrective_message(action):
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    obs, _, terminated, _, info = env.step(action)
    assert obs == [{"role": "user", "content": protocol.INVALID_ACTION_MESSAGE}]
    assert "My previous action is invalid." in obs[0]["content"]
    assert info["invalid_action"] is True and not terminated


def test_answer_is_read_from_the_response_not_the_prompt():
    env = SearchEnv(dataset=[IRCOT_ROW], max_turns=1)
    env.reset(seed=0)
    *_, truncated, info = env.step("Beijing")  # the prompt's example answer is never used
    assert truncated and info["metrics"]["answered"] is False and info["stop_reason"] == "max_turns"


def test_turn_budget_truncates_with_zero_reward():
    env = SearchEnv(dataset=[IRCOT_ROW], max_turns=2)
    env.reset(seed=0)
    env.step("<search>Fredville</search>")
    obs, reward, terminated, truncated, info = env.step("<search>Fredville</search>")
    assert (obs, reward, terminated, truncated) == ([], 0.0, False, True)
    assert info["metrics"]["em"] == 0.0 and info["metrics"]["first_gold_turn"] == 1 and info["gold"] == ["Fredville"]


def test_first_gold_turn_is_minus_one_when_never_seen():
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    env.step("<search>Sylvania north</search>")
    *_, info = env.step("<answer>x</answer>")
    assert info["metrics"]["first_gold_turn"] == -1


def test_observation_truncation_shows_a_marker():
    env = SearchEnv(dataset=[IRCOT_ROW], max_obs_chars=30)
    env.reset(seed=0)
    obs, *_ = env.step("<search>Freedonia</search>")
    content = obs[0]["content"]
    assert content == "\n\n<information>Doc 1(Title: Freedonia) Freedo…[truncated]</information>\n\n"


def test_no_results_give_empty_information_as_in_search_r1():
    env = SearchEnv(dataset=[IRCOT_ROW])
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<search>zzqxv</search>")
    assert obs[0]["content"] == "\n\n<information></information>\n\n" and info["retrieved_doc_ids"] == []


@pytest.mark.parametrize("tool_format", ["hermes", "openai", "python"])
def test_native_formats_search_and_answer(tool_format):
    env = SearchEnv(dataset=[IRCOT_ROW], tool_format=tool_format)
    messages, info = env.reset(seed=0)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert info["tools"][0]["function"]["name"] == "search"
    call = {
        "hermes": '<tool_call>{"name": "search", "arguments": {"query": "Freedonia capital"}}</tool_call>',
        "python": '[search(query="Freedonia capital")]',
        "openai": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c7",
                    "type": "function",
                    "function": {"name": "search", "arguments": '{"query": "Freedonia capital"}'},
                }
            ],
        },
    }[tool_format]
    obs, *_, info = env.step(call)
    assert obs[0]["role"] == "tool" and obs[0]["content"].startswith("Doc 1(Title: Freedonia)")
    assert info["gold_in_observation"] is True
    if tool_format == "openai":
        assert obs[0]["tool_call_id"] == "c7"
    _, reward, terminated, _, info = env.step("<think>Fredville, surely</think>The capital is Fredville.")
    assert terminated and info["answer"] == "The capital is Fredville." and info["metrics"]["f1"] > 0
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step("Let me answer: <answer>Fredville</answer>")
    assert terminated and reward == 1.0


def test_native_parallel_calls_get_one_tool_message_each():
    env = SearchEnv(dataset=[IRCOT_ROW], tool_format="hermes", top_k=1)
    env.reset(seed=0)
    action = "".join(
        f'<tool_call>{{"name": "search", "arguments": {{"query": "{q}"}}}}</tool_call>'
        for q in ("Sylvania", "Fredville")
    )
    obs, *_, info = env.step(action)
    assert len(obs) == 2 and info["retrieved_doc_ids"] == ["Sylvania", "Fredville"]


def test_custom_retriever_object_is_used_for_every_task():
    class Fixed:
        def search(self, queries, k):
            return [[Hit("x", 1.0, "Fixed", "Fredville is the answer.")] for _ in queries]

    env = SearchEnv(dataset=[IRCOT_ROW], retriever=Fixed())
    env.reset(seed=0)
    *_, info = env.step("<search>anything</search>")
    assert info["retrieved_doc_ids"] == ["x"] and info["gold_in_observation"]


def test_corpus_file_with_flashrag_contents(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "7", "contents": '"Fredville"\nFredville is the capital of Freedonia.'}) + "\n")
    rows = [{"question": "What is the capital of Freedonia?", "answer": ["Fredville"]}]
    env = SearchEnv(dataset=rows, corpus=str(corpus))
    env.reset(seed=0)
    obs, *_, info = env.step("<search>capital of Freedonia</search>")
    assert 'Doc 1(Title: "Fredville") Fredville is the capital' in obs[0]["content"] and info["retrieved_doc_ids"] == [
        "7"
    ]


def test_answer_only_dataset_without_corpus_is_a_clear_error():
    with pytest.raises(ValueError, match="no paragraphs to search: pass corpus="):
        SearchEnv(dataset=[{"question": "who?", "answer": ["me"]}])


def test_missing_corpus_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.jsonl"):
        SearchEnv(dataset=[IRCOT_ROW], corpus=str(tmp_path / "missing.jsonl"))


def test_step_before_reset_and_after_end_raise():
    env = SearchEnv()
    with pytest.raises(EpisodeError, match="before reset"):
        env.step("<answer>x</answer>")
    env.reset(seed=0)
    env.step("<answer>x</answer>")
    with pytest.raises(EpisodeError, match="after episode"):
        env.step("<answer>x</answer>")


def test_reset_accepts_rows_of_every_format():
    env = SearchEnv()
    original = {
        "_id": "h1",
        "question": "Capital of Freedonia?",
        "answer": "Fredville",
        "supporting_facts": [["Freedonia", 0]],
        "context": [["Freedonia", ["Freedonia is a country.", " Its capital is Fredville."]], ["Other", ["Nothing."]]],
    }
    _, info = env.reset(options={"task": original})
    assert info["task_id"] == "h1" and info["supporting_doc_ids"] == ["Freedonia"]
    obs, *_ = env.step("<search>Freedonia capital</search>")
    assert "Freedonia is a country. Its capital is Fredville." in obs[0]["content"]
    _, info = env.reset(options={"task": IRCOT_ROW})
    assert info["task_id"] == "q1"


def test_hotpotqa_shared_corpus_indexes_all_paragraphs(shared_data):
    env = SearchEnv(dataset="hotpotqa", corpus="shared", top_k=5)
    _, info = env.reset(options={"index": 0})
    assert len(env.retriever) == 4858  # unique titles over the 500 questions' paragraphs
    *_, step_info = env.step(f"<search>{info['task']['question_text']}</search>")
    assert len(step_info["retrieved_doc_ids"]) == 5


def test_nq_open_needs_a_corpus(shared_data):
    with pytest.raises(ValueError, match="nq_open"):
        SearchEnv(dataset="nq_open")


def test_unknown_dataset_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown Search-v0 dataset 'bogus'"):
        SearchEnv(dataset="bogus")


def test_gym_make_registered_id():
    env = gym.make("toolgym:Search-v0", tool_format="openai", top_k=2)
    _, info = env.reset(seed=0)
    assert info["env"] == "Search-v0" and info["tool_format"] == "openai"


def test_hf_dataset_is_loaded_lazily_through_datasets(monkeypatch):
    """`hf:<name>:<config>` goes to datasets.load_dataset; HF's hotpot_qa layout is understood."""
    calls = []
    hf_row = {
        "id": "hf1",
        "question": "Capital of Freedonia?",
        "answer": "Fredville",
        "supporting_facts": {"title": ["Freedonia"], "sent_id": [1]},
        "context": {"title": ["Freedonia"], "sentences": [["Freedonia is a country.", " Its capital is Fredville."]]},
    }

    def load_dataset(name, config, split):
        calls.append((name, config, split))
        return [hf_row]

    monkeypatch.setitem(sys.modules, "datasets", type(sys)("datasets"))
    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", load_dataset, raising=False)
    env = SearchEnv(dataset="hf:hotpotqa/hotpot_qa:distractor")
    _, info = env.reset(seed=0)
    assert calls == [("hotpotqa/hotpot_qa", "distractor", "validation")]
    assert info["task_id"] == "hf1" and info["supporting_doc_ids"] == ["Freedonia"]


def test_empty_dataset_is_refused():
    with pytest.raises(ValueError, match="has no rows"):
        SearchEnv(dataset=[])
