"""The classic adapter's ComfyUI side: a pack node's calls run in the node's run, on ComfyUI-shaped values.

The engine converts a classic class into a NodeSpec (engine/classic.py); `wrap_classic` makes its
function and its check_lazy_status run inside `state.running(ctx, call_index)`, so ProgressBar,
interrupt checks, `PromptServer.instance.send_sync` and core nodes called directly find the run,
with inputs through `values.to_comfy` and outputs through `values.from_comfy` by socket type.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext
from typing import Any, Callable

from sigmagraph.engine import Hidden, NodeSpec, RunContext
from sigmagraph.engine.spec import OutputSpec

from . import state, values

CONTEXT = "_compat_context"  # the hidden input that brings the RunContext; ComfyUI's catalogue does not show it


class ClassicNodeSpec(NodeSpec):
    """The spec of a ComfyUI-classic pack node: its catalogue entry leaves out the adapter's own hidden input."""

    def catalogue_entry(self, config: Any) -> dict[str, Any]:
        entry = super().catalogue_entry(config)
        hidden = entry["input"].pop("hidden", {})
        hidden.pop(CONTEXT, None)
        if hidden:
            entry["input"]["hidden"] = hidden
        return entry


def _outgoing(outputs: tuple[OutputSpec, ...], value: Any) -> Any:
    """A classic return value with its outputs as Sigmagraph values (ComfyUI's shapes otherwise kept)."""
    def convert(result: Any) -> tuple:
        return tuple(values.converted(values.from_comfy, o.type, v, o.is_list) for o, v in zip(outputs, result))

    if isinstance(value, tuple):
        return convert(value)
    if isinstance(value, dict) and value.get("result") is not None:
        return {**value, "result": convert(value["result"])}
    return value


def _wrap(spec: NodeSpec, function: Callable[..., Any], finish: Callable[[Any], Any]) -> Callable[..., Any]:
    """`function` called inside its node's run (the hidden context) on inputs in ComfyUI's shapes."""
    types = {inp.name: values.input_type(inp) for inp in spec.inputs if not inp.raw_link}  # a raw link is a link

    def prepare(kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        ctx: RunContext | None = kwargs.pop(CONTEXT, None)
        inputs = {k: values.converted(values.to_comfy, types[k], v, spec.input_is_list) if k in types else v
                  for k, v in kwargs.items()}  # undeclared inputs (a **kwargs function's) as they come
        # outside the engine's executor (a test, another node's call) there is no run to enter
        return (nullcontext() if ctx is None else state.running(ctx, ctx.call_index)), inputs

    if inspect.iscoroutinefunction(function):
        async def wrapped(**kwargs: Any) -> Any:
            run, inputs = prepare(kwargs)
            with run:
                return finish(await function(**inputs))
    else:
        def wrapped(**kwargs: Any) -> Any:
            run, inputs = prepare(kwargs)
            with run:
                return finish(function(**inputs))
    wrapped.__name__ = wrapped.__qualname__ = getattr(function, "__name__", spec.name)
    return wrapped


def wrap_classic(cls: type, spec: NodeSpec) -> ClassicNodeSpec:
    """The spec of a classic pack class, its calls made inside the node's run on ComfyUI-shaped values."""
    fields = {name: getattr(spec, name) for name in NodeSpec.model_fields}
    fields["hidden"] = {**spec.hidden, CONTEXT: Hidden.CONTEXT}
    fields["function"] = _wrap(spec, spec.function, lambda out: _outgoing(spec.outputs, out))
    if spec.lazy_status is not None:
        fields["lazy_status"] = _wrap(spec, spec.lazy_status, lambda names: names)
    return ClassicNodeSpec.model_construct(**fields)
