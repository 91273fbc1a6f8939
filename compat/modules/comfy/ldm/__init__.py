"""ComfyUI's `comfy.ldm`: its model code. Sigmagraph's models are its own (nodes/models); what is here are the
building blocks packs import from it and call themselves — attention, Flux's RoPE, Lumina's feed-forward —
as working functions and modules. Patching them changes the pack's own code, not Sigmagraph's models."""
