"""The micro-batcher both servers use: coalescing by key, isolated failures, back-pressure."""

from __future__ import annotations

import asyncio

import pytest

from toolgym.microbatch import BatcherBusy, MicroBatcher


def make(calls: list, **kwargs) -> MicroBatcher:
    def call(key, items):
        calls.append((key, list(items)))
        if "boom" in items:
            raise ValueError("boom")
        return [f"{key}:{item}" for item in items]

    return MicroBatcher(call, batch_wait_s=0.05, max_batch_size=100, max_pending=100, **kwargs)


def test_concurrent_items_share_one_call_per_key():
    calls: list = []

    async def main():
        batcher = make(calls)
        try:
            return await asyncio.gather(*(batcher.submit(f"q{i}", i % 2) for i in range(6)))
        finally:
            batcher.close()

    assert asyncio.run(main()) == [f"{i % 2}:q{i}" for i in range(6)]
    assert sorted(key for key, _ in calls) == [0, 1]


def test_a_failing_item_fails_alone():
    calls: list = []

    async def main():
        batcher = make(calls)
        try:
            return await asyncio.gather(batcher.submit("a"), batcher.submit("boom"), return_exceptions=True)
        finally:
            batcher.close()

    ok, failed = asyncio.run(main())
    assert ok == "None:a" and isinstance(failed, ValueError)
    assert len(calls) == 3  # the shared call, then each item alone


def test_more_pending_work_than_allowed_is_refused():
    async def main():
        batcher = MicroBatcher(
            lambda key, items: items, batch_wait_s=0.2, max_batch_size=10, max_pending=3, size_of=len
        )
        try:
            first = asyncio.ensure_future(batcher.submit([1, 2, 3]))
            await asyncio.sleep(0)
            with pytest.raises(BatcherBusy):
                await batcher.submit([4])
            return await first
        finally:
            batcher.close()

    assert asyncio.run(main()) == [1, 2, 3]
