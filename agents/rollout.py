"""Token-level rollouts for training: token ids in, token ids out.

A trajectory's `token_ids` are built by appending, never by re-tokenizing decoded text. In the
"chat" layout (native tool calling and the text dialects other than search_r1):

    prompt (template + generation prompt)                        loss_mask 0
    turn 1: the ids the engine sampled                           loss_mask 1, engine logprobs
            the rest of the template's end of turn (`<|im_end|>` after a stop string, the `\\n` after eos)   0
    env/tool messages + next generation prompt (fixed-base suffix)                             0
    turn 2: sampled ids                                          1
    …

In the "raw" layout (Search-R1's, the default for `tool_format="search_r1"`), the env's
observation text is appended as raw tokens inside the same assistant turn instead, and the end of
turn follows the last turn only (`toolgym.agents.token_stream`).

So the trainer scores exactly the tokens the policy produced, with exactly the context it saw.
`toolgym.agents.drift.check_drift` compares this stream with a full render of the final messages.
The messages hold each assistant turn as the decoded text of its sampled ids (the token-faithful
transcript); what the env received (for native tool calling, a message with `tool_calls`) is in
`actions`.

Episodes run on the shared loop (`toolgym.agents.episode_loop`), the same one the eval harness
uses: an exception in an env's `reset` or `step` ends only that episode, as a trajectory with
`failed=True` and the error, which trainers leave out of the loss and count.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from toolgym.dialects import Dialect, dialect_of
from toolgym.envs.pool import EnvPool, StepResult
from toolgym.envs.wrappers import safe

from .base import Action, SamplingParams
from .chat_format import action_from_text, template_tools
from .engine import Generation, TokenEngine, sampling_record
from .episode_loop import Finished, Job, LiveEpisode, run_episodes
from .token_stream import TokenStream, append_masked, append_sampled, resolve_layout
from .trajectory import Trajectory, read_trajectories, write_trajectories

logger = logging.getLogger(__name__)

__all__ = [
    "Generation",
    "TokenEngine",
    "Trajectory",
    "collect_rollouts",
    "group_key",
    "read_trajectories",
    "write_trajectories",
]


def group_key(task_id: str, seed: int | None, draw: str | int = 0) -> str:
    """The GRPO group key of an episode: the task it played, the seed that drew the task, and the draw.

    A group is one *draw* of a task and its G samples; each draw has its own baseline. The same
    task drawn twice in one step (a sampler that wraps its epoch, repeated training indices, a
    dynamic-sampling round that draws it again) is two groups, told apart by `draw`: an id the
    caller gives each draw (the trainer passes its sampler slot, unique over the run) or, by
    default, the occurrence of the seed in one `collect_rollouts` call (0 for its first). The key
    names the draw, never where it sits in the seed list or in the resulting batch, so advantages
    do not change when a batch is reordered or split into micro-batches. A sample's position in
    its group is the separate `Trajectory.sample_index`.
    """
    return f"{task_id}@seed={seed}#{draw}"


@dataclass
class _Rollout:
    trajectory: Trajectory
    dialect: Dialect
    ended_on_eos: bool = False
    """Whether the last turn ended on the template's own end-of-turn token (then part of the turn)."""


