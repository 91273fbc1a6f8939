"""ComfyUI's own front end (the `comfyui-frontend-package` wheel) against a live Sigmagraph server, in Chromium.

The page loads its default graph with no console error; Sigmagraph's default workflow, opened
through the front end's file input, runs with the Run button on the demo model (the front end's
own default graph needs models that are not here), its image shows in the Save Image node and a
live preview arrives during sampling; the workflow is saved to user data, reopened from the
Workflows panel, and run again after its sampler and decoder became a subgraph (ids `8:5`).
The machine has no internet: what the front end asks of other hosts (update checks, model
download links) gets an empty answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from sigmagraph.engine import Session
from sigmagraph.engine.server import ServerOptions

from .live_server import LiveServer, folders_config

pytest.importorskip("comfyui_frontend_package",
                    reason="ComfyUI's front end is not installed (pip install 'sigmagraph[comfyui-frontend]')")
pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")

from sigmagraph.engine.server.front_end import front_end_root  # noqa: E402 - after the skip

DEFAULT_WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "default.json"
SAVED_NAME = "saved from comfyui"
RUN_TIMEOUT_MS = 45000
# A returning user: no tutorial, no update check (it would ask the internet).
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Notification.ShowVersionUpdates": False}
OTHER_HOSTS = re.compile(r"^(?!https?://127\.0\.0\.1[:/])[a-z]+://")  # matched by the browser, not in Python
MISSING_RESOURCE = "Failed to load resource: the server responded with a status of 404"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfyui_front_end")
    user = root / "state" / "users" / "default"
    user.mkdir(parents=True)
    (user / "comfy.settings.json").write_text(json.dumps(SETTINGS))
    (user / "user.css").write_text("")
    config = dataclasses.replace(folders_config(root), disable_custom_nodes=True)
    options = ServerOptions(port=0, web_root=front_end_root("comfyui"), state_dir=root / "state",
                            preview_interval=0.0)
    with LiveServer(Session(config), options) as live:
        live.root, live.user = root, user
        yield live


@pytest.fixture(scope="module")
def page(browser, server):
    """The front end, loaded; every console error and uncaught exception is recorded in `page.problems`."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.route(OTHER_HOSTS, lambda route: route.fulfill(status=204))
    page = context.new_page()
    page.problems = []
    page.binary_frames = []
    page.images_shown = []
    page.on("response", lambda r: r.ok and "/api/view?" in r.url and page.images_shown.append(r.url))
    page.on("pageerror", lambda error: page.problems.append(f"uncaught: {error}"))
    page.on("console", lambda message: _record_console(page, message))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: isinstance(frame, bytes)
                                          and page.binary_frames.append(frame)))
    page.goto(server.url)
    # app.canvas first: reading app.graph before the app is set up is itself reported as an error
    page.wait_for_function("() => window.app?.canvas?.graph?.nodes?.length > 0", timeout=30000)
    yield page
    context.close()


def _record_console(page, message) -> None:
    """Errors, except a 404 for a user data file or folder the user has not made yet (ComfyUI answers it so,
    and the front end reads it as 'none')."""
    if message.type != "error":
        return
    if message.text.startswith(MISSING_RESOURCE) and urlsplit(message.location["url"]).path.startswith("/api/userdata"):
        return
    page.problems.append(f"console: {message.text} ({message.location['url']})")


def graph(page) -> list[list]:
    """[id, type] of every node of the open graph."""
    return page.evaluate("() => window.app.graph.nodes.map(n => [String(n.id), n.type])")


def open_default_workflow(page) -> None:
    """Opens workflows/default.json with the front end's file input, for a quick run: 3 steps, one image."""
    page.set_input_files("#comfy-file-input", str(DEFAULT_WORKFLOW))
    page.wait_for_function("() => window.app.graph.nodes.some(n => n.type == 'CheckpointLoaderSimple')")
    page.evaluate("""() => {
        const widget = (type, name) =>
            window.app.graph.nodes.find(n => n.type == type).widgets.find(w => w.name == name);
        widget('KSampler', 'steps').value = 3;
        widget('KSampler', 'control_after_generate').value = 'fixed';
        widget('EmptySD3LatentImage', 'batch_size').value = 1;
        return window.app.extensionManager.command.execute('Comfy.Canvas.FitView');  // every node on screen
    }""")


def run_and_wait(page, server) -> dict:
    """Clicks Run, waits for the Save Image node's picture; returns the prompt's history entry."""
    before = set(json.loads(urlopen(server.url + "history").read()))
    page.evaluate("() => { window.app.nodeOutputs = {}; }")
    page.get_by_test_id("queue-button").click()
    page.wait_for_function("() => Object.values(window.app.nodeOutputs || {}).some(o => o.images?.length)",
                           timeout=RUN_TIMEOUT_MS)
    deadline = time.monotonic() + 10
    while not (new := set(json.loads(urlopen(server.url + "history").read())) - before):
        assert time.monotonic() < deadline, "the run has no history entry"
        page.wait_for_timeout(100)  # not time.sleep: the page's events must flow
    (prompt_id,) = new
    return json.loads(urlopen(f"{server.url}history/{prompt_id}").read())[prompt_id]


