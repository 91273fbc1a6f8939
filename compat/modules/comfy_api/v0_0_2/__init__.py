"""ComfyUI's `comfy_api.v0_0_2`: the V3 API as of version 0.0.2, the same objects as `comfy_api.latest` here."""

from comfy_api.internal.async_to_sync import create_sync_class
from comfy_api.latest import IO, UI, ComfyAPI_latest, ComfyExtension, Input, InputImpl, Types, io, ui  # noqa: F401


class ComfyAPIAdapter_v0_0_2(ComfyAPI_latest):  # noqa: N801 - ComfyUI's name
    VERSION = "0.0.2"
    STABLE = False


ComfyAPI = ComfyAPIAdapter_v0_0_2
ComfyAPISync = create_sync_class(ComfyAPIAdapter_v0_0_2)
