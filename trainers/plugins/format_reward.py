"""A format reward: a small bonus for episodes whose every turn the env could parse.

The smallest useful shaping plug-in, shipped to exercise the hooks before DiPO/TSPO/HAMMER: it
reads per-turn env info (`invalid_action`) and whether the episode ended with an answer, adds
`bonus` to the *shaped* reward (the outcome that dynamic sampling judges is untouched), and keeps
a running count in its state so checkpoints carry plug-in state. Format rewards of this kind are
the usual first shaping term in R1-style training (DeepSeek-R1, arXiv 2501.12948, "format rewards").
"""

from __future__ import annotations

from typing import Any

from . import Plugin


class FormatReward(Plugin):
    """shaped_reward += bonus when no turn was an invalid action and the episode terminated with an answer."""

    name = "format_reward"

    def __init__(self, bonus: float = 0.1, require_answer: bool = True):
        self.bonus = float(bonus)
        self.require_answer = bool(require_answer)
        self.rewarded = 0
        self.seen = 0

    def well_formed(self, trajectory: Any) -> bool:
        """Every turn parsed (no `invalid_action` in any turn's info) and, if required, the episode answered."""
        if any(info.get("invalid_action") for info in trajectory.turn_infos):
            return False
        return bool(trajectory.terminated) or not self.require_answer

    def shape_rewards(self, batch: Any) -> None:
        for row, trajectory in enumerate(batch.trajectories):
            self.seen += 1
            if self.well_formed(trajectory):
                batch.shaped_rewards[row] += self.bonus
                self.rewarded += 1

    def on_step_end(self, batch: Any, metrics: dict[str, float]) -> None:
        metrics["format_reward/rate"] = self.rewarded / max(self.seen, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"rewarded": self.rewarded, "seen": self.seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rewarded, self.seen = int(state["rewarded"]), int(state["seen"])
