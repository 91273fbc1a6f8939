"""The canvas editor in a real browser: Debian's Chromium driven by Playwright, against a live server.

The main test builds a graph the way a person does, with the mouse and keyboard only; the page's
read-only `window.sigmagraphGeometry(id)` says where a node's sockets and widgets are on screen.
The other tests open workflow files through the Load button's file input or a drop.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sigmagraph.engine import Session
from sigmagraph.engine.server import ServerOptions
from sigmagraph.engine.ui_format import ui_to_api

from .live_server import LiveServer, folders_config

expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

REPO = Path(__file__).resolve().parents[2]
UI_WORKFLOW = REPO / "tests" / "engine" / "data" / "ui_workflow.json"
RUN_TIMEOUT_MS = 15000
HIDE_TOAST = '[data-testid="toast"] { display: none !important; }'  # screenshots show the graph alone


# ---- helpers: the graph changes only through the page (mouse, keyboard, file input, drop) ----

def node_ids(page) -> list[str]:
    return page.eval_on_selector_all(".node", "els => els.map(e => e.dataset.nodeId)")


def geometry(page, node_id: str) -> dict:
    return page.evaluate("id => window.sigmagraphGeometry(id)", node_id)


def node(page, node_id: str):
    return page.locator(f'.node[data-node-id="{node_id}"]')


def input_socket(page, node_id: str, name: str):
    return node(page, node_id).locator(f'.socket.in[data-input="{name}"]')


def add_node(page, node_type: str, x: float, y: float) -> str:
    """Double-clicks the canvas at (x, y), types in the menu's search box, clicks the item; returns the new id."""
    before = set(node_ids(page))
    page.mouse.dblclick(x, y)
    expect(page.get_by_test_id("node-search")).to_be_focused()
    page.keyboard.type(node_type)
    page.locator(f'[data-testid="node-menu-item"][data-node-type="{node_type}"]').click()
    expect(page.locator(".node")).to_have_count(len(before) + 1)
    (new_id,) = set(node_ids(page)) - before
    return new_id


def drag(page, start: dict, end: dict) -> None:
    page.mouse.move(start["cx"], start["cy"])
    page.mouse.down()
    page.mouse.move(end["cx"], end["cy"], steps=12)
    page.mouse.up()


def connect(page, source: str, slot: int, target: str, input_name: str) -> None:
    """Drags from an output socket to an input socket."""
    drag(page, geometry(page, source)["outputs"][slot], geometry(page, target)["inputs"][input_name])


def clear_graph(page) -> None:
    page.mouse.click(700, 850)  # empty canvas: focus leaves any field
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    expect(page.locator(".node")).to_have_count(0)


def open_file(page, path: Path) -> None:
    page.get_by_test_id("load-input").set_input_files(str(path))


def saved_workflow(page) -> dict:
    with page.expect_download() as download:
        page.get_by_test_id("save-button").click()
    return json.loads(Path(download.value.path()).read_text())


def record_changes(page, selector: str, name: str) -> None:
    """Records in window[name] every `src`/`style` value the element(s) take from now on."""
    page.evaluate("""([selector, name]) => {
        window[name] = [];
        const observer = new MutationObserver((records) => {
            for (const r of records) window[name].push(r.target.getAttribute(r.attributeName));
        });
        for (const el of document.querySelectorAll(selector)) {
            observer.observe(el, {attributes: true, attributeFilter: ["src", "style"]});
        }
    }""", [selector, name])


# ---- tests ----

