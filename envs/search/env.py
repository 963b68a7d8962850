"""Search-v0: answer a question by searching a corpus over several turns.

Two ways to talk to it, one episode logic:

- ``tool_format="search_r1"`` (default): Search-R1's protocol verbatim (PeterGriffinJin/Search-R1,
  search_r1/llm_agent/generation.py). The response is cut after its first ``</search>`` (else its
  first ``</answer>``), then the first complete ``<search>q</search>`` or ``<answer>a</answer>``
  block decides the turn; a search returns ``<information>Doc 1(Title: …) …</information>`` as a
  user message (``<information></information>`` when nothing is found); anything else gets
  Search-R1's corrective message and ``invalid_action=True``.
- ``"hermes"`` / ``"openai"`` / ``"python"``: a native ``search(query)`` tool (schema in the reset
  info's ``tools``); results come back as tool messages. The final answer is the text inside
  ``<answer>…</answer>`` if the turn has one, else the whole content of a turn without tool calls.

The answer is always read from the assistant's turn only, never from the prompt (Search-R1's
"≥ 2 <answer> matches" rule exists only because it scored prompt + response). The reward is
exact match under HotpotQA's normalization against any gold alias; `scoring` holds the scorers.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

from toolgym.envs.base import ChatEnv, TurnResult, check_count
from toolgym.envs.observation_limits import DEFAULT_MAX_OBSERVATION_CHARS, DEFAULT_MAX_TOOL_CALLS_PER_TURN
from toolgym.envs.rows import TaskRowError
from toolgym.envs.tasks import ProceduralTasks
from toolgym.retriever_contract import Document, Hit, Retriever
from toolgym.tool_calls import ToolCall

from . import protocol
from .readers import SearchTask, is_answer_only, load_corpus, load_rows, parse_row, shared_documents
from .scoring import answer_in_text, answer_scores, supporting_recall
from .world import WorldConfig, get_world, world_from_row, world_question_row

logger = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2_000  # longer queries are cut before retrieval (BM25 gains nothing from more)
MAX_SEARCHES_PER_TURN = 8
REWARD_METRICS = ("em", "f1", "subem")
TURN_BUDGETS = ("all_turns", "search_r1")
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL)

# Indices shared by every SearchEnv in the process (an env pool builds each one once).
_INDEX_CACHE: OrderedDict[tuple, Retriever] = OrderedDict()
_INDEX_CACHE_SIZE = 1024


def _cached_index(key: tuple, build: Callable[[], Retriever]) -> Retriever:
    if key in _INDEX_CACHE:
        _INDEX_CACHE.move_to_end(key)
        return _INDEX_CACHE[key]
    retriever = build()
    _INDEX_CACHE[key] = retriever
    if len(_INDEX_CACHE) > _INDEX_CACHE_SIZE:
        _INDEX_CACHE.popitem(last=False)
    return retriever


class SearchEnv(ChatEnv[SearchTask]):
    """Multi-turn search QA over a procedural world, HotpotQA, NQ-open or any corpus.

    Args:
        dataset: "procedural" (a generated world, no files), "hotpotqa" (IRCoT's 500-question dev
            subset with paragraphs), "hotpotqa:train_sample", "hotpotqa:question_only", "nq_open",
            "nq_open:efficientqa", a path to a JSON / JSONL file in one of those formats,
            "hf:<name>[:<config>]" (needs `datasets`; `split` picks the split), or a list of rows.
        corpus: None (each HotpotQA question's own paragraphs; the world's corpus for procedural),
            "per_question", "shared" (every paragraph of the dataset in one index), or a path to
            a JSONL corpus (`id`/`_id`, `title`, `text` or FlashRAG `contents`), or a named
            corpus of the shared data (`wiki_passages_sample`, `hotpotqa_train_corpus`).
        retriever: a backend name for `toolgym.retrievers.build_retriever` ("bm25s"), or any
            object with `search(queries, k)`, used as-is for every task (it is the corpus).
        retriever_kwargs: constructor arguments for a named backend.
        top_k: passages per search.
        max_turns: the turn budget, read as `turn_budget` says.
        turn_budget: "all_turns" (default): `max_turns` counts every assistant turn, the answer
            included. "search_r1": Search-R1's accounting (its `run_llm_loop`): `max_turns`
            action turns (searches, invalid turns) and then one final turn, whose searches are
            not run (Search-R1 answers them with empty information and ends the episode), so
            an episode has up to `max_turns + 1` assistant turns (the reset info's `max_turns`).
        max_obs_chars: cut each search result text to this many characters, with a visible marker.
        reward_metric: which score is the reward: "em" (default), "f1" or "subem".
        world_seed, n_entities, n_distractors, paragraphs_per_entity, hops: the procedural world
            and its questions (hops 1 or 2; None mixes both).
        page_style: the procedural pages' wording: "varied" (default; an introduction and several
            wordings per fact) or "plain" (one fixed sentence per fact, about half the tokens; what
            a tiny model trained from scratch on CPU can learn to read in minutes).
        prompt_template: replaces Search-R1's instruction prompt (search_r1 format) with a format
            string holding `{question}`, e.g. "{question}" alone for a tiny model trained from
            scratch, which cannot afford Search-R1's ~100-token instructions.
        max_tool_calls_per_turn, max_observation_chars: bounds on one observation
            (`toolgym.envs.observation_limits`).
    """

    env_id = "Search-v0"

    def __init__(
        self,
        dataset: str | list[dict[str, Any]] = "procedural",
        *,
        corpus: str | None = None,
        retriever: str | Retriever = "bm25s",
        retriever_kwargs: dict[str, Any] | None = None,
        top_k: int = 3,
        max_turns: int = 4,
        max_obs_chars: int | None = None,
        tool_format: str = "search_r1",
        turn_budget: str = "all_turns",
        reward_metric: str = "em",
        split: str = "validation",
        world_seed: int = 0,
        n_entities: int = 200,
        n_distractors: int | None = None,
        paragraphs_per_entity: int = 1,
        page_style: str = "varied",
        hops: int | None = None,
        prompt_template: str | None = None,
        render_mode: str | None = None,
        max_tool_calls_per_turn: int = DEFAULT_MAX_TOOL_CALLS_PER_TURN,
        max_observation_chars: int = DEFAULT_MAX_OBSERVATION_CHARS,
    ):
        check_count("top_k", top_k)
        if max_obs_chars is not None:
            check_count("max_obs_chars", max_obs_chars)
        if prompt_template is not None and "{question}" not in prompt_template:
            raise ValueError(f"prompt_template must contain '{{question}}', got {prompt_template!r}")
        if turn_budget not in TURN_BUDGETS:
            raise ValueError(f"turn_budget must be one of {TURN_BUDGETS}, got {turn_budget!r}")
        check_count("max_turns", max_turns)
        if reward_metric not in REWARD_METRICS:
            raise ValueError(f"reward_metric must be one of {REWARD_METRICS}, got {reward_metric!r}")
        if not isinstance(retriever, str) and not callable(getattr(retriever, "search", None)):
            raise TypeError(f"retriever must be a backend name or an object with search(queries, k), got {retriever!r}")
        if isinstance(retriever, str):
            from toolgym.retrievers import BACKENDS

            if retriever not in BACKENDS:  # fail here, not once per episode at reset
                raise ValueError(
                    f"unknown retriever backend {retriever!r}; expected one of {BACKENDS} or a Retriever object"
                )
        self.dataset_spec = dataset if isinstance(dataset, str) else "<rows>"
        self.procedural = dataset == "procedural"
        self.world_config = WorldConfig(world_seed, n_entities, n_distractors, paragraphs_per_entity, page_style)
        self.hops = hops
        self.prompt_template = prompt_template
        if self.procedural:
            if corpus == "per_question":
                raise ValueError("the procedural world has one shared corpus; leave corpus=None")
            get_world(self.world_config)  # build (and cache) the world now: a bad config fails here
            tasks: Any = ProceduralTasks(partial(world_question_row, self.world_config, hops))
            self._rows: list[dict[str, Any]] = []
        else:
            self._rows = load_rows(dataset, split=split) if isinstance(dataset, str) else list(dataset)
            tasks = self._rows
            if not self._rows:
                raise ValueError(f"dataset {self.dataset_spec!r} has no rows")
            has_paragraphs = bool(self._rows) and parse_row(self._rows[0]).documents is not None
            answer_only = (isinstance(dataset, str) and is_answer_only(dataset)) or not has_paragraphs
            if answer_only and (corpus is None or corpus in ("per_question", "shared")) and isinstance(retriever, str):
                raise ValueError(
                    f"dataset {self.dataset_spec!r} has no paragraphs to search: pass corpus=<path to a JSONL "
                    "corpus> (for NQ-open, e.g. a wiki-18 passage file) or a Retriever object as retriever="
                )
        if corpus is not None and corpus not in ("per_question", "shared"):
            load_corpus(str(corpus))  # fail now, with the path in the message, not at the first reset
        total_turns = max_turns + 1 if turn_budget == "search_r1" else max_turns
        super().__init__(
            tasks,
            max_turns=total_turns,
            tool_format=tool_format,
            render_mode=render_mode,
            max_tool_calls_per_turn=max_tool_calls_per_turn,
            max_observation_chars=max_observation_chars,
        )
        self.turn_budget = turn_budget
        self.action_turns = max_turns  # turns whose searches run; Search-R1's final turn's do not
        self.corpus = corpus
        self.retriever_spec = retriever
        self.retriever_kwargs = dict(retriever_kwargs or {})
        self.top_k = top_k
        self.max_obs_chars = max_obs_chars
        self.reward_metric = reward_metric
        self.tools = [] if tool_format == "search_r1" else [protocol.SEARCH_TOOL]
        self.retriever: Retriever | None = None
        self._own_shared_index: Retriever | None = None
        self._reset_episode_state()

    # --- pickling: vector envs in subprocesses, Ray workers, deepcopy for tree search -------------

    def __getstate__(self) -> dict[str, Any]:
        """Drop indices this env built from a backend name: they are rebuilt (or taken from this
        process's index cache) on unpickle, so a copy never serializes a whole index. A retriever
        object the caller passed in travels as it is and must pickle itself."""
        state = self.__dict__.copy()
        if isinstance(self.retriever_spec, str):
            state["retriever"] = None
            state["_own_shared_index"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.retriever is None and self.task is not None:
            self.retriever = self._retriever_for(self.task)

    # --- tasks and their indices ----------------------------------------------------------------

    def _reset_episode_state(self) -> None:
        self.retrieved_ids: list[str] = []
        self.n_searches = 0
        self.n_invalid = 0
        self.first_gold_turn = -1

    def _build(self, documents: list[Document] | tuple[Document, ...]) -> Retriever:
        from toolgym.retrievers import build_retriever

        return build_retriever(str(self.retriever_spec), list(documents), **self.retriever_kwargs)

    def _retriever_for(self, task: SearchTask) -> Retriever:
        if not isinstance(self.retriever_spec, str):
            return self.retriever_spec
        backend = (self.retriever_spec, json.dumps(self.retriever_kwargs, sort_keys=True, default=str))
        if self.corpus not in (None, "per_question", "shared"):
            path = str(self.corpus)
            return _cached_index(("corpus", path, *backend), lambda: self._build(load_corpus(path)))
        if "world" in task.row:
            world = world_from_row(task.row)
            return _cached_index(("world", world.config, *backend), lambda: self._build(world.documents))
        if self.corpus == "shared" and self._rows:
            if self.dataset_spec == "<rows>":  # rows passed in memory: no process-wide key names them
                if self._own_shared_index is None:
                    self._own_shared_index = self._build(shared_documents(self._rows))
                return self._own_shared_index
            key = ("shared", self.dataset_spec, *backend)
            return _cached_index(key, lambda: self._build(shared_documents(self._rows)))
        if task.documents is None:
            raise TaskRowError(
                self.env_id,
                "context",
                f"is missing (task {task.task_id[:80]!r}): without a corpus a row must bring its own paragraphs "
                "(HotpotQA 'context', IRCoT 'contexts') or a procedural 'world'; or build the env with corpus=<JSONL path>",
            )
        key = ("task", task.task_id, tuple(task.documents), *backend)
        return _cached_index(key, lambda: self._build(task.documents))

    def load_task(self, row: dict[str, Any], index: int | None) -> SearchTask:
        # A question this env's own world generated is known to be well formed: the schema check,
        # most of a reset's cost, is for rows that come from files or callers (options["task"]).
        task = parse_row(row, checked=not (self.procedural and index is not None))
        if not task.answers:
            raise TaskRowError(self.env_id, "answer", f"holds no gold answer (task {task.task_id[:80]!r})")
        self.retriever = self._retriever_for(task)
        self._reset_episode_state()
        return task

    def task_identifier(self, task: SearchTask) -> str:
        return task.task_id

    def opening_messages(self, task: SearchTask) -> list[dict[str, Any]]:
        if self.tool_format == "search_r1":
            template = self.prompt_template or protocol.SEARCH_R1_PROMPT
            prompt = template.format(question=protocol.search_r1_question(task.question))
            return [{"role": "user", "content": prompt}]
        system = protocol.NATIVE_SYSTEM_PROMPT + "\n\n" + self.dialect.instructions(self.tools)
        return [{"role": "system", "content": system}, {"role": "user", "content": f"Question: {task.question}"}]

    def reset_info(self, task: SearchTask) -> dict[str, Any]:
        return {
            "tools": [dict(tool) for tool in self.tools],
            "task": task.row,
            "supporting_doc_ids": list(task.supporting_doc_ids),
        }

    # --- one assistant turn ---------------------------------------------------------------------

    def take_turn(self, action: Any) -> TurnResult:
        parsed = self.limit_calls(self.dialect.parse(action))
        info: dict[str, Any] = {
            "tool_calls": [call.to_dict() for call in parsed.tool_calls],
            "retrieved_doc_ids": [],
            "gold_in_observation": False,
        }
        if parsed.answer is not None:
            return self._finish(parsed.answer, info)
        if self.tool_format == "search_r1":
            if parsed.tool_calls:
                return self._search_turn(parsed.tool_calls, [], info)
            self.n_invalid += 1
            info.update(invalid_action=True, tool_error="; ".join(parsed.errors) or None)
            return TurnResult([{"role": "user", "content": protocol.INVALID_ACTION_MESSAGE}], info=info)
        unanswered_ids = self._unanswered_call_ids(action, parsed.tool_calls)
        unanswered_ids = unanswered_ids[: max(0, self.max_tool_calls_per_turn - len(parsed.tool_calls))]
        if parsed.tool_calls or unanswered_ids:
            return self._search_turn(
                parsed.tool_calls, [(i, parsed.errors) for i in unanswered_ids], info, parsed.errors
            )
        if parsed.errors:
            self.n_invalid += 1
            errors = "; ".join(parsed.errors)
            info.update(invalid_action=True, tool_error=errors)
            content = protocol.NATIVE_INVALID_MESSAGE.format(errors=errors[:500])
            return TurnResult([{"role": "user", "content": content}], info=info)
        answer = _THINK_RE.sub("", parsed.text).strip()
        if not answer:
            self.n_invalid += 1
            info.update(invalid_action=True, tool_error="empty turn: no tool call and no answer")
            content = protocol.NATIVE_INVALID_MESSAGE.format(errors="the turn was empty")
            return TurnResult([{"role": "user", "content": content}], info=info)
        return self._finish(answer, info)

    @staticmethod
    def _unanswered_call_ids(action: Any, calls: list[ToolCall]) -> list[str]:
        """Ids of native tool calls that failed to parse: each still needs a tool message."""
        if not isinstance(action, dict) or not isinstance(action.get("tool_calls"), list):
            return []
        parsed_ids = {call.id for call in calls}
        raw_ids = [raw.get("id") for raw in action["tool_calls"] if isinstance(raw, dict)]
        return [i for i in raw_ids if isinstance(i, str) and i not in parsed_ids]

    def _search_turn(
        self,
        calls: list[ToolCall],
        failed: list[tuple[str, list[str]]],
        info: dict[str, Any],
        parse_errors: list[str] | None = None,
    ) -> TurnResult:
        errors = list(parse_errors or [])
        runnable: list[tuple[ToolCall, str]] = []
        messages: list[dict[str, Any] | None] = []
        for call in calls:
            problem = self._check_call(call, len(runnable))
            if problem:
                errors.append(problem)
                messages.append(self.dialect.tool_result_message(call, f"Error: {problem}"))
            else:
                runnable.append((call, call.arguments["query"][:MAX_QUERY_CHARS]))
                messages.append(None)  # filled with the results below
        searches_run = self.turn <= self.action_turns
        if runnable and searches_run:
            hit_lists = self.retriever.search([query for _, query in runnable], self.top_k)
            self.n_searches += len(runnable)
        else:
            hit_lists = [[] for _ in runnable]
            info["searches_skipped"] = len(runnable)
        results = iter(zip(runnable, hit_lists))
        observed: list[str] = []
        for position, message in enumerate(messages):
            if message is not None:
                continue
            (call, _), hits = next(results)
            search_r1 = self.tool_format == "search_r1"
            no_results = "" if search_r1 else protocol.NO_RESULTS
            passages = protocol.format_passages(list(hits), self.max_obs_chars, no_results)
            content = protocol.information_block(passages) if search_r1 else passages
            messages[position] = self.dialect.tool_result_message(call, content)
            observed.append(passages if hits else "")
            info["retrieved_doc_ids"].extend(hit.doc_id for hit in hits)
            self._remember(hits)
        for call_id, reasons in failed:
            text = "Error: this tool call could not be parsed: " + ("; ".join(reasons) or "malformed call")
            messages.append({"role": "tool", "content": text[:1000], "tool_call_id": call_id, "name": "search"})
        gold_seen = answer_in_text("\n".join(observed), self.task.answers) if observed else False
        if gold_seen and self.first_gold_turn < 0:
            self.first_gold_turn = self.turn
        if errors:
            self.n_invalid += 1
        info.update(gold_in_observation=gold_seen, invalid_action=bool(errors), tool_error="; ".join(errors) or None)
        return TurnResult([m for m in messages if m is not None], info=info)

    def _check_call(self, call: ToolCall, n_runnable: int) -> str | None:
        if call.name != "search":
            return f"unknown tool {call.name[:80]!r}; the only tool is search(query: str)"
        query = call.arguments.get("query")
        if not isinstance(query, str):
            return f"search needs a string 'query' argument, got {type(query).__name__}"
        if n_runnable >= MAX_SEARCHES_PER_TURN:
            return f"at most {MAX_SEARCHES_PER_TURN} searches per turn"
        return None

    def _remember(self, hits: list[Hit]) -> None:
        for hit in hits:
            self.retrieved_ids.extend((hit.doc_id, hit.title))

    # --- the end of an episode ------------------------------------------------------------------

    def _metrics(self, answer: str | None) -> dict[str, Any]:
        metrics: dict[str, Any] = answer_scores(answer, self.task.answers)
        metrics.update(
            answered=answer is not None,
            n_searches=self.n_searches,
            n_invalid=self.n_invalid,
            first_gold_turn=self.first_gold_turn,
        )
        if self.task.supporting_doc_ids:
            metrics["supporting_recall"] = supporting_recall(self.retrieved_ids, self.task.supporting_doc_ids)
        return metrics

    def _finish(self, answer: str, info: dict[str, Any]) -> TurnResult:
        metrics = self._metrics(answer)
        info.update(metrics=metrics, gold=list(self.task.answers), answer=answer, stop_reason="answer")
        return TurnResult([], reward=metrics[self.reward_metric], terminated=True, info=info)

    def unanswered_result(self) -> tuple[float, dict[str, Any]]:
        return 0.0, {"metrics": self._metrics(None), "gold": list(self.task.answers), "answer": None}
