"""What joins a node's cache key as in ComfyUI (its IS_CHANGED fingerprint, its undeclared **kwargs inputs),
and the hidden values the engine supplies."""

from __future__ import annotations

from .flow_pack import SEEN, VERSION


def versioned() -> dict:
    return {"1": {"class_type": "Constant", "inputs": {"value": 2.0}},
            "2": {"class_type": "Versioned", "inputs": {"x": ["1", 0]}},
            "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "x"}}}


def test_fingerprint_reruns_the_node_when_it_changes(flow_session, calls):
    VERSION["value"] = 0
    flow_session.run(versioned())
    assert SEEN == [("fingerprint", None)]  # linked inputs have no value yet: None, as ComfyUI passes them
    calls.clear()
    flow_session.run(versioned())
    assert calls["Versioned"] == 0
    VERSION["value"] = 1
    result = flow_session.run(versioned())
    assert calls["Versioned"] == 1 and result.ran == ["2", "3"]


def variadic(bonus: float, junk: str = "a") -> dict:
    return {"1": {"class_type": "Constant", "inputs": {"value": 1.0}},
            "2": {"class_type": "Constant", "inputs": {"value": 2.0}},
            "3": {"class_type": "Variadic", "inputs": {"input1": ["1", 0], "input2": ["2", 0], "bonus": bonus}},
            "4": {"class_type": "Add", "inputs": {"a": ["3", 0], "b": ["1", 0], "offset": 0, "junk": junk}},
            "5": {"class_type": "Show", "inputs": {"value": ["4", 0], "label": "x"}}}


def test_undeclared_inputs_reach_a_kwargs_node_and_join_its_key(flow_session, calls):
    result = flow_session.run(variadic(10.0))
    assert result.ui_outputs["5"]["values"] == [14.0]  # (1 + 2 + 10) + 1
    calls.clear()
    result = flow_session.run(variadic(20.0))
    assert result.ui_outputs["5"]["values"] == [24.0] and calls["Variadic"] == 1


def test_undeclared_inputs_of_other_nodes_are_ignored(flow_session, calls):
    flow_session.run(variadic(10.0))
    calls.clear()
    assert flow_session.run(variadic(10.0, junk="b")).ran == [] and sum(calls.values()) == 0


def test_hidden_dynprompt_and_prompt_id_are_supplied_and_unknown_kinds_are_none(flow_session):
    wf = {"1": {"class_type": "Constant", "inputs": {"value": 2.0}},
          "2": {"class_type": "HiddenValues", "inputs": {"x": ["1", 0]}},
          "3": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "x"}}}
    assert flow_session.run(wf, prompt_id="p-1").ok
    assert SEEN == [("hidden", "Constant", "p-1", None)]
