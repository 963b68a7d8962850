"""Gymnasium vector-env support for `MessageList` observations, shared memory included.

Gymnasium's vector utilities dispatch on the space type. For a custom space, `batch_space`,
`concatenate` and `create_empty_array` already fall back to tuples of items, so `SyncVectorEnv`
and `AsyncVectorEnv(shared_memory=False)` work as they are. `AsyncVectorEnv`'s default,
`shared_memory=True` (also `gym.make_vec(..., vectorization_mode="async")`), needs three more
functions for our space; this module registers them (importing `toolgym` does it):

- `create_shared_memory`: per sub-env one fixed slot of `SLOT_BYTES` in one shared byte array,
  plus a header (payload length, where it lies). The slot size bounds nothing: an observation
  larger than its slot is written to a file in a private temporary folder instead, and the
  header says so, so no observation is ever cut, corrupted or refused.
- `write_to_shared_memory` (in the worker): the observation is pickled (exactly what the pipe
  path would send, lone surrogates and all) into the slot or the spill file.
- `read_from_shared_memory` (in the parent, once): a live view, like the numpy views Gymnasium
  returns for a `Box`. Each access decodes the current contents; `copy.deepcopy` of the view
  (what `AsyncVectorEnv` does with its default `copy=True`) gives a tuple of message lists, the
  same value `shared_memory=False` and `SyncVectorEnv` return.

Gymnasium's own `Text` space cannot carry chat text through shared memory (it stores charset
indices, so a space or a non-ASCII letter kills the worker); this layout has no such limit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

from gymnasium.spaces import Tuple
from gymnasium.vector.utils import create_shared_memory, read_from_shared_memory, write_to_shared_memory
from gymnasium.vector.utils.space_utils import batch_differing_spaces

from toolgym.spaces import MessageList

SLOT_BYTES = 1 << 18  # 256 KiB per sub-env; chat observations are a few KB, larger ones spill to a file
_IN_SLOT, _IN_FILE = 0, 1

Messages = list[dict[str, Any]]


def _remove_folder(path: str, owner_pid: int) -> None:
    """Delete the spill folder, only from the process that created it (workers inherit the object)."""
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


class MessageBuffers:
    """The shared state of `n` sub-envs' observations: byte slots, a header and a spill folder."""

    def __init__(self, n: int, ctx: ModuleType, slot_bytes: int = SLOT_BYTES):
        self.n = n
        self.slot_bytes = slot_bytes
        # lock=False: each slot has one writer (its worker), read by the parent only after the
        # worker's reply arrived on the pipe, which orders the two.
        self.slots = ctx.Array("B", n * slot_bytes, lock=False)
        self.header = ctx.Array("q", 2 * n, lock=False)  # (payload length, _IN_SLOT / _IN_FILE) per env
        self.spill_dir = tempfile.mkdtemp(prefix="toolgym-vector-obs-")
        weakref.finalize(self, _remove_folder, self.spill_dir, os.getpid())

    def _spill_path(self, index: int) -> str:
        return os.path.join(self.spill_dir, f"env-{index}.pickle")

    def write(self, index: int, messages: Messages) -> None:
        """Store env `index`'s observation (called in that env's worker process)."""
        payload = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
        if len(payload) <= self.slot_bytes:
            ctypes.memmove(ctypes.addressof(self.slots) + index * self.slot_bytes, payload, len(payload))
            where = _IN_SLOT
        else:
            partial = self._spill_path(index) + ".partial"
            with open(partial, "wb") as handle:
                handle.write(payload)
            os.replace(partial, self._spill_path(index))
            where = _IN_FILE
        self.header[2 * index + 1] = where
        self.header[2 * index] = len(payload)

    def read(self, index: int) -> Messages:
        """Env `index`'s latest observation (an empty list before its first reset)."""
        length, where = self.header[2 * index], self.header[2 * index + 1]
        if length == 0:
            return []
        if where == _IN_FILE:
            with open(self._spill_path(index), "rb") as handle:
                payload = handle.read()
        else:
            payload = ctypes.string_at(ctypes.addressof(self.slots) + index * self.slot_bytes, length)
        return pickle.loads(payload)  # written by our own worker, the same trust as Gymnasium's pipe


class MessageListBatch(Sequence[Messages]):
    """A live, read-only view of every sub-env's latest observation; `deepcopy` gives a tuple."""

    def __init__(self, buffers: MessageBuffers):
        self._buffers = buffers

    def __len__(self) -> int:
        return self._buffers.n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        if not -len(self) <= index < len(self):
            raise IndexError(f"sub-env index {index} is outside [0, {len(self)})")
        return self._buffers.read(index % len(self))

    def __iter__(self) -> Iterator[Messages]:
        return (self._buffers.read(i) for i in range(len(self)))

    def __deepcopy__(self, memo: dict[int, Any]) -> tuple[Messages, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (tuple, MessageListBatch)) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # mutable view

    def __repr__(self) -> str:
        return f"MessageListBatch({tuple(self)!r})"


@create_shared_memory.register(MessageList)
def _create_message_list_memory(space: MessageList, n: int = 1, ctx: ModuleType = multiprocessing) -> MessageBuffers:
    return MessageBuffers(n, ctx)


@read_from_shared_memory.register(MessageList)
def _read_message_list_memory(space: MessageList, shared_memory: MessageBuffers, n: int = 1) -> MessageListBatch:
    return MessageListBatch(shared_memory)


@write_to_shared_memory.register(MessageList)
def _write_message_list_memory(space: MessageList, index: int, value: Messages, shared_memory: MessageBuffers) -> None:
    shared_memory.write(index, value)


@batch_differing_spaces.register(MessageList)
def _batch_differing_message_lists(spaces: Sequence[MessageList]) -> Tuple:
    return Tuple(list(spaces))
