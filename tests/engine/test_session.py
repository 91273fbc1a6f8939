"""Session: validation hands back the planned workflow, which runs as it is; Config folders; the throttle."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from sigmagraph.engine import Config, events, testing
from sigmagraph.engine.validation import InvalidWorkflow

from .test_executor import graph


def test_a_validated_workflow_runs_without_being_validated_again(session, validations):
    checked = session.validate(graph())
    assert checked.ok and len(validations) == 1
    assert checked.order.index("3") < checked.order.index("4") < checked.order.index("5") and "7" not in checked.order
    result = session.run(checked)
    assert result.ok and result.ui_outputs["5"]["values"] == [10.0] and len(validations) == 1


def test_a_document_is_validated_once_per_run(session, validations):
    assert session.run(graph()).ok and len(validations) == 1
    assert testing.run(session, graph()).ok and len(validations) == 2


def test_an_invalid_workflow_never_runs(session, calls):
    document = graph()
    document["3"]["inputs"]["offset"] = 99
    del document["6"]  # the only other output: with it valid, it would run (see test_partial.py)
    checked = session.validate(document)
    assert not checked.ok and checked.report.node_errors["3"]["errors"][0]["type"] == "value_bigger_than_max"
    with pytest.raises(InvalidWorkflow) as raised:
        session.run(checked)
    assert raised.value.report is checked.report and sum(calls.values()) == 0


def test_targets_replace_the_output_nodes(session):
    checked = session.validate(graph(), targets=["3"])
    assert checked.outputs == ("3",) and set(checked.order) == {"1", "2", "3"}
    assert not session.validate(graph(), targets=["99"]).ok


class Folder(os.PathLike):
    """An os.PathLike that is not a Path."""

    def __init__(self, path: str):
        self.path = path

    def __fspath__(self) -> str:
        return self.path


def test_config_folders_may_be_strings_or_pathlike():
    config = Config(models_dir="m", output_dir=Folder("o"), input_dir=Path("i"), temp_dir="t",
                    custom_nodes_dirs=["a", Folder("b")])
    assert (config.models_dir, config.output_dir, config.input_dir, config.temp_dir) == (
        Path("m"), Path("o"), Path("i"), Path("t"))
    assert all(type(folder) is type(Path()) for folder in (config.models_dir, config.output_dir, config.temp_dir))
    assert config.custom_nodes_dirs == (Path("a"), Path("b")) and config.folder("output") == Path("o")
    assert Config(custom_nodes_dirs="custom_nodes").custom_nodes_dirs == (Path("custom_nodes"),)


def test_throttle_lets_through_once_per_interval(monkeypatch):
    clock = iter([10.0, 10.1, 10.2, 10.3, 10.46, 10.5])
    monkeypatch.setattr(events, "time", SimpleNamespace(monotonic=lambda: next(clock)))  # this module's clock only
    throttle = events.Throttle(0.25)
    # first call; too soon; forced; 0.1 s after the forced one; 0.26 s after it; too soon again
    assert [throttle.ready(), throttle.ready(), throttle.ready(force=True), throttle.ready(), throttle.ready(),
            throttle.ready()] == [True, False, True, False, True, False]
