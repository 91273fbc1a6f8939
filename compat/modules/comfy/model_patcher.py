"""ComfyUI's `comfy.model_patcher`: the ModelPatcher a MODEL is, and its model_options helpers."""

from sigmagraph.compat.patcher import (ModelPatcher, create_model_options_clone, set_model_options_patch_replace,
                                       set_model_options_post_cfg_function, set_model_options_pre_cfg_function)

__all__ = ["ModelPatcher", "create_model_options_clone", "set_model_options_patch_replace",
           "set_model_options_post_cfg_function", "set_model_options_pre_cfg_function"]