def test_the_front_end_loads_its_default_graph_cleanly(page):
    known = set(json.loads(urlopen(page.url + "object_info").read()))
    types = [t for _, t in graph(page)]
    assert "KSampler" in types and set(types) <= known, set(types) - known  # every node of its graph exists here
    assert page.problems == []


def test_run_shows_the_image_in_the_save_image_node(page, server):
    open_default_workflow(page)
    page.binary_frames.clear()
    entry = run_and_wait(page, server)
    assert entry["status"]["status_str"] == "success"
    (image,) = entry["outputs"]["7"]["images"]
    assert (server.root / "output" / image["filename"]).is_file()
    deadline = time.monotonic() + 10  # the node shows its picture: the page fetches it from /view
    while not any(f"filename={image['filename']}" in url for url in page.images_shown):
        assert time.monotonic() < deadline, f"the page never fetched {image['filename']}"
        page.wait_for_timeout(100)
    assert any(frame[:4] == b"\x00\x00\x00\x01" for frame in page.binary_frames)  # a live preview (event 1)
    assert page.problems == []


def test_a_workflow_saved_to_user_data_reopens(page, server):
    open_default_workflow(page)
    page.mouse.click(300, 800)  # the canvas has the focus for the shortcut
    page.keyboard.press("Control+s")
    page.get_by_role("dialog").locator("input").fill(SAVED_NAME)
    page.keyboard.press("Enter")
    saved = server.user / "workflows" / f"{SAVED_NAME}.json"
    deadline = time.monotonic() + 10
    while not saved.is_file():
        assert time.monotonic() < deadline, "the workflow was not saved to user data"
        page.wait_for_timeout(100)  # not time.sleep: the page's events must flow
    nodes = {str(n["id"]): n for n in json.loads(saved.read_text())["nodes"]}
    assert nodes["1"]["widgets_values"] == ["sigmagraph-demo-flow.safetensors"] and nodes["5"]["widgets_values"][2] == 3

    page.evaluate("() => window.app.extensionManager.command.execute('Comfy.NewBlankWorkflow')")
    page.wait_for_function("() => window.app.graph.nodes.length == 0")
    page.get_by_test_id("workflows-tab-button").click()
    page.get_by_text(SAVED_NAME).first.click()
    page.wait_for_function(f"() => window.app.graph.nodes.length == {len(nodes)}")
    assert sorted(graph(page)) == sorted([nid, n["type"]] for nid, n in nodes.items())
    page.get_by_test_id("workflows-tab-button").click()  # closes the panel
    assert page.problems == []


def test_a_workflow_with_a_subgraph_runs(page, server):
    open_default_workflow(page)
    page.evaluate("""() => {
        const canvas = window.app.canvas;
        canvas.deselectAll();
        const inside = window.app.graph.nodes.filter(n => ['KSampler', 'VAEDecode'].includes(n.type));
        for (const n of inside) canvas.select(n);
        return window.app.extensionManager.command.execute('Comfy.Graph.ConvertToSubgraph');
    }""")
    page.wait_for_function("() => window.app.graph.nodes.some(n => n.subgraph)")
    (subgraph_id,) = [nid for nid, _ in graph(page) if nid not in {"1", "2", "3", "4", "7", "8"}]
    entry = run_and_wait(page, server)
    assert entry["status"]["status_str"] == "success"
    prompt = entry["prompt"][2]
    assert {prompt[f"{subgraph_id}:5"]["class_type"], prompt[f"{subgraph_id}:6"]["class_type"]} == {"KSampler",
                                                                                                   "VAEDecode"}
    assert prompt["7"]["inputs"]["images"] == [f"{subgraph_id}:6", 0]
    assert (server.root / "output" / entry["outputs"]["7"]["images"][0]["filename"]).is_file()
    assert page.problems == []


def test_the_logs_panel_reads_the_log_and_receives_new_entries(page):
    """Through the front end's own client (its URLs, its PATCH body, its websocket dispatch), as its Logs panel."""
    logging.getLogger("some_pack").warning("loaded before the panel opened")
    page.evaluate("""async () => {
        window.logsSeen = [];
        window.app.api.addEventListener('logs', e => window.logsSeen.push(...e.detail.entries.map(x => x.m)));
        window.rawLogs = await window.app.api.getRawLogs();
        await window.app.api.subscribeLogs(true);
    }""")
    raw = page.evaluate("() => window.rawLogs")
    assert "some_pack: loaded before the panel opened\n" in [e["m"] for e in raw["entries"]]
    assert raw["size"]["cols"] > 0
    logging.getLogger("some_pack").warning("logged while the panel is open")
    page.wait_for_function("() => window.logsSeen.includes('some_pack: logged while the panel is open\\n')")
    page.evaluate("() => window.app.api.subscribeLogs(false)")
    assert page.problems == []
