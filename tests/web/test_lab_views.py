"""The sampler lab in the editor (issue 15): inline schedule curves and branching from a recorded step.

The curves' numbers come from POST /lab/sigmas; they are checked against published tables (DESIGN.md's SD
schedules, Align Your Steps' SD1.5 table) and Karras et al.'s closed form, in the route's answers and in
the page. The browser test changes a schedule's steps, runs a recorded trajectory on the analytic model,
and clicks a recorded step.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from sigmagraph.engine import Session
from sigmagraph.engine.server import ServerOptions

from .conftest import watch_console
from .live_server import LiveServer, folders_config

expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed").expect

# DESIGN.md: SD's normal schedule at 4 and 15 steps, and its karras schedule at 4 steps.
SD_NORMAL_4 = [14.61464, 2.918307, 0.932358, 0.029167, 0.0]
SD_NORMAL_15 = [14.6146, 9.6826, 6.6780, 4.7746, 3.5221, 2.6666, 2.0606, 1.6156, 1.2768, 1.0097, 0.7913, 0.6056,
                0.4397, 0.2780, 0.0292, 0.0]
SD_KARRAS_4 = [14.614643, 3.168605, 0.446919, 0.029167, 0.0]
# Align Your Steps (Sabour et al. 2024): NVIDIA's SD1.5 levels for 10 steps (as ComfyUI ships them); its node
# puts 0 in place of the last level.
AYS_SD1_10 = [14.6146412293, 6.4745760956, 3.8636745985, 2.6946151520, 1.8841921177, 1.3943805092, 0.9642583904,
              0.6523686016, 0.3977456272, 0.1515232662, 0.0]
DRAWN = re.compile(r"^\[.+\]$")  # a curve's data-sigmas once it has sigmas

LAB_WORKFLOW = {
    "1": {"class_type": "GaussianMixtureModel", "inputs": {"seed": 0, "components": 3, "channels": 4, "spread": 1.0,
                                                           "prediction_type": "eps"}, "_meta": {"pos": [20, 20]}},
    "2": {"class_type": "NoConditioning", "inputs": {}, "_meta": {"pos": [20, 330]}},
    "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 32, "height": 32, "batch_size": 1},
          "_meta": {"pos": [20, 460]}},
    "4": {"class_type": "BasicGuider", "inputs": {"model": ["1", 0], "conditioning": ["2", 0]},
          "_meta": {"pos": [320, 20]}},
    "5": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": 4,
                                                     "denoise": 1.0}, "_meta": {"pos": [320, 160]}},
    "6": {"class_type": "RandomNoise", "inputs": {"noise_seed": 7}, "_meta": {"pos": [320, 450]}},
    "7": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler_ancestral"},
          "_meta": {"pos": [320, 580]}},
    "8": {"class_type": "RecordTrajectory", "inputs": {"noise": ["6", 0], "guider": ["4", 0], "sampler": ["7", 0],
                                                       "sigmas": ["5", 0], "latent_image": ["3", 0],
                                                       "record_steps": ""}, "_meta": {"pos": [640, 20]}},
    "9": {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": ["8", 0]},
          "_meta": {"pos": [1000, 20]}},
    "10": {"class_type": "PreviewImage", "inputs": {"images": ["9", 0]}, "_meta": {"pos": [1000, 160]}},
    "11": {"class_type": "KarrasScheduler", "inputs": {"steps": 6, "sigma_max": 80.0, "sigma_min": 0.002,
                                                       "rho": 7.0}, "_meta": {"pos": [640, 420]}},
}


def karras(steps: int, sigma_min: float, sigma_max: float, rho: float) -> list[float]:
    """Karras et al. (2022), eq. 5, with the final 0."""
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + i / (steps - 1) * (lo - hi)) ** rho for i in range(steps)] + [0.0]


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    """A live server with the built-in packs, whose default workflow is LAB_WORKFLOW."""
    root = tmp_path_factory.mktemp("lab_server")
    workflows = root / "workflows"
    workflows.mkdir()
    (workflows / "default.json").write_text(json.dumps(LAB_WORKFLOW))
    session = Session(folders_config(root))
    with LiveServer(session, ServerOptions(port=0, workflows_dir=workflows)) as live:
        live.session = session
        yield live


def post(server, path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(server.url + path.lstrip("/"), data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def close(got: list[float], expected: list[float], tolerance: float) -> bool:
    return len(got) == len(expected) and all(abs(g - e) <= tolerance * max(1.0, abs(e)) for g, e in zip(got, expected))


def test_the_route_gives_the_published_schedules(lab_server):
    status, answer = post(lab_server, "/lab/sigmas", {"class_type": "BasicScheduler",
                                                      "inputs": {"scheduler": "normal", "steps": 4, "denoise": 1.0}})
    assert status == 200 and close(answer["sigmas"], SD_NORMAL_4, 1e-5), answer
    assert answer["model"].startswith("SD1")  # a MODEL input is taken to be SD1.x's, and the answer says so
    _, answer = post(lab_server, "/lab/sigmas", {"class_type": "BasicScheduler",
                                                 "inputs": {"scheduler": "karras", "steps": 4, "denoise": 1.0}})
    assert close(answer["sigmas"], SD_KARRAS_4, 1e-5), answer
    _, answer = post(lab_server, "/lab/sigmas", {"class_type": "AlignYourStepsScheduler",
                                                 "inputs": {"model_type": "SD1", "steps": 10, "denoise": 1.0}})
    assert close(answer["sigmas"], AYS_SD1_10, 1e-6) and answer["model"] is None, answer
    _, answer = post(lab_server, "/lab/sigmas", {"class_type": "KarrasScheduler",
                                                 "inputs": {"steps": 7, "sigma_max": 80, "sigma_min": 0.002, "rho": 7}})
    assert close(answer["sigmas"], karras(7, 0.002, 80.0, 7.0), 1e-6), answer

    # Only schedule nodes are evaluated, with their widgets checked as a run checks them.
    status, answer = post(lab_server, "/lab/sigmas", {"class_type": "KSampler", "inputs": {}})
    assert status == 400 and "not a schedule node" in answer["error"]["message"]
    status, answer = post(lab_server, "/lab/sigmas", {"class_type": "KarrasScheduler", "inputs": {"steps": 0}})
    assert status == 400 and "minimum" in answer["error"]["message"]
    with urllib.request.urlopen(lab_server.url + "lab/schedule_nodes", timeout=30) as response:
        names = json.loads(response.read())
    assert {"BasicScheduler", "KarrasScheduler", "BetaSamplingScheduler", "AlignYourStepsScheduler"} <= set(names)
    assert "FlipSigmas" not in names and "SplitSigmas" not in names  # they read SIGMAS, not widgets


def curve(page, node_id: str) -> list[float]:
    """The sigmas the node's inline curve draws, once drawn."""
    box = page.locator(f'.node[data-node-id="{node_id}"] [data-testid="schedule-curve"]')
    expect(box).to_have_attribute("data-sigmas", DRAWN)
    return json.loads(box.get_attribute("data-sigmas"))


