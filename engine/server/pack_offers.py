"""What custom-node folder packs offer ComfyUI's front end besides nodes and scripts, as ComfyUI serves it:
translations (`GET /i18n`, from each pack's `locales/<lang>/`) and example workflows (`GET /workflow_templates`,
`GET /api/workflow_templates/{pack}/{file}`, from each pack's folders named like `*example*` or `*workflow*`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aiohttp import web

from .errors import ApiError, json_response
from .files import safe_path
from .state import STATE
from .static import serve_from

log = logging.getLogger("sigmagraph.server")

MAIN_LOCALE_FILE = "main.json"
EXTRA_LOCALE_FILES = ("nodeDefs.json", "commands.json", "settings.json")  # merged under their stem, as ComfyUI
TEMPLATE_FOLDER_WORDS = ("example", "workflow")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` merged into a copy of `base`, recursively where both hold objects (a later pack wins otherwise)."""
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged


def read_locale_file(path: Path) -> dict[str, Any]:
    """A pack's locale file as an object; a missing or broken one counts as empty (logged), as in ComfyUI."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        log.error("ignoring the translations in %s: %s", path, error)
        return {}
    if not isinstance(data, dict):
        log.error("ignoring the translations in %s: not a JSON object", path)
        return {}
    return data


def translations(pack_folders: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{language: translations} over every pack's locales/, packs in name order."""
    merged: dict[str, dict[str, Any]] = {}
    for _, folder in sorted(pack_folders.items()):
        locales = Path(folder) / "locales"
        if not locales.is_dir():
            continue
        for language in sorted(p for p in locales.iterdir() if p.is_dir()):
            found = read_locale_file(language / MAIN_LOCALE_FILE)
            for name in EXTRA_LOCALE_FILES:
                if extra := read_locale_file(language / name):
                    found[Path(name).stem] = extra
            if found:
                merged[language.name] = merge(merged.get(language.name, {}), found)
    return merged


def template_folders(folder: str) -> list[Path]:
    """A pack's folders of example workflows: its subfolders whose name says "example" or "workflow"."""
    root = Path(folder)
    return sorted(p for p in root.iterdir() if p.is_dir() and any(w in p.name.lower() for w in TEMPLATE_FOLDER_WORDS))


def workflow_templates(pack_folders: dict[str, str]) -> dict[str, list[str]]:
    """{pack: [workflow names without .json]}; packs without any are left out."""
    offered = {pack: sorted({f.stem for templates in template_folders(folder) for f in templates.glob("*.json")
                             if f.is_file()})
               for pack, folder in sorted(pack_folders.items())}
    return {pack: names for pack, names in offered.items() if names}


async def get_i18n(request: web.Request) -> web.Response:
    """GET /i18n: the packs' translations, `{lang: {nodeDefs, commands, settings, ...main.json keys}}`."""
    return json_response(translations(request.app[STATE].session.registry.pack_folders))


async def get_workflow_templates(request: web.Request) -> web.Response:
    """GET /workflow_templates: `{pack: [names]}` of the packs' example workflows."""
    return json_response(workflow_templates(request.app[STATE].session.registry.pack_folders))


async def workflow_template_file(request: web.Request) -> web.StreamResponse:
    """GET /api/workflow_templates/{pack}/{path}: a file (workflow, thumbnail) of a pack's example folders."""
    pack, relative = request.match_info["pack"], request.match_info["path"]
    folder = request.app[STATE].session.registry.pack_folders.get(pack)
    if folder is None:
        raise ApiError(404, f"no custom node pack {pack!r} offers workflow templates", "not_found")
    what = f"workflow template file of pack {pack!r}"
    for templates in template_folders(folder):
        if safe_path(templates, relative).is_file():  # 403 for a name that leaves the folder
            return serve_from(templates, relative, what)
    raise ApiError(404, f"no {what} {relative!r}", "not_found")