class _TokenDriver:
    """The training side of the episode loop: a token engine plays, each episode becomes a `Trajectory`."""

    def __init__(
        self,
        engine: TokenEngine,
        tokenizer: Any,
        sampling: SamplingParams,
        max_episode_tokens: int,
        use_chat_template_tools: bool,
        layout: str,
        record: dict[str, Any],
        sample_offset: int,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.sampling = sampling
        self.max_episode_tokens = max_episode_tokens
        self.use_chat_template_tools = use_chat_template_tools
        self.layout = layout
        self.record = record
        self.sample_offset = sample_offset
        self.stream = TokenStream(tokenizer)

    def _new_trajectory(self, job: Job, messages: list[dict[str, Any]], info: dict[str, Any]) -> Trajectory:
        return Trajectory(
            messages=messages,
            token_ids=[],
            loss_mask=[],
            logprobs=[],
            turn_spans=[],
            info=info,
            seed=job.seed,
            task_id=str(info.get("task_id", "")),
            group=job.task_index,
            sample_index=self.sample_offset + job.sample_index,
            sampling=dict(self.record),
        )

    def begin(
        self, episode: LiveEpisode[_Rollout], messages: list[dict[str, Any]], info: dict[str, Any]
    ) -> Finished[Trajectory] | None:
        dialect = dialect_of(info)
        trajectory = self._new_trajectory(episode.job, messages, info)
        trajectory.tools = template_tools(self.tokenizer, info.get("tools"), dialect, self.use_chat_template_tools)
        trajectory.layout = resolve_layout(self.layout, dialect.name)
        prompt = self.stream.prompt_ids(messages, trajectory.tools)
        append_masked(trajectory, prompt)
        trajectory.prompt_length = len(prompt)
        episode.state = _Rollout(trajectory, dialect)
        if self.stream.room(trajectory, self.max_episode_tokens) < 1:
            logger.warning(
                "task %s: the prompt (%d tokens) leaves no room within max_episode_tokens=%d",
                trajectory.task_id,
                len(prompt),
                self.max_episode_tokens,
            )
            return self._end_on_budget(episode, info)
        return None

    def act(self, episodes: list[LiveEpisode[_Rollout]]) -> list[tuple[Action | None, dict[str, Any] | None]]:
        trajectories = [e.state.trajectory for e in episodes]
        budgets = [min(self.sampling.max_tokens, self.stream.room(t, self.max_episode_tokens)) for t in trajectories]
        generations = self.engine.generate([t.token_ids for t in trajectories], self.sampling, budgets)
        return [(self._append_turn(e.state, g), None) for e, g in zip(episodes, generations)]

    def _append_turn(self, rollout: _Rollout, generation: Generation) -> Action:
        trajectory = rollout.trajectory
        append_sampled(trajectory, generation)
        ids = generation.token_ids
        # An eos that is the template's own end-of-turn token belongs to the turn's tokens, not its text.
        rollout.ended_on_eos = self.stream.ends_turn(trajectory, generation)
        text_ids = ids[:-1] if rollout.ended_on_eos else ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=False)
        trajectory.messages.append({"role": "assistant", "content": text})
        action = action_from_text(text, rollout.dialect)
        trajectory.actions.append(action)
        return action

    def advance(
        self, episode: LiveEpisode[_Rollout], action: Action, result: StepResult
    ) -> Finished[Trajectory] | None:
        trajectory = episode.state.trajectory
        trajectory.turn_infos.append(result.info)
        trajectory.turn_rewards.append(float(result.reward))
        ended_on_eos = episode.state.ended_on_eos
        if result.done:
            append_masked(trajectory, self.stream.final_closing(trajectory, ended_on_eos))
            trajectory.reward, trajectory.info = float(result.reward), result.info
            trajectory.terminated, trajectory.truncated = result.terminated, result.truncated
            return self._finish(episode)
        between = self.stream.between_turns(trajectory, result.observation, ended_on_eos)
        closing = self.stream.closing_ids(trajectory.tools)
        if len(trajectory.token_ids) + len(between) + len(closing) >= self.max_episode_tokens:
            append_masked(trajectory, self.stream.final_closing(trajectory, ended_on_eos))
            return self._end_on_budget(episode, result.info)
        trajectory.messages.extend(result.observation)
        trajectory.observations.append(list(result.observation))
        start = len(trajectory.token_ids)
        append_masked(trajectory, between)
        trajectory.observation_spans.append((start, len(trajectory.token_ids)))
        return None

    def failed(self, episode: LiveEpisode[_Rollout], error: dict[str, Any]) -> Finished[Trajectory]:
        trajectory = episode.state.trajectory
        trajectory.failed, trajectory.error = True, error
        trajectory.reward, trajectory.terminated, trajectory.truncated = 0.0, False, False
        trajectory.info = {**trajectory.info, "stop_reason": "error"}
        return Finished(self._finish(episode).record, failed=True)

    def reset_failed(self, job: Job, error: dict[str, Any], env_seconds: float) -> Finished[Trajectory]:
        trajectory = self._new_trajectory(job, [], {"stop_reason": "error"})
        trajectory.failed, trajectory.error, trajectory.seconds = True, error, env_seconds
        return Finished(trajectory, failed=True)

    def _end_on_budget(self, episode: LiveEpisode[_Rollout], info: dict[str, Any]) -> Finished[Trajectory]:
        trajectory = episode.state.trajectory
        trajectory.reward, trajectory.truncated, trajectory.terminated = 0.0, True, False
        trajectory.info = {**info, "stop_reason": "max_episode_tokens"}
        return self._finish(episode)

    @staticmethod
    def _finish(episode: LiveEpisode[_Rollout]) -> Finished[Trajectory]:
        trajectory = episode.state.trajectory
        trajectory.seconds = time.perf_counter() - episode.started
        return Finished(trajectory)


