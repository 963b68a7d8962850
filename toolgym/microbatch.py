"""Coalesce concurrent requests of an asyncio server into batched calls of a blocking backend.

A retriever or a model answers a batch far faster than the same requests one by one, but HTTP
clients arrive one request at a time. `MicroBatcher` waits a short window after the first request,
groups what arrived by a key (a top-k, a set of sampling parameters: one call must share it), runs
one call per group in a worker thread, and hands each request its own results. If a coalesced call
fails, each of its requests is retried alone, so one bad request cannot fail the others. Requests
whose caller stopped waiting (a timeout cancels the awaiting task) are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class BatcherBusy(Exception):
    """More work is queued than the batcher accepts; the caller should answer 503 and retry later."""


@dataclass
class _Pending(Generic[Item]):
    item: Item
    key: Hashable
    size: int
    future: asyncio.Future


class MicroBatcher(Generic[Item, Result]):
    """`await submit(item, key)` returns `call(key, [..., item, ...])`'s result for that item.

    `call(key, items) -> results` runs in `threads` worker threads and must return one result per
    item, in order. `size_of(item)` counts an item against `max_batch_size` and `max_pending`
    (a request of 5 queries counts 5). Counters: `calls`, `largest_batch`.
    """

    def __init__(
        self,
        call: Callable[[Any, list[Item]], Sequence[Result]],
        *,
        batch_wait_s: float,
        max_batch_size: int,
        max_pending: int,
        size_of: Callable[[Item], int] = lambda item: 1,
        threads: int = 1,
        thread_name: str = "toolgym-batch",
    ):
        self.call = call
        self.batch_wait_s = batch_wait_s
        self.max_batch_size = max_batch_size
        self.max_pending = max_pending
        self.size_of = size_of
        self.calls = 0
        self.largest_batch = 0
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=thread_name)
        self._queue: asyncio.Queue[_Pending[Item]] | None = None
        self._worker: asyncio.Task | None = None
        self._pending = 0

    async def submit(self, item: Item, key: Hashable = None) -> Result:
        size = self.size_of(item)
        if self._pending + size > self.max_pending:
            raise BatcherBusy(f"{self._pending} units of work are already waiting (the limit is {self.max_pending})")
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._loop())
        pending = _Pending(item, key, size, loop.create_future())
        self._pending += size
        assert self._queue is not None
        self._queue.put_nowait(pending)
        return await pending.future

    async def run(self, key: Any, items: list[Item]) -> Sequence[Result]:
        """One direct call in the worker threads, counted like a batch (for unbatched serving)."""
        self.calls += 1  # counted on the event loop: no lock needed
        self.largest_batch = max(self.largest_batch, sum(self.size_of(item) for item in items))
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self.call, key, items)
        if len(results) != len(items):
            raise RuntimeError(f"the backend returned {len(results)} results for {len(items)} requests")
        return results

    async def _gather(self) -> list[_Pending[Item]]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        size = batch[0].size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_wait_s
        while size < self.max_batch_size:
            if not self._queue.empty():
                pending = self._queue.get_nowait()
            else:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            batch.append(pending)
            size += pending.size
        return batch

    async def _loop(self) -> None:
        while True:
            batch = await self._gather()
            self._pending -= sum(p.size for p in batch)
            groups: dict[Hashable, list[_Pending[Item]]] = {}
            for pending in batch:
                if not pending.future.done():  # its caller stopped waiting
                    groups.setdefault(pending.key, []).append(pending)
            for key, group in groups.items():
                await self._answer(key, group)

    async def _answer(self, key: Hashable, group: list[_Pending[Item]]) -> None:
        try:
            results = await self.run(key, [p.item for p in group])
        except Exception as exc:
            if len(group) > 1:  # one request may be what broke the call: only that one may fail
                for pending in group:
                    if not pending.future.done():
                        await self._answer(key, [pending])
            elif not group[0].future.done():
                group[0].future.set_exception(exc)
            return
        for pending, result in zip(group, results):
            if not pending.future.done():
                pending.future.set_result(result)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
