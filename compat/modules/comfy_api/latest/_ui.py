"""ComfyUI's `comfy_api.latest.ui`: the UI payloads a V3 node returns in `NodeOutput(ui=...)`.

Images are written by Sigmagraph's own PNG writer (workflow metadata, never overwriting) into
the folders `folder_paths` names for the run. Not provided: audio and 3D previews and the
animated PNG/WebP writers (no pack in use needs them; audio needs PyAV).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from PIL.PngImagePlugin import PngInfo

from sigmagraph.nodes.packs.image_output import png_metadata, save_images

from ._io import ComfyNode, FolderType, _UIOutput


class SavedResult(dict):
    """One written file as the front end addresses it: {filename, subfolder, type}."""

    def __init__(self, filename: str, subfolder: str, type: FolderType):
        super().__init__(filename=filename, subfolder=subfolder, type=FolderType(type).value)

    @property
    def filename(self) -> str:
        return self["filename"]

    @property
    def subfolder(self) -> str:
        return self["subfolder"]

    @property
    def type(self) -> FolderType:
        return FolderType(self["type"])


class SavedImages(_UIOutput):
    """One or more written images, possibly one animation."""

    def __init__(self, results: list[SavedResult], is_animated: bool = False):
        self.results, self.is_animated = results, is_animated

    def as_dict(self) -> dict:
        return {"images": self.results} | ({"animated": (True,)} if self.is_animated else {})


def _folder(folder_type: FolderType) -> Path:
    import folder_paths  # the run's folders; imported here so schemas never need them

    folders = {FolderType.input: folder_paths.get_input_directory, FolderType.output: folder_paths.get_output_directory,
               FolderType.temp: folder_paths.get_temp_directory}
    return Path(folders[FolderType(folder_type)]())


class ImageSaveHelper:
    """Writes image batches as PNGs carrying the workflow of the node's run (`cls.hidden`).

    `compress_level` is accepted for ComfyUI's signature; Sigmagraph's writer keeps its own.
    """

    @staticmethod
    def save_images(images: Any, filename_prefix: str, folder_type: FolderType, cls: type[ComfyNode] | None,
                    compress_level: int = 4) -> list[SavedResult]:
        """Writes each image of the batch; returns their SavedResults."""
        hidden = cls.hidden if cls is not None and cls.hidden else None
        metadata = png_metadata(hidden.prompt, hidden.extra_pnginfo) if hidden else PngInfo()
        saved = save_images(images, _folder(folder_type), filename_prefix, FolderType(folder_type).value, metadata)
        return [SavedResult(s["filename"], s["subfolder"], folder_type) for s in saved]

    @staticmethod
    def get_save_images_ui(images: Any, filename_prefix: str, cls: type[ComfyNode] | None,
                           compress_level: int = 4) -> SavedImages:
        """Writes the images to the output folder; returns the UI payload showing them."""
        return SavedImages(ImageSaveHelper.save_images(images, filename_prefix, FolderType.output, cls, compress_level))


class PreviewImage(_UIOutput):
    """Images shown under the node, written to the temporary folder."""

    def __init__(self, image: Any, animated: bool = False, cls: type[ComfyNode] | None = None, **kwargs: Any):
        self.values = ImageSaveHelper.save_images(image, f"ComfyUI_temp_{secrets.token_hex(3)}", FolderType.temp, cls,
                                                  compress_level=1)
        self.animated = animated

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (self.animated,)}


class PreviewMask(PreviewImage):
    """Masks shown as grey images."""

    def __init__(self, mask: Any, animated: bool = False, cls: type[ComfyNode] | None = None, **kwargs: Any):
        grey = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        super().__init__(grey, animated, cls, **kwargs)


class PreviewVideo(_UIOutput):
    """Already written videos, shown as animations."""

    def __init__(self, values: list[SavedResult | dict], **kwargs: Any):
        self.values = values

    def as_dict(self) -> dict:
        return {"images": self.values, "animated": (True,)}


class PreviewText(_UIOutput):
    """Text shown under the node."""

    def __init__(self, value: str, **kwargs: Any):
        self.value = value

    def as_dict(self) -> dict:
        return {"text": (self.value,)}
