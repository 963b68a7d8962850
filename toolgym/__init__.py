"""ToolGym: Gymnasium environments, retrieval, agents, training and evaluation for tool-using LLMs.

Importing the package registers the environments, so after `import toolgym` both
`gym.make("Search-v0")` and `gym.make("toolgym:Search-v0")` work (the second form needs no import).
"""

from toolgym import vector_spaces  # noqa: F401  (registers MessageList with Gymnasium's vector utilities)
from toolgym.registration import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
