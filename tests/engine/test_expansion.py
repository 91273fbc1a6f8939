"""Node expansion: a node returning a graph whose nodes join the run, including loops that expand again."""

from __future__ import annotations

import pytest


def doubled(x: float, node: str = "DoublePlusOne", node_id: str = "2") -> dict:
    return {
        "1": {"class_type": "Constant", "inputs": {"value": x}},
        node_id: {"class_type": node, "inputs": {"x": ["1", 0]}},
        "3": {"class_type": "Show", "inputs": {"value": [node_id, 0], "label": "x"}},
    }


@pytest.mark.parametrize("node", ["DoublePlusOne", "DoublePlusOneDict"])
def test_expansion_into_a_small_graph(flow_session, calls, node):
    events = []
    result = flow_session.run(doubled(3.0, node), on_event=lambda e, d: events.append((e, d)))
    assert result.ok and result.ui_outputs["3"]["values"] == [7.0]  # 2 * 3 + 1
    assert {"2.one", "2.scale", "2.add"} <= set(result.ran) and calls["Scale"] == 1 and calls["Add"] == 1
    executing = {d["node"]: d["display_node"] for e, d in events if e == "executing" and d["node"]}
    assert executing["2.scale"] == "2" and executing["2.add"] == "2"  # shown as the node that expanded
    finished = [d["node"] for e, d in events if e == "node_finished"]
    assert finished.index("2.add") < finished.index("2") < finished.index("3")


def test_an_expanded_node_is_cached_with_its_result(flow_session, calls):
    flow_session.run(doubled(3.0))
    calls.clear()
    assert flow_session.run(doubled(3.0)).ran == [] and sum(calls.values()) == 0
    # Under another id the expanding node runs again (it asks for its id), but the nodes it adds
    # have the same inputs, hence the same keys: the one its result links to comes from the cache.
    result = flow_session.run(doubled(3.0, node_id="9"))
    assert result.ui_outputs["3"]["values"] == [7.0] and calls == {"DoublePlusOne": 1, "Show": 1}
    assert "9.add" in result.cached and not {"9.scale", "9.one"} & set(result.ran)


def test_an_expansion_that_feeds_itself_fails_the_expanding_node(flow_session):
    wf = doubled(1.0, node="Cyclic")
    result = flow_session.run(wf)
    assert result.status == "error" and result.error["node_id"] == "2"
    assert result.error["exception_type"].endswith("DependencyCycleError")


def loop(limit: float) -> dict:
    """counter = 0; do counter += 1 while counter < limit (ComfyUI's TestWhileLoop pattern)."""
    return {
        "1": {"class_type": "Constant", "inputs": {"value": 0.0}},
        "2": {"class_type": "LoopOpen", "inputs": {"condition": True, "value": ["1", 0]}},
        "3": {"class_type": "Constant", "inputs": {"value": 1.0}},
        "4": {"class_type": "Add", "inputs": {"a": ["2", 1], "b": ["3", 0], "offset": 0}},
        "5": {"class_type": "Constant", "inputs": {"value": limit}},
        "6": {"class_type": "Less", "inputs": {"a": ["4", 0], "b": ["5", 0]}},
        "7": {"class_type": "LoopClose", "inputs": {"flow_control": ["2", 0], "condition": ["6", 0],
                                                    "value": ["4", 0]}},
        "8": {"class_type": "Show", "inputs": {"value": ["7", 0], "label": "counter"}},
    }


def test_a_loop_expands_again_until_done(flow_session, calls):
    result = flow_session.run(loop(5.0))
    assert result.ok and result.ui_outputs["8"]["values"] == [5.0]
    assert calls["Add"] == 5 and calls["LoopOpen"] == 5  # the body ran for counter = 0, 1, 2, 3, 4


def test_a_loop_is_cached_and_its_iterations_too(flow_session, calls):
    flow_session.run(loop(5.0))
    calls.clear()
    result = flow_session.run(loop(5.0))
    assert result.ran == [] and sum(calls.values()) == 0 and result.ui_outputs["8"]["values"] == [5.0]
    # A higher limit re-runs the comparisons, but the iterations from 1 to 4 have the keys they had:
    # only the bodies started from 5 and 6 run.
    result = flow_session.run(loop(7.0))
    assert result.ui_outputs["8"]["values"] == [7.0] and calls["Add"] == 2 and calls["LoopOpen"] == 2
