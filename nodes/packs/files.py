"""Choices and fingerprints for nodes that read files from the models and input folders.

Choices are computed per catalogue (files appear without a restart). Models that ship inside the
package (the demo checkpoint) are listed in their folder beside the user's files; a user's file
of the same name takes precedence. A model's name must stay inside its folder, but a symbolic
link there may lead anywhere (how users share one model folder between tools); input files must
lie inside the input folder, links included. Fingerprints make a node
re-run when its file changes: size and modification time for model files (hashing gigabytes on
every run would cost seconds), the SHA-256 of the content for input files (as ComfyUI).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Union

from sigmagraph.engine import Config
from sigmagraph.engine.paths import UnsafePath, list_files, safe_join

from ..demo.checkpoint import DEMO_MODELS
from ..models.checkpoint import MODEL_EXTENSIONS, CheckpointError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


# The demo models ship inside the package: listed whatever the models folder holds.
PACKAGED_MODELS: dict[str, dict[str, Path]] = {
    "checkpoints": {model.path.name: model.path for model in DEMO_MODELS.values()}}
# A kind of model file lives in one folder, or in several: the current one first, then legacy ones
# (("diffusion_models", "unet"), ("text_encoders", "clip")), listed together as ComfyUI does.
Folders = Union[str, tuple[str, ...]]


def _folders(folders: Folders) -> tuple[str, ...]:
    return (folders,) if isinstance(folders, str) else folders


def model_files(folders: Folders) -> Callable[[Config | None], list[str]]:
    """A Combo's choices: the model files under models/<folder> for each folder, and the packaged ones."""
    def choices(config: Config | None = None) -> list[str]:
        models_dir = Path((config or Config()).models_dir)
        found = {name for folder in _folders(folders) for name in list_files(models_dir / folder, MODEL_EXTENSIONS)}
        packaged = {name for folder in _folders(folders) for name, path in PACKAGED_MODELS.get(folder, {}).items()
                    if path.is_file()}
        return sorted(found | packaged)
    return choices


def model_path(models_dir: Path | str, folder: str, name: str) -> Path:
    """The file `name` of `models_dir/folder`: the name may not leave the folder, a link in it may lead anywhere."""
    try:
        path = safe_join(Path(models_dir) / folder, name, allow_links_out=True)
    except UnsafePath as error:
        raise CheckpointError(f"{name!r} is not a file inside models/{folder}: {error}") from None
    if not path.is_file():
        raise CheckpointError(f"{name!r} not found in models/{folder} ({Path(models_dir) / folder})")
    return path


def model_file(config: Config, folders: Folders, name: str) -> Path:
    """The model file `name` of the first of models/<folder> holding it, else the packaged model of that name."""
    errors = []
    for folder in _folders(folders):
        try:
            return model_path(config.models_dir, folder, name)
        except CheckpointError as error:
            errors.append(error)
            packaged = PACKAGED_MODELS.get(folder, {}).get(name)
            if packaged is not None and packaged.is_file():
                return packaged
    if len(errors) == 1:
        raise errors[0]
    raise CheckpointError(f"{name!r} not found in {' or '.join(f'models/{folder}' for folder in _folders(folders))} "
                          f"({config.models_dir})")


def input_files(extensions: tuple[str, ...]) -> Callable[[Config | None], list[str]]:
    """A Combo's choices: the files with these extensions under the input folder."""
    def choices(config: Config | None = None) -> list[str]:
        return list_files((config or Config()).input_dir, extensions)
    return choices


def model_file_fingerprint(folders: Folders, *inputs: str) -> Callable[..., Any]:
    """A node fingerprint: [size, mtime] of the model files named by the given inputs."""
    def fingerprint(config: Config, **values: Any) -> list[list[int]]:
        stats = [model_file(config, folders, values[name]).stat() for name in inputs]
        return [[stat.st_size, stat.st_mtime_ns] for stat in stats]
    return fingerprint


def input_path(config: Config, name: str) -> Path:
    """A file of the input folder, refusing names that lead outside it."""
    path = safe_join(config.input_dir, name)
    if not path.is_file():
        raise FileNotFoundError(f"{name!r} not found in the input folder ({config.input_dir})")
    return path


def input_file_fingerprint(input_name: str) -> Callable[..., Any]:
    """A node fingerprint: the SHA-256 of the input file named by `input_name`."""
    def fingerprint(config: Config, **values: Any) -> str:
        with open(input_path(config, values[input_name]), "rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    return fingerprint
