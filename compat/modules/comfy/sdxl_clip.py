"""ComfyUI's `comfy.sdxl_clip`: the tokenizer class of SDXL's CLIP-L + CLIP-G (what packs test a CLIP's tokenizer against)."""

from sigmagraph.compat.clip_vae import SDXLTokenizer  # noqa: F401
