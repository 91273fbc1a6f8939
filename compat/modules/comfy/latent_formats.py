"""ComfyUI's `comfy.latent_formats`: the latent spaces (scale factor, channels, preview factors, process_in/out)."""

from sigmagraph.compat.latents import SD3, SD15, SDXL, Flux, LatentFormat

__all__ = ["Flux", "LatentFormat", "SD3", "SD15", "SDXL"]
