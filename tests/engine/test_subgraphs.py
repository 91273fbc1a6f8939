"""Subgraphs and group nodes in UI-format files, flattened as ComfyUI's front end does.

Each expected API document is written by hand from ComfyUI's rules (graphToPrompt over
ExecutableNodeDTO, SubgraphNode's promoted widgets, GroupNodeConfig): inner ids are the path of
instance ids joined by ':'; an instance input fed from outside continues to the inner node; an
unlinked promoted input gives the instance's widget value, else the inner widget's own value; a
muted or bypassed instance mutes or bypasses its contents.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sigmagraph.engine.ui_format import ui_to_api
from sigmagraph.engine.workflow import WorkflowError

DATA = Path(__file__).parent / "data"
SCALER = "a1b2c3d4-0000-4000-8000-000000000001"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def inputs(api: dict) -> dict:
    return {node_id: (node["class_type"], node["inputs"]) for node_id, node in api.items()}


def test_one_level_subgraph_with_a_promoted_widget(registry):
    api = ui_to_api(load("subgraph_one_level.json"), registry)
    # The instance's widgets_values [3.0] is the value of its one promoted input, `factor`.
    assert api["12:5"]["inputs"] == {"x": ["1", 0], "factor": 3.0, "mode": "mul", "enabled": True}
    assert api["8"]["inputs"] == {"value": ["12:5", 0], "label": "twelve"}
    assert api["12:5"]["_meta"]["title"] == "Scale" and "12" not in api


def test_instance_values_skip_control_after_generate_values(registry):
    # Instance 16 promotes Zeros' seed then size; its values [42, "randomize", 8] are longer than its
    # two promoted inputs, so the seed's "control after generate" value is skipped.
    api = ui_to_api(load("subgraph_one_level.json"), registry)
    assert api["16:3"]["inputs"] == {"size": 8, "seed": 42}
    assert api["16:4"]["inputs"] == {"t": ["16:3", 0]} and api["11"]["inputs"]["value"] == ["16:4", 0]


def test_an_instance_used_twice_has_two_sets_of_ids(registry):
    api = ui_to_api(load("subgraph_one_level.json"), registry)
    assert [nid for nid in api if nid.endswith(":5")] == ["12:5", "13:5", "15:5"]
    # Instance 13 gives no value: the promoted widget keeps the inner widget's own value.
    assert api["13:5"]["inputs"] == {"x": ["1", 0], "factor": 10.0, "mode": "mul", "enabled": True}
    assert api["9"]["inputs"]["value"] == ["13:5", 0]


def test_proxy_widgets_set_promoted_and_unpromoted_inner_widgets(registry):
    # proxyWidgets [["5", "factor"], ["5", "mode"]] with values [6.0, "div"]: factor is the promoted
    # input, mode a widget no subgraph input feeds; both take the instance's values.
    api = ui_to_api(load("subgraph_one_level.json"), registry)
    assert api["15:5"]["inputs"] == {"x": ["1", 0], "factor": 6.0, "mode": "div", "enabled": True}


def test_nested_subgraphs_and_an_input_fed_by_another_instance(registry):
    api = ui_to_api(load("subgraph_nested.json"), registry)
    # Both instances promote `offset` two levels down, where it feeds Add's offset and then Constant's
    # value. Instance 20 gives no value: the promoted widget starts as the first inner widget's (Add's
    # 1), and every inner input it feeds reads the promoted widget, Constant's too.
    assert inputs(api) == {
        "1": ("Constant", {"value": 1.5}),
        "20:7:3": ("Add", {"a": ["1", 0], "b": ["20:7:4", 0], "offset": 1}),
        "20:7:4": ("Constant", {"value": 1}),
        "20:8": ("Scale", {"x": ["20:7:3", 0], "factor": 2.0, "mode": "mul", "enabled": True}),
        # instance 21's input is instance 20's output: the inner node feeding 20's subgraph output
        "21:7:3": ("Add", {"a": ["20:8", 0], "b": ["21:7:4", 0], "offset": 3}),
        "21:7:4": ("Constant", {"value": 3}),
        "21:8": ("Scale", {"x": ["21:7:3", 0], "factor": 2.0, "mode": "mul", "enabled": True}),
        "30": ("Show", {"value": ["21:8", 0], "label": "result"}),
    }


def test_proxy_widget_of_a_nested_instance(registry):
    # Outer no longer promotes offset; instance 20 sets it on its inner instance 7 through a proxy widget.
    document = load("subgraph_nested.json")
    outer = document["definitions"]["subgraphs"][0]
    del outer["inputs"][1], outer["links"][3]
    outer["nodes"][0]["inputs"][1]["link"] = None
    document["nodes"][1].update(properties={"proxyWidgets": [["7", "offset"]]}, widgets_values=[7])
    document["nodes"][2].update(inputs=document["nodes"][2]["inputs"][:1], widgets_values=[])
    api = ui_to_api(document, registry)
    assert (api["20:7:3"]["inputs"]["offset"], api["20:7:4"]["inputs"]["value"]) == (7, 7)
    assert (api["21:7:3"]["inputs"]["offset"], api["21:7:4"]["inputs"]["value"]) == (1, 1)


def test_flattened_workflow_runs_and_events_name_inner_ids(session):
    events = []
    result = session.run(session.load(DATA / "subgraph_nested.json"), on_event=lambda e, d: events.append((e, d)))
    # ((1.5 + 1 + 1) * 2 + 3 + 3) * 2
    assert result.ok and result.ui_outputs["30"]["values"] == [26.0]
    executing = {d["node"] for e, d in events if e == "executing"}
    assert {"20:7:3", "20:7:4", "20:8", "21:7:3", "21:7:4", "21:8", "30"} <= executing


def test_validation_errors_name_inner_ids(session):
    document = load("subgraph_one_level.json")
    document["nodes"][1]["widgets_values"] = ["much"]  # instance 12's promoted `factor`
    report = session.validate(ui_to_api(document, session.registry)).report  # other outputs may stay valid
    assert set(report.node_errors) == {"12:5"}
    assert report.node_errors["12:5"]["errors"][0]["extra_info"]["input_name"] == "factor"


def test_muted_and_bypassed_instances_and_ui_nodes_inside(registry):
    api = ui_to_api(load("subgraph_modes.json"), registry)
    assert inputs(api) == {
        "1": ("Constant", {"value": 2.0}),
        # the Reroute inside is followed to the instance input; the PrimitiveNode inside gives factor
        "10:3": ("Scale", {"x": ["1", 0], "factor": 4.0, "mode": "mul", "enabled": True}),
        "20": ("Show", {"value": ["10:3", 0], "label": "plain"}),
        "21": ("Show", {"value": ["1", 0], "label": "bypassed"}),  # the bypassed instance passes x through
        "22": ("Show", {"label": "muted"}),  # fed by a muted instance: the input is missing
    }


def test_legacy_group_node(registry):
    api = ui_to_api(load("group_node.json"), registry)
    # widgets_values run over the inner widgets node by node (Zeros' seed has a control value);
    # inputs are the inner sockets no inner link feeds; output 1 is Scale's (Add's feeds Scale only).
    assert inputs(api) == {
        "1": ("Constant", {"value": 2.0}),
        "2": ("Constant", {"value": 3.0}),
        "5:0": ("Zeros", {"size": 8, "seed": 42}),
        "5:1": ("Add", {"a": ["1", 0], "b": ["2", 0], "offset": 1}),
        "5:2": ("Scale", {"x": ["5:1", 0], "factor": 4.0, "mode": "div", "enabled": True}),
        "6": ("Show", {"value": ["5:2", 0], "label": "grouped"}),
    }


def scaler_document() -> dict:
    return copy.deepcopy(load("subgraph_one_level.json"))


def test_unknown_definition_is_named(registry):
    document = scaler_document()
    document["nodes"][1]["type"] = "00000000-0000-4000-8000-00000000dead"
    with pytest.raises(WorkflowError, match=r"node 12 .*00000000-0000-4000-8000-00000000dead"):
        ui_to_api(document, registry)


def test_link_to_a_missing_output_slot_is_named(registry):
    document = scaler_document()
    document["links"][3][2] = 4  # Show 8 now reads output 4 of instance 12, which has one output
    with pytest.raises(WorkflowError, match=r"node 12 \(subgraph 'Scaler'\): .*output 4.* 1 output"):
        ui_to_api(document, registry)


def test_link_from_a_missing_subgraph_input_is_named(registry):
    document = scaler_document()
    document["definitions"]["subgraphs"][0]["links"][0]["origin_slot"] = 7
    with pytest.raises(WorkflowError, match=r"node 12 \(subgraph 'Scaler'\): .*input 7.* 2 input"):
        ui_to_api(document, registry)


def test_a_definition_containing_itself_is_refused(registry):
    document = scaler_document()
    inner = document["definitions"]["subgraphs"][0]["nodes"]
    inner.append({"id": 9, "type": SCALER, "mode": 0, "inputs": [], "outputs": []})
    with pytest.raises(WorkflowError, match=r"node 12:9 \(subgraph 'Scaler'\): .*instance of itself"):
        ui_to_api(document, registry)


def test_an_instance_feeding_itself_is_refused(registry):
    # Scaler's output now comes straight from its input x, and instance 12's output feeds its own x.
    document = scaler_document()
    document["definitions"]["subgraphs"][0]["links"][2].update(origin_id=-10, origin_slot=0)
    document["nodes"][1]["inputs"][0]["link"] = 9
    document["links"].append([9, 12, 0, 12, 0, "NUMBER"])
    with pytest.raises(WorkflowError, match=r"link \d+ feeds itself"):
        ui_to_api(document, registry)


def test_unknown_group_node_is_named(registry):
    document = load("group_node.json")
    document["nodes"][2]["type"] = "workflow>Tripler"
    with pytest.raises(WorkflowError, match=r"node 5 .*'Tripler'"):
        ui_to_api(document, registry)