def test_build_connect_and_run_a_graph_with_the_mouse(page, tmp_path):
    # The default workflow is open and ready to queue.
    expect(page.locator(".node")).to_have_count(2)
    expect(node(page, "1").locator(".title-text")).to_have_text("Five")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", "1:0")
    clear_graph(page)

    constant = add_node(page, "Constant", 60, 120)
    scale = add_node(page, "Scale", 380, 120)
    show = add_node(page, "Show", 700, 120)
    text = add_node(page, "Text", 380, 520)

    # A TEXT output cannot feed a NUMBER input: the link is refused with a hint naming both types.
    connect(page, text, 0, show, "value")
    toast = page.get_by_test_id("toast")
    expect(toast).to_be_visible()
    expect(toast).to_contain_text("TEXT")
    expect(toast).to_contain_text("NUMBER")
    assert input_socket(page, show, "value").get_attribute("data-link") is None

    connect(page, constant, 0, scale, "x")
    connect(page, scale, 0, show, "value")
    expect(input_socket(page, scale, "x")).to_have_attribute("data-link", f"{constant}:0")
    expect(input_socket(page, show, "value")).to_have_attribute("data-link", f"{scale}:0")

    # Widgets: type a value into one, drag another sideways (4 px per step of 0.01).
    node(page, constant).locator('[data-widget="value"] .value').click()
    page.keyboard.type("21")
    page.keyboard.press("Enter")
    expect(node(page, constant).locator('[data-widget="value"] .value')).to_have_text("21.00")
    factor = geometry(page, scale)["widgets"]["factor"]
    drag(page, factor, {"cx": factor["cx"] + 40, "cy": factor["cy"]})
    expect(node(page, scale).locator('[data-widget="factor"] .value')).to_have_text("2.10")

    # Double-clicking a title renames the node.
    title = geometry(page, show)["title"]
    page.mouse.dblclick(title["cx"], title["cy"])
    page.keyboard.press("Control+a")
    page.keyboard.type("Answer")
    page.keyboard.press("Enter")
    expect(node(page, show).locator(".title-text")).to_have_text("Answer")

    # A toggle flips on click; a combo is a select (left on "mul").
    toggle = node(page, scale).locator('[data-widget="enabled"] .widget')
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    node(page, scale).locator('[data-widget="mode"] select').select_option("div")
    node(page, scale).locator('[data-widget="mode"] select').select_option("mul")

    # Shift-click adds to the selection, a plain click selects one node; Delete removes the selection.
    selected = re.compile(r"\bselected\b")
    for target, shift in ((constant, False), (text, True)):
        title = geometry(page, target)["title"]
        if shift:
            page.keyboard.down("Shift")
        page.mouse.click(title["cx"], title["cy"])
        if shift:
            page.keyboard.up("Shift")
    expect(node(page, constant)).to_have_class(selected)
    expect(node(page, text)).to_have_class(selected)
    title = geometry(page, text)["title"]
    page.mouse.click(title["cx"], title["cy"])
    expect(node(page, constant)).not_to_have_class(selected)
    page.keyboard.press("Delete")
    expect(node(page, text)).to_have_count(0)
    expect(page.locator(".node")).to_have_count(3)

    # A link dropped on empty space offers the nodes that take it; the one picked (Enter) comes linked.
    drag(page, geometry(page, constant)["outputs"][0], {"cx": 200, "cy": 450})
    expect(page.get_by_test_id("node-menu")).to_contain_text("nodes taking NUMBER")
    page.keyboard.type("Show")
    page.keyboard.press("Enter")
    expect(page.locator(".node")).to_have_count(4)
    (tap,) = set(node_ids(page)) - {constant, scale, show}
    expect(input_socket(page, tap, "value")).to_have_attribute("data-link", f"{constant}:0")
    # Dragging a linked input away to empty space unlinks it; a link dropped on a node's body
    # goes to its first free input of a fitting type.
    drag(page, geometry(page, tap)["inputs"]["value"], {"cx": 200, "cy": 750})
    expect(page.get_by_test_id("node-menu")).to_be_hidden()
    assert input_socket(page, tap, "value").get_attribute("data-link") is None
    drag(page, geometry(page, constant)["outputs"][0], geometry(page, tap)["rect"])
    expect(input_socket(page, tap, "value")).to_have_attribute("data-link", f"{constant}:0")

    # Pan by dragging empty space, zoom with the wheel about the pointer.
    before = geometry(page, show)["rect"]
    drag(page, {"cx": 900, "cy": 700}, {"cx": 860, "cy": 680})
    after = geometry(page, show)["rect"]
    assert (after["x"] - before["x"], after["y"] - before["y"]) == pytest.approx((-40, -20), abs=1)
    page.mouse.move(600, 400)
    page.mouse.wheel(0, -200)
    page.wait_for_function("([id, w]) => window.sigmagraphGeometry(id).rect.width > w * 1.2",
                           arg=[show, after["width"]])
    page.get_by_role("button", name="Fit").click()

    page.get_by_test_id("queue-button").click()
    expect(node(page, show).get_by_test_id("node-output")).to_contain_text("values: 44.1", timeout=RUN_TIMEOUT_MS)
    expect(node(page, tap).get_by_test_id("node-output")).to_contain_text("values: 21")
    expect(node(page, constant).locator(".badge")).to_contain_text("ms")

    # Queued again unchanged (Ctrl+Enter), every node comes from the cache and is marked so.
    page.keyboard.press("Control+Enter")
    expect(node(page, show).locator(".badge")).to_have_text("cached", timeout=RUN_TIMEOUT_MS)
    expect(node(page, constant)).to_have_class(re.compile(r"\bcached\b"))

    page.get_by_test_id("toast").click()  # a click dismisses it
    expect(page.get_by_test_id("toast")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "editor.png"))


