"""One test per kind of validation error: node id, input name, error type and an actionable message."""

from __future__ import annotations

import pytest

from sigmagraph.engine.spec import ComboInput
from sigmagraph.engine.validation import validate


def chain(**overrides):
    wf = {
        "1": {"class_type": "Constant", "inputs": {"value": 2.0}},
        "2": {"class_type": "Constant", "inputs": {"value": 3.0}},
        "3": {"class_type": "Add", "inputs": {"a": ["1", 0], "b": ["2", 0], "offset": 0}},
        "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "sum"}},
    }
    for key, value in overrides.items():
        node_id, _, name = key.partition("__")
        if value is None:
            del wf[node_id]["inputs"][name]
        else:
            wf[node_id]["inputs"][name] = value
    return wf


def errors(document, registry, config):
    workflow = validate(document, registry, config)
    assert not workflow.ok and not workflow.nodes and not workflow.order
    return workflow.report


def only_error(report, node_id):
    errs = report.node_errors[node_id]["errors"]
    assert len(errs) == 1, errs
    return errs[0]


def test_valid_chain(registry, config):
    workflow = validate(chain(), registry, config)
    assert workflow.ok and workflow.report.ok and workflow.outputs == ("4",)
    assert workflow.order == ("1", "2", "3", "4")


def test_unknown_class_type(registry, config):
    wf = chain()
    wf["3"]["class_type"] = "Ad"
    err = only_error(errors(wf, registry, config), "3")
    assert err["type"] == "missing_node_type" and "'Ad'" in err["message"]


def test_missing_required_input(registry, config):
    err = only_error(errors(chain(**{"3__b": None}), registry, config), "3")
    assert err["type"] == "required_input_missing" and err["extra_info"]["input_name"] == "b"


def test_link_to_missing_node(registry, config):
    err = only_error(errors(chain(**{"3__b": ["99", 0]}), registry, config), "3")
    assert err["type"] == "missing_source_node" and "node 99" in err["message"]


def test_link_to_missing_output_index(registry, config):
    err = only_error(errors(chain(**{"3__b": ["2", 3]}), registry, config), "3")
    assert err["type"] == "bad_output_index" and "output 3 of node 2" in err["message"]


def test_malformed_link(registry, config):
    err = only_error(errors(chain(**{"3__b": ["2"]}), registry, config), "3")
    assert err["type"] == "bad_linked_input"


def test_socket_type_mismatch(registry, config):
    wf = chain()
    wf["5"] = {"class_type": "Zeros", "inputs": {"size": 4, "seed": 0}}
    wf["3"]["inputs"]["b"] = ["5", 0]
    err = only_error(errors(wf, registry, config), "3")
    assert err["type"] == "return_type_mismatch"
    assert err["message"] == "input 'b': expected NUMBER, got TENSOR from node 5 output 0"


def test_literal_for_socket(registry, config):
    err = only_error(errors(chain(**{"3__b": 5}), registry, config), "3")
    assert err["type"] == "invalid_input_type" and "must be linked to a NUMBER output" in err["message"]


@pytest.mark.parametrize("value,kind", [("abc", "invalid_input_type"), (1.5, "invalid_input_type"),
                                        (11, "value_bigger_than_max"), (-11, "value_smaller_than_min"),
                                        (True, "invalid_input_type")])
def test_int_widget(registry, config, value, kind):
    err = only_error(errors(chain(**{"3__offset": value}), registry, config), "3")
    assert err["type"] == kind and err["extra_info"]["input_name"] == "offset"


def test_int_widget_coerces_numeric_strings_like_comfyui(registry, config):
    workflow = validate(chain(**{"3__offset": "3"}), registry, config)
    assert workflow.ok and workflow.nodes["3"].literals["offset"] == 3


def test_combo_not_in_choices(registry, config):
    wf = chain()
    wf["5"] = {"class_type": "Scale", "inputs": {"x": ["3", 0], "factor": 2.0, "mode": "pow", "enabled": True}}
    wf["4"]["inputs"]["value"] = ["5", 0]  # only what an output needs is validated
    err = only_error(errors(wf, registry, config), "5")
    assert err["type"] == "value_not_in_list" and "'pow' is not one of the choices: mul, div" in err["message"]


def test_file_choice_names_folder_and_contents(registry, config):
    from sigmagraph.engine.node import Combo, node
    from sigmagraph.engine.spec import NodeSpec

    @node(returns=["NUMBER"])
    def Loader(name=Combo(lambda cfg: ["a.safetensors", "b.safetensors"], files_in="models/checkpoints")):
        return 1.0

    registry.add(Loader.__node_spec__)
    wf = chain(**{"3__b": ["9", 0]})
    wf["9"] = {"class_type": "Loader", "inputs": {"name": "x.safetensors"}}
    err = only_error(errors(wf, registry, config), "9")
    assert err["message"] == ("input 'name': file 'x.safetensors' not found in models/checkpoints "
                              "(2 files there: a.safetensors, b.safetensors)")
    assert isinstance(Loader.__node_spec__, NodeSpec) and isinstance(Loader.__node_spec__.inputs[0], ComboInput)


def test_cycle_names_the_nodes(registry, config):
    wf = chain(**{"1__value": None})
    wf["1"] = {"class_type": "Add", "inputs": {"a": ["3", 0], "b": ["2", 0], "offset": 0}}
    report = errors(wf, registry, config)
    for nid in ("1", "3"):
        err = only_error(report, nid)
        assert err["type"] == "dependency_cycle" and "1 -> 3" in err["message"]


def test_no_output_node(registry, config):
    wf = chain()
    del wf["4"]
    report = errors(wf, registry, config)
    assert report.error["type"] == "prompt_no_outputs" and "no output node" in report.error["message"]


def test_every_problem_reported_at_once(registry, config):
    wf = chain(**{"3__offset": 100, "4__label": None})
    wf["2"]["class_type"] = "Nope"
    report = errors(wf, registry, config)
    assert set(report.node_errors) == {"2", "3", "4"}
    assert len(report.lines()) == 3 and report.to_json()["node_errors"]["3"]["class_type"] == "Add"


def test_shape_errors(registry, config):
    report = errors({"1": {"inputs": {}}}, registry, config)
    assert "1" in report.node_errors
    report = errors([1, 2], registry, config)
    assert report.error["type"] == "invalid_prompt"
