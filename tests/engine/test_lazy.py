"""Lazy inputs (ComfyUI's check_lazy_status): an input the node does not ask for is never evaluated."""

from __future__ import annotations

from .flow_pack import SEEN


def switch(choose: bool, on_false: str = "Constant") -> dict:
    return {
        "1": {"class_type": "Constant", "inputs": {"value": 1.0}},
        "2": ({"class_type": "Constant", "inputs": {"value": 2.0}} if on_false == "Constant"
              else {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "evaluated"}}),
        "3": {"class_type": "LazySwitch", "inputs": {"choose": choose, "on_true": ["1", 0], "on_false": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}},
    }


def test_switch_runs_only_the_chosen_branch(flow_session, calls):
    events = []
    result = flow_session.run(switch(True), on_event=lambda e, d: events.append((e, d)))
    assert result.ok and result.ui_outputs["4"]["values"] == [1.0]
    assert calls["Constant"] == 1 and "2" not in result.ran + result.cached
    assert "2" not in {d["node"] for e, d in events if e == "executing"}
    # asked with nothing evaluated, then again once on_true is there (it asks for nothing new)
    assert SEEN == [("switch", True, None, None), ("switch", True, 1.0, None)]


def test_a_branch_not_taken_may_even_fail(flow_session, calls):
    result = flow_session.run(switch(True, on_false="Fail"))
    assert result.ok and result.ui_outputs["4"]["values"] == [1.0] and calls["Fail"] == 0
    assert flow_session.run(switch(False, on_false="Fail")).status == "error" and calls["Fail"] == 1


def test_switching_runs_the_other_branch_once(flow_session, calls):
    flow_session.run(switch(True))
    calls.clear()
    result = flow_session.run(switch(False))
    assert result.ui_outputs["4"]["values"] == [2.0] and calls["Constant"] == 1 and "2" in result.ran
    calls.clear()
    result = flow_session.run(switch(False))
    assert result.ran == [] and sum(calls.values()) == 0


def first_positive(a: float, b: float) -> dict:
    return {
        "1": {"class_type": "Constant", "inputs": {"value": a}},
        "2": {"class_type": "Constant", "inputs": {"value": b}},
        "3": {"class_type": "FirstPositive", "inputs": {"a": ["1", 0], "b": ["2", 0]}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}},
    }


def test_async_lazy_status_is_asked_again_until_it_needs_nothing_new(flow_session, calls):
    result = flow_session.run(first_positive(3.0, 5.0))
    assert result.ui_outputs["4"]["values"] == [3.0] and calls["Constant"] == 1
    assert SEEN == [("first_positive", None, None), ("first_positive", 3.0, None)]
    SEEN.clear()
    calls.clear()
    result = flow_session.run(first_positive(-1.0, 5.0))
    assert result.ui_outputs["4"]["values"] == [5.0] and calls["Constant"] == 2
    assert SEEN == [("first_positive", None, None), ("first_positive", -1.0, None), ("first_positive", -1.0, 5.0)]


def test_lazy_inputs_still_take_part_in_the_cache_key(flow_session, calls):
    flow_session.run(switch(True))
    calls.clear()
    changed = switch(True)
    changed["2"]["inputs"]["value"] = 3.0  # the branch not taken: ComfyUI keys every link, lazy or not
    result = flow_session.run(changed)
    assert sorted(result.ran) == ["3", "4"] and calls["Constant"] == 0


def test_an_input_asked_for_after_its_source_was_released_runs_it_again_without_a_cache(registry, config, calls):
    from sigmagraph.engine.cache import OutputCache
    from sigmagraph.engine.executor import Executor

    from . import flow_pack

    registry.load_module(flow_pack, "flow")
    wf = {"1": {"class_type": "Constant", "inputs": {"value": -1.0}},
          "2": {"class_type": "Scale", "inputs": {"x": ["1", 0], "factor": 2.0, "mode": "mul", "enabled": True}},
          "3": {"class_type": "FirstPositive", "inputs": {"a": ["2", 0], "b": ["1", 0]}},
          "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}}}
    # Without a cache, node 1's output is dropped once node 2 (its only reader so far) is done;
    # FirstPositive then asks for b = node 1, which runs again.
    result = Executor(registry, config, OutputCache(enabled=False)).run(wf)
    assert result.ui_outputs["4"]["values"] == [-1.0] and calls["Constant"] == 2
    calls.clear()
    assert Executor(registry, config).run(wf).ui_outputs["4"]["values"] == [-1.0] and calls["Constant"] == 1
