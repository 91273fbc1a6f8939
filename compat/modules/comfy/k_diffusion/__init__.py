"""ComfyUI's `comfy.k_diffusion` package: its `sampling` module (Sigmagraph's samplers under k-diffusion's names)."""
