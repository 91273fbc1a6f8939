"""Engine overhead: validate + plan + execute for 500-node chains and wide graphs of trivial nodes,
and the cost of re-running a fully cached workflow. Prints a Markdown table.

    python benchmarks/engine.py
"""

from __future__ import annotations

import statistics
import sys
import time

from sigmagraph.engine import Config, Float, Registry, Socket, SocketType, node
from sigmagraph.engine.executor import Executor
from sigmagraph.engine.validation import validate

N = 500
REPEATS = 5


@node(returns=["NUMBER"])
def Value(value: float = Float(1.0)):
    return value


@node(returns=["NUMBER"])
def Increment(x=Socket("NUMBER")):
    return x + 1.0


@node(returns=["NUMBER"])
def Total(a=Socket("NUMBER"), b=Socket("NUMBER")):
    return a + b


@node(output_node=True)
def Sink(x=Socket("NUMBER")):
    return {"ui": {"value": [x]}}


def registry() -> Registry:
    reg = Registry()
    reg.register_type(SocketType(name="NUMBER"))
    for fn in (Value, Increment, Total, Sink):
        reg.add(fn.__node_spec__, "benchmark")
    return reg


def chain(n: int) -> dict:
    wf = {"0": {"class_type": "Value", "inputs": {"value": 0.0}}}
    for i in range(1, n - 1):
        wf[str(i)] = {"class_type": "Increment", "inputs": {"x": [str(i - 1), 0]}}
    wf[str(n - 1)] = {"class_type": "Sink", "inputs": {"x": [str(n - 2), 0]}}
    return wf


def wide(n: int) -> dict:
    """n/2 independent values summed pairwise into a binary tree, ending in one sink."""
    wf, level = {}, []
    for i in range(n // 2):
        wf[f"v{i}"] = {"class_type": "Value", "inputs": {"value": float(i)}}
        level.append(f"v{i}")
    k = 0
    while len(level) > 1:
        nxt = []
        for a, b in zip(level[::2], level[1::2]):
            wf[f"t{k}"] = {"class_type": "Total", "inputs": {"a": [a, 0], "b": [b, 0]}}
            nxt.append(f"t{k}")
            k += 1
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    wf["sink"] = {"class_type": "Sink", "inputs": {"x": [level[0], 0]}}
    return wf


def timed(fn) -> float:
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    reg, config = registry(), Config(cache_bytes=None)
    print("| graph | nodes | validate (ms) | cold run incl. validate (ms) | per node (µs) | fully cached re-run (ms) |")
    print("|---|---|---|---|---|---|")
    for name, build in (("chain", chain), ("wide", wide)):
        wf = build(N)
        validate_ms = timed(lambda: validate(wf, reg, config))
        cold_ms = timed(lambda: Executor(reg, config).run(wf))
        executor = Executor(reg, config)
        executor.run(wf)
        cached_ms = timed(lambda: executor.run(wf))
        print(f"| {name} | {len(wf)} | {validate_ms:.1f} | {cold_ms:.1f} | {cold_ms * 1000 / len(wf):.0f} "
              f"| {cached_ms:.1f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
