"""ComfyUI's folder conventions over a Sigmagraph Config: the model-folder table and output file names.

`folder_paths.folder_names_and_paths` maps a kind of model to (folders, extensions). Its default
folders are ComfyUI's subfolders of `Config.models_dir` (plus the folder of each model shipped
with Sigmagraph, listed after the user's); packs add folders and kinds of their own. When another
Config becomes active the defaults move to its models folder and what packs added stays.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from sigmagraph.engine import Config
from sigmagraph.engine.server.model_files import MODEL_EXTENSIONS
from sigmagraph.nodes.packs.files import PACKAGED_MODELS

# One set shared by the model kinds, as in ComfyUI, so a pack adding an extension adds it to all of them.
PT_EXTENSIONS: set[str] = set(MODEL_EXTENSIONS)

# kind -> (subfolders of the models folder, extensions): ComfyUI's defaults.
MODEL_FOLDERS: dict[str, tuple[tuple[str, ...], Any]] = {
    "checkpoints": (("checkpoints",), PT_EXTENSIONS),
    "configs": (("configs",), [".yaml"]),
    "loras": (("loras",), PT_EXTENSIONS),
    "vae": (("vae",), PT_EXTENSIONS),
    "text_encoders": (("text_encoders", "clip"), PT_EXTENSIONS),
    "diffusion_models": (("unet", "diffusion_models"), PT_EXTENSIONS),
    "clip_vision": (("clip_vision",), PT_EXTENSIONS),
    "style_models": (("style_models",), PT_EXTENSIONS),
    "embeddings": (("embeddings",), PT_EXTENSIONS),
    "diffusers": (("diffusers",), ["folder"]),
    "vae_approx": (("vae_approx",), PT_EXTENSIONS),
    "controlnet": (("controlnet", "t2i_adapter"), PT_EXTENSIONS),
    "gligen": (("gligen",), PT_EXTENSIONS),
    "upscale_models": (("upscale_models",), PT_EXTENSIONS),
    "latent_upscale_models": (("latent_upscale_models",), PT_EXTENSIONS),
    "hypernetworks": (("hypernetworks",), PT_EXTENSIONS),
    "photomaker": (("photomaker",), PT_EXTENSIONS),
    "classifiers": (("classifiers",), {""}),
    "model_patches": (("model_patches",), PT_EXTENSIONS),
    "audio_encoders": (("audio_encoders",), PT_EXTENSIONS),
}
CUSTOM_NODES = "custom_nodes"
# Older names ComfyUI still accepts for a kind.
LEGACY_NAMES = {"unet": "diffusion_models", "clip": "text_encoders"}


def kind(name: str) -> str:
    """The current name of a model kind ("unet" -> "diffusion_models")."""
    return LEGACY_NAMES.get(name, name)


def default_paths(config: Config) -> dict[str, list[str]]:
    """Each kind's default folders (absolute) for this Config, custom_nodes included."""
    models = os.path.abspath(config.models_dir)
    paths = {name: [os.path.join(models, sub) for sub in subfolders]
             for name, (subfolders, _) in MODEL_FOLDERS.items()}
    for folder, files in PACKAGED_MODELS.items():
        shipped = paths.setdefault(kind(folder), [])
        shipped += sorted({str(path.parent) for name, path in files.items() if path.name == name} - set(shipped))
    paths[CUSTOM_NODES] = [os.path.abspath(d) for d in config.custom_nodes_dirs] or [os.path.abspath(CUSTOM_NODES)]
    return paths


def rebase(table: dict[str, tuple[list[str], Any]], old: dict[str, list[str]], new: dict[str, list[str]]) -> None:
    """Moves `table` from the default folders `old` to `new`, keeping the folders and kinds packs added."""
    for name, defaults in new.items():
        if name not in table:
            extensions = MODEL_FOLDERS[name][1] if name in MODEL_FOLDERS else set()
            table[name] = (list(defaults), extensions)
            continue
        paths, extensions = table[name]
        added = [p for p in paths if p not in old.get(name, ()) and p not in defaults]
        if isinstance(paths, list):
            paths[:] = defaults + added  # in place: packs may hold on to the list
        else:
            table[name] = (defaults + added, extensions)


def expand_prefix(prefix: str, width: int = 0, height: int = 0) -> str:
    """ComfyUI's filename_prefix variables: %width%, %height%, %year%, %month%, %day%, %hour%, %minute%, %second%."""
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    values = {"width": width, "height": height, "year": now.tm_year, "month": f"{now.tm_mon:02d}",
              "day": f"{now.tm_mday:02d}", "hour": f"{now.tm_hour:02d}", "minute": f"{now.tm_min:02d}",
              "second": f"{now.tm_sec:02d}"}
    for name, value in values.items():
        prefix = prefix.replace(f"%{name}%", str(value))
    return prefix


def next_counter(folder: Path | str, stem: str) -> int:
    """1 + the largest N of the files `stem_N...` in `folder` (case-insensitive), 1 when there are none."""
    pattern = re.compile(re.escape(os.path.normcase(stem)) + r"_(\d+)")
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return 1
    taken = [int(m.group(1)) for name in names if (m := pattern.match(os.path.normcase(name)))]
    return max(taken, default=0) + 1
