"""Executes every code block of docs/custom-nodes.md, in order, as a reader would."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES

DOC = Path(__file__).parents[2] / "docs" / "custom-nodes.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.fixture
def clean_registries():
    samplers, schedules = dict(SAMPLERS), dict(SCHEDULES)
    yield
    for mapping, saved in ((SAMPLERS, samplers), (SCHEDULES, schedules)):
        mapping.clear()
        mapping.update(saved)
    for name in [m for m in sys.modules if m.startswith("sigmagraph_custom_nodes")]:
        del sys.modules[name]


def test_every_code_block_runs(tmp_path, monkeypatch, clean_registries):
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "custom_nodes_tutorial"}
    for index, code in enumerate(blocks):
        first = code.splitlines()[0]
        if first.startswith("# custom_nodes/"):
            target = tmp_path / first[2:].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
            continue
        try:
            exec(compile(code, f"{DOC.name} block {index + 1}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index + 1} of {DOC.name} failed:\n{code}") from error
