"""ComfyUI's `comfy.sd1_clip`: the tokenizer class of single-CLIP models (what packs test a CLIP's tokenizer against)."""

from sigmagraph.compat.clip_vae import SD1Tokenizer  # noqa: F401
