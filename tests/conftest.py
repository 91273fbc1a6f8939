from __future__ import annotations

import pytest

from sigmagraph.engine import Config, Session


@pytest.fixture(scope="session")
def builtin_session(tmp_path_factory) -> Session:
    """A session with the built-in packs (loaded once), writing into a temporary folder."""
    root = tmp_path_factory.mktemp("sigmagraph")
    config = Config(models_dir=root / "models", output_dir=root / "output", input_dir=root / "input",
                    temp_dir=root / "temp", device="cpu", disable_custom_nodes=True)
    return Session(config)
