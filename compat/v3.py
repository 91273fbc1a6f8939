"""The V3 adapter: a ComfyUI `io.ComfyNode` class becomes an ordinary NodeSpec.

A V3 node declares a Schema (`define_schema`) and a classmethod `execute(**inputs)`, possibly
`async`. `spec_from_v3` maps the schema's inputs onto typed input specs (what validation checks),
renders the catalogue entry from the schema as ComfyUI does (`GET /object_info`), asks the
engine for the hidden values the schema names, and runs `execute` on a fresh subclass with
`cls.hidden` set, inside `state.running(ctx)`, with values crossing through `values`.
`load_v3_extension` runs a pack's `comfy_entrypoint`; `v3_classes_in` picks the V3 classes out
of a classic NODE_CLASS_MAPPINGS (KJNodes and RES4LYF mix them in).

Dynamic inputs (DynamicCombo, Autogrow) are keyed `parent.child` in a workflow: every one is
a spec input (a DynamicCombo's ComboInput names the inputs each choice brings, so validation
skips the others), and `execute` gets them nested (`mode={"mode": "percent", "percent": 0.5}`).

The adapter reads V3 objects by their protocol (io types by name, classes by the names of their
bases), never by identity, so classes built on a re-imported `comfy_api` still convert.
"""

from __future__ import annotations

import inspect
import math
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from types import ModuleType
from typing import Any, Iterable, Iterator, Mapping

from sigmagraph.engine import Hidden, NodeOutput, NodeSpec, RunContext
from sigmagraph.engine.awaitables import run_sync, settle
from sigmagraph.engine.classic import keyword_names, takes_everything, ui_lists
from sigmagraph.engine.expansion import ExecutionBlocker
from sigmagraph.engine.spec import (ALWAYS_RUN, BooleanInput, ComboInput, FloatInput, InputSpec, IntInput, OutputSpec,
                                    SocketInput, StringInput)

from . import state, values

AUTOGROW, DYNAMIC_COMBO = "COMFY_AUTOGROW_V3", "COMFY_DYNAMICCOMBO_V3"
MULTITYPE, MATCHTYPE = "COMFY_MULTITYPED_V3", "COMFY_MATCHTYPE_V3"
_WIDGETS = {"INT": IntInput, "FLOAT": FloatInput, "STRING": StringInput, "BOOLEAN": BooleanInput}

# The engine passes hidden values as keyword arguments; these names keep them apart from a node's inputs.
_CONTEXT = "_v3_context"
_HIDDEN = {  # V3 hidden value -> (keyword, the engine's kind)
    "UNIQUE_ID": ("_v3_unique_id", Hidden.UNIQUE_ID),
    "PROMPT": ("_v3_prompt", Hidden.PROMPT),
    "EXTRA_PNGINFO": ("_v3_extra_pnginfo", Hidden.EXTRA_PNGINFO),
}


def _derives_from(cls: type, base_name: str) -> bool:
    return any((b.__module__, b.__name__) == ("comfy_api.internal", base_name) for b in cls.__mro__)


def is_v3_class(obj: Any) -> bool:
    """True for a ComfyUI V3 node class (a subclass of `io.ComfyNode`)."""
    return isinstance(obj, type) and _derives_from(obj, "_ComfyNodeInternal")


# ------------------------------------------------------------------------------------------------
# Inputs: the schema's io objects as typed input specs, keyed as a workflow keys them


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # Enum members (combo keys, hidden kinds) as their values