def test_images_previews_and_dropping_the_saved_png(page, server, tmp_path):
    workflow = {
        "1": {"class_type": "SolidImage", "inputs": {"red": 0.9, "steps": 6}, "_meta": {"pos": [40, 60]}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "e2e"},
              "_meta": {"title": "Keep", "pos": [360, 60]}},
    }
    path = tmp_path / "images.json"
    path.write_text(json.dumps(workflow))
    open_file(page, path)
    expect(page.locator(".node")).to_have_count(2)

    record_changes(page, '[data-testid="gallery-preview"]', "galleryPreviews")
    record_changes(page, '.node[data-node-id="1"] [data-testid="node-preview"]', "nodePreviews")
    record_changes(page, '.node[data-node-id="1"] .node-progress .bar', "progress")
    page.get_by_test_id("queue-button").click()
    image = node(page, "2").get_by_test_id("node-image")
    expect(image).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(image).to_have_attribute("src", re.compile(r"^/view\?filename=e2e_\d+_\.png"))
    page.wait_for_function("img => img.complete && img.naturalWidth === 64", arg=image.element_handle())
    expect(page.get_by_test_id("gallery-image")).to_have_count(1)

    # While it ran: live previews (binary websocket frames) on the node and in the gallery, and progress.
    assert any(src and src.startswith("blob:") for src in page.evaluate("window.galleryPreviews"))
    assert any(src and src.startswith("blob:") for src in page.evaluate("window.nodePreviews"))
    widths = [float(m.group(1)) for style in page.evaluate("window.progress")
              if (m := re.search(r"width: ([\d.]+)%", style or ""))]
    assert any(0 < w < 100 for w in widths), widths

    # The PNG written by SaveImage, dropped on the canvas, brings its workflow back.
    png = next((server.config.output_dir).glob("e2e_*.png")).read_bytes()
    clear_graph(page)
    transfer = page.evaluate_handle("""([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: "image/png"}));
        return transfer;
    }""", [base64.b64encode(png).decode(), "e2e.png"])
    page.dispatch_event("#viewport", "drop", {"dataTransfer": transfer})
    expect(page.locator(".node")).to_have_count(2)
    expect(node(page, "2").locator(".title-text")).to_have_text("Keep")
    expect(input_socket(page, "2", "images")).to_have_attribute("data-link", "1:0")
    expect(node(page, "1").locator('[data-widget="steps"] .value')).to_have_text("6")
    assert {k: v["_meta"]["pos"] for k, v in saved_workflow(page).items()} == {"1": [40, 60], "2": [360, 60]}


def test_ui_format_import_matches_the_engine_converter(page, server, tmp_path):
    document = json.loads(UI_WORKFLOW.read_text())
    expected = ui_to_api(document, server.session.registry)
    open_file(page, UI_WORKFLOW)
    expect(page.locator(".node")).to_have_count(len(expected))
    saved = saved_workflow(page)
    assert set(saved) == set(expected)
    for node_id, entry in expected.items():
        assert saved[node_id]["class_type"] == entry["class_type"]
        assert saved[node_id]["inputs"] == entry["inputs"], node_id
        assert saved[node_id]["_meta"]["title"] == entry["_meta"]["title"]
        assert saved[node_id]["_meta"]["pos"] == [round(v) for v in entry["_meta"]["pos"]]
    assert saved["2"]["_meta"]["control_after_generate"] == {"seed": "randomize"}


def png_with_text(path: Path, **chunks: str) -> Path:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    path.write_bytes(buffer.getvalue())
    return path


def test_png_text_chunks_restore_the_graph(page, tmp_path):
    prompt = {
        "7": {"class_type": "Constant", "inputs": {"value": 3.5},
              "_meta": {"title": "Three and a half", "pos": [0, 0]}},
        "8": {"class_type": "Show", "inputs": {"value": ["7", 0], "label": "from png"}, "_meta": {"pos": [300, 0]}},
    }
    open_file(page, png_with_text(tmp_path / "prompt.png", prompt=json.dumps(prompt), workflow="{}"))
    expect(page.locator(".node")).to_have_count(2)
    expect(node(page, "7").locator(".title-text")).to_have_text("Three and a half")
    expect(node(page, "7").locator('[data-widget="value"] .value')).to_have_text("3.50")
    expect(input_socket(page, "8", "value")).to_have_attribute("data-link", "7:0")

    # Without a `prompt` chunk, the UI-format `workflow` chunk is converted.
    open_file(page, png_with_text(tmp_path / "workflow.png", workflow=UI_WORKFLOW.read_text()))
    expect(node(page, "5").locator(".title-text")).to_have_text("My sum")
    expect(input_socket(page, "5", "a")).to_have_attribute("data-link", "1:0")

    open_file(page, png_with_text(tmp_path / "plain.png"))
    expect(page.get_by_test_id("toast")).to_contain_text("carries no workflow")
    expect(page.locator(".node")).to_have_count(5)  # the graph from before stays


