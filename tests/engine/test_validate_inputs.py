"""VALIDATE_INPUTS as ComfyUI reads it: the inputs it takes are trusted to it, and its string is the error."""

from __future__ import annotations

import pytest

from .flow_pack import SEEN


def feeding(node: str, **inputs) -> dict:
    wf = {"1": {"class_type": "Constant", "inputs": {"value": 2.0}},
          "2": {"class_type": "FloatValue", "inputs": {"value": 2.0}},
          "3": {"class_type": node, "inputs": inputs},
          "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "x"}}}
    return wf


def errors_of(session, wf) -> list[dict]:
    checked = session.validate(wf)
    assert not checked.ok
    return checked.report.node_errors["3"]["errors"]


@pytest.mark.parametrize("value,message", [(5, "Invalid type of input1: int"), ("foo", "Invalid type of input1: str")])
def test_union_type_literal_is_judged_by_the_node(flow_session, value, message):
    (error,) = errors_of(flow_session, feeding("Multiply", input1=value, input2=3.0))
    assert error["type"] == "custom_validation_failed" and error["message"] == message


def test_union_type_literal_the_node_accepts_runs(flow_session):
    assert flow_session.run(feeding("Multiply", input1=5.0, input2=3.0)).ui_outputs["4"]["values"] == [15.0]


def test_linked_inputs_reach_validation_as_none_and_their_types_are_still_checked(flow_session):
    result = flow_session.run(feeding("Multiply", input1=["2", 0], input2=3.0))
    assert result.ui_outputs["4"]["values"] == [6.0] and ("validate", None, 3.0) in SEEN
    (error,) = errors_of(flow_session, feeding("Multiply", input1=["1", 0], input2=3.0))  # NUMBER into IMAGE,FLOAT
    assert error["type"] == "return_type_mismatch"


def test_a_node_taking_input_types_checks_link_types_itself(flow_session):
    (error,) = errors_of(flow_session, feeding("TypedMultiply", input1=["1", 0], input2=3.0))
    assert error["type"] == "custom_validation_failed" and error["message"] == "Invalid type of input1: NUMBER"
    assert flow_session.run(feeding("TypedMultiply", input1=["2", 0], input2=3.0)).ui_outputs["4"]["values"] == [6.0]


def test_ranges_are_trusted_to_a_node_taking_every_input(flow_session):
    result = flow_session.run(feeding("Ranged", a=0.5, b=5.0))  # b's maximum is 1.0
    assert result.ui_outputs["4"]["values"] == [2.5]
    (error,) = errors_of(flow_session, feeding("Ranged", a=0.5, b=7.0))
    assert error["message"] == "7s are not allowed"
    (error,) = errors_of(flow_session, feeding("Ranged", a=0.5, b="x"))  # conversion still applies
    assert error["type"] == "invalid_input_type"


def test_custom_type_literal_trusted_to_an_async_validator(flow_session):
    assert flow_session.run(feeding("Custom", spec="abcd")).ui_outputs["4"]["values"] == [4.0]
    (error,) = errors_of(flow_session, feeding("Custom", spec=3))
    assert error["type"] == "custom_validation_failed" and error["message"] == "spec must be text, got 3"
