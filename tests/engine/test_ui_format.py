"""Import of a hand-written ComfyUI UI-format workflow: widgets, reroutes, primitives, mute, bypass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sigmagraph.engine.ui_format import ui_to_api
from sigmagraph.engine.workflow import WorkflowError

DATA = Path(__file__).parent / "data"


def test_conversion(registry):
    api = ui_to_api(json.loads((DATA / "ui_workflow.json").read_text()), registry)
    assert set(api) == {"1", "2", "3", "5", "8"}  # reroute, primitive, note, muted and bypassed nodes drop
    assert api["1"]["inputs"] == {"value": 2.5} and api["1"]["_meta"]["pos"] == [10, 20]
    assert api["2"]["inputs"] == {"size": 16, "seed": 42}  # "randomize" control value skipped
    assert api["5"]["inputs"] == {"a": ["1", 0], "b": ["3", 0], "offset": 3}  # reroute followed, primitive literal
    assert api["5"]["_meta"]["title"] == "My sum"
    assert api["8"]["inputs"] == {"value": ["5", 0], "label": "total"}  # bypassed Scale passes its input through


def test_converted_workflow_runs(session):
    api = session.load(DATA / "ui_workflow.json")
    result = session.run(api)
    assert result.ok and result.ui_outputs["8"]["values"] == [2.5 + 42 * 16 + 3]


def test_bypassed_node_passes_its_same_slot_first(registry):
    # ComfyUI's ExecutableNodeDTO bypass: the input at the output's own slot index when its type fits,
    # even unlinked (then nothing is passed), before any other input of the wanted type.
    document = json.loads((DATA / "ui_workflow.json").read_text())
    add = next(n for n in document["nodes"] if n["id"] == 5)
    add["mode"], add["inputs"][0]["link"] = 4, None  # bypassed Add, slot 0 (a) unlinked, b linked
    document["nodes"] = [n for n in document["nodes"] if n["id"] != 4]
    document["links"] = [link for link in document["links"] if link[0] != 4]
    api = ui_to_api(document, registry)
    assert "5" not in api and api["8"]["inputs"] == {"label": "total"}


def test_malformed_document_is_a_workflow_error(registry):
    with pytest.raises(WorkflowError, match="nodes.0.type"):
        ui_to_api({"nodes": [{"id": 1}], "links": []}, registry)
