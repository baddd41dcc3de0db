"""kiku.aio.run_sync: one way to run a coroutine from synchronous code."""

from __future__ import annotations

import asyncio

import pytest

from kiku.aio import run_sync


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def _fail() -> None:
    raise ValueError("boom")


def test_run_sync_without_and_inside_a_running_loop() -> None:
    assert run_sync(_double(4)) == 8

    async def notebook_cell() -> int:  # a caller that already runs an event loop
        return run_sync(_double(5))

    assert asyncio.run(notebook_cell()) == 10


def test_run_sync_reraises_in_both_cases() -> None:
    with pytest.raises(ValueError, match="boom"):
        run_sync(_fail())

    async def notebook_cell() -> None:
        run_sync(_fail())

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(notebook_cell())
