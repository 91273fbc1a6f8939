"""The demo model's checkpoint: where it ships, what its metadata records, and how it is written.

It is one safetensors file in the original single-file layout — `model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.text_model.*` — so the checkpoint loader
reads it like any SD file. Two metadata entries go with the fp16 weights: FAMILY_MARK_KEY =
"demo", by which detection recognises the family (families.DEMO declares everything the loader
needs), and CONFIG_KEY, a JSON record of the same configuration plus how the weights were trained,
so the file describes itself to any other tool.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from ..models.families import DEMO, FAMILY_MARK_KEY

DEMO_CHECKPOINT = Path(__file__).with_name("sigmagraph-demo.safetensors")
CONFIG_KEY = "sigmagraph.config"
# SD's discrete schedule, which the demo model is trained on (discrete_model_sampling's defaults).
SCHEDULE = {"beta_schedule": "scaled_linear", "linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000}
# Where the UNet, the autoencoder and the text encoder are stored, in that order.
PREFIXES = (DEMO.network_prefix, DEMO.vae_prefix, DEMO.text_encoders[0].prefixes[0])


def demo_config(rgb_factors: tuple[tuple[float, ...], ...], rgb_bias: tuple[float, ...],
                training: dict[str, Any]) -> dict[str, Any]:
    """The configuration record of a demo checkpoint: the family's declaration, the preview map, the training."""
    slot = DEMO.text_encoders[0]
    return {
        "family": DEMO.name,
        "unet": asdict(DEMO.network),
        "vae": asdict(DEMO.vae),
        "text_encoder": asdict(slot.config),
        "text_encoder_settings": asdict(slot.settings),
        "prediction": DEMO.prediction,
        "schedule": SCHEDULE,
        "latent": {"channels": DEMO.latent_format.channels, "scale_factor": DEMO.latent_format.scale_factor,
                   "rgb_factors": rgb_factors, "rgb_bias": rgb_bias},
        "training": training,
    }


def save_demo(path: Path, unet: nn.Module, vae: nn.Module, text_encoder: nn.Module, config: dict[str, Any]) -> None:
    """Writes the three modules' weights as fp16 under their original prefixes, with the family mark and config."""
    tensors: dict[str, Tensor] = {}
    for prefix, module in zip(PREFIXES, (unet, vae, text_encoder)):
        for key, value in module.state_dict().items():
            tensors[prefix + key] = value.detach().to(torch.float16).contiguous()
    save_file(tensors, str(path), metadata={FAMILY_MARK_KEY: DEMO.name, CONFIG_KEY: json.dumps(config, sort_keys=True)})

