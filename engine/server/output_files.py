"""Output files of a remote worker: read where the worker wrote them, written home by the server alone.

Workers may have no disk in common with the server. A worker writes into a private folder and,
when a node reports its files (`executed` with `{filename, subfolder, type}` items), sends their
bytes once; the server writes them into its own output or temp folder under the same rule as a
local run — ComfyUI's `prefix_00001_.png` counter, never overwriting — and renames them in the
events and the history. The worker keeps its copies, so its own counter never reuses a name and
a cached node that reports the same file again maps to the same file at home. The bytes travel
untouched, so PNG metadata stays intact.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

from ..config import Config
from ..paths import next_output_path, safe_join

HOMED_TYPES = ("output", "temp")  # input files are the user's own: never written by a run
COUNTED_NAME = re.compile(r"^(?P<stem>.*)_(?P<counter>\d+)_\.(?P<ext>[^.]+)$")


@dataclass(frozen=True)
class OutputFile:
    """One file a node wrote: where (folder type, subfolder, name) and its bytes."""

    type: str
    subfolder: str
    filename: str
    data: bytes

    @property
    def place(self) -> tuple[str, str, str]:
        """(type, subfolder, filename): how a node's output names the file."""
        return self.type, self.subfolder, self.filename


def _file_items(ui: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The `{filename, subfolder, type}` items of a node's UI output that name files to send home."""
    for items in ui.values():
        if isinstance(items, list):
            yield from (item for item in items if isinstance(item, dict) and item.get("type") in HOMED_TYPES
                        and isinstance(item.get("filename"), str))


def take_files(config: Config, ui: dict[str, Any], sent: set[tuple[str, str, str]]) -> list[OutputFile]:
    """Reads the files a node's UI output names from the worker's folders, except those already `sent`
    (which it then includes)."""
    files = []
    for item in _file_items(ui):
        place = (item["type"], item.get("subfolder", ""), item["filename"])
        path = safe_join(config.folder(item["type"]), place[1], place[2])
        if place not in sent and path.is_file():
            files.append(OutputFile(*place, path.read_bytes()))
            sent.add(place)
    return files


def _new_path(folder: Any, subfolder: str, filename: str) -> Any:
    """A fresh file for `filename` in `folder/subfolder`: the next counter for a counted name, else the name."""
    match = COUNTED_NAME.match(filename)
    if match:
        return next_output_path(folder, os.path.join(subfolder, match["stem"]), match["ext"])
    path = safe_join(folder, subfolder, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x"):
            return path
    except FileExistsError:
        stem, _, ext = filename.rpartition(".")
        return next_output_path(folder, os.path.join(subfolder, stem or filename), ext or "bin")


def write_home(config: Config, files: list[OutputFile]) -> dict[tuple[str, str, str], str]:
    """Writes a worker's files into the server's folders; the new name of each (by its place on the worker)."""
    renamed = {}
    for file in files:
        path = _new_path(config.folder(file.type), file.subfolder, file.filename)
        path.write_bytes(file.data)
        renamed[file.place] = path.name
    return renamed


def rename_files(ui: dict[str, Any], renamed: dict[tuple[str, str, str], str]) -> dict[str, Any]:
    """A node's UI output with the names the server gave its files."""
    def renamed_item(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        place = (item.get("type"), item.get("subfolder", ""), item.get("filename"))
        return {**item, "filename": renamed[place]} if place in renamed else item

    return {key: [renamed_item(i) for i in value] if isinstance(value, list) else value for key, value in ui.items()}
