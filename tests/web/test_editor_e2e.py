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

from .conftest import watch_console
from .live_server import LiveServer, folders_config

playwright = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
expect, PlaywrightTimeout = playwright.expect, playwright.TimeoutError

REPO = Path(__file__).resolve().parents[2]
UI_WORKFLOW = REPO / "tests" / "engine" / "data" / "ui_workflow.json"
UI_CASES = REPO / "tests" / "web" / "ui_format_cases.json"
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
    page.locator(f'[data-testid="node-menu-item"][data-value="{node_type}"]').click()
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


def saved_workflow(page, button: str = "save-api-button") -> dict:
    """The file a Save button downloads: the API format (save-api-button) or the UI format (save-button)."""
    with page.expect_download() as download:
        page.get_by_test_id(button).click()
    return json.loads(Path(download.value.path()).read_text())


def choose(page, node_id: str, widget: str, value: str) -> None:
    """Opens a combo widget's drop-down, narrows it by typing, and picks `value`."""
    node(page, node_id).locator(f'[data-widget="{widget}"] .value').click()
    expect(page.get_by_test_id("choice-list")).to_be_visible()
    page.keyboard.type(value)
    page.locator(f'[data-testid="choice"][data-value="{value}"]').click()
    expect(node(page, node_id).locator(f'[data-widget="{widget}"] .value')).to_have_text(value)


def dismiss_toasts(page) -> None:
    """Clicks each toast away (they stack, newest at the bottom)."""
    while page.locator(".toast-item").count():
        page.locator(".toast-item").first.click()


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

    # A toggle flips on click; a combo steps with its arrows and picks from a searchable list (left on "mul").
    toggle = node(page, scale).locator('[data-widget="enabled"] .widget')
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    mode = node(page, scale).locator('[data-widget="mode"]')
    mode.get_by_label("next mode").click()
    expect(mode.locator(".value")).to_have_text("div")
    mode.get_by_label("next mode").click()
    expect(mode.locator(".value")).to_have_text("mul")
    choose(page, scale, "mode", "div")
    choose(page, scale, "mode", "mul")

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

    dismiss_toasts(page)
    expect(page.get_by_test_id("toast")).to_be_hidden()
    page.screenshot(path=str(tmp_path / "editor.png"))


def title_point(page, node_id: str) -> dict:
    return geometry(page, node_id)["title"]


def click_title(page, node_id: str, modifier: str | None = None) -> None:
    title = title_point(page, node_id)
    if modifier:
        page.keyboard.down(modifier)
    page.mouse.click(title["cx"], title["cy"])
    if modifier:
        page.keyboard.up(modifier)


def context_action(page, x: float, y: float, label: str) -> None:
    """Right-clicks at (x, y) and picks a context-menu item by its label."""
    page.mouse.click(x, y, button="right")
    page.get_by_test_id("context-menu").locator("li", has_text=re.compile(f"^{re.escape(label)}")).click()


