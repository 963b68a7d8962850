"""Search-v0: multi-turn search QA (Search-R1 protocol or native tool calls) over a corpus."""

from .env import SearchEnv
from .world import World, WorldConfig

__all__ = ["SearchEnv", "World", "WorldConfig"]
