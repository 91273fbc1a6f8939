"""A pack written the way real ComfyUI packs are: it imports ComfyUI's modules while it loads, prints a
banner, subclasses core nodes (SaveImage, LoraLoader), returns more outputs than it declares (Inspire's
splitters), has lazy inputs (a classic node and a V3 one, mixed in NODE_CLASS_MAPPINGS as KJNodes mixes
them), and at the end takes out of sys.modules every module its import loaded, as UltimateSDUpscale does
(and, rougher, folder_paths, which was loaded before it).
"""

import sys

_LOADED_BEFORE = set(sys.modules)

import comfy.model_management  # noqa: E402
import comfy.utils  # noqa: E402
import folder_paths  # noqa: E402
import node_helpers  # noqa: E402,F401
import nodes  # noqa: E402
import server  # noqa: E402,F401
from comfy_api.latest import io  # noqa: E402

from .splitting import ImageBatchSplitter  # noqa: E402 - a submodule: purged below

print("*** Comfy fixture pack: 6 nodes loaded ***")  # a banner on stdout, as Comfyroll prints

# zz_prestartup_pack's prestartup script runs before any pack is imported, this one included.
PRESTARTUP_SEEN = "fixture_prestartup" in folder_paths.folder_names_and_paths


class SaveImageTagged(nodes.SaveImage):
    """SaveImage under the same prefix plus a tag."""

    def __init__(self):
        super().__init__()
        self.prefix_append = "_tagged"

    CATEGORY = "fixture"


class LoraLoaderSameStrength(nodes.LoraLoader):
    """LoraLoader with one strength for both models."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"model": ("MODEL",), "clip": ("CLIP",),
                             "lora_name": (folder_paths.get_filename_list("loras"),),
                             "strength": ("FLOAT", {"default": 1.0, "min": -10.0, "max": 10.0, "step": 0.01})}}

    FUNCTION = "load_same"
    CATEGORY = "fixture"

    def load_same(self, model, clip, lora_name, strength):
        return self.load_lora(model, clip, lora_name, strength, strength)


class LazySwitch:
    """Passes one of two images on; the other branch is never evaluated."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"use_first": ("BOOLEAN", {"default": True}),
                             "first": ("IMAGE", {"lazy": True}), "second": ("IMAGE", {"lazy": True})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "switch"
    CATEGORY = "fixture"

    def check_lazy_status(self, use_first, first=None, second=None):
        needed = "first" if use_first else "second"
        return [needed] if (first if use_first else second) is None else []

    def switch(self, use_first, first=None, second=None):
        comfy.model_management.throw_exception_if_processing_interrupted()
        return (first if use_first else second,)


class LazyPickV3(io.ComfyNode):
    """LazySwitch as a V3 node."""

    @classmethod
    def define_schema(cls):
        return io.Schema(node_id="FixtureLazyPickV3", category="fixture",
                         inputs=[io.Boolean.Input("use_first", default=True), io.Image.Input("first", lazy=True),
                                 io.Image.Input("second", lazy=True)],
                         outputs=[io.Image.Output()])

    @classmethod
    def check_lazy_status(cls, use_first, first=None, second=None):
        needed = "first" if use_first else "second"
        return [needed] if (first if use_first else second) is None else []

    @classmethod
    def execute(cls, use_first, first=None, second=None):
        return io.NodeOutput(first if use_first else second)


class Fail:
    """Raises when run: what a branch that must not be evaluated is made of."""

    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "fail"
    CATEGORY = "fixture"

    def fail(self, image):
        raise RuntimeError("this branch was evaluated")


NODE_CLASS_MAPPINGS = {"FixtureSaveImageTagged": SaveImageTagged,
                       "FixtureLoraLoaderSameStrength": LoraLoaderSameStrength,
                       "FixtureImageBatchSplitter": ImageBatchSplitter, "FixtureLazySwitch": LazySwitch,
                       "FixtureLazyPickV3": LazyPickV3, "FixtureFail": Fail}
NODE_DISPLAY_NAME_MAPPINGS = {"FixtureImageBatchSplitter": "Image Batch Splitter (fixture)"}

for _name in set(sys.modules) - _LOADED_BEFORE:
    del sys.modules[_name]
del sys.modules["folder_paths"]
