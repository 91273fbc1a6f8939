"""ExecutionBlocker output values: the nodes receiving one are skipped, silently or with an error."""

from __future__ import annotations


def gated(block: bool, message: str = "") -> dict:
    return {
        "1": {"class_type": "Constant", "inputs": {"value": 4.0}},
        "2": {"class_type": "Gate", "inputs": {"x": ["1", 0], "block": block, "message": message}},
        "3": {"class_type": "Scale", "inputs": {"x": ["2", 0], "factor": 2.0, "mode": "mul", "enabled": True}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "gated"}},
        "5": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": "free"}},
    }


def test_open_gate_passes_the_value(flow_session):
    result = flow_session.run(gated(False))
    assert result.ok and result.ui_outputs["4"]["values"] == [8.0]


def test_silent_blocker_skips_its_consumers_and_the_run_succeeds(flow_session, calls):
    events = []
    result = flow_session.run(gated(True), on_event=lambda e, d: events.append((e, d)))
    assert result.ok and set(result.ui_outputs) == {"5"}  # the other output still ran
    assert calls["Scale"] == 0 and calls["Show"] == 1
    assert [e for e, _ in events].count("execution_error") == 0


def test_blocker_with_a_message_fails_the_node_it_reaches_once_the_rest_has_run(flow_session, calls):
    events = []
    result = flow_session.run(gated(True, "no entry"), on_event=lambda e, d: events.append((e, d)))
    assert result.status == "error" and calls["Scale"] == 0 and result.ui_outputs["5"]["values"] == [4.0]
    error = result.error
    assert error["node_id"] == "3" and error["node_type"] == "Scale"  # the consumer, as in ComfyUI
    assert error["exception_message"] == "Execution Blocked: no entry" and error["exception_type"] == "ExecutionBlocked"
    assert [e for e, _ in events][-2:] == ["execution_error", "executing"]


def test_blocked_nodes_are_not_cached_so_the_error_is_reported_again(flow_session, calls):
    flow_session.run(gated(True, "no entry"))
    calls.clear()
    result = flow_session.run(gated(True, "no entry"))
    assert result.status == "error" and result.error["node_id"] == "3" and calls["Constant"] == 0
    assert flow_session.run(gated(False)).ui_outputs["4"]["values"] == [8.0]


def test_a_blocked_list_element_blocks_only_its_own_call(flow_session, calls):
    wf = {
        "1": {"class_type": "Count", "inputs": {"n": 3}},
        "2": {"class_type": "BlockAt", "inputs": {"x": ["1", 0], "at": 1.0}},
        "3": {"class_type": "Scale", "inputs": {"x": ["2", 0], "factor": 10.0, "mode": "mul", "enabled": True}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}},
    }
    result = flow_session.run(wf)
    assert result.ok and result.ui_outputs["4"]["values"] == [0.0, 20.0] and calls["Scale"] == 2
