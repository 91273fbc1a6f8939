"""Partly valid workflows, as ComfyUI takes them: only what outputs need is validated, the valid outputs
run, the invalid ones are reported with the outputs each problem costs; targets pick the outputs."""

from __future__ import annotations

from .test_cli import WORKFLOW, cli, write
from .test_executor import graph


def broken() -> dict:
    wf = graph()  # outputs 5 (through 3 and 4) and 6
    wf["3"]["inputs"]["offset"] = 99
    return wf


def test_the_valid_output_runs_and_the_invalid_one_is_reported(session, calls):
    checked = session.validate(broken())
    assert checked.ok and not checked.report.ok and checked.outputs == ("6",)
    errors = checked.report.node_errors
    assert set(errors) == {"3"} and errors["3"]["dependent_outputs"] == ["5"]
    assert errors["3"]["errors"][0]["type"] == "value_bigger_than_max"
    result = session.run(checked)
    assert result.ok and set(result.ui_outputs) == {"6"} and calls == {"Constant": 1, "Show": 1}


def test_a_problem_shared_by_both_outputs_names_both(session):
    wf = graph()
    wf["2"]["inputs"]["value"] = 5000.0
    checked = session.validate(wf)
    assert not checked.ok and checked.report.node_errors["2"]["dependent_outputs"] == ["5", "6"]


def test_a_node_no_output_needs_is_not_validated(session):
    wf = graph()
    wf["7"]["inputs"]["value"] = 5000.0  # node 7 reaches no output
    assert session.validate(wf).report.ok


def test_an_unknown_node_type_anywhere_stops_everything(session):
    wf = graph()
    wf["7"]["class_type"] = "Nope"  # it might have been an output
    checked = session.validate(wf)
    assert not checked.ok and checked.report.node_errors["7"]["errors"][0]["type"] == "missing_node_type"


def test_targets_run_only_the_named_outputs(session, calls):
    checked = session.validate(graph(), targets=["6"])
    assert checked.outputs == ("6",) and checked.order == ("2", "6")
    result = session.run(checked)
    assert set(result.ui_outputs) == {"6"} and calls == {"Constant": 1, "Show": 1}
    assert not session.validate(graph(), targets=[]).ok  # ComfyUI: an empty list selects nothing


def test_cli_warns_about_invalid_outputs_and_runs_the_rest(tmp_path, pack_dir, capsys):
    wf = {**WORKFLOW, "3": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": ["x"]}}}
    assert cli("run", str(write(tmp_path, wf)), "--output-dir", str(tmp_path / "out"), pack_dir=pack_dir) == 0
    err = capsys.readouterr().err
    assert "skipping output node(s) 3" in err and "node 3 (Show)" in err
    wf["2"]["inputs"]["label"] = ["y"]
    assert cli("run", str(write(tmp_path, wf)), "--output-dir", str(tmp_path / "out"), pack_dir=pack_dir) == 2
