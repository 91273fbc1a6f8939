"""ComfyUI's `comfy` package. Its submodules are attributes once asked for (`import comfy` then
`comfy.utils.common_upscale(...)` works, as it does in ComfyUI, where they are imported at startup)."""

import importlib
from types import ModuleType


def __getattr__(name: str) -> ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as error:
        raise AttributeError(f"module 'comfy' has no attribute {name!r} ({error})") from None
