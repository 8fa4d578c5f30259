"""Small asyncio helpers shared by the receiver tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

WAIT = 10.0  # upper bound of any wait; tests normally finish far sooner


async def until(cond: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``cond()`` holds (polling), or fail after ``timeout`` seconds."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def run(coro: Callable[[], Awaitable[Any]]) -> Any:
    """Run a test coroutine with an overall bound of 60 s."""
    return asyncio.run(asyncio.wait_for(coro(), 60))
