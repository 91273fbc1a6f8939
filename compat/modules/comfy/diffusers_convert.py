"""ComfyUI's `comfy.diffusers_convert`, which converts diffusers-layout state dicts to the original layout.

Sigmagraph reads only the original layouts and provides none of the conversions. WAS node suite
imports this module when it loads, for its diffusers model loader, which calls
`comfy.diffusers_convert.load_diffusers`: ComfyUI itself no longer has that function, so that one
node fails in either; the rest of the pack loads.
"""
