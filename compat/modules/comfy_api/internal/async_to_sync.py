"""ComfyUI's `comfy_api.internal.async_to_sync`: the blocking twin of an async API class (`ComfyAPISync`)."""

from __future__ import annotations

import inspect
from typing import Any

from comfy_api.internal import ProxiedSingleton
from sigmagraph.engine.awaitables import run_sync


class _Blocking:
    """Mirrors an object of the async API: its coroutine methods block until done, its sections are mirrored too."""

    def __init__(self, target: Any):
        self._async_instance = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._async_instance, name)
        if inspect.iscoroutinefunction(value):
            return lambda *args, **kwargs: run_sync(value(*args, **kwargs))
        return _Blocking(value) if isinstance(value, ProxiedSingleton) else value


def create_sync_class(async_class: type) -> type:
    """A class whose instances wrap a fresh `async_class()` and block on its coroutine methods."""

    def __init__(self: _Blocking, *args: Any, **kwargs: Any) -> None:
        _Blocking.__init__(self, async_class(*args, **kwargs))

    return type(f"{async_class.__name__}Sync", (_Blocking,), {"__init__": __init__, "__doc__": async_class.__doc__})
