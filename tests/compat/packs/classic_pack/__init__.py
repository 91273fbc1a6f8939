"""A small ComfyUI-style pack for the tests: it subclasses and calls core nodes the way real packs do."""

import random

import folder_paths
import nodes
from comfy.utils import ProgressBar


class MaskPreview(nodes.SaveImage):
    """As ComfyUI_essentials' MaskPreview: SaveImage into the temporary folder."""

    def __init__(self):
        self.output_dir = folder_paths.get_temp_directory()
        self.type = "temp"
        self.prefix_append = "_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        self.compress_level = 4

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"mask": ("MASK",)}, "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}}

    FUNCTION = "execute"
    CATEGORY = "fixture"

    def execute(self, mask, filename_prefix="ComfyUI", prompt=None, extra_pnginfo=None):
        preview = mask.reshape((-1, 1, mask.shape[-2], mask.shape[-1])).movedim(1, -1).expand(-1, -1, -1, 3)
        return self.save_images(preview, filename_prefix, prompt, extra_pnginfo)


class SaveWithSuffix(nodes.SaveImage):
    """SaveImage that keeps the output folder and appends a suffix to every prefix."""

    def __init__(self):
        super().__init__()
        self.prefix_append = "_fixture"


class BlankLatent:
    """Calls a core node from inside its own function, reporting progress around it."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"size": ("INT", {"default": 64, "min": 64, "max": nodes.MAX_RESOLUTION, "step": 8})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "make"
    CATEGORY = "fixture"

    def make(self, size):
        bar = ProgressBar(2)
        bar.update(1)
        latent = nodes.EmptyLatentImage().generate(size, size, 1)[0]
        bar.update(1)
        return (latent,)


NODE_CLASS_MAPPINGS = {"FixtureMaskPreview": MaskPreview, "FixtureSaveWithSuffix": SaveWithSuffix,
                       "FixtureBlankLatent": BlankLatent}
