"""A ComfyUI-style pack for the tests that uses upscale and CLIP vision models the way real packs do.

One loader builds an upscale model from its weights with old ComfyUI's chainner `load_state_dict`;
one node tiles the model itself through comfy.utils.tiled_scale, moving it with `.to`/`.cpu`;
one hands it to the core ImageUpscaleWithModel; two encode images and read the outputs' fields.
"""

import comfy.model_management
import comfy.utils
import folder_paths
import torch
from comfy_extras.chainner_models import model_loading
from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel


class UpscaleLoaderFromWeights:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (folder_paths.get_filename_list("upscale_models"),)}}

    RETURN_TYPES = ("UPSCALE_MODEL", "STRING")
    FUNCTION = "load"
    CATEGORY = "fixture"

    def load(self, model_name):
        sd = comfy.utils.load_torch_file(folder_paths.get_full_path("upscale_models", model_name), safe_load=True)
        return (model_loading.load_state_dict(sd).eval(), model_name)


class TiledUpscale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"upscale_model": ("UPSCALE_MODEL",), "image": ("IMAGE",)}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "upscale"
    CATEGORY = "fixture"

    def upscale(self, upscale_model, image):
        device = comfy.model_management.get_torch_device()
        upscale_model.to(device)
        pixels = image.movedim(-1, -3).to(device)
        out = comfy.utils.tiled_scale(pixels, lambda a: upscale_model(a), tile_x=512, tile_y=512, overlap=32,
                                      upscale_amount=upscale_model.scale)
        upscale_model.cpu()
        return (torch.clamp(out.movedim(-3, -1), min=0, max=1.0),)


class UpscaleThroughCore(TiledUpscale):
    def upscale(self, upscale_model, image):
        return ImageUpscaleWithModel().upscale(upscale_model, image)


class EncodeImage:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_vision": ("CLIP_VISION",), "image": ("IMAGE",)}}

    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    FUNCTION = "encode"
    CATEGORY = "fixture"

    def encode(self, clip_vision, image):
        return (clip_vision.encode_image(image, crop=False),)


class EmbedsNorm:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"clip_vision_output": ("CLIP_VISION_OUTPUT",)}}

    RETURN_TYPES = ("FLOAT", "FLOAT")
    FUNCTION = "norm"
    CATEGORY = "fixture"

    def norm(self, clip_vision_output):
        return (float(clip_vision_output.image_embeds.norm()),
                float(clip_vision_output["penultimate_hidden_states"].norm()))


NODE_CLASS_MAPPINGS = {
    "FixtureUpscaleLoaderFromWeights": UpscaleLoaderFromWeights,
    "FixtureTiledUpscale": TiledUpscale,
    "FixtureUpscaleThroughCore": UpscaleThroughCore,
    "FixtureEncodeImage": EncodeImage,
    "FixtureEmbedsNorm": EmbedsNorm,
}