def test_editing_habits_undo_clipboard_groups_bypass_reroutes_and_reload(page, tmp_path):
    selected = re.compile(r"\bselected\b")
    # Readable on open: never below 92 % (text of 11 px), the gallery folded while it has no images.
    assert int(page.get_by_test_id("zoom").inner_text().rstrip("%")) >= 92
    expect(page.locator("body")).to_have_class(re.compile(r"\bgallery-hidden\b"))
    nodes = page.locator(".node")

    # Undo and redo of a delete and of an add.
    clear_graph(page)
    page.keyboard.press("Control+z")
    expect(nodes).to_have_count(2)
    page.keyboard.press("Control+y")
    expect(nodes).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", "1:0")
    scale = add_node(page, "Scale", 400, 640)
    page.keyboard.press("Control+z")
    expect(nodes).to_have_count(2)
    page.keyboard.press("Control+Shift+z")
    expect(nodes).to_have_count(3)

    # Connect and disconnect, each undone and redone.
    connect(page, "1", 0, scale, "x")
    expect(input_socket(page, scale, "x")).to_have_attribute("data-link", "1:0")
    page.keyboard.press("Control+z")
    assert input_socket(page, scale, "x").get_attribute("data-link") is None
    page.keyboard.press("Control+y")
    expect(input_socket(page, scale, "x")).to_have_attribute("data-link", "1:0")
    connect(page, scale, 0, "2", "value")
    drag(page, geometry(page, "2")["inputs"]["value"], {"cx": 900, "cy": 760})
    assert input_socket(page, "2", "value").get_attribute("data-link") is None
    page.keyboard.press("Control+z")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", f"{scale}:0")

    # A move, undone and redone; a widget value, undone and redone.
    before = title_point(page, scale)
    drag(page, before, {"cx": before["cx"] + 60, "cy": before["cy"] + 40})
    assert title_point(page, scale)["x"] == pytest.approx(before["x"] + 60, abs=1)
    page.keyboard.press("Control+z")
    assert title_point(page, scale)["x"] == pytest.approx(before["x"], abs=1)
    page.keyboard.press("Control+y")
    assert title_point(page, scale)["x"] == pytest.approx(before["x"] + 60, abs=1)
    factor = node(page, scale).locator('[data-widget="factor"] .value')
    factor.click()
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect(factor).to_have_text("3.00")
    page.keyboard.press("Control+z")
    expect(factor).to_have_text("2.00")
    page.keyboard.press("Control+y")
    expect(factor).to_have_text("3.00")

    # Inside a text widget Ctrl+Z is the field's own undo; the graph is left alone.
    label = node(page, "2").locator('[data-widget="label"] input')
    label.click()
    page.keyboard.press("End")
    page.keyboard.type("!")
    expect(label).to_have_value("start!")
    page.keyboard.press("Control+z")
    expect(label).to_have_value("start")
    expect(nodes).to_have_count(3)
    # The node search forgives a typo; Escape with text in it, then Ctrl+Z and Ctrl+Y: no error (the
    # fixture checks the console).
    page.mouse.dblclick(300, 700)
    page.keyboard.type("sclae")
    expect(page.get_by_test_id("node-menu-item").first).to_have_attribute("data-value", "Scale")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("node-menu")).to_be_hidden()
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    expect(factor).to_have_text("3.00")

    # Copy and paste: Ctrl+V brings the node alone, Ctrl+Shift+V with its input link; undo removes a paste.
    click_title(page, scale)
    page.keyboard.press("Control+c")
    page.mouse.move(150, 120)
    page.keyboard.press("Control+v")
    expect(nodes).to_have_count(4)
    page.mouse.move(450, 120)
    page.keyboard.press("Control+Shift+v")
    expect(nodes).to_have_count(5)
    pasted = sorted(set(node_ids(page)) - {"1", "2", scale}, key=int)
    assert input_socket(page, pasted[0], "x").get_attribute("data-link") is None
    expect(input_socket(page, pasted[1], "x")).to_have_attribute("data-link", "1:0")
    expect(node(page, pasted[0]).locator('[data-widget="factor"] .value')).to_have_text("3.00")
    page.keyboard.press("Control+z")
    expect(nodes).to_have_count(4)
    page.keyboard.press("Control+y")
    expect(nodes).to_have_count(5)
    # Box select (Ctrl+drag around both copies) and delete them.
    a, b = geometry(page, pasted[0])["rect"], geometry(page, pasted[1])["rect"]
    page.mouse.click(1200, 850)
    page.keyboard.down("Control")
    drag(page, {"cx": min(a["x"], b["x"]) - 10, "cy": min(a["y"], b["y"]) - 10},
         {"cx": max(a["x"] + a["width"], b["x"] + b["width"]) + 10,
          "cy": max(a["y"] + a["height"], b["y"] + b["height"]) + 10})
    page.keyboard.up("Control")
    expect(node(page, pasted[0])).to_have_class(selected)
    expect(node(page, pasted[1])).to_have_class(selected)
    expect(node(page, scale)).not_to_have_class(selected)
    page.keyboard.press("Delete")
    expect(nodes).to_have_count(3)

    # Bypass from the node's context menu: the Scale passes its input through when queued.
    title = title_point(page, scale)
    context_action(page, title["cx"], title["cy"], "Bypass")
    expect(node(page, scale)).to_have_class(re.compile(r"\bbypassed\b"))
    page.keyboard.press("Control+Enter")
    expect(node(page, "2").get_by_test_id("node-output")).to_contain_text("values: 5", timeout=RUN_TIMEOUT_MS)
    page.keyboard.press("Control+b")  # the Scale is still selected
    expect(node(page, scale)).not_to_have_class(re.compile(r"\bbypassed\b"))
    page.keyboard.press("Control+Enter")
    expect(node(page, "2").get_by_test_id("node-output")).to_contain_text("values: 15", timeout=RUN_TIMEOUT_MS)
    # Muted, a node is left out of the prompt altogether.
    page.keyboard.press("Control+m")
    expect(node(page, scale)).to_have_class(re.compile(r"\bmuted\b"))
    assert scale not in saved_workflow(page) and "value" not in saved_workflow(page)["2"]["inputs"]
    page.keyboard.press("Control+m")

    # A reroute: double-click the wire between Scale and Show; the link then passes through it.
    a = geometry(page, scale)["outputs"][0]
    b = geometry(page, "2")["inputs"]["value"]
    page.mouse.dblclick((a["cx"] + b["cx"]) / 2, (a["cy"] + b["cy"]) / 2)
    expect(nodes).to_have_count(4)
    (reroute,) = set(node_ids(page)) - {"1", "2", scale}
    expect(node(page, reroute)).to_have_attribute("data-node-type", "Reroute")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", f"{reroute}:0")
    expect(input_socket(page, reroute, "value")).to_have_attribute("data-link", f"{scale}:0")
    assert saved_workflow(page)["2"]["inputs"]["value"] == [scale, 0]

    # A refused drop of a picked-up link puts it back (a Reroute gives the type that comes into it).
    text = add_node(page, "Sum", 1000, 700)
    drag(page, geometry(page, "2")["inputs"]["value"], geometry(page, text)["inputs"]["t"])
    expect(page.get_by_test_id("toast")).to_contain_text("TENSOR")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", f"{reroute}:0")
    # An error toast is not replaced by the next message.
    page.keyboard.press("Control+Enter")
    expect(page.get_by_test_id("toast")).to_contain_text("queued prompt")
    expect(page.get_by_test_id("toast")).to_contain_text("TENSOR")
    page.keyboard.press("Delete")  # the Sum is selected
    expect(nodes).to_have_count(4)

    # A group around the selection (Ctrl+G), renamed, moved by its title with its nodes, and undone.
    click_title(page, "1")
    click_title(page, scale, "Shift")
    page.keyboard.press("Control+g")
    group = page.get_by_test_id("group")
    expect(group).to_have_count(1)
    title = group.locator(".group-title").bounding_box()
    page.mouse.dblclick(title["x"] + 40, title["y"] + title["height"] / 2)
    page.keyboard.press("Control+a")
    page.keyboard.type("Inputs")
    page.keyboard.press("Enter")
    expect(group).to_have_text("Inputs")
    start = {x: title_point(page, x)["y"] for x in ("1", scale, "2")}
    title = group.locator(".group-title").bounding_box()
    drag(page, {"cx": title["x"] + 40, "cy": title["y"] + 10}, {"cx": title["x"] + 40, "cy": title["y"] + 90})
    moved = {x: title_point(page, x)["y"] - start[x] for x in start}
    assert moved["1"] == pytest.approx(80, abs=1) and moved[scale] == pytest.approx(80, abs=1) and moved["2"] == 0
    page.keyboard.press("Control+z")
    assert title_point(page, "1")["y"] == pytest.approx(start["1"], abs=1)

    # Collapse from the context menu; resize from the corner (undoable); the minimap.
    title = title_point(page, scale)
    context_action(page, title["cx"], title["cy"], "Collapse")
    expect(node(page, scale)).to_have_class(re.compile(r"\bcollapsed\b"))
    context_action(page, title["cx"], title["cy"], "Expand")
    expect(node(page, scale)).not_to_have_class(re.compile(r"\bcollapsed\b"))
    dismiss_toasts(page)  # toasts lie over the canvas's lower edge
    width = geometry(page, scale)["rect"]["width"]
    corner = geometry(page, scale)["resize"]
    drag(page, corner, {"cx": corner["cx"] + 50, "cy": corner["cy"]})
    assert geometry(page, scale)["rect"]["width"] == pytest.approx(width + 50, abs=2)
    page.keyboard.press("Control+z")
    assert geometry(page, scale)["rect"]["width"] == pytest.approx(width, abs=1)
    page.get_by_test_id("minimap-button").click()
    expect(page.get_by_test_id("minimap")).to_be_visible()
    before = geometry(page, "2")["rect"]
    page.get_by_test_id("minimap").click(position={"x": 10, "y": 10})  # look at the minimap's top-left corner
    assert geometry(page, "2")["rect"]["x"] != before["x"]
    page.get_by_test_id("minimap-button").click()
    page.keyboard.press(".")

    # Reload: the graph, its group and its view come back from the browser's storage.
    ui = saved_workflow(page, "save-button")
    assert [g["title"] for g in ui["groups"]] == ["Inputs"]
    assert sorted(n["type"] for n in ui["nodes"]) == ["Constant", "Reroute", "Scale", "Show"]
    zoom = page.get_by_test_id("zoom").inner_text()
    page.wait_for_timeout(400)  # the editor writes the graph a moment after a change
    page.reload()
    page.wait_for_selector("body[data-ready]", timeout=15000)
    expect(nodes).to_have_count(4)
    expect(page.get_by_test_id("group")).to_have_text("Inputs")
    expect(input_socket(page, "2", "value")).to_have_attribute("data-link", f"{reroute}:0")
    expect(node(page, scale).locator('[data-widget="factor"] .value')).to_have_text("3.00")
    expect(page.get_by_test_id("zoom")).to_have_text(zoom)
    # New empties the canvas (undoably); Default opens the default workflow.
    page.get_by_test_id("new-button").click()
    expect(nodes).to_have_count(0)
    page.keyboard.press("Control+z")
    expect(nodes).to_have_count(4)
    page.get_by_test_id("default-button").click()
    expect(nodes).to_have_count(2)


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

    # A gallery image opens in the lightbox; Escape closes it.
    page.get_by_test_id("gallery-image").click()
    expect(page.get_by_test_id("lightbox-image")).to_have_attribute("src", re.compile(r"^/view\?filename=e2e_"))
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("lightbox")).to_be_hidden()

    # A file put in the input folder shows in the combos once the lists are refreshed ("R"), without a reload.
    picked = add_node(page, "PickedImage", 300, 600)
    server.config.input_dir.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(server.config.input_dir / "fresh.png")
    page.keyboard.press("r")
    expect(page.get_by_test_id("toast")).to_contain_text("refreshed")
    choose(page, picked, "image", "fresh.png")

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


