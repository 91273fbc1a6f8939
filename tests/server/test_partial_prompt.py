"""POST /prompt with invalid outputs beside valid ones (200, node_errors listed) and partial_execution_targets."""

from __future__ import annotations

import pytest

from .conftest import finished, queue

pytestmark = pytest.mark.asyncio


def two_outputs(bad: bool = False) -> dict:
    return {"1": {"class_type": "Constant", "inputs": {"value": 5000.0 if bad else 1.0}},
            "2": {"class_type": "Constant", "inputs": {"value": 2.0}},
            "3": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": "one"}},
            "4": {"class_type": "Show", "inputs": {"value": ["2", 0], "label": "two"}}}


async def test_valid_outputs_are_queued_and_invalid_ones_listed(client):
    answer = await queue(client, two_outputs(bad=True))
    errors = answer["node_errors"]
    assert set(errors) == {"1"} and errors["1"]["dependent_outputs"] == ["3"]
    assert errors["1"]["errors"][0]["type"] == "value_bigger_than_max"
    entry = await finished(client, answer["prompt_id"])
    assert entry["outputs"] == {"4": {"values": [2.0], "label": ["two"]}} and entry["prompt"][4] == ["4"]


async def test_partial_execution_targets_run_only_the_named_outputs(client):
    answer = await queue(client, two_outputs(), partial_execution_targets=["3"])
    assert answer["node_errors"] == {}
    entry = await finished(client, answer["prompt_id"])
    assert set(entry["outputs"]) == {"3"} and entry["prompt"][4] == ["3"]


async def test_no_valid_output_is_still_400(client):
    response = await client.post("/prompt", json={"prompt": two_outputs(bad=True), "partial_execution_targets": ["3"]})
    assert response.status == 400 and (await response.json())["node_errors"]["1"]["dependent_outputs"] == ["3"]
