"""A Ray cluster on loopback inside the test run, and a server whose two workers are Ray actors."""

from __future__ import annotations

import shutil

import pytest

from sigmagraph.engine import Config, Session
from sigmagraph.engine.server import ServerOptions
from sigmagraph.engine.server.ray_workers import init_loopback
from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT

from ..web.live_server import LiveServer

WORKERS = 2
COPY = "demo-copy.safetensors"  # the demo model under a second name: a second checkpoint to route by


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """Ray on 127.0.0.1 only, no dashboard, two CPUs, its files under the test's own folder (started once)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sigmagraph[ray]')")
    # ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, ...), plus the switch that keeps it there
    init_loopback(ray, num_cpus=WORKERS, _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_server(ray_cluster, builtin_session, tmp_path_factory):
    """A live server with `--workers auto --num-workers 2`, the built-in packs, the demo model and a copy of it."""
    root = tmp_path_factory.mktemp("scaleout")
    (root / "models" / "checkpoints").mkdir(parents=True)
    shutil.copy(DEMO_CHECKPOINT, root / "models" / "checkpoints" / COPY)
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device="cpu", disable_custom_nodes=True)
    options = ServerOptions(port=0, web_root=None, workflows_dir=None, preview_interval=0.0,
                            state_dir=root / "state", workers="auto", num_workers=WORKERS)
    with LiveServer(Session(config, builtin_session.registry), options) as live:
        yield live
