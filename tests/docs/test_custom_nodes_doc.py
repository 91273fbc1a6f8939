"""Executes every code block of docs/custom-nodes.md, in order, as a reader would."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from sigmagraph.nodes.sampling import SAMPLERS, SCHEDULES

DOC = Path(__file__).parents[2] / "docs" / "custom-nodes.md"
BLOCK = re.compile(r"```(python|js)\n(.*?)```", re.S)
EXAMPLES = DOC.parent / "examples"
FILE_MARKERS = ("# custom_nodes/", "// custom_nodes/")


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
    blocks = [code for _, code in BLOCK.findall(DOC.read_text())]
    assert len(blocks) >= 10
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "custom_nodes_tutorial"}
    for index, code in enumerate(blocks):
        first = code.splitlines()[0]
        if first.startswith(FILE_MARKERS):
            target = tmp_path / first.split(" ", 1)[1].strip()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(code)
            continue
        try:
            exec(compile(code, f"{DOC.name} block {index + 1}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"block {index + 1} of {DOC.name} failed:\n{code}") from error
    written = sorted(p.relative_to(tmp_path / "custom_nodes") for p in (tmp_path / "custom_nodes").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts)
    shipped = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert written == shipped, "docs/examples must hold exactly the pack the tutorial builds"
    for name in written:
        assert (tmp_path / "custom_nodes" / name).read_text() == (EXAMPLES / name).read_text(), name


def test_example_pack_loads_from_the_repo(capsys, clean_registries):
    from sigmagraph.engine.cli import main

    assert main(["nodes", "--custom-nodes-dir", str(EXAMPLES)]) == 0
    captured = capsys.readouterr()
    for name in ("MakePalette", "PosterizeToPalette", "RepeatedBlur", "DescribeImage", "PaletteImage",
                 "InvertColors"):
        assert name in captured.out
    assert "skipped" not in captured.err
    assert "midpoint" in SAMPLERS and "log_linear_quadratic" in SCHEDULES