def _without_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _declared(inputs: Iterable[Any], parts: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every input a schema declares with its workflow key, those of every dynamic option included."""
    for inp in inputs:
        key, io_type = ".".join((*parts, inp.id)), inp.Parent.io_type
        if io_type == AUTOGROW:
            yield from ((f"{key}.{name}", inp.template.input) for name in inp.template.names)
            continue
        yield key, inp
        if io_type == DYNAMIC_COMBO:
            for option in inp.options:
                yield from _declared(option.inputs, (*parts, inp.id))


def _current_choices(cls: type, key: str, config: Any = None) -> list[str]:
    """The choices of the combo `key` as the node declares them now (file lists change)."""
    inp = next((inp for k, inp in _declared(cls.FINALIZE_SCHEMA().inputs) if k == key), None)
    if inp is None:  # the node no longer declares it: nothing validates
        return []
    options = [o.key for o in inp.options] if inp.Parent.io_type == DYNAMIC_COMBO else inp.options or []
    return [str(_plain(o)) for o in options]


def _socket_type(inp: Any) -> str:
    if inp.Parent.io_type == MATCHTYPE:
        allowed = [t.io_type for t in inp.template.allowed_types]
        return "*" if "*" in allowed else ",".join(allowed)
    return inp.get_io_type()


def _widget(kind: str, inp: Any, common: dict[str, Any]) -> InputSpec:
    if kind == "STRING":
        return StringInput(**common, **_without_none(default=inp.default or "", multiline=bool(inp.multiline),
                                                     dynamic_prompts=inp.dynamic_prompts))
    if kind == "BOOLEAN":
        return BooleanInput(**common, **_without_none(default=bool(inp.default), label_on=inp.label_on,
                                                      label_off=inp.label_off))
    default = inp.default
    if default is None:  # ComfyUI's front end starts at 0, within the bounds
        default = min(max(0, inp.min if inp.min is not None else 0), inp.max if inp.max is not None else 0)
    extra = ({"control_after_generate": bool(inp.control_after_generate)}
             if kind == "INT" and inp.control_after_generate is not None else
             _without_none(round=inp.round) if kind == "FLOAT" else {})
    return _WIDGETS[kind](**common, default=default, **_without_none(min=inp.min, max=inp.max, step=inp.step), **extra)


def _typed(cls: type, inp: Any, key: str, optional: bool,
           dynamic: dict[str, tuple[str, ...]] | None = None) -> InputSpec:
    """One V3 input as the typed spec validation checks (`dynamic`: a DynamicCombo's choices and their inputs)."""
    io_type = inp.Parent.io_type
    if io_type == MULTITYPE and inp.input_override is not None:
        return _typed(cls, inp.input_override, key, optional)  # a widget that also accepts the listed types
    common = {"name": key, "optional": optional, "tooltip": inp.tooltip}
    if io_type in ("COMBO", DYNAMIC_COMBO):
        if getattr(inp, "multiselect", False):
            raise ValueError(f"input {key!r}: MultiCombo (a list of choices as the value) is not supported")
        default = _plain(getattr(inp, "default", None))
        upload = _plain(getattr(inp, "upload", None))
        return ComboInput(**common, choices=partial(_current_choices, cls, key),
                          default=default if isinstance(default, str) else None,
                          image_upload=True if upload == "image_upload" else None, dynamic=dynamic)
    if io_type in _WIDGETS:
        return _widget(io_type, inp, common | _without_none(force_input=inp.force_input))
    return SocketInput(**common, type=_socket_type(inp), lazy=inp.lazy)


@dataclass
class _Layout:
    """A node's inputs as a workflow keys them, and where `execute` finds each dynamic one (ComfyUI's
    get_finalized_class_inputs and build_nested_inputs)."""

    inputs: list[InputSpec] = field(default_factory=list)  # every input, every DynamicCombo option's included
    paths: dict[str, str] = field(default_factory=dict)  # workflow key -> nested path ("mode.percent")
    owners: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # option input -> (combo, choices)
    groups: dict[str, list[str]] = field(default_factory=dict)  # Autogrow -> its slots; none given: {}

    def add(self, spec: InputSpec, path: str | None) -> None:
        if all(spec.name != known.name for known in self.inputs):  # options may share an input: first wins
            self.inputs.append(spec)
        if path is not None:
            self.paths[spec.name] = path

    def _chosen(self, key: str, flat: Mapping[str, Any]) -> bool:
        combo, choices = self.owners[key]
        choice = flat.get(combo)
        if isinstance(choice, list):  # a node taking lists gets every value as a list
            choice = choice[0] if choice else None
        return choice in choices and (combo not in self.owners or self._chosen(combo, flat))

    def nest(self, flat: Mapping[str, Any]) -> dict[str, Any]:
        """`execute`'s keyword arguments from the workflow-keyed values.

        A chosen option's inputs are all there (None when not given); Autogrow slots only when given,
        an Autogrow given none is {}.
        """
        nested = {k: v for k, v in flat.items() if k not in self.paths}
        placed = [(p, flat.get(k)) for k, p in self.paths.items() if k in flat or (k in self.owners and
                                                                                  self._chosen(k, flat))]
        placed += [(root, {}) for root, slots in self.groups.items() if not any(s in flat for s in slots)]
        for path, value in placed:
            *parents, leaf = path.split(".")
            branch = nested
            for part in parents:
                branch = branch.setdefault(part, {})
            branch[leaf] = value
        return nested


def _lay_out(cls: type, inputs: Iterable[Any], layout: _Layout, parts: tuple[str, ...] = (),
             owner: tuple[str, str] | None = None) -> _Layout:
    """Adds `inputs` to the layout: every Autogrow slot, every DynamicCombo option after its combo."""
    for inp in inputs:
        key, io_type = ".".join((*parts, inp.id)), inp.Parent.io_type
        if io_type == AUTOGROW:
            template, required = inp.template, not inp.template.input.optional
            layout.groups[key] = [f"{key}.{name}" for name in template.names]
            for i, slot in enumerate(layout.groups[key]):
                layout.add(_typed(cls, template.input, slot, not (required and i < template.min)), slot)
            continue
        dynamic = None
        if io_type == DYNAMIC_COMBO:
            dynamic = {_plain(o.key): tuple(k for k, _ in _declared(o.inputs, (*parts, inp.id))) for o in inp.options}
        path = f"{key}.{inp.id}" if dynamic is not None else key if parts else None  # a choice sits in its dict
        layout.add(_typed(cls, inp, key, inp.optional, dynamic), path)
        if owner is not None:
            layout.owners.setdefault(key, (owner[0], set()))[1].add(owner[1])
        for option in inp.options if dynamic is not None else ():
            _lay_out(cls, option.inputs, layout, (*parts, inp.id), (key, _plain(option.key)))
    return layout


# ------------------------------------------------------------------------------------------------
# Calls


def _ui_payload(ui: Any) -> dict[str, list] | None:
    """A UI payload as the engine merges it: a dict of lists (ComfyUI's tuples become lists)."""
    return None if ui is None else ui_lists(ui if isinstance(ui, dict) else ui.as_dict())


@dataclass(frozen=True, eq=False)  # compared and hashed by identity, like the functions of other specs
class _Runner:
    """Calls a V3 class as ComfyUI's executor does: a fresh clone per call, `cls.hidden`, nested inputs."""

    cls: type
    layout: _Layout
    outputs: tuple[OutputSpec, ...]
    input_is_list: bool
    is_async: bool

    def __call__(self, **kwargs: Any) -> NodeOutput:
        """The blocking call the engine makes (an async `execute` is run to completion)."""
        if self.is_async:
            return run_sync(self.call_async(**kwargs))
        clone, inputs, context = self._prepare(kwargs)
        with _running(context):
            return self._finish(clone.EXECUTE_NORMALIZED(**inputs))

    async def call_async(self, **kwargs: Any) -> NodeOutput:
        """The call as a coroutine, for an executor that awaits nodes (a sync `execute` runs inline)."""
        clone, inputs, context = self._prepare(kwargs)
        with _running(context):
            out = (await clone.EXECUTE_NORMALIZED_ASYNC(**inputs) if self.is_async
                   else clone.EXECUTE_NORMALIZED(**inputs))
        return self._finish(out)

    def fingerprint(self, **literals: Any) -> Any:
        """`fingerprint_inputs` of the widget values; NaN means always run (V1's IS_CHANGED)."""
        value = settle(self.cls.PREPARE_CLASS_CLONE(None).fingerprint_inputs(**self.layout.nest(literals)))
        return ALWAYS_RUN if isinstance(value, float) and math.isnan(value) else value

    def lazy_status(self, **kwargs: Any) -> Any:
        """`check_lazy_status` on the inputs so far (lazy ones not evaluated: None): the lazy inputs it needs."""
        clone, inputs, context = self._prepare(kwargs)
        with _running(context):
            return clone.check_lazy_status(**inputs)

    def validate(self, **inputs: Any) -> Any:
        """`validate_inputs` on the inputs it takes, before the run (True, or the error string)."""
        clone = self.cls.PREPARE_CLASS_CLONE(None)
        signature = inspect.signature(clone.validate_inputs)
        nested = self.layout.nest(inputs)
        if not takes_everything(signature):
            nested = {k: v for k, v in nested.items() if k in signature.parameters}
        return settle(clone.validate_inputs(**nested))

    def _prepare(self, kwargs: dict[str, Any]) -> tuple[type, dict[str, Any], RunContext | None]:
        context = kwargs.pop(_CONTEXT, None)
        hidden = {kind: kwargs.pop(keyword) for kind, (keyword, _) in _HIDDEN.items() if keyword in kwargs}
        types = {spec.name: values.input_type(spec) for spec in self.layout.inputs}
        flat = {k: values.converted(values.to_comfy, types[k], v, self.input_is_list) if k in types else v
                for k, v in kwargs.items()}
        return self.cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden}), self.layout.nest(flat), context

    def _finish(self, out: Any) -> NodeOutput:
        if out.block_execution is not None:  # every output blocked, with the node's message
            return NodeOutput((ExecutionBlocker(out.block_execution),) * len(self.outputs), _ui_payload(out.ui))
        if out.expand is not None:  # the results are links into the expanded graph: nothing to convert
            return NodeOutput(tuple(out.result or ()), _ui_payload(out.ui), out.expand)
        args = out.result or ()
        result = tuple(values.converted(values.from_comfy, o.type, v, o.is_list) for o, v in zip(self.outputs, args))
        return NodeOutput(result + tuple(args[len(self.outputs):]), _ui_payload(out.ui))


