"""A live server on 127.0.0.1 (the test pack, SaveImage and the image test pack) and Debian's Chromium."""

from __future__ import annotations

import json
import os

import pytest

from sigmagraph.engine import Registry, Session
from sigmagraph.engine.server import ServerOptions
from sigmagraph.nodes.packs import image_output

from ..engine import testing_pack
from . import image_pack
from .live_server import LiveServer, folders_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# The workflow the editor opens first (GET /workflows/default.json): Constant → Show.
DEFAULT_WORKFLOW = {
    "1": {"class_type": "Constant", "inputs": {"value": 5.0}, "_meta": {"title": "Five", "pos": [40, 40]}},
    "2": {"class_type": "Show", "inputs": {"value": ["1", 0], "label": "start"}, "_meta": {"pos": [340, 40]}},
}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("web_server")
    registry = Registry()
    for module, pack in ((testing_pack, "testing"), (image_output, "image_output"), (image_pack, "image_pack")):
        registry.load_module(module, pack)
    assert not registry.problems, registry.problems
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "default.json").write_text(json.dumps(DEFAULT_WORKFLOW))
    config = folders_config(root)
    session = Session(config, registry)
    with LiveServer(session, ServerOptions(port=0, workflows_dir=workflows)) as live:
        live.config, live.session = config, session
        yield live


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium); the browser tests need Debian's Chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """The editor, loaded and ready; an uncaught error, a console error or a console warning fails the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = watch_console(page)
    page.goto(server.url)
    page.wait_for_selector("body[data-ready]", timeout=15000)
    yield page
    context.close()
    assert not problems, problems


def watch_console(page) -> list[str]:
    """A list that collects the page's uncaught errors and its console errors and warnings."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    page.on("console", lambda message: problems.append(f"console.{message.type}: {message.text}")
            if message.type in ("error", "warning") else None)
    return problems
