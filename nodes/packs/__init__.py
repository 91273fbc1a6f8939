"""The built-in node packs, one module per domain, installed as the one entry point `builtin`.

Discovery imports each module named in NODE_PACKS and registers it as a pack of that name, so a
module that fails is skipped and reported alone, and a conflict names the pack ("latent").
"""

NODE_PACKS = ("analytic", "conditioning", "image", "image_output", "image_size", "lab", "latent", "latent_ops",
              "loaders", "logic", "mask", "model_sampling", "primitives", "sampling", "sampling_extras",
              "schedulers", "strings", "vae")
NODE_PACKS += ("upscale_model", "clip_vision")  # the upscale-model and CLIP vision nodes
NODE_PACKS += ("flux", "sd3")  # the SD3 and Flux.1 nodes
NODE_PACKS += ("controlnet",)  # ControlNet loaders and apply nodes