def _running(context: RunContext | None) -> Any:
    return state.running(context) if context is not None else nullcontext()


# ------------------------------------------------------------------------------------------------
# The spec


class V3NodeSpec(NodeSpec):
    """The NodeSpec of a V3 class: its catalogue entry is ComfyUI's rendering of the schema, and
    `call_async` awaits an async `execute` where `function` would block on it."""

    node_class: type
    is_async: bool = False  # execute is a coroutine function; `function` runs it to completion

    def catalogue_entry(self, config: Any) -> dict[str, Any]:
        """ComfyUI's `GET /object_info` entry of the node, from its schema as declared now."""
        info = asdict(self.node_class.GET_SCHEMA().get_v1_info(self.node_class))
        return info | {"name": self.name, "python_module": self.python_module}

    async def call_async(self, **kwargs: Any) -> NodeOutput:
        """The node call as a coroutine, for an executor that awaits nodes instead of blocking on them."""
        return await self.function.call_async(**kwargs)


def _output_spec(output: Any) -> OutputSpec:
    kind = _socket_type(output) if output.Parent.io_type == MATCHTYPE else output.io_type
    return OutputSpec(type=kind, name=output.display_name or output.io_type, is_list=bool(output.is_output_list),
                      tooltip=output.tooltip)


def spec_from_v3(cls: type, name: str | None = None, display_name: str | None = None,
                 module: str | None = None) -> V3NodeSpec:
    """Converts a V3 node class into a NodeSpec (raises on a bad declaration or an unsupported input)."""
    from comfy_api.internal import first_real_override  # the pack's comfy_api is loaded by now

    schema = cls.GET_SCHEMA()
    outputs = tuple(_output_spec(o) for o in schema.outputs)
    runner = _Runner(cls, _lay_out(cls, schema.inputs, _Layout()), outputs, bool(schema.is_input_list),
                     inspect.iscoroutinefunction(cls.execute))
    validates = first_real_override(cls, "validate_inputs") is not None
    validate_signature = inspect.signature(cls.validate_inputs)
    hidden = {_CONTEXT: Hidden.CONTEXT} | {_HIDDEN[kind][0]: _HIDDEN[kind][1]
                                           for kind in map(_plain, schema.hidden) if kind in _HIDDEN}
    return V3NodeSpec(
        name=name or schema.node_id,
        display_name=schema.display_name or display_name or name or schema.node_id,
        category=schema.category,
        description=schema.description or "",
        inputs=tuple(runner.layout.inputs),
        hidden=hidden,
        outputs=outputs,
        output_node=bool(schema.is_output_node),
        input_is_list=bool(schema.is_input_list),
        not_idempotent=bool(schema.not_idempotent),
        function=runner,
        function_async=runner.call_async if runner.is_async else None,
        fingerprint=runner.fingerprint if first_real_override(cls, "fingerprint_inputs") is not None else None,
        lazy_status=runner.lazy_status if any(inp.lazy for inp in runner.layout.inputs) else None,
        validate_inputs=runner.validate if validates else None,
        validate_inputs_takes=keyword_names(validate_signature),
        validate_inputs_takes_all=takes_everything(validate_signature),
        python_module=module or cls.__module__,
        deprecated=bool(schema.is_deprecated),
        experimental=bool(schema.is_experimental),
        node_class=cls,
        is_async=runner.is_async,
    )


