from __future__ import annotations

import pytest

from sigmagraph.engine import Config, Registry, Session
from sigmagraph.engine.executor import Executor

from . import testing_pack


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
def calls():
    return testing_pack.CALLS
