from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sigmagraph.engine import Config, Registry, Session, validation

from . import flow_pack, testing_pack


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    reg.load_module(testing_pack, "testing")
    assert not reg.problems, reg.problems
    return reg


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(models_dir=tmp_path / "models", output_dir=tmp_path / "output", input_dir=tmp_path / "input",
                  temp_dir=tmp_path / "temp")


@pytest.fixture
def session(registry, config) -> Session:
    testing_pack.CALLS.clear()
    return Session(config, registry)


@pytest.fixture
def flow_session(registry, config) -> Session:
    """A session with the testing pack and the flow-control fixtures (flow_pack.py)."""
    registry.load_module(flow_pack, "flow")
    for spec in flow_pack.SPECS:
        registry.add(spec, "flow")
    assert not registry.problems, registry.problems
    testing_pack.CALLS.clear()
    flow_pack.SEEN.clear()
    flow_pack.TIMES.clear()
    return Session(config, registry)


@pytest.fixture
def calls():
    return testing_pack.CALLS


@pytest.fixture
def validations(monkeypatch) -> list:
    """The documents validated from now on (each validation parses its document exactly once)."""
    documents: list = []
    parse = validation.api_workflow
    monkeypatch.setattr(validation, "api_workflow", lambda document: documents.append(document) or parse(document))
    return documents


@pytest.fixture
def pack_dir(tmp_path):
    """A custom_nodes folder holding a copy of the testing pack (for the command line)."""
    folder = tmp_path / "custom_nodes"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "testing_pack.py", folder / "testing_pack.py")
    return folder