# ------------------------------------------------------------------------------------------------
# Loading


@dataclass
class V3Nodes:
    """The nodes of a V3 extension or of a mixed NODE_CLASS_MAPPINGS.

    `specs` are the converted V3 classes, `failures` the node names that did not convert (with
    why), `classic` the other classes, left with their `display_names` to the classic adapter.
    """

    specs: list[NodeSpec] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    classic: dict[str, type] = field(default_factory=dict)
    display_names: dict[str, str] = field(default_factory=dict)

    def add_v3(self, name: str, cls: type, display_name: str | None, module: str) -> None:
        """Converts one V3 class, or records why it could not be."""
        try:
            self.specs.append(spec_from_v3(cls, name, display_name, module))
        except Exception as error:  # noqa: BLE001 - one bad node must not stop its pack
            self.fail(name, error)

    def fail(self, name: str, error: BaseException) -> None:
        """Records why node `name` was skipped, on one line."""
        self.failures[name] = f"{type(error).__name__}: {' '.join(str(error).split())}"

    def add_classic(self, name: str, cls: type, display_name: str | None) -> None:
        self.classic[name] = cls
        if display_name is not None:
            self.display_names[name] = display_name


def v3_classes_in(mapping: Mapping[str, Any], display_names: Mapping[str, str] | None = None,
                  module: str = "custom") -> V3Nodes:
    """Converts the V3 classes of a NODE_CLASS_MAPPINGS; the others come back in `classic`."""
    display_names = display_names or {}
    nodes = V3Nodes()
    for name, cls in mapping.items():
        if is_v3_class(cls):
            nodes.add_v3(name, cls, display_names.get(name), module)
        else:
            nodes.add_classic(name, cls, display_names.get(name))
    return nodes


