"""Node callables may be coroutine functions: awaiting what they return, from async or sync code."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, TypeVar

T = TypeVar("T")


async def resolved(value: Any) -> Any:
    """The value itself, or what it gives when awaited if it is awaitable."""
    return await value if inspect.isawaitable(value) else value


def run_sync(awaitable: Awaitable[T]) -> T:
    """Runs an awaitable to completion from synchronous code.

    On this thread when no event loop runs here (the CLI, the server's worker thread), else on a
    helper thread with its own loop, carrying this thread's context variables.
    """
    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(context.run, asyncio.run, main()).result()


def settle(value: Any) -> Any:
    """A callable's result, awaited to completion from synchronous code if it is awaitable."""
    return run_sync(value) if inspect.isawaitable(value) else value