def collect_rollouts(
    engine: TokenEngine,
    tokenizer: Any,
    envs: EnvPool | Sequence[gym.Env],
    seeds: Sequence[int],
    sampling: SamplingParams,
    max_episode_tokens: int,
    group_size: int = 1,
    options: Sequence[dict[str, Any] | None] | None = None,
    use_chat_template_tools: bool = True,
    *,
    layout: str = "auto",
    policy_version: int | None = None,
    sample_offset: int = 0,
    draws: Sequence[str | int] | None = None,
) -> list[Trajectory]:
    """Play `group_size` episodes per seed and return their trajectories, grouped by seed.

    The result is ordered so that `trajectories[g * group_size : (g + 1) * group_size]` is the group
    of `seeds[g]` (same task, independent samples), and every member carries the same
    `group_key` (task id, seed and draw: `group_key`) and its `sample_index` (`sample_offset` +
    position in the group; raise the offset, with the same draws, to add samples to groups already
    started). A seed listed twice is two groups: `draws` names each seed's draw (default: its
    occurrence in `seeds`, 0 for the first), and a repeated (seed, draw) pair is refused.
    Up to `len(envs)` episodes run at once; each round generates one turn for every episode awaiting
    one, in batches, and steps only those envs.

    - An episode whose tokens would exceed `max_episode_tokens` ends `truncated` with
      `info["stop_reason"] == "max_episode_tokens"` and reward 0.
    - An env exception in `reset`/`step` ends that episode only: `failed=True`, `error` set,
      reward 0, `info["stop_reason"] == "error"`. An exception from the engine itself propagates:
      it is not one episode's fault, and a training step cannot go on without its policy.
    - `layout`: "auto" ("raw" for search_r1, else "chat"), "chat" or "raw" (`toolgym.agents.token_stream`).
    - `policy_version` is stored in each trajectory's `sampling` record (default: the engine's).
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if max_episode_tokens < 2:
        raise ValueError(f"max_episode_tokens must be at least 2, got {max_episode_tokens}")
    if sample_offset < 0:
        raise ValueError(f"sample_offset must be >= 0, got {sample_offset}")
    resolve_layout(layout, "")  # refuse an unknown layout before any episode runs
    options = list(options) if options is not None else [None] * len(seeds)
    if len(options) != len(seeds):
        raise ValueError(f"got {len(seeds)} seeds but {len(options)} options")
    draws = _draw_ids(seeds, draws)
    if policy_version is None:
        policy_version = int(getattr(engine, "policy_version", 0))
    if sampling.seed is not None:
        engine.reseed(sampling.seed)
    driver = _TokenDriver(
        engine,
        tokenizer,
        sampling,
        max_episode_tokens,
        use_chat_template_tools,
        layout,
        sampling_record(sampling, policy_version),
        sample_offset,
    )
    jobs = [
        Job(group, sample, seed, dict(option) if option is not None else {})
        for group, (seed, option) in enumerate(zip(seeds, options))
        for sample in range(group_size)
    ]
    envs_in = envs.envs if isinstance(envs, EnvPool) else list(envs)
    workers = envs.max_workers if isinstance(envs, EnvPool) else 1
    pool = EnvPool([safe(env) for env in envs_in], max_workers=workers)
    finished: dict[tuple[int, int], Trajectory] = {}
    try:
        clock = run_episodes(pool, jobs, driver, lambda t: finished.__setitem__((t.group, t.sample_index), t))
    finally:
        pool.close(close_envs=False)
    if clock.failed:
        logger.warning("%d of %d episodes failed with an env error (marked failed=True)", clock.failed, len(jobs))
    trajectories = [finished[(job.task_index, sample_offset + job.sample_index)] for job in jobs]
    _assign_group_keys(trajectories, seeds, draws, group_size)
    return trajectories


def _draw_ids(seeds: Sequence[int], draws: Sequence[str | int] | None) -> list[str | int]:
    """Each seed's draw id: the caller's, or the seed's occurrence count so far (0, 1, … per seed)."""
    if draws is None:
        seen: dict[int, int] = {}
        numbered: list[str | int] = []
        for seed in seeds:
            numbered.append(seen.get(seed, 0))
            seen[seed] = seen.get(seed, 0) + 1
        return numbered
    draws = list(draws)
    if len(draws) != len(seeds):
        raise ValueError(f"got {len(seeds)} seeds but {len(draws)} draws")
    repeated = sorted((pair for pair, n in Counter(zip(seeds, draws)).items() if n > 1), key=str)
    if repeated:
        raise ValueError(
            f"(seed, draw) pairs {repeated[:3]} appear more than once, which would merge their groups: "
            "give each draw of a task its own draw id"
        )
    return draws


def _assign_group_keys(
    trajectories: list[Trajectory], seeds: Sequence[int], draws: Sequence[str | int], group_size: int
) -> None:
    """Key each group by its task and draw: a member whose reset failed takes the key of one that played."""
    for index, (seed, draw) in enumerate(zip(seeds, draws)):
        group = trajectories[index * group_size : (index + 1) * group_size]
        task_id = next((t.task_id for t in group if t.task_id), "")
        for trajectory in group:
            trajectory.group_key = group_key(task_id, seed, draw)
