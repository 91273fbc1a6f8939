"""The built-in node packs, one module per domain, installed as the one entry point `builtin`.

Discovery imports each module named in NODE_PACKS and registers it as a pack of that name, so a
module that fails is skipped and reported alone, and a conflict names the pack ("latent").
"""

NODE_PACKS = ("analytic", "conditioning", "image", "image_output", "image_size", "latent", "loaders", "logic", "mask",
              "model_sampling", "primitives", "sampling", "sampling_extras", "schedulers", "strings", "vae")
