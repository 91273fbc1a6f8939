"""The command line: exit codes, readable errors, --set overrides, --json events."""

from __future__ import annotations

import json

import pytest

from sigmagraph.engine.cli import main


def write(tmp_path, document, name="wf.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


WORKFLOW = {"1": {"class_type": "Constant", "inputs": {"value": 2.0}},
            "2": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": "x"}}}


def cli(*args, pack_dir):
    return main([*args, "--custom-nodes-dir", str(pack_dir), "--models-dir", str(pack_dir.parent / "models")])


def test_run_succeeds(tmp_path, pack_dir, capsys):
    assert cli("run", str(write(tmp_path, WORKFLOW)), "--output-dir", str(tmp_path / "out"), pack_dir=pack_dir) == 0


def test_run_validates_the_workflow_once(tmp_path, pack_dir, capsys, validations):
    assert cli("run", str(write(tmp_path, WORKFLOW)), "--json", pack_dir=pack_dir) == 0
    assert len(validations) == 1


def test_json_events(tmp_path, pack_dir, capsys):
    assert cli("run", str(write(tmp_path, WORKFLOW)), "--json", pack_dir=pack_dir) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "execution_start" and events[-1] == {"type": "executing", "data": {
        "node": None, "display_node": None, "prompt_id": events[0]["data"]["prompt_id"]}}
    assert any(e["type"] == "executed" and e["data"]["output"]["values"] == [2.0] for e in events)


def test_set_override_is_validated(tmp_path, pack_dir, capsys):
    path = write(tmp_path, WORKFLOW)
    assert cli("run", str(path), "--json", "--set", "1.value=5", pack_dir=pack_dir) == 0
    assert '"values": [5.0]' in capsys.readouterr().out
    assert cli("run", str(path), "--set", "1.value=5000", pack_dir=pack_dir) == 2
    assert "node 1 (Constant): input 'value': value 5000 is bigger than the maximum 1000" in capsys.readouterr().err
    assert cli("run", str(path), "--set", "9.value=1", pack_dir=pack_dir) == 2
    assert "the workflow has no node '9'" in capsys.readouterr().err


def test_invalid_workflow_exit_2(tmp_path, pack_dir, capsys):
    bad = {**WORKFLOW, "2": {"class_type": "Show", "inputs": {"label": "x"}}}
    assert cli("validate", str(write(tmp_path, bad)), pack_dir=pack_dir) == 2
    assert "node 2 (Show): required input 'value' is missing" in capsys.readouterr().err
    assert cli("validate", str(write(tmp_path, WORKFLOW)), pack_dir=pack_dir) == 0


@pytest.mark.parametrize("setup,message", [
    (lambda p: p / "missing.json", "no such file"),
    (lambda p: p, "is a directory"),
    (lambda p: write(p, '{"1": {"class_type": "Constant",, }}'), "invalid JSON at line 1, column 33"),
])
def test_unreadable_workflow(tmp_path, pack_dir, capsys, setup, message):
    assert cli("run", str(setup(tmp_path)), pack_dir=pack_dir) == 2
    assert message in capsys.readouterr().err


def test_failing_node_exit_1(tmp_path, pack_dir, capsys):
    wf = {**WORKFLOW, "3": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "nope"}},
          "4": {"class_type": "Show", "inputs": {"value": ["3", 0], "label": "y"}}}
    assert cli("run", str(write(tmp_path, wf)), pack_dir=pack_dir) == 1
    assert "node 3 (Fail) failed: nope" in capsys.readouterr().err


def test_nodes_catalogue_json(pack_dir, capsys):
    assert cli("nodes", "--json", pack_dir=pack_dir) == 0
    catalogue = json.loads(capsys.readouterr().out)
    assert catalogue["Add"]["input"]["required"]["offset"] == ["INT", {"default": 0, "min": -10, "max": 10, "step": 1}]


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2
