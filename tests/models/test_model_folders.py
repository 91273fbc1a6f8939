"""Where model files are found: a name stays inside its models folder, a symbolic link there may lead anywhere."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import default_workflow
from sigmagraph.engine import Session
from sigmagraph.engine.paths import UnsafePath
from sigmagraph.engine.validation import InvalidWorkflow
from sigmagraph.nodes.demo.checkpoint import DEMO_CHECKPOINT
from sigmagraph.nodes.models.checkpoint import CheckpointError
from sigmagraph.nodes.packs.files import input_path, model_file, model_files
from sigmagraph.nodes.packs.loaders import CheckpointLoaderSimple


def test_a_linked_checkpoint_and_a_linked_folder_load(config, context, tmp_path):
    # One model folder shared between tools: a file linked by name, and a whole folder linked in.
    shared = tmp_path / "shared-models"
    shared.mkdir()
    shutil.copyfile(DEMO_CHECKPOINT, shared / "tiny.safetensors")
    checkpoints = config.models_dir / "checkpoints"
    os.symlink(shared / "tiny.safetensors", checkpoints / "linked.safetensors")
    os.symlink(shared, checkpoints / "shared", target_is_directory=True)
    assert {"linked.safetensors", "shared/tiny.safetensors"} <= set(model_files("checkpoints")(config))
    for name in ("linked.safetensors", "shared/tiny.safetensors"):
        # Names other than the packaged one: only the link can provide the file.
        assert model_file(config, "checkpoints", name).resolve() == (shared / "tiny.safetensors").resolve()
        model, clip, vae = CheckpointLoaderSimple(ckpt_name=name, ctx=context)
        assert model.family == clip.family == "demo" and vae.downscale == 8


def test_names_leaving_the_folder_are_refused(config):
    outside = config.models_dir / "outside.safetensors"
    shutil.copyfile(DEMO_CHECKPOINT, outside)
    for name in ("../outside.safetensors", "sub/../../outside.safetensors", str(outside)):
        with pytest.raises(CheckpointError, match="is not a file inside models/checkpoints"):
            model_file(config, "checkpoints", name)
    # A name that climbs out is not among the choices either: the workflow is invalid before it runs.
    session = Session(config)
    with pytest.raises(InvalidWorkflow) as invalid:
        session.run(default_workflow(session, "../outside.safetensors"))
    assert "not found in models/checkpoints" in str(invalid.value.report.node_errors["4"])


def test_input_files_stay_strict_about_links(config, tmp_path):
    # Uploads and inputs keep the strict rule: a link in the input folder may not lead out of it.
    (tmp_path / "secret.png").write_bytes(b"not for workflows")
    config.input_dir.mkdir(parents=True)
    os.symlink(tmp_path / "secret.png", config.input_dir / "link.png")
    with pytest.raises(UnsafePath, match="resolves outside"):
        input_path(config, "link.png")