def test_run_states_progress_failure_seed_control_and_validation_errors(page, tmp_path):
    workflow = {
        "1": {"class_type": "Constant", "inputs": {"value": 1.0}, "_meta": {"pos": [0, 0]}},
        "2": {"class_type": "Slow", "inputs": {"x": ["1", 0], "steps": 1500}, "_meta": {"pos": [300, 0]}},
        "3": {"class_type": "Show", "inputs": {"value": ["2", 0]}, "_meta": {"pos": [600, 0]}},
        "4": {"class_type": "Fail", "inputs": {"x": ["1", 0], "message": "deliberate failure"},
              "_meta": {"pos": [300, 250]}},
        "5": {"class_type": "Show", "inputs": {"value": ["4", 0]}, "_meta": {"pos": [600, 250]}},
        "6": {"class_type": "Zeros", "inputs": {"size": 4, "seed": 5},
              "_meta": {"pos": [0, 450], "control_after_generate": {"seed": "increment"}}},
        "7": {"class_type": "Sum", "inputs": {"t": ["6", 0]}, "_meta": {"pos": [300, 450]}},
        "8": {"class_type": "Show", "inputs": {"value": ["7", 0]}, "_meta": {"pos": [600, 450]}},
    }
    path = tmp_path / "states.json"
    path.write_text(json.dumps(workflow))
    open_file(page, path)
    seed = node(page, "6").locator('[data-widget="seed"] .value')
    expect(node(page, "6").locator('[data-widget="seed:control"] select')).to_have_value("increment")
    page.get_by_test_id("queue-button").click()
    expect(seed).to_have_text("6")  # the seed moves on once the prompt is queued, which ran with 5
    expect(node(page, "2")).to_have_class(re.compile(r"\brunning\b"), timeout=RUN_TIMEOUT_MS)
    expect(node(page, "2").locator(".node-progress")).to_be_visible()
    expect(node(page, "4")).to_have_class(re.compile(r"\bfailed\b"), timeout=RUN_TIMEOUT_MS)
    expect(node(page, "4").get_by_test_id("node-error")).to_contain_text("deliberate failure")
    expect(page.get_by_test_id("toast")).to_contain_text("failed")

    # Stop interrupts the running prompt.
    workflow["2"]["inputs"]["steps"] = 100000
    path.write_text(json.dumps(workflow))
    open_file(page, path)
    page.get_by_test_id("queue-button").click()
    expect(node(page, "2")).to_have_class(re.compile(r"\brunning\b"), timeout=RUN_TIMEOUT_MS)
    page.get_by_test_id("interrupt-button").click()
    expect(page.get_by_test_id("toast")).to_contain_text("interrupted", timeout=RUN_TIMEOUT_MS)
    expect(node(page, "2")).not_to_have_class(re.compile(r"\brunning\b"))

    # An invalid output branch (the other outputs still run, as in ComfyUI): its node's errors are shown on it.
    del workflow["2"]["inputs"]["x"]
    path.write_text(json.dumps(workflow))
    open_file(page, path)
    page.get_by_test_id("queue-button").click()
    expect(node(page, "2")).to_have_class(re.compile(r"\bfailed\b"))
    expect(node(page, "2").get_by_test_id("node-error")).to_contain_text("'x'")
    expect(page.get_by_test_id("toast")).to_contain_text("outlined in red")


def test_node_pack_extensions_are_imported_and_set_up(page, server):
    assert page.evaluate("fetch('/extensions').then((r) => r.json())") == ["/extensions/image_pack/mark_page.js"]
    expect(page.locator("body")).to_have_attribute("data-extension-saw-nodes", str(len(server.session.registry.nodes)))


def test_the_shipped_default_workflow_opens_and_runs(browser, tmp_path):
    """With the real node packs: every node of workflows/default.json is known, and it runs on the packaged model.

    Its screenshot is the README's picture of the editor: SIGMAGRAPH_UPDATE_SCREENSHOT=1 copies it to docs/.
    """
    with LiveServer(Session(folders_config(tmp_path)), ServerOptions(port=0, workflows_dir=REPO / "workflows")) as live:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(live.url)
        page.wait_for_selector("body[data-ready]", timeout=15000)
        assert page.locator(".node").count() > 0
        expect(page.locator(".node.missing")).to_have_count(0)
        page.get_by_test_id("queue-button").click()
        page.wait_for_function("() => document.querySelector('[data-testid=gallery-image], .node.failed')",
                               timeout=60000)
        assert not page.locator(".node.failed [data-testid=node-error]").all_inner_texts()
        page.wait_for_function("() => [...document.querySelectorAll('img[data-testid=node-image]')]"
                               ".every((img) => img.complete && img.naturalWidth > 0)")
        page.screenshot(path=str(tmp_path / "default_workflow.png"), style=HIDE_TOAST)
        page.close()
    if os.environ.get("SIGMAGRAPH_UPDATE_SCREENSHOT"):
        shutil.copy(tmp_path / "default_workflow.png", REPO / "docs" / "editor.png")
