"""Execution order, pruning, caching counted by actual runs, LRU eviction, interrupt, failures, events."""

from __future__ import annotations

import threading

import pytest

from sigmagraph.engine.cache import OutputCache
from sigmagraph.engine.executor import Executor
from sigmagraph.engine.validation import InvalidWorkflow, validate


def graph():
    return {
        "1": {"class_type": "Constant", "inputs": {"value": 2.0}},
        "2": {"class_type": "Constant", "inputs": {"value": 3.0}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0], "offset": 0}},
        "4": {"class_type": "Scale", "inputs": {"x": ["3", 0], "factor": 2.0, "mode": "mul", "enabled": True}},
        "5": {"class_type": "Show", "inputs": {"value": ["4", 0], "label": "scaled"}},
        "6": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "b"}},
        "7": {"class_type": "Constant", "inputs": {"value": 100.0}},  # reaches no output
    }


def test_order_is_topological_and_pruned(registry, config):
    workflow = validate(graph(), registry, config)
    order = workflow.order
    assert "7" not in order and set(order) == {"1", "2", "3", "4", "5", "6"}
    for nid, inst in workflow.nodes.items():
        for src, _ in inst.links.values():
            if nid in order:
                assert order.index(src) < order.index(nid)


def test_results_and_unreached_nodes_never_run(session, calls):
    result = session.run(graph())
    assert result.ok and result.ui_outputs["5"]["values"] == [10.0] and result.ui_outputs["6"]["values"] == [3.0]
    assert calls["Constant"] == 2  # node 7 never ran


def test_nothing_changed_reruns_nothing(session, calls):
    session.run(graph())
    calls.clear()
    result = session.run(graph())
    assert sum(calls.values()) == 0 and result.ran == [] and set(result.cached) == {"5", "6"}


def test_one_widget_change_reruns_that_node_and_descendants(session, calls):
    session.run(graph())
    calls.clear()
    wf = graph()
    wf["3"]["inputs"]["offset"] = 1
    result = session.run(wf)
    assert sorted(result.ran) == ["3", "4", "5"] and result.ui_outputs["5"]["values"] == [12.0]
    assert calls == {"Add": 1, "Scale": 1, "Show": 1}


def test_keys_do_not_depend_on_node_ids(session, calls):
    session.run(graph())
    calls.clear()
    renamed = {f"n{k}": {**v, "inputs": {name: ([f"n{val[0]}", val[1]] if isinstance(val, list) else val)
                                        for name, val in v["inputs"].items()}} for k, v in graph().items()}
    result = session.run(renamed)
    assert result.ran == [] and sum(calls.values()) == 0


