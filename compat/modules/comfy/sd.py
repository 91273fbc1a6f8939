"""ComfyUI's `comfy.sd`: the CLIP and VAE objects, and loading a checkpoint or a LoRA the way packs call it.

Checkpoints load with Sigmagraph's loader on the active Config's device and dtype; a LoRA (a
state dict) applies with Sigmagraph's LoRA, both returned as the facades packs expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from sigmagraph.compat import state as _state
from sigmagraph.compat.clip_vae import CLIP, VAE, clip_value
from sigmagraph.compat.loras import StateDict as _StateDict
from sigmagraph.compat.patcher import ModelPatcher, diffusion_model
from sigmagraph.nodes.models.loading import load_checkpoint as _load_checkpoint
from sigmagraph.nodes.models.lora import read_lora as _read_lora
from sigmagraph.nodes.models.runtime import apply_lora as _apply_lora
from sigmagraph.nodes.packs.loaders import placement as _placement

__all__ = ["CLIP", "VAE", "load_checkpoint_guess_config", "load_lora_for_models"]


def load_checkpoint_guess_config(ckpt_path: str, output_vae: bool = True, output_clip: bool = True,
                                 output_clipvision: bool = False, embedding_directory: Any = None,
                                 output_model: bool = True, model_options: dict | None = None,
                                 te_model_options: dict | None = None) -> tuple[Any, Any, Any, None]:
    """(MODEL, CLIP, VAE, None) of a single-file checkpoint, its family detected; parts not asked for are None."""
    path = Path(ckpt_path)
    model, clip, vae = _load_checkpoint(path, path.name, *_placement(_state.config()))
    return (ModelPatcher.of(model) if output_model else None, CLIP.of(clip) if output_clip else None,
            VAE.of(vae) if output_vae else None, None)


def load_lora_for_models(model: ModelPatcher | None, clip: CLIP | None, lora: dict[str, Tensor],
                         strength_model: float, strength_clip: float) -> tuple[Any, Any]:
    """The MODEL and CLIP with a LoRA state dict's layers applied at their strengths (None stays None)."""
    native_model, native_clip = _apply_lora(_read_lora(_StateDict(lora)), "LoRA",
                                            None if model is None else diffusion_model(model), strength_model,
                                            None if clip is None else clip_value(clip), strength_clip)
    return (None if native_model is None else ModelPatcher.of(native_model),
            None if native_clip is None else CLIP.of(native_clip))
