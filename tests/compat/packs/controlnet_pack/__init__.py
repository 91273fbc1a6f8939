"""A ComfyUI-style pack for the tests that applies ControlNets the way real packs do (Comfyroll's nodes).

It imports comfy.controlnet at import time; one node stacks a control on each entry with
`control_net.copy().set_cond_hint(...)` and `set_previous_controlnet`; one loads a file with
comfy.controlnet.load_controlnet and hands it to the core ControlNetApplyAdvanced.
"""

import comfy.controlnet
import folder_paths
from nodes import ControlNetApplyAdvanced


class StackControlNet:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "control_net": ("CONTROL_NET",),
                             "image": ("IMAGE",), "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "apply"
    CATEGORY = "fixture"

    def apply(self, conditioning, control_net, image, strength):
        hint = image.movedim(-1, 1)
        out = []
        for cond, options in conditioning:
            options = options.copy()
            c_net = control_net.copy().set_cond_hint(hint, strength)
            if "control" in options:
                c_net.set_previous_controlnet(options["control"])
            options["control"] = c_net
            out.append([cond, options])
        return (out,)


class ControlNetFromFile:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"positive": ("CONDITIONING",), "negative": ("CONDITIONING",),
                             "control_net_name": (folder_paths.get_filename_list("controlnet"),),
                             "image": ("IMAGE",), "strength": ("FLOAT", {"default": 1.0}),
                             "start_percent": ("FLOAT", {"default": 0.0}), "end_percent": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    FUNCTION = "apply"
    CATEGORY = "fixture"

    def apply(self, positive, negative, control_net_name, image, strength, start_percent, end_percent):
        control_net = comfy.controlnet.load_controlnet(folder_paths.get_full_path("controlnet", control_net_name))
        return ControlNetApplyAdvanced().apply_controlnet(positive, negative, control_net, image, strength,
                                                          start_percent, end_percent)


NODE_CLASS_MAPPINGS = {"FixtureStackControlNet": StackControlNet, "FixtureControlNetFromFile": ControlNetFromFile}
