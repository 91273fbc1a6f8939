"""CLIP vision nodes: CLIPVisionLoader and CLIPVisionEncode (ComfyUI's names, inputs and outputs).

Files come from models/clip_vision/: CLIP ViT-L/14 (224 and 336), ViT-H/14, ViT-bigG/14 and
SigLIP vision towers, in transformers' or OpenCLIP's layout. A CLIP_VISION_OUTPUT carries
`last_hidden_state`, `penultimate_hidden_states`, `image_embeds` and `mm_projected` as ComfyUI's.
"""

from __future__ import annotations

from sigmagraph.engine import Combo, Hidden, RunContext, Socket, SocketType, node

from ..models.clip_vision_model import load_clip_vision
from .files import model_file, model_file_fingerprint, model_files
from .loaders import placement
from .types import SOCKET_TYPES as DOMAIN_TYPES

SOCKET_TYPES = DOMAIN_TYPES + [
    SocketType(name="CLIP_VISION", color="#a8dadc", description="an image encoder (CLIP or SigLIP vision tower)"),
    SocketType(name="CLIP_VISION_OUTPUT", color="#ad7452", description="an image's CLIP vision embeddings"),
]


@node(returns=["CLIP_VISION"], category="loaders", display_name="Load CLIP Vision",
      fingerprint=model_file_fingerprint("clip_vision", "clip_name"))
def CLIPVisionLoader(clip_name=Combo(model_files("clip_vision"), files_in="models/clip_vision"),
                     ctx: RunContext = Hidden.CONTEXT):
    """Loads a CLIP vision model (ViT-L/14, ViT-H/14, ViT-bigG/14, SigLIP); its size is read from the file."""
    return load_clip_vision(model_file(ctx.config, "clip_vision", clip_name), clip_name, *placement(ctx.config))


@node(returns=["CLIP_VISION_OUTPUT"], category="conditioning", display_name="CLIP Vision Encode")
def CLIPVisionEncode(clip_vision=Socket("CLIP_VISION"), image=Socket("IMAGE"),
                     crop=Combo(["center", "none"], default="center",
                                tooltip="center: shortest side resized and centre-cropped; none: squashed")):
    """Encodes an image with a CLIP vision model."""
    return clip_vision.encode(image, crop == "center")
