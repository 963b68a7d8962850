"""Environment step throughput: Search-v0 with the scripted search-then-answer agent.

Prints steps/s (wall time of reset + agent + step, over whole episodes), the mean time of one
`reset`, and the share of that time spent inside the retriever's `search` (a timing proxy wraps
every index) and building indices. Run: `python benchmarks/env_step.py [--episodes N]`.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from toolgym.agents.base import AgentRequest
from toolgym.agents.scripted import search as scripted_search
from toolgym.data import shared_data_dir
from toolgym.envs.search.env import SearchEnv
from toolgym.retriever_contract import Hit, Retriever


class TimedRetriever:
    """Forwards `search` to a retriever and adds the seconds it took to a shared clock."""

    def __init__(self, inner: Retriever, clock: dict[str, float]):
        self.inner = inner
        self.clock = clock

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        start = time.perf_counter()
        try:
            return self.inner.search(queries, k)
        finally:
            self.clock["search"] += time.perf_counter() - start


class TimedSearchEnv(SearchEnv):
    """SearchEnv whose indices are timed: build time and search time go into `clock`."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.clock = {"search": 0.0, "index": 0.0}
        super().__init__(*args, **kwargs)

    def _retriever_for(self, task: Any) -> Retriever:
        start = time.perf_counter()
        retriever = super()._retriever_for(task)
        self.clock["index"] += time.perf_counter() - start
        return TimedRetriever(retriever, self.clock)


def run(env: TimedSearchEnv, episodes: int, by_index: bool) -> dict[str, float]:
    steps = 0
    reward = 0.0
    resetting = 0.0
    start = time.perf_counter()
    for episode in range(episodes):
        options = {"index": episode % len(env.tasks)} if by_index else None
        began = time.perf_counter()
        messages, info = env.reset(seed=episode, options=options)
        resetting += time.perf_counter() - began
        conversation = list(messages)
        while True:
            action = scripted_search.baseline(AgentRequest(conversation, info["tools"], info))
            conversation.append(action if isinstance(action, dict) else {"role": "assistant", "content": action})
            observation, step_reward, terminated, truncated, _ = env.step(action)
            conversation.extend(observation)
            steps += 1
            if terminated or truncated:
                reward += step_reward
                break
    wall = time.perf_counter() - start
    return {
        "episodes": episodes,
        "steps": steps,
        "steps_per_s": steps / wall,
        "episodes_per_s": episodes / wall,
        "search_share": env.clock["search"] / wall,
        "index_share": env.clock["index"] / wall,
        "em": reward / episodes,
        "reset_ms": 1000 * resetting / episodes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=2000)
    args = parser.parse_args()
    settings = [
        ("procedural (mixed hops)", {"dataset": "procedural"}, False),
        ("procedural, hermes", {"dataset": "procedural", "tool_format": "hermes"}, False),
    ]
    if shared_data_dir() is not None:
        settings += [
            ("hotpotqa per_question", {"dataset": "hotpotqa"}, True),
            ("hotpotqa shared", {"dataset": "hotpotqa", "corpus": "shared"}, True),
        ]
    print(f"{'setting':28} {'steps/s':>9} {'episodes/s':>10} {'search %':>9} {'index %':>8} {'EM':>6} {'reset ms':>9}")
    for name, kwargs, by_index in settings:
        env = TimedSearchEnv(**kwargs)
        env.reset(seed=0)  # build the world / shared index outside the timed loop
        env.clock.update(search=0.0, index=0.0)
        result = run(env, args.episodes, by_index)
        print(
            f"{name:28} {result['steps_per_s']:9.0f} {result['episodes_per_s']:10.0f} "
            f"{100 * result['search_share']:8.1f}% {100 * result['index_share']:7.1f}% {result['em']:6.3f} "
            f"{result['reset_ms']:9.3f}"
        )


if __name__ == "__main__":
    main()
