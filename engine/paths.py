"""Safe file access: every path a workflow or a request names must stay inside its root folder.

Names are resolved with realpath and must remain under the root's realpath, so `..`, absolute
paths, NUL bytes and symlinks pointing out are refused, while a name like `a..b.png` is fine.
The folders of installed data packages (the editor, the default workflows) are found here too.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path


class UnsafePath(ValueError):
    """A requested path would leave its root folder or is malformed."""


def safe_join(root: Path | str, *parts: str, allow_links_out: bool = False) -> Path:
    """`root/parts...` resolved, refusing anything that escapes `root` (raises UnsafePath).

    With `allow_links_out` only the name must stay inside `root` (no `..`, not absolute) and the
    path comes back unresolved: a symlink under `root` may lead anywhere, as when users share one
    model folder between tools (ComfyUI's folder_paths reads names the same way).
    """
    for part in parts:
        if "\x00" in part:
            raise UnsafePath(f"path {part!r} contains a NUL byte")
        if os.path.isabs(part) or part.startswith(("/", "\\")):
            raise UnsafePath(f"path {part!r} is absolute; give a name relative to {root}")
        if any(piece == ".." for piece in re.split(r"[\\/]", part)):
            raise UnsafePath(f"path {part!r} goes up with '..'")
    base = os.path.realpath(root)
    if allow_links_out:
        return Path(base, *parts)
    target = os.path.realpath(os.path.join(base, *parts))
    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
        raise UnsafePath(f"path {os.path.join(*parts)!r} resolves outside {root}")
    return Path(target)


def list_files(root: Path | str, extensions: tuple[str, ...] = ()) -> list[str]:
    """Files under `root` (recursively, as relative POSIX names), filtered by extension, sorted."""
    root = Path(root)
    if not root.is_dir():
        return []
    names = []
    for dirpath, _, filenames in os.walk(root, followlinks=True):
        for filename in filenames:
            if not extensions or filename.lower().endswith(extensions):
                names.append(Path(dirpath, filename).relative_to(root).as_posix())
    return sorted(names)


def next_output_path(folder: Path, prefix: str, extension: str) -> Path:
    """A new file `prefix_00001_.ext` in `folder` (prefix may hold subfolders); never an existing file."""
    target_dir = safe_join(folder, os.path.dirname(prefix)) if os.path.dirname(prefix) else safe_join(folder)
    stem = os.path.basename(prefix) or "output"
    target_dir.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(re.escape(stem) + r"_(\d+)_\." + re.escape(extension) + "$")
    taken = [int(m.group(1)) for name in os.listdir(target_dir) if (m := pattern.match(name))]
    counter = max(taken, default=0) + 1
    while True:
        path = target_dir / f"{stem}_{counter:05d}_.{extension}"
        try:
            with open(path, "x"):
                return path  # created exclusively: no other writer can take this name
        except FileExistsError:
            counter += 1


def package_folder(package: str) -> Path | None:
    """The folder of an installed data package (e.g. `sigmagraph.web`), or None when it has none."""
    try:
        spec = importlib.util.find_spec(package)
    except ModuleNotFoundError:
        return None
    locations = spec.submodule_search_locations if spec else None
    # an editable install lists import hooks among the locations: keep the real folder
    return next((Path(p) for p in locations or () if Path(p).is_dir()), None)
