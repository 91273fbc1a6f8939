"""The editor's files: `/`, web/ files, default workflows, and node packs' web extensions."""

from __future__ import annotations

import json

import pytest

from sigmagraph.engine.discovery import import_pack_path

pytestmark = pytest.mark.asyncio


async def test_root_without_the_editor_says_so(client):
    response = await client.get("/")
    assert response.status == 404
    message = (await response.json())["error"]["message"]
    assert "canvas editor is not installed" in message and "index.html" in message


async def test_root_and_web_files(client, options):
    options.web_root.mkdir()
    (options.web_root / "index.html").write_text("<!doctype html><title>Sigmagraph</title>")
    (options.web_root / "js").mkdir()
    (options.web_root / "js" / "app.js").write_text("export const x = 1;")
    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html" and "Sigmagraph" in await page.text()
    assert page.headers["Cache-Control"] == "no-cache"
    script = await client.get("/js/app.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert (await client.get("/js/missing.js")).status == 404


async def test_web_files_stay_inside_web(client, options, tmp_path):
    options.web_root.mkdir()
    (tmp_path / "secret.txt").write_text("TOP-SECRET-CONTENT")
    for path in ("/..%2Fsecret.txt", "/js/..%2F..%2Fsecret.txt", "/%2e%2e/secret.txt"):
        response = await client.get(path)
        assert response.status in (403, 404), path
        assert "TOP-SECRET-CONTENT" not in await response.text()


async def test_workflows(client, options):
    options.workflows_dir.mkdir()
    document = {"1": {"class_type": "Constant", "inputs": {"value": 1.0}, "_meta": {"pos": [0, 0]}}}
    (options.workflows_dir / "default.json").write_text(json.dumps(document))
    (options.workflows_dir / "notes.txt").write_text("not a workflow")
    assert await (await client.get("/workflows")).json() == ["default.json"]
    response = await client.get("/workflows/default.json")
    assert response.status == 200 and response.content_type == "application/json"
    assert await response.json() == document
    assert (await client.get("/workflows/notes.txt")).status == 404
    assert (await client.get("/workflows/missing.json")).status == 404
    assert (await client.get("/workflows/..%2F..%2Fetc%2Fpasswd.json")).status == 403


async def test_extensions_of_node_packs(client, session, tmp_path):
    pack = tmp_path / "fancy_pack"
    (pack / "web" / "ui").mkdir(parents=True)
    (pack / "__init__.py").write_text('WEB_DIRECTORY = "./web"\nNODE_CLASS_MAPPINGS = {}\n')
    (pack / "web" / "ui" / "widget.js").write_text("console.log('fancy');")
    (pack / "web" / "style.css").write_text("body {}")
    (tmp_path / "outside.js").write_text("nope")
    session.registry.load_module(import_pack_path(pack), "fancy pack")  # resolved against the pack's folder
    assert await (await client.get("/extensions")).json() == ["/extensions/fancy%20pack/ui/widget.js"]
    script = await client.get("/extensions/fancy%20pack/ui/widget.js")
    assert script.status == 200 and script.content_type == "text/javascript" and "fancy" in await script.text()
    assert (await client.get("/extensions/fancy%20pack/style.css")).content_type == "text/css"
    assert (await client.get("/extensions/fancy%20pack/..%2F..%2Foutside.js")).status == 403
    assert (await client.get("/extensions/other/ui/widget.js")).status == 404
    assert await (await client.get("/api/extensions")).json() == ["/extensions/fancy%20pack/ui/widget.js"]