def test_ui_format_round_trip_keeps_groups_notes_reroutes_and_sizes(page, server, tmp_path):
    """A UI-format file opens with all ComfyUI shows; Save writes it back, Save API is what the engine reads."""
    document = json.loads(UI_CASES.read_text())["cases"][1]["ui"]
    path = tmp_path / "ui.json"
    path.write_text(json.dumps(document))
    open_file(page, path)
    expect(page.locator(".node")).to_have_count(len(document["nodes"]) - 1)  # the PrimitiveNode is folded in
    expect(node(page, "7")).to_have_class(re.compile(r"\bbypassed\b"))
    expect(node(page, "9")).to_have_class(re.compile(r"\bmuted\b"))
    expect(node(page, "3")).to_have_class(re.compile(r"\bcollapsed\b"))
    expect(page.get_by_test_id("group")).to_have_text("Inputs")
    expect(node(page, "10").locator("textarea")).to_have_value("a note")

    expected = ui_to_api(document, server.session.registry)
    api = saved_workflow(page)
    assert {k: (v["class_type"], v["inputs"], v["_meta"]["title"]) for k, v in api.items()} == \
        {k: (v["class_type"], v["inputs"], v["_meta"]["title"]) for k, v in expected.items()}
    saved = saved_workflow(page, "save-button")
    assert saved["groups"] == document["groups"]
    mine = {n["id"]: n for n in saved["nodes"]}
    for original in document["nodes"]:
        if original["type"] == "PrimitiveNode":
            continue
        for key in ("type", "mode", "pos", "size", "color", "bgcolor", "flags", "title"):
            assert mine[original["id"]].get(key) == original.get(key), (original["id"], key)
        if "widgets_values" in original and original["id"] != 5:  # node 5's offset came from the primitive
            assert mine[original["id"]]["widgets_values"] == original["widgets_values"], original["id"]


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

    # The UI-format `workflow` chunk opens as it is (a Reroute stays a Reroute).
    open_file(page, png_with_text(tmp_path / "workflow.png", workflow=UI_WORKFLOW.read_text()))
    expect(node(page, "5").locator(".title-text")).to_have_text("My sum")
    expect(input_socket(page, "5", "a")).to_have_attribute("data-link", "4:0")
    expect(input_socket(page, "4", "value")).to_have_attribute("data-link", "1:0")

    open_file(page, png_with_text(tmp_path / "plain.png"))
    expect(page.get_by_test_id("toast")).to_contain_text("carries no workflow")
    expect(page.locator(".node")).to_have_count(9)  # the graph from before stays


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
    expect(node(page, "6").locator('[data-widget="seed:control"] .value')).to_have_text("increment")
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
    editor_nodes = {"Note", "MarkdownNote", "Reroute"} - set(server.session.registry.nodes)  # the editor's own
    expect(page.locator("body")).to_have_attribute("data-extension-saw-nodes",
                                                   str(len(server.session.registry.nodes) + len(editor_nodes)))


