"""A node pack of trivial nodes for the engine tests; `CALLS` counts how often each node ran."""

from __future__ import annotations

import time
from collections import Counter

import torch

from sigmagraph.engine import (ALWAYS_RUN, Boolean, Combo, Float, Hidden, Int, NodeOutput, Socket, SocketType,
                               String, node)

CALLS: Counter = Counter()
SOCKET_TYPES = [SocketType(name="NUMBER", color="#88cc88"), SocketType(name="TENSOR", color="#cc8888"),
                SocketType(name="TEXT")]


@node(returns=["NUMBER"], category="test")
def Constant(value: float = Float(1.0, min=-1000.0, max=1000.0)):
    """Outputs its value."""
    CALLS["Constant"] += 1
    return value


@node(returns=["NUMBER"], category="test")
def Add(a=Socket("NUMBER"), b=Socket("NUMBER"), offset: int = Int(0, min=-10, max=10)):
    CALLS["Add"] += 1
    return a + b + offset


@node(returns=["NUMBER"], category="test")
def Scale(x=Socket("NUMBER"), factor: float = 2.0, mode=Combo(["mul", "div"], default="mul"),
          enabled: bool = Boolean(True)):
    CALLS["Scale"] += 1
    if not enabled:
        return x
    return x * factor if mode == "mul" else x / factor


@node(returns=["TENSOR"], category="test")
def Zeros(size: int = Int(1024, min=1, max=1 << 30), seed: int = Int(0, min=0, control_after_generate=True)):
    """A float32 tensor of `size` elements: 4*size bytes in the cache."""
    CALLS["Zeros"] += 1
    return torch.full((size,), float(seed))


@node(returns=["NUMBER"], category="test")
def Sum(t=Socket("TENSOR")):
    CALLS["Sum"] += 1
    return float(t.sum())


@node(returns=["NUMBER"], category="test")
def Slow(x=Socket("NUMBER"), steps: int = Int(10, min=1, max=100000), ctx=Hidden.CONTEXT):
    """Reports progress every step and honours the interrupt flag."""
    CALLS["Slow"] += 1
    for i in range(steps):
        time.sleep(0.001)
        ctx.progress(i + 1, steps)
    return x


@node(returns=["NUMBER"], category="test")
def Fail(x=Socket("NUMBER"), message: str = String("boom")):
    CALLS["Fail"] += 1
    raise RuntimeError(message)


@node(returns=["NUMBER"], category="test", always_run=True)
def Clock(x=Socket("NUMBER")):
    """Always runs (side effects that must repeat)."""
    CALLS["Clock"] += 1
    return x


@node(category="test", output_node=True)
def Show(value=Socket("NUMBER"), label: str = String("result")):
    """An output node reporting its value in the UI payload."""
    CALLS["Show"] += 1
    return NodeOutput(ui={"values": [value], "label": label})


@node(returns=["TEXT"], category="test")
def Text(text: str = String("", multiline=True)):
    return text
