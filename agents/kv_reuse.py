"""Reuse of key/value caches across the turns of multi-turn rollouts (`HFEngine`).

A rollout's next prompt is the previous prompt, the sampled turn, and the env's tokens: without
reuse every turn re-encodes the whole episode. `PrefixKVCache` keeps, for each recently generated
sequence, the keys and values of the tokens the model has already processed; when a new prompt
extends one of them, only the new suffix is encoded.

Batching rows with different cached lengths: the batch's cache is laid out as

    [left pad | row's cached tokens][left pad | row's new suffix tokens][generated tokens …]

with the pads masked out of attention and explicit position ids, so every real token sees exactly
the context it would see in a full recompute (the logprobs agree to float rounding; the tests hold
them to 1e-4 of a full forward pass). Only plain full-attention `DynamicCache` layers are reused;
any other cache layout (sliding windows, recurrent state) turns reuse off with a log line.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

LayerKV = list[tuple[Any, Any]]
"""Per layer: keys and values of one sequence, shaped (heads, tokens, head_dim)."""


class PrefixKVCache:
    """Keys/values of recent sequences, keyed by their token ids; at most `capacity` sequences (LRU).

    An entry used as the prefix of a new prompt is dropped (the longer sequence generated from it
    supersedes it), so a rollout keeps about one entry per episode in flight.
    """

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"the KV cache capacity must be >= 0 sequences (0 = off), got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[int, ...], LayerKV] = OrderedDict()
        self.reused_tokens = 0
        """Prompt tokens served from the cache instead of being encoded (a running count)."""
        self.encoded_tokens = 0
        """Prompt tokens encoded by a forward pass (a running count)."""

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def take(self, prompt: Sequence[int]) -> tuple[int, LayerKV | None]:
        """The longest cached prefix of `prompt` (leaving at least its last token to encode): its
        length and tensors, removed from the cache; (0, None) when nothing matches."""
        best: tuple[int, ...] | None = None
        for key in self._entries:
            n = len(key)
            if n == 0 or n > len(prompt) or (best is not None and n <= len(best)):
                continue
            if key[-1] == prompt[n - 1] and key[0] == prompt[0] and tuple(prompt[:n]) == key:
                best = key
        if best is None:
            return 0, None
        layers = self._entries.pop(best)
        length = min(len(best), len(prompt) - 1)
        if length < 1:
            return 0, None
        if length < len(best):
            layers = [(k[:, :length], v[:, :length]) for k, v in layers]
        return length, layers

    def put(self, ids: Sequence[int], layers: LayerKV) -> None:
        if self.capacity == 0 or not ids:
            return
        key = tuple(ids)
        self._entries[key] = layers
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


def cache_layers(cache: Any) -> list[tuple[Any, Any]] | None:
    """The (keys, values) tensors of each layer of a transformers cache, or None if not plain full attention."""
    layers = getattr(cache, "layers", None)
    if layers is not None:  # transformers >= 4.56
        if any(getattr(layer, "is_sliding", False) or not hasattr(layer, "keys") for layer in layers):
            return None
        return [(layer.keys, layer.values) for layer in layers]
    keys, values = getattr(cache, "key_cache", None), getattr(cache, "value_cache", None)
    if keys is None or values is None:
        return None
    return list(zip(keys, values))


def seed_cache(cache: Any, rows: list[tuple[int, LayerKV | None]], width: int, template: LayerKV) -> None:
    """Fill an empty cache with each row's reused keys/values, right-aligned in `width` columns."""
    batch = len(rows)
    for layer, (key_like, value_like) in enumerate(template):
        heads, head_dim = key_like.shape[0], key_like.shape[-1]
        keys = key_like.new_zeros((batch, heads, width, head_dim))
        values = value_like.new_zeros((batch, heads, width, value_like.shape[-1]))
        for row, (length, layers) in enumerate(rows):
            if layers is not None and length:
                keys[row, :, width - length :] = layers[layer][0]
                values[row, :, width - length :] = layers[layer][1]
        cache.update(keys, values, layer)


def row_layers(layers: list[tuple[Any, Any]], row: int, columns: Any) -> LayerKV:
    """One row's keys/values at the given cache columns (an index tensor), as compact copies."""
    return [(k[row].index_select(1, columns), v[row].index_select(1, columns)) for k, v in layers]
