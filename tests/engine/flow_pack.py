"""Fixture nodes for ComfyUI's execution semantics: lazy inputs, blockers, expansions, loops, async nodes,
custom validation, fingerprints and undeclared inputs. `SEEN` records what the hooks were given,
`TIMES` when each async call ran; the nodes count their calls in testing_pack.CALLS."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from sigmagraph.engine import Boolean, Float, Hidden, Int, NodeOutput, NodeSpec, Socket, SocketType, String, node
from sigmagraph.engine.expansion import DynamicPrompt, ExecutionBlocker, is_link
from sigmagraph.engine.spec import OutputSpec, SocketInput

from .testing_pack import CALLS

SOCKET_TYPES = [SocketType(name=name) for name in ("BOOLEAN", "FLOW_CONTROL", "FLOAT", "IMAGE", "FOO")]
SEEN: list[tuple] = []
TIMES: dict[str, tuple[float, float]] = {}
VERSION = {"value": 0}  # what Versioned's fingerprint reports

# ------------------------------------------------------------------------------------------------
# Lazy inputs


def _switch_needs(choose: bool, on_true: Any = None, on_false: Any = None) -> list[str]:
    SEEN.append(("switch", choose, on_true, on_false))
    return ["on_true" if choose else "on_false"]


@node(returns=["NUMBER"], lazy_status=_switch_needs)
def LazySwitch(choose: bool = Boolean(True), on_true=Socket("NUMBER", lazy=True),
               on_false=Socket("NUMBER", lazy=True)):
    return on_true if choose else on_false


async def _first_positive_needs(a: Any = None, b: Any = None) -> list[str]:
    await asyncio.sleep(0)
    SEEN.append(("first_positive", a, b))
    if a is None:
        return ["a"]
    return ["b"] if a <= 0 else []


@node(returns=["NUMBER"], lazy_status=_first_positive_needs)
def FirstPositive(a=Socket("NUMBER", lazy=True), b=Socket("NUMBER", lazy=True)):
    """a if it is positive, else b: b is evaluated only when a is not positive."""
    return a if a > 0 else b


# ------------------------------------------------------------------------------------------------
# Blockers and lists


@node(returns=["NUMBER"])
def Gate(x=Socket("NUMBER"), block: bool = Boolean(False), message: str = String("")):
    return ExecutionBlocker(message or None) if block else x


@node(returns=[OutputSpec(type="NUMBER", name="values", is_list=True)])
def Count(n: int = Int(3, min=0, max=100)):
    return list(map(float, range(n)))


@node(returns=["NUMBER"])
def BlockAt(x=Socket("NUMBER"), at: float = Float(1.0)):
    """Blocks the one list element equal to `at`."""
    return ExecutionBlocker(None) if x == at else x


# ------------------------------------------------------------------------------------------------
# Expansion


def _double_plus_one(x: float, prefix: str) -> tuple[tuple, dict]:
    """An expansion computing 2x + 1 with the testing pack's nodes, and the link to its result."""
    graph = {
        prefix + "one": {"class_type": "Constant", "inputs": {"value": 1.0}},
        prefix + "scale": {"class_type": "Scale", "inputs": {"x": x, "factor": 2.0, "mode": "mul", "enabled": True}},
        prefix + "add": {"class_type": "Add", "inputs": {"a": [prefix + "scale", 0], "b": [prefix + "one", 0],
                                                         "offset": 0}},
    }
    return ([prefix + "add", 0],), graph


@node(returns=["NUMBER"])
def DoublePlusOne(x=Socket("NUMBER"), uid=Hidden.UNIQUE_ID):
    CALLS["DoublePlusOne"] += 1
    result, graph = _double_plus_one(x, f"{uid}.")
    return NodeOutput(result=result, expand=graph)


@node(returns=["NUMBER"])
def DoublePlusOneDict(x=Socket("NUMBER"), uid=Hidden.UNIQUE_ID):
    """The same in ComfyUI's dict form."""
    result, graph = _double_plus_one(x, f"{uid}.")
    return {"result": result, "expand": graph}


@node(returns=["NUMBER"])
def Cyclic(x=Socket("NUMBER"), uid=Hidden.UNIQUE_ID):
    """Expands into two nodes that feed each other (ComfyUI's TestDynamicDependencyCycle)."""
    a, b = f"{uid}.a", f"{uid}.b"
    return NodeOutput(result=([b, 0],), expand={
        a: {"class_type": "Add", "inputs": {"a": x, "b": [b, 0], "offset": 0}},
        b: {"class_type": "Add", "inputs": {"a": [a, 0], "b": x, "offset": 0}},
    })


@node(returns=["BOOLEAN"])
def Less(a=Socket("NUMBER"), b=Socket("NUMBER")):
    return a < b


@node(returns=["FLOW_CONTROL", ("*", "value")])
def LoopOpen(condition: bool = Boolean(True), value=Socket("*", optional=True)):
    CALLS["LoopOpen"] += 1
    return "stub", value


def _loop_body(dynprompt: DynamicPrompt, close_id: str, open_id: str) -> list[str]:
    """The nodes on the paths from the loop's open node to its close node, both included."""
    sources: dict[str, list[str]] = {}
    stack = [close_id]
    while stack:
        nid = stack.pop()
        if nid not in sources:
            sources[nid] = [v[0] for v in dynprompt.get_node(nid)["inputs"].values() if is_link(v)]
            stack.extend(sources[nid])
    body = {open_id}
    while grown := {nid for nid, srcs in sources.items() if nid not in body and body.intersection(srcs)}:
        body |= grown
    return [nid for nid in sources if nid in body]


