"""The shared episode logic (ChatEnv) and the partial-stepping EnvPool, on a tiny counting env."""

from __future__ import annotations

import time

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from toolgym.envs.base import ChatEnv, EpisodeError, TurnResult
from toolgym.envs.pool import EnvPool, EnvPoolError
from toolgym.envs.tasks import ProceduralTasks
from toolgym.spaces import AssistantTurn, MessageList, UnicodeText


class CountdownEnv(ChatEnv[dict]):
    """Answer with the task's number to win; anything else is a wrong turn that costs a turn."""

    env_id = "Countdown-test"

    def __init__(self, max_turns: int = 3, delay: float = 0.0):
        super().__init__(
            ProceduralTasks(lambda seed: {"id": f"t{seed}", "number": seed % 97}),
            max_turns=max_turns,
            tool_format="hermes",
        )
        self.delay = delay

    def load_task(self, row, index):
        return row

    def task_identifier(self, task):
        return task["id"]

    def opening_messages(self, task):
        return [{"role": "user", "content": f"Say {task['number']}."}]

    def take_turn(self, action):
        time.sleep(self.delay)
        if isinstance(action, str) and action.strip() == str(self.task["number"]):
            return TurnResult([], reward=1.0, terminated=True, info={"metrics": {"correct": True}})
        return TurnResult([{"role": "user", "content": "No, try again."}], info={"invalid_action": True})

    def unanswered_result(self):
        return 0.0, {"metrics": {"correct": False}}


def test_countdown_env_passes_check_env():
    check_env(CountdownEnv())


def test_same_seed_same_task_and_index_option():
    env = CountdownEnv()
    assert env.reset(seed=5)[0] == env.reset(seed=5)[0]
    _, info = env.reset(options={"index": 42})
    assert info["task_id"] == "t42"


def test_step_before_reset_and_after_end_are_clear_errors():
    env = CountdownEnv()
    with pytest.raises(EpisodeError, match="before reset"):
        env.step("1")
    env.reset(options={"index": 3})
    env.step("3")
    with pytest.raises(EpisodeError, match="after episode 't3' ended"):
        env.step("3")


def test_turn_budget_truncates_with_final_metrics():
    env = CountdownEnv(max_turns=2)
    env.reset(options={"index": 3})
    assert env.step("wrong")[3] is False
    observation, reward, terminated, truncated, info = env.step("wrong again")
    assert (observation, reward, terminated, truncated) == ([], 0.0, False, True)
    assert info["stop_reason"] == "max_turns" and info["metrics"] == {"correct": False}


def test_bad_options_raise_api_errors():
    env = CountdownEnv()
    with pytest.raises(IndexError):
        env.reset(options={"index": -1})
    with pytest.raises(TypeError):
        env.reset(options={"task": "not a row"})


def test_spaces_accept_any_unicode_and_reject_other_types():
    assert UnicodeText().contains("héllo wörld 日本 😀\n\t{}")
    assert not UnicodeText().contains(b"bytes")
    assert AssistantTurn().contains({"role": "assistant", "content": None, "tool_calls": []})
    assert MessageList().contains([{"role": "tool", "content": "x", "tool_call_id": "1", "name": "f"}])
    assert not MessageList().contains([{"role": "robot", "content": "x"}])
    assert len(AssistantTurn().sample()) <= 256


def test_pool_steps_only_the_envs_that_acted():
    with EnvPool([CountdownEnv() for _ in range(3)]) as pool:
        pool.reset(options=[{"index": 1}, {"index": 2}, {"index": 3}])
        results = pool.step({0: "1", 2: "nope"})
        assert set(results) == {0, 2}
        assert results[0].terminated and results[0].reward == 1.0
        assert pool.envs[1].turn == 0 and pool.envs[2].turn == 1


def test_pool_runs_slow_steps_concurrently():
    with EnvPool([CountdownEnv(delay=0.2) for _ in range(4)]) as pool:
        pool.reset(seeds=[0, 1, 2, 3])
        started = time.perf_counter()
        pool.step({i: "x" for i in range(4)})
        assert time.perf_counter() - started < 0.6  # four 0.2 s steps overlap


def test_pool_keeps_unicode_text_intact_across_threads():
    texts = {i: "日本語 😀 é " * (i + 1) for i in range(8)}
    with EnvPool([CountdownEnv() for _ in range(8)]) as pool:
        pool.reset(seeds=list(range(8)))
        pool.step(texts)
        assert all(pool.envs[i].transcript[1]["content"] == texts[i] for i in range(8))


def test_pool_reports_which_env_failed():
    with EnvPool([CountdownEnv() for _ in range(2)]) as pool:
        pool.reset(indices=[0], seeds=[0])
        with pytest.raises(RuntimeError, match="env 1 of the pool failed"):
            pool.step({0: "x", 1: "x"})  # env 1 was never reset


def test_index_option_accepts_numpy_integers_and_refuses_bools_and_floats():
    env = CountdownEnv()

    _, info = env.reset(options={"index": np.int64(7)})

    assert info["task_id"] == "t7"
    for not_an_index in (True, 7.0, "7"):
        with pytest.raises(TypeError, match="must be an integer"):
            env.reset(options={"index": not_an_index})


def test_play_episodes_refuses_options_that_do_not_match_the_seeds():
    from toolgym.agents.episodes import play_episodes
    from toolgym.agents.scripted import ScriptedAgent

    with EnvPool([CountdownEnv()]) as pool, pytest.raises(ValueError, match="2 seeds but 1 options"):
        play_episodes(ScriptedAgent("random"), pool, seeds=[0, 1], options=[None])


@pytest.mark.parametrize(("episodes", "pool_size"), [(0, 8), (4, 0)])
def test_quickstart_refuses_empty_runs_with_a_clear_error(episodes, pool_size):
    from toolgym.evals.quickstart import run_quickstart

    with pytest.raises(ValueError, match="must be at least 1"):
        run_quickstart(episodes=episodes, pool_size=pool_size)


def test_pool_errors_have_one_type_whatever_the_batch_size():
    with EnvPool([CountdownEnv() for _ in range(2)]) as pool:
        with pytest.raises(EnvPoolError, match="env 0 of the pool failed") as caught:
            pool.step({0: "x"})  # a single call runs inline, without the thread pool
        assert isinstance(caught.value.__cause__, EpisodeError) and caught.value.index == 0


def test_play_episodes_stops_on_the_first_failed_episode_and_leaves_the_pool_usable():
    from toolgym.agents.episodes import play_episodes
    from toolgym.agents.scripted import ScriptedAgent

    with EnvPool([CountdownEnv() for _ in range(2)]) as pool:
        with pytest.raises(RuntimeError, match="failed in reset: TaskRowError"):
            play_episodes(ScriptedAgent("random"), pool, seeds=[0, 1], options=[None, {"task": "not a row"}])
        episodes = play_episodes(ScriptedAgent("random"), pool, seeds=[0, 1])
        assert [e.seed for e in episodes] == [0, 1] and all(e.turns == 3 for e in episodes)