def test_lru_eviction_under_byte_budget(registry, config, calls):
    budget = 3 * 4096 + 100  # three 1024-float tensors
    executor = Executor(registry, config, OutputCache(max_bytes=budget))

    def wf(seed):
        return {"1": {"class_type": "Zeros", "inputs": {"size": 1024, "seed": seed}},
                "2": {"class_type": "Sum", "inputs": {"t": ["1", 0]}},
                "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "s"}}}

    for seed in range(4):
        executor.run(wf(seed))
    assert executor.cache.nbytes <= budget
    calls.clear()
    executor.run(wf(3))  # most recent: cached
    assert calls["Zeros"] == 0


def test_output_cache_evicts_least_recently_used_unpinned():
    import torch

    cache = OutputCache(max_bytes=2 * 4096)
    for key in "abc":
        cache.put(key, ([torch.zeros(1024)],), None)
    assert "a" not in cache and "b" in cache and "c" in cache
    cache.get("b")  # b becomes most recent
    cache.put("d", ([torch.zeros(1024)],), None, pinned=["c"])
    assert "b" not in cache and "c" in cache and "d" in cache  # c pinned: b evicted instead


def test_shared_storage_counted_once():
    import torch

    from sigmagraph.engine.cache import measure_bytes

    t = torch.zeros(1000)
    assert measure_bytes({"a": t, "b": t[:10], "c": [t]}) == 4000


def test_no_cache_mode_keeps_nothing(registry, config, calls):
    executor = Executor(registry, config, OutputCache(enabled=False))
    executor.run(graph())
    calls.clear()
    executor.run(graph())
    assert calls["Constant"] == 2 and len(executor.cache) == 0


def test_always_run_node(session, calls):
    wf = graph()
    wf["4"] = {"class_type": "Clock", "inputs": {"x": ["3", 0]}}
    session.run(wf)
    calls.clear()
    result = session.run(wf)
    assert calls["Clock"] == 1 and calls["Add"] == 0 and "4" in result.ran


def test_failure_reports_error_and_keeps_cache(session, calls):
    wf = graph()
    wf["4"] = {"class_type": "Fail", "inputs": {"x": ["3", 0], "message": "kaput"}}
    events = []
    result = session.run(wf, on_event=lambda e, d: events.append((e, d)))
    assert result.status == "error"
    error = next(d for e, d in events if e == "execution_error")
    assert error["node_id"] == "4" and error["node_type"] == "Fail" and error["exception_message"] == "kaput"
    assert error["exception_type"].endswith("RuntimeError") and any("kaput" in line for line in error["traceback"])
    assert [e for e, _ in events][-2:] == ["execution_error", "executing"]
    calls.clear()
    result = session.run(graph())  # the upstream results computed before the failure are reused
    assert result.ok and calls["Add"] == 0 and calls["Constant"] == 0


def test_interrupt_stops_long_node_within_one_step(session, calls):
    wf = graph()
    wf["4"] = {"class_type": "Slow", "inputs": {"x": ["3", 0], "steps": 100000}}
    progress = []

    def on_event(event, data):
        if event == "progress":
            progress.append(data["value"])
            if data["value"] == 5:
                session.executor.interrupt.request()

    result = session.run(wf, on_event=on_event)
    assert result.status == "interrupted" and progress[-1] == 5
    session.executor.interrupt.clear()
    assert session.run(graph()).ok


def test_interrupt_for_other_prompt_is_ignored(session):
    session.executor.interrupt.request("someone-else")
    assert session.run(graph(), prompt_id="mine").ok


def test_interrupt_from_another_thread(session):
    wf = graph()
    wf["4"] = {"class_type": "Slow", "inputs": {"x": ["3", 0], "steps": 100000}}
    started = threading.Event()
    timer = threading.Thread(target=lambda: (started.wait(5), session.executor.interrupt.request()))
    timer.start()
    result = session.run(wf, on_event=lambda e, d: started.set() if e == "progress" else None)
    timer.join()
    assert result.status == "interrupted"


def test_event_sequence(session):
    events = []
    session.run(graph(), prompt_id="p1", on_event=lambda e, d: events.append((e, d)))
    names = [e for e, _ in events]
    assert names[0] == "execution_start" and names[1] == "execution_cached"
    assert names[-2:] == ["execution_success", "executing"] and events[-1][1]["node"] is None
    assert all(d["prompt_id"] == "p1" for _, d in events)
    finished = [d["node"] for e, d in events if e == "node_finished"]
    assert sorted(finished) == ["1", "2", "3", "4", "5", "6"]
    assert sum(1 for e in names if e in ("execution_success", "execution_error", "execution_interrupted")) == 1
    events.clear()
    session.run(graph(), prompt_id="p2", on_event=lambda e, d: events.append((e, d)))
    assert all(d["cached"] for e, d in events if e == "node_finished")
    assert {d["node"] for e, d in events if e == "executed"} == {"5", "6"}  # cached UI re-sent, as ComfyUI


def test_invalid_workflow_never_runs(session, calls):
    wf = graph()
    wf["3"]["inputs"]["offset"] = 99
    del wf["6"]  # the only other output: with it valid, it would run (see test_partial.py)
    with pytest.raises(InvalidWorkflow):
        session.run(wf)
    assert sum(calls.values()) == 0


def test_list_semantics_like_comfyui(registry, config):
    from sigmagraph.engine.classic import spec_from_classic

    class Numbers:
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"count": ("INT", {"default": 3, "min": 1, "max": 10})}}
        RETURN_TYPES = ("NUMBER",)
        OUTPUT_IS_LIST = (True,)
        FUNCTION = "make"

        def make(self, count):
            return ([float(i) for i in range(count)],)

    registry.add(spec_from_classic("Numbers", Numbers), strict_types=False)
    wf = {"1": {"class_type": "Numbers", "inputs": {"count": 3}},
          "2": {"class_type": "Constant", "inputs": {"value": 10.0}},
          "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0], "offset": 0}},
          "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}}}
    result = Executor(registry, config).run(wf)
    assert result.ui_outputs["4"]["values"] == [10.0, 11.0, 12.0]