def test_the_shipped_default_workflow_opens_and_runs(browser, tmp_path):
    """With the real node packs, at 1280×800: the default workflow opens readable, every shipped workflow
    leaves each socket in the clear, and the default one runs on the packaged model with live previews
    on the sampler while it samples.

    Its screenshots (at open, after the run) are the README's pictures: SIGMAGRAPH_UPDATE_SCREENSHOT=1
    copies them to docs/.
    """
    with LiveServer(Session(folders_config(tmp_path)), ServerOptions(port=0, workflows_dir=REPO / "workflows")) as live:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = watch_console(page)
        page.goto(live.url)
        page.wait_for_selector("body[data-ready]", timeout=15000)
        assert page.locator(".node").count() > 0
        expect(page.locator(".node.missing")).to_have_count(0)
        assert int(page.get_by_test_id("zoom").inner_text().rstrip("%")) >= 92  # node text at 11 px or more
        page.screenshot(path=str(tmp_path / "editor_open.png"), style=HIDE_TOAST)

        # Every shipped workflow, fitted in view: no node covers another's socket, no two nodes touch.
        page.add_style_tag(content=HIDE_TOAST)
        for path in sorted((REPO / "workflows").glob("*.json")):
            open_file(page, path)
            expect(page.locator(".node")).to_have_count(len(json.loads(path.read_text())))
            expect(page.locator(".node.missing")).to_have_count(0)  # a missing node is not drawn at its size
            page.keyboard.press(".")
            try:  # the fit and the nodes' measured sizes settle within frames; a loaded machine needs more
                page.wait_for_function(f"() => ({CLEAR_LAYOUT})().length === 0", timeout=5000)
            except PlaywrightTimeout:
                assert page.evaluate(CLEAR_LAYOUT) == [], path.name
        page.get_by_test_id("default-button").click()
        expect(page.get_by_test_id("toast")).to_contain_text("opened the default workflow")
        expect(page.locator(".node")).to_have_count(len(json.loads((REPO / "workflows" / "default.json").read_text())))

        record_changes(page, '.node[data-node-id="5"] [data-testid="node-preview"]', "samplerPreviews")
        page.get_by_test_id("queue-button").click()
        page.wait_for_function("() => document.querySelector('[data-testid=gallery-image], .node.failed')",
                               timeout=120000)
        assert not page.locator(".node.failed [data-testid=node-error]").all_inner_texts()
        page.wait_for_function("() => [...document.querySelectorAll('img[data-testid=node-image]')]"
                               ".every((img) => img.complete && img.naturalWidth > 0)")
        expect(page.get_by_test_id("gallery")).to_be_visible()
        # Sampling previews (binary websocket frames) were shown on the KSampler while it ran.
        assert any(src and src.startswith("blob:") for src in page.evaluate("window.samplerPreviews"))
        page.keyboard.press(".")  # the whole graph, images included
        page.wait_for_timeout(100)
        page.screenshot(path=str(tmp_path / "editor.png"), style=HIDE_TOAST)
        page.close()
        assert not problems, problems
    if os.environ.get("SIGMAGRAPH_UPDATE_SCREENSHOT"):
        for name in ("editor_open.png", "editor.png"):
            shutil.copy(tmp_path / name, REPO / "docs" / name)


# The problems of a layout: a socket whose centre another node covers, and nodes closer than 20 px.
CLEAR_LAYOUT = """() => {
    const problems = [];
    for (const socket of document.querySelectorAll(".node .socket")) {
        const r = socket.getBoundingClientRect();
        // Covered means under another node (what hid VAE Decode's output); off-screen or under the minimap is not.
        const other = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2)?.closest(".node");
        if (other && other !== socket.closest(".node")) {
            problems.push(`${socket.closest(".node").dataset.nodeId}.${socket.dataset.input ?? socket.dataset.output}`);
        }
    }
    const boxes = [...window.sigmagraph.canvas.views.values()].map((v) => [v.node.id, v.box()]);
    for (const [a, p] of boxes) {
        for (const [b, q] of boxes) {
            if (a < b && p[0] < q[2] + 20 && q[0] < p[2] + 20 && p[1] < q[3] + 20 && q[1] < p[3] + 20) {
                problems.push(`${a} touches ${b}`);
            }
        }
    }
    return problems;
}"""