@node(returns=[("*", "value")])
def LoopClose(flow_control=Socket("FLOW_CONTROL", raw_link=True), condition=Socket("BOOLEAN"),
              value=Socket("*", optional=True), dynprompt=Hidden.DYNPROMPT, uid=Hidden.UNIQUE_ID):
    """While `condition`, expands into a copy of the loop body (itself included) started from `value`,
    as ComfyUI's TestWhileLoopClose does."""
    if not condition:
        return value
    open_id, body = flow_control[0], _loop_body(dynprompt, uid, flow_control[0])

    def copy_of(nid: str) -> str:
        return f"{uid}." + ("Recurse" if nid == uid else nid)

    graph = {}
    for nid in body:
        original = dynprompt.get_node(nid)
        inputs = {k: [copy_of(v[0]), v[1]] if is_link(v) and v[0] in body else v for k, v in original["inputs"].items()}
        graph[copy_of(nid)] = {"class_type": original["class_type"], "inputs": inputs, "override_display_id": nid}
    graph[copy_of(open_id)]["inputs"]["value"] = value
    return NodeOutput(result=([copy_of(uid), 0],), expand=graph)


# ------------------------------------------------------------------------------------------------
# Async


@node(returns=["NUMBER"])
async def Sleepy(x=Socket("NUMBER"), seconds: float = Float(0.3, min=0.0, max=5.0), uid=Hidden.UNIQUE_ID):
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    TIMES[uid] = (start, time.perf_counter())
    return x


@node(returns=["NUMBER"])
def Here(x=Socket("NUMBER")):
    """Records the thread it runs on."""
    SEEN.append(("thread", threading.get_ident()))
    return x


def _must_not_block(**_: Any) -> Any:
    raise AssertionError("the executor called the blocking function of a node with function_async")


async def _negate_async(x: float) -> float:
    await asyncio.sleep(0.01)
    return -x


NEGATE_ASYNC = NodeSpec(name="NegateAsync", display_name="NegateAsync", inputs=(SocketInput(name="x", type="NUMBER"),),
                        outputs=(OutputSpec(type="NUMBER", name="NUMBER"),), function=_must_not_block,
                        function_async=_negate_async)

# ------------------------------------------------------------------------------------------------
# Custom validation (ComfyUI's TestCustomValidation nodes)


def _float_or_image(input1: Any = None, input2: Any = None) -> bool | str:
    SEEN.append(("validate", input1, input2))
    for name, value in (("input1", input1), ("input2", input2)):
        if value is not None and not isinstance(value, float):
            return f"Invalid type of {name}: {type(value).__name__}"
    return True


@node(returns=["NUMBER"], validate_inputs=_float_or_image)
def Multiply(input1=Socket("IMAGE,FLOAT"), input2=Socket("IMAGE,FLOAT")):
    return input1 * input2


def _linked_types_ok(input_types: dict[str, str], input1: Any = None, input2: Any = None) -> bool | str:
    for name, kind in input_types.items():
        if kind not in ("IMAGE", "FLOAT"):
            return f"Invalid type of {name}: {kind}"
    return True


@node(returns=["NUMBER"], validate_inputs=_linked_types_ok)
def TypedMultiply(input1=Socket("IMAGE,FLOAT"), input2=Socket("IMAGE,FLOAT")):
    return input1 * input2


def _no_sevens(**values: Any) -> bool | str:
    return "7s are not allowed" if values["b"] == 7.0 else True


@node(returns=["NUMBER"], validate_inputs=_no_sevens)
def Ranged(a: float = Float(0.5, min=0.0, max=1.0), b: float = Float(0.5, min=0.0, max=1.0)):
    return a * b


async def _spec_is_text(spec: Any) -> bool | str:
    await asyncio.sleep(0)
    return True if isinstance(spec, str) else f"spec must be text, got {spec!r}"


@node(returns=["NUMBER"], validate_inputs=_spec_is_text)
def Custom(spec=Socket("FOO")):
    """A custom socket type given a literal, trusted to its (async) validate_inputs."""
    return float(len(spec))


@node(returns=["FLOAT"])
def FloatValue(value: float = Float(1.0)):
    return value


# ------------------------------------------------------------------------------------------------
# Fingerprints, undeclared inputs, hidden values


def _version(x: Any = None, **_: Any) -> int:
    SEEN.append(("fingerprint", x))
    return VERSION["value"]


@node(returns=["NUMBER"], fingerprint=_version)
def Versioned(x=Socket("NUMBER")):
    CALLS["Versioned"] += 1
    return x


def _variadic(input1: float, **others: Any) -> float:
    CALLS["Variadic"] += 1
    return input1 + sum(others.values())


VARIADIC = NodeSpec(name="Variadic", display_name="Variadic", inputs=(SocketInput(name="input1", type="NUMBER"),),
                    outputs=(OutputSpec(type="NUMBER", name="NUMBER"),), function=_variadic,
                    accepts_extra_inputs=True)


def _hidden_seen(x: float, dynprompt: Any, prompt_id: Any, token: Any) -> float:
    SEEN.append(("hidden", dynprompt.get_node("1")["class_type"], prompt_id, token))
    return x


HIDDEN_VALUES = NodeSpec(name="HiddenValues", display_name="HiddenValues",
                         inputs=(SocketInput(name="x", type="NUMBER"),),
                         hidden={"dynprompt": "DYNPROMPT", "prompt_id": "PROMPT_ID", "token": "AUTH_TOKEN_COMFY_ORG"},
                         outputs=(OutputSpec(type="NUMBER", name="NUMBER"),), function=_hidden_seen)

SPECS = [NEGATE_ASYNC, VARIADIC, HIDDEN_VALUES]  # registered by the fixture: plain specs, not decorated functions
