"""`sigmagraph serve --front-end sigmagraph|comfyui|PATH`: which static files `/` serves, and the error when absent."""

from __future__ import annotations

import importlib.util

import pytest

from sigmagraph.engine.cli import main
from sigmagraph.engine.paths import package_folder
from sigmagraph.engine.server.front_end import FrontEndMissing, front_end_root


def test_front_end_choices(tmp_path, monkeypatch):
    assert front_end_root("sigmagraph") == package_folder("sigmagraph.web")
    with pytest.raises(FrontEndMissing, match="index.html"):
        front_end_root(str(tmp_path))
    (tmp_path / "index.html").write_text("<html></html>")
    assert front_end_root(str(tmp_path)) == tmp_path
    installed = importlib.util.find_spec("comfyui_frontend_package")
    if installed is not None:
        assert (front_end_root("comfyui") / "index.html").is_file()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FrontEndMissing, match=r"pip install 'sigmagraph\[comfyui-frontend\]'"):
        front_end_root("comfyui")


def test_serve_refuses_a_missing_front_end(tmp_path, capsys):
    code = main(["serve", "--front-end", str(tmp_path / "nowhere"), "--disable-custom-nodes",
                 "--state-dir", ":memory:", "--port", "0"])
    assert code == 2 and "nowhere" in capsys.readouterr().err

