"""Runs every Python snippet of README.md, each on its own, in a fresh folder holding the workflows.

A snippet that cannot run here (it needs a server, or is a fragment) is marked in the README
with `<!-- not-run -->` on the line before its block.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
BLOCK = re.compile(r"^(<!-- not-run -->\n)?```python\n(.*?)^```", re.S | re.M)


def test_every_python_snippet_runs(tmp_path, monkeypatch):
    blocks = [code for marker, code in BLOCK.findall(README.read_text()) if not marker]
    assert len(blocks) >= 2, "the README's embedding and custom-node snippets are expected here"
    shutil.copytree(README.parent / "workflows", tmp_path / "workflows")  # snippets name files as in the checkout
    monkeypatch.chdir(tmp_path)
    for index, code in enumerate(blocks):
        try:
            exec(compile(code, f"{README.name} python block {index + 1}", "exec"), {"__name__": "readme"})
        except Exception as error:
            raise AssertionError(f"python block {index + 1} of {README.name} failed:\n{code}") from error