async def _extension_classes(module: ModuleType) -> list[type]:
    """ComfyUI's loading of a V3 pack: `comfy_entrypoint()`, then `on_load()`, then `get_node_list()`."""
    extension = module.comfy_entrypoint()
    extension = await extension if inspect.isawaitable(extension) else extension
    if not callable(getattr(extension, "get_node_list", None)):
        raise TypeError(f"comfy_entrypoint() returned {type(extension).__name__}, not a ComfyExtension")
    await extension.on_load()
    classes = await extension.get_node_list()
    if not isinstance(classes, list):
        raise TypeError(f"get_node_list() returned {type(classes).__name__}, not a list of node classes")
    return classes


def load_v3_extension(module: ModuleType) -> V3Nodes:
    """The nodes of a pack module defining `comfy_entrypoint` (raises if the extension itself fails to load).

    Each class is named by its schema's node_id. An extension may list classic classes that
    carry a `GET_SCHEMA` (ComfyUI-ppm does): they come back in `classic`.
    """
    nodes = V3Nodes()
    for cls in run_sync(_extension_classes(module)):
        try:
            schema = cls.GET_SCHEMA()
        except Exception as error:  # noqa: BLE001 - one bad node must not stop its pack
            nodes.fail(getattr(cls, "__name__", repr(cls)), error)
            continue
        if is_v3_class(cls):
            nodes.add_v3(schema.node_id, cls, schema.display_name, module.__name__)
        else:
            nodes.add_classic(schema.node_id, cls, schema.display_name)
    return nodes
