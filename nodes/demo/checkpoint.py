"""The demo models' checkpoints: where they ship, what their metadata records, and how they are written.

Each is one safetensors file in its family's original single-file layout, so the checkpoint
loader reads it like any file of that architecture: the SD demo as SD 1.x (`model.diffusion_model.*`,
`first_stage_model.*`, `cond_stage_model.transformer.text_model.*`), the flow demo as SD3
(`model.diffusion_model.*`, `first_stage_model.*`, `text_encoders.clip_l.transformer.text_model.*`).
Two metadata entries go with the fp16 weights: FAMILY_MARK_KEY, the family's name, by which
detection recognises it (the family declares everything else the loader needs), and CONFIG_KEY,
a JSON record of the same configuration plus how the weights were trained, so the file describes
itself to any other tool.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from ..models.families import DEMO, DEMO_FLOW, FAMILY_MARK_KEY, ModelFamily

CONFIG_KEY = "sigmagraph.config"
# SD's discrete schedule, which the SD demo model is trained on (discrete_model_sampling's defaults).
SCHEDULE = {"beta_schedule": "scaled_linear", "linear_start": 0.00085, "linear_end": 0.012, "timesteps": 1000}


@dataclass(frozen=True)
class DemoModel:
    """A shipped demo model: its family, its packaged file and the workflow (in workflows/) made for it."""

    family: ModelFamily
    path: Path
    workflow: str

    @property
    def prefixes(self) -> tuple[str, str, str]:
        """Where the diffusion network, the autoencoder and the text encoder are stored, in that order."""
        family = self.family
        return family.network_prefix, family.vae_prefix, family.text_encoders[0].prefixes[0]


DEMO_CHECKPOINT = Path(__file__).with_name("sigmagraph-demo.safetensors")
FLOW_DEMO_CHECKPOINT = Path(__file__).with_name("sigmagraph-demo-flow.safetensors")
DEMO_MODELS = {"sd": DemoModel(DEMO, DEMO_CHECKPOINT, "demo_sd.json"),
               "flow": DemoModel(DEMO_FLOW, FLOW_DEMO_CHECKPOINT, "default.json")}


def demo_config(model: DemoModel, rgb_factors: tuple[tuple[float, ...], ...] | list, rgb_bias: tuple[float, ...] | list,
                training: dict[str, Any]) -> dict[str, Any]:
    """The configuration record of a demo checkpoint: the family's declaration, the preview map, the training."""
    family = model.family
    slot = family.text_encoders[0]
    flow = family.flow
    return {
        "family": family.name,
        ("unet" if flow is None else "mmdit"): asdict(family.network),
        "vae": asdict(family.vae),
        "text_encoder": asdict(slot.config),
        "text_encoder_settings": asdict(slot.settings),
        "prediction": family.prediction,
        "schedule": SCHEDULE if flow is None else asdict(flow),
        "latent": {"channels": family.latent_format.channels, "scale_factor": family.latent_format.scale_factor,
                   "rgb_factors": rgb_factors, "rgb_bias": rgb_bias},
        "training": training,
    }


def save_demo(path: Path, model: DemoModel, network: nn.Module, vae: nn.Module, text_encoder: nn.Module,
              config: dict[str, Any]) -> None:
    """Writes the three modules' weights as fp16 under the family's prefixes, with the family mark and config."""
    tensors: dict[str, Tensor] = {}
    for prefix, module in zip(model.prefixes, (network, vae, text_encoder)):
        for key, value in module.state_dict().items():
            tensors[prefix + key] = value.detach().to(torch.float16).contiguous()
    save_file(tensors, str(path),
              metadata={FAMILY_MARK_KEY: model.family.name, CONFIG_KEY: json.dumps(config, sort_keys=True)})