def test_schedule_curves_and_branching_from_a_recorded_step(browser, lab_server):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems = watch_console(page)
    page.goto(lab_server.url)
    page.wait_for_selector("body[data-ready]", timeout=15000)
    expect(page.locator(".node")).to_have_count(len(LAB_WORKFLOW))

    # Every schedule node draws its curve without a run: the numbers of the route, as the tables say.
    assert close(curve(page, "5"), SD_NORMAL_4, 1e-5)
    assert close(curve(page, "11"), karras(6, 0.002, 80.0, 7.0), 1e-6)
    points = page.locator('.node[data-node-id="5"] [data-testid="schedule-curve"] polyline').get_attribute("points")
    assert len(points.split()) == 5
    expect(page.locator('.node[data-node-id="5"] .lab-note')).to_contain_text("4 steps")

    # Changing the steps redraws it.
    page.locator('.node[data-node-id="5"] [data-widget="steps"] .value').click()
    page.keyboard.type("15")
    page.keyboard.press("Enter")
    expect(page.locator('.node[data-node-id="5"] .lab-note')).to_contain_text("15 steps")
    assert close(curve(page, "5"), SD_NORMAL_15, 1e-4)
    points = page.locator('.node[data-node-id="5"] [data-testid="schedule-curve"] polyline').get_attribute("points")
    assert len(points.split()) == 16

    # A run shows the recorded steps (15 steps + the result) as a strip of previews on the recorder.
    page.get_by_test_id("queue-button").click()
    steps = page.locator('.node[data-node-id="8"] [data-testid="trajectory-step"]')
    expect(steps).to_have_count(16, timeout=30000)
    assert [int(s) for s in steps.evaluate_all("els => els.map((e) => e.dataset.step)")] == list(range(16))
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=trajectory-step] img')]"
                           ".every((img) => img.complete && img.naturalWidth > 0)")

    # Clicking step 10 adds a BranchFromStep on step 10, wired to the trajectory, the guider and a new sampler.
    steps.nth(10).click()
    branch = page.locator('.node[data-node-type="BranchFromStep"]')
    expect(branch).to_have_count(1)
    expect(branch.locator('[data-widget="step"] .value')).to_have_text("10")
    expect(branch.locator('.socket.in[data-input="trajectory"]')).to_have_attribute("data-link", "8:2")
    expect(branch.locator('.socket.in[data-input="guider"]')).to_have_attribute("data-link", "4:0")
    sampler_link = branch.locator('.socket.in[data-input="sampler"]').get_attribute("data-link")
    sampler_id = sampler_link.split(":")[0]
    assert sampler_id not in LAB_WORKFLOW
    expect(page.locator(f'.node[data-node-id="{sampler_id}"]')).to_have_attribute("data-node-type", "KSamplerSelect")

    # The branch is a valid part of the workflow: with a preview of its output, the whole graph validates.
    workflow = page.evaluate("() => window.sigmagraph.graph.toApi()")
    branch_id = branch.get_attribute("data-node-id")
    workflow["show"] = {"class_type": "LatentPreviewImage", "inputs": {"model": ["1", 0], "samples": [branch_id, 0]}}
    workflow["out"] = {"class_type": "PreviewImage", "inputs": {"images": ["show", 0]}}
    checked = lab_server.session.validate(workflow)
    assert checked.ok, checked.report.summary()
    page.close()
    assert not problems, problems
