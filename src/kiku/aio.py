"""Running a coroutine from synchronous code (the describe stage and the LLM stages share this)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

R = TypeVar("R")


def run_sync(coro: Coroutine[Any, Any, R]) -> R:
    """Run a coroutine from synchronous code, also when an event loop is already running (notebooks).

    Without a running loop it is ``asyncio.run``; inside one (a notebook cell) the coroutine runs
    on its own loop in a worker thread and its result or exception comes back to the caller.

    >>> async def double(x: int) -> int:
    ...     return 2 * x
    >>> run_sync(double(21))
    42
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
