"""ComfyUI's `folder_paths` over Sigmagraph's folders: the active Config's models, output, input and temp.

`folder_names_and_paths` is one dict for the life of the process (it lives in compat.state):
packs add kinds and folders to it and `get_filename_list` / `get_full_path` honour them. Names
stay inside their folder (`..` and absolute names are refused); a model file may be a link to
elsewhere, as in ComfyUI. The directory globals (`models_dir`, `output_directory`...) follow the
active Config; a pack or test that assigns one overrides it, as in ComfyUI, where the getters
read those globals.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import sys
import time
import types
from collections.abc import Collection
from typing import Any, Literal

from sigmagraph.compat import folders, state
from sigmagraph.engine.paths import UnsafePath, safe_join

log = logging.getLogger(__name__)

supported_pt_extensions = folders.PT_EXTENSIONS
map_legacy = folders.kind
SYSTEM_USER_PREFIX = "__"
extension_mimetypes_cache = {"webp": "image", "fbx": "model"}


def _derived() -> dict[str, str]:
    """The directory globals as the active Config gives them (absolute, as ComfyUI's)."""
    config = state.config()
    base = os.path.abspath(".")
    return {"base_path": base, "models_dir": os.path.abspath(config.models_dir),
            "output_directory": os.path.abspath(config.output_dir), "input_directory": os.path.abspath(config.input_dir),
            "temp_directory": os.path.abspath(config.temp_dir), "user_directory": os.path.join(base, "user")}


DERIVED = frozenset({"base_path", "models_dir", "output_directory", "input_directory", "temp_directory",
                     "user_directory"})
SHARED = {"folder_names_and_paths": state.folder_table, "filename_list_cache": lambda: state.filename_list_cache}


def __getattr__(name: str) -> Any:
    if name in DERIVED:
        return _derived()[name]
    if name in SHARED:
        return SHARED[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _FolderPaths(types.ModuleType):
    """Assigning a directory global overrides the Config; assigning the Config's own value ends the override.

    (So a test's monkeypatch, undone by setting back the value it read, leaves the Config in charge.)
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in DERIVED and value == _derived()[name]:
            self.__dict__.pop(name, None)
        else:
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _FolderPaths


def _current(name: str) -> Any:
    """A module global as packs see it: their assignment if any, else what the Config or state gives."""
    return globals()[name] if name in globals() else __getattr__(name)


# ------------------------------------------------------------------------------------------------
# The output, input, temp and user directories


def get_output_directory() -> str:
    """The output folder (absolute)."""
    return _current("output_directory")


def get_input_directory() -> str:
    """The input folder (absolute)."""
    return _current("input_directory")


def get_temp_directory() -> str:
    """The temporary folder (absolute)."""
    return _current("temp_directory")


def get_user_directory() -> str:
    """The user-data folder (absolute)."""
    return _current("user_directory")


def set_output_directory(output_dir: str) -> None:
    """Overrides the output folder for ComfyUI code (Sigmagraph's own nodes use the Config)."""
    globals()["output_directory"] = output_dir


def set_input_directory(input_dir: str) -> None:
    """Overrides the input folder for ComfyUI code."""
    globals()["input_directory"] = input_dir


def set_temp_directory(temp_dir: str) -> None:
    """Overrides the temporary folder for ComfyUI code."""
    globals()["temp_directory"] = temp_dir


def set_user_directory(user_dir: str) -> None:
    """Overrides the user-data folder for ComfyUI code."""
    globals()["user_directory"] = user_dir


def get_system_user_directory(name: str = "system") -> str:
    """The folder of an internal "user" (`__name`), which no HTTP endpoint serves."""
    if not name or not isinstance(name, str) or not name.replace("_", "").isalnum() or name.startswith("_"):
        raise ValueError(f"invalid system user name {name!r}: letters, digits and inner underscores only")
    return os.path.join(get_user_directory(), SYSTEM_USER_PREFIX + name)


def get_public_user_directory(user_id: str) -> str | None:
    """A user's folder, None for an empty id or a system user."""
    if not user_id or not isinstance(user_id, str) or user_id.startswith(SYSTEM_USER_PREFIX):
        return None
    return os.path.join(get_user_directory(), user_id)


def get_directory_by_type(type_name: str) -> str | None:
    """The folder of "output", "temp" or "input"; None for anything else (the HTTP API relies on it)."""
    getter = {"output": get_output_directory, "temp": get_temp_directory, "input": get_input_directory}.get(type_name)
    return getter() if getter else None


def get_input_subfolders() -> list[str]:
    """Every folder under the input directory, as relative POSIX paths, sorted."""
    root = get_input_directory()
    return sorted(os.path.relpath(folder, root).replace(os.sep, "/") for folder, _, _ in os.walk(root)
                  if os.path.relpath(folder, root) != ".")


def annotated_filepath(name: str) -> tuple[str, str | None]:
    """("name", its folder) for "name [output]", "name [input]" or "name [temp]"; (name, None) otherwise."""
    for annotation, getter in (("output", get_output_directory), ("input", get_input_directory),
                               ("temp", get_temp_directory)):
        if name.endswith(f"[{annotation}]"):
            return name[: -len(annotation) - 3], getter()
    return name, None


def _inside(folder: str, name: str) -> str:
    """`folder/name`, refusing a name that leaves the folder (raises UnsafePath); links may lead anywhere."""
    safe_join(folder, name, allow_links_out=True)
    return os.path.join(folder, name)


def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
    """The path of an annotated name ("x.png [output]"); unannotated names are in default_dir or the input folder."""
    name, folder = annotated_filepath(name)
    return _inside(folder or default_dir or get_input_directory(), name)


def exists_annotated_filepath(name: str) -> bool:
    """Whether the annotated name exists (a name leaving its folder does not)."""
    name, folder = annotated_filepath(name)
    try:
        return os.path.exists(_inside(folder or get_input_directory(), name))
    except UnsafePath:
        return False


def filter_files_content_types(files: list[str], content_types: list[Literal["image", "video", "audio", "model"]]
                               ) -> list[str]:
    """The files whose MIME type (from the extension) is one of content_types."""
    kept = []
    for file in files:
        extension = file.split(".")[-1]
        if extension not in extension_mimetypes_cache:
            mime_type, _ = mimetypes.guess_type(file, strict=False)
            if not mime_type:
                continue
            extension_mimetypes_cache[extension] = mime_type.split("/")[0]
        if extension_mimetypes_cache[extension] in content_types:
            kept.append(file)
    return kept


def get_save_image_path(filename_prefix: str, output_dir: str, image_width: int = 0, image_height: int = 0
                        ) -> tuple[str, str, int, str, str]:
    """(folder, file stem, next counter, subfolder, prefix) for files `stem_00001_.png`... under output_dir.

    The prefix may hold subfolders and ComfyUI's %width%, %year%... variables; one that leads
    outside output_dir is refused.
    """
    filename_prefix = folders.expand_prefix(filename_prefix, image_width, image_height)
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    try:
        full_output_folder = _inside(output_dir, subfolder) if subfolder else output_dir
    except UnsafePath as error:
        raise UnsafePath(f"saving outside the output folder is not allowed: {error}") from None
    os.makedirs(full_output_folder, exist_ok=True)
    return full_output_folder, filename, folders.next_counter(full_output_folder, filename), subfolder, filename_prefix


# ------------------------------------------------------------------------------------------------
# Model folders


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Adds a folder to a kind (first with is_default, which moves it there if present); creates the kind."""
    table = _current("folder_names_and_paths")
    folder_name = map_legacy(folder_name)
    if folder_name not in table:
        table[folder_name] = ([full_folder_path], set())
        return
    paths = table[folder_name][0]
    if full_folder_path in paths and (not is_default or paths[0] == full_folder_path):
        return
    if full_folder_path in paths:
        paths.remove(full_folder_path)
    paths.insert(0, full_folder_path) if is_default else paths.append(full_folder_path)


def get_folder_paths(folder_name: str) -> list[str]:
    """A copy of the folders of a kind (KeyError for an unknown kind, as ComfyUI)."""
    return list(_current("folder_names_and_paths")[map_legacy(folder_name)][0])


def recursive_search(directory: str, excluded_dir_names: list[str] | None = None
                     ) -> tuple[list[str], dict[str, float]]:
    """(files under directory as relative paths, {each folder: its mtime}), following links."""
    if not os.path.isdir(directory):
        return [], {}
    excluded = set(excluded_dir_names or ())
    files, dirs = [], {directory: os.path.getmtime(directory)}
    for folder, subfolders, filenames in os.walk(directory, followlinks=True, topdown=True):
        subfolders[:] = [d for d in subfolders if d not in excluded]
        files += [os.path.relpath(os.path.join(folder, name), directory) for name in filenames]
        for sub in subfolders:
            try:
                dirs[os.path.join(folder, sub)] = os.path.getmtime(os.path.join(folder, sub))
            except OSError:
                log.warning("cannot read %s; its files are not listed", os.path.join(folder, sub))
    return files, dirs


def filter_files_extensions(files: Collection[str], extensions: Collection[str]) -> list[str]:
    """The files with one of the extensions (all files when there are none), sorted."""
    return sorted(f for f in files if not extensions or os.path.splitext(f)[-1].lower() in extensions)


def get_full_path(folder_name: str, filename: str) -> str | None:
    """The file `filename` in the first folder of the kind that has it; None if none has it or it leaves the folder."""
    table = _current("folder_names_and_paths")
    folder_name = map_legacy(folder_name)
    if folder_name not in table:
        return None
    for folder in table[folder_name][0]:
        try:
            path = _inside(folder, filename)
        except UnsafePath as error:
            log.warning("refused %r for %s: %s", filename, folder_name, error)
            return None
        if os.path.isfile(path):
            return path
        if os.path.islink(path):
            log.warning("%s is a link to nothing; skipped", path)
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    """get_full_path, raising FileNotFoundError naming the kind and file instead of returning None."""
    path = get_full_path(folder_name, filename)
    if path is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return path


def get_filename_list_(folder_name: str) -> tuple[list[str], dict[str, float], float]:
    """(files of a kind with its extensions, {folder: mtime} of every folder searched, time listed)."""
    folder_name = map_legacy(folder_name)
    paths, extensions = _current("folder_names_and_paths")[folder_name]
    names: set[str] = set()
    searched: dict[str, float] = {}
    for folder in paths:
        files, dirs = recursive_search(folder, excluded_dir_names=[".git"])
        names.update(filter_files_extensions(files, extensions))
        searched.update(dirs)
    return sorted(names), searched, time.perf_counter()


def cached_filename_list_(folder_name: str) -> tuple[list[str], dict[str, float], float] | None:
    """The cached listing of a kind while no searched folder changed and no folder of it appeared; else None."""
    folder_name = map_legacy(folder_name)
    strong = cache_helper.get(folder_name)
    if strong is not None:
        return strong
    cached = _current("filename_list_cache").get(folder_name)
    if cached is None:
        return None
    for folder, mtime in cached[1].items():
        if not os.path.isdir(folder) or os.path.getmtime(folder) != mtime:
            return None
    if any(os.path.isdir(f) and f not in cached[1] for f in _current("folder_names_and_paths")[folder_name][0]):
        return None
    return cached


def get_filename_list(folder_name: str) -> list[str]:
    """The model files of a kind (relative names, sorted), listed again when their folders change."""
    folder_name = map_legacy(folder_name)
    listing = cached_filename_list_(folder_name)
    if listing is None:
        listing = get_filename_list_(folder_name)
        _current("filename_list_cache")[folder_name] = listing
    cache_helper.set(folder_name, listing)
    return list(listing[0])


class CacheHelper:
    """Within `with cache_helper:` listings are not re-checked against the disk (one catalogue build)."""

    def __init__(self) -> None:
        self.cache: dict[str, tuple[list[str], dict[str, float], float]] = {}
        self.active = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.cache.get(key, default) if self.active else default

    def set(self, key: str, value: tuple[list[str], dict[str, float], float]) -> None:
        if self.active:
            self.cache[key] = value

    def clear(self) -> None:
        self.cache.clear()

    def __enter__(self) -> "CacheHelper":
        self.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        self.active = False
        self.clear()


cache_helper = CacheHelper()

__all__ = [
    "SYSTEM_USER_PREFIX", "CacheHelper", "add_model_folder_path", "annotated_filepath", "base_path", "cache_helper",
    "cached_filename_list_", "exists_annotated_filepath", "extension_mimetypes_cache", "filename_list_cache",
    "filter_files_content_types", "filter_files_extensions", "folder_names_and_paths", "get_annotated_filepath",
    "get_directory_by_type", "get_filename_list", "get_filename_list_", "get_folder_paths", "get_full_path",
    "get_full_path_or_raise", "get_input_directory", "get_input_subfolders", "get_output_directory",
    "get_public_user_directory", "get_save_image_path", "get_system_user_directory", "get_temp_directory",
    "get_user_directory", "input_directory", "map_legacy", "models_dir", "output_directory", "recursive_search",
    "set_input_directory", "set_output_directory", "set_temp_directory", "set_user_directory",
    "supported_pt_extensions", "temp_directory", "user_directory",
]
