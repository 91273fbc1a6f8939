"""ComfyUI's `comfy_api.internal`: the bases every V3 API version shares, and small helpers.

Sigmagraph's V3 adapter (`sigmagraph.compat.v3`) recognises node classes and node outputs by
these bases, by name rather than identity, so classes built on a re-imported copy of this
module still count.
"""

from __future__ import annotations

from typing import Any, Callable


class _ComfyNodeInternal:
    """The base of every V3 node class, whatever the API version."""


class _NodeOutputInternal:
    """The base of every V3 node output."""


class ComfyAPIBase:
    """The base of every versioned `ComfyAPI` class."""

    VERSION = "base"
    STABLE = False


class ProxiedSingleton:
    """A section of the API (e.g. `execution`) whose coroutine methods the sync API mirrors."""


class classproperty:  # noqa: N801 - ComfyUI's name
    """A read-only property of the class itself."""

    def __init__(self, getter: Callable[[type], Any]):
        self.getter = getter

    def __get__(self, obj: Any, owner: type) -> Any:
        return self.getter(owner)


def prune_dict(d: dict) -> dict:
    """`d` without its None values."""
    return {k: v for k, v in d.items() if v is not None}


def is_class(obj: Any) -> bool:
    """True for a class, False for an instance."""
    return isinstance(obj, type)


def first_real_override(cls: type, name: str, *, base: type | None = None) -> Callable | None:
    """`cls.<name>` when some class below `base` (default `cls.GET_BASE_CLASS()`) overrides it, else None."""
    base = base if base is not None else cls.GET_BASE_CLASS()
    inherited, own = getattr(base, name, None), getattr(cls, name, None)
    if inherited is None or own is None:
        return None
    return own if getattr(own, "__func__", own) is not getattr(inherited, "__func__", inherited) else None
