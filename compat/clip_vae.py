"""The CLIP and VAE facades: ComfyUI's comfy.sd.CLIP and comfy.sd.VAE over Sigmagraph's text encoders and VAE.

A pack receives `CLIP.of(clip)` / `VAE.of(vae)`: ComfyUI's methods on Sigmagraph's values
(tokenize, encode_from_tokens, clip_layer, clone, add_patches; encode, decode and their tiled
forms), with ComfyUI's token format `{"l": [[(token, weight), ...], ...]}` and ComfyUI's tile
sizes. What it hands back is the Sigmagraph value with the layer and LoRA patches it set
(`clip_value`, `vae_value`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import torch
from torch import Tensor

from sigmagraph.nodes.models.runtime import CLIP as NativeCLIP
from sigmagraph.nodes.models.runtime import VAE as NativeVAE
from sigmagraph.nodes.models.tokenizer import TokenWindows

from . import state
from .patcher import ModelPatcher

# ComfyUI's token-dict key of each text encoder slot.
TOKEN_KEYS = {"clip_l": "l", "clip_g": "g", "clip_h": "h"}
# ComfyUI's defaults for tiled VAE work: decode tiles in latent pixels, encode tiles in image pixels.
DECODE_TILE, DECODE_OVERLAP = 64, 16
ENCODE_TILE, ENCODE_OVERLAP = 512, 64


def _progress() -> Callable[[int, int], None] | None:
    """Progress of tiled work, reported as the running node's (None outside a run)."""
    run = state.current_run()
    return None if run is None else run.progress


class TextEncoders(torch.nn.Module):
    """ComfyUI's cond_stage_model: each text encoder as `<slot>.transformer` (clip_l.transformer.text_model...)."""

    def __init__(self, clip: NativeCLIP):
        super().__init__()
        self.source = clip
        for part in clip.parts:
            holder = torch.nn.Module()
            holder.transformer = part.managed.module
            self.add_module(part.slot.name, holder)


class Tokenizer:
    """ComfyUI's CLIP tokenizer: a weighted prompt as a token dict, one entry per text encoder."""

    def __init__(self, clip: NativeCLIP):
        self.clip = clip

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, list]:
        """Each encoder's 77-token windows as lists of (token, weight) (word ids are not tracked)."""
        return {TOKEN_KEYS.get(slot, slot): [list(zip(ids, weights)) for ids, weights in zip(w.ids, w.weights)]
                for slot, w in self.clip.tokenize(text).items()}

    @staticmethod
    def of(clip: NativeCLIP) -> "Tokenizer":
        """The tokenizer class ComfyUI uses for this set of text encoders (packs test it with isinstance)."""
        slots = {part.slot.name for part in clip.parts}
        return (SDXLTokenizer if slots == {"clip_l", "clip_g"} else SD1Tokenizer)(clip)


class SD1Tokenizer(Tokenizer):
    """ComfyUI's comfy.sd1_clip.SD1Tokenizer: one CLIP text encoder (SD 1.x and 2.x)."""


class SDXLTokenizer(Tokenizer):
    """ComfyUI's comfy.sdxl_clip.SDXLTokenizer: CLIP-L and CLIP-G together."""


class CLIP:
    """ComfyUI's CLIP: a text encoder set with its tokenizer, last layer and weight patches."""

    def __init__(self, target: Any = None, embedding_directory: Any = None, no_init: bool = False,
                 tokenizer_data: dict | None = None, parameters: int = 0, model_options: dict | None = None):
        if not no_init:
            raise ValueError("comfy.sd.CLIP(target=...) builds ComfyUI's own text encoders; Sigmagraph's CLIP "
                             "values come from its loaders (CheckpointLoaderSimple, CLIPLoader)")

    @classmethod
    def of(cls, clip: NativeCLIP) -> "CLIP":
        """The CLIP a pack receives for a Sigmagraph CLIP value."""
        n = cls(no_init=True)
        n.source = clip
        n.cond_stage_model = TextEncoders(clip)
        n.tokenizer = Tokenizer.of(clip)
        n.patcher = ModelPatcher(n.cond_stage_model, clip.parts[0].device, torch.device("cpu"))
        n.patcher.is_clip = True
        n.layer_idx = clip.layer
        n.tokenizer_options = {}
        n.use_clip_schedule = False
        n.apply_hooks_to_conds = None
        return n

    def clone(self) -> "CLIP":
        n = CLIP(no_init=True)
        n.__dict__.update(self.__dict__)
        n.patcher = self.patcher.clone()
        n.tokenizer_options = self.tokenizer_options.copy()
        return n

    def add_patches(self, patches: dict, strength_patch: float = 1.0, strength_model: float = 1.0) -> list:
        return self.patcher.add_patches(patches, strength_patch, strength_model)

    def set_tokenizer_option(self, option_name: str, value: Any) -> None:
        self.tokenizer_options[option_name] = value

    def clip_layer(self, layer_idx: int) -> None:
        """Reads every encoder's output after block `layer_idx` (-1 the last), as CLIPSetLastLayer."""
        self.layer_idx = layer_idx

    def tokenize(self, text: str, return_word_ids: bool = False, **kwargs: Any) -> dict[str, list]:
        return self.tokenizer.tokenize_with_weights(text, return_word_ids, **kwargs)

    def encode_from_tokens(self, tokens: dict[str, list], return_pooled: bool | str = False,
                           return_dict: bool = False) -> Any:
        """The conditioning tensor of a token dict (with the pooled output, or both in a dict)."""
        clip = clip_value(self)
        windows = {part.slot.name: TokenWindows(tuple(tuple(t[0] for t in window) for window in tokens[key]),
                                                tuple(tuple(float(t[1]) for t in window) for window in tokens[key]),
                                                part.slot.settings.pad_token)
                   for part in clip.parts if (key := TOKEN_KEYS.get(part.slot.name, part.slot.name)) in tokens}
        cond, pooled = clip.encode_tokens(windows)
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond

    def encode_from_tokens_scheduled(self, tokens: dict[str, list], unprojected: bool = False,
                                     add_dict: dict | None = None, show_pbar: bool = True) -> list:
        """A CONDITIONING list of the tokens: [[cond, {"pooled_output": pooled, **add_dict}]]."""
        out = self.encode_from_tokens(tokens, return_dict=True)
        cond = out.pop("cond")
        return [[cond, {**out, **(add_dict or {})}]]

    def encode(self, text: str) -> Tensor:
        return self.encode_from_tokens(self.tokenize(text))

    def get_sd(self) -> dict[str, Tensor]:
        return self.cond_stage_model.state_dict()

    def load_sd(self, sd: dict[str, Tensor], full_model: bool = False) -> Any:
        """Loads weights into the text encoders in place (shared by every CLIP of the same file, as in ComfyUI).

        With full_model the keys are the cond_stage_model's (clip_l.transformer...), else the encoder's own.
        """
        parts = self.source.parts
        for part in parts:
            with part.managed.manager.lock:
                part.managed.apply_patches(())  # weights as loaded, so no patch backup outlives them
        target = self.cond_stage_model if full_model or len(parts) > 1 else parts[0].managed.module
        return target.load_state_dict(sd, strict=False)

    def get_key_patches(self) -> dict[str, list]:
        return {key: entries[:] for key, entries in self.patcher.patches.items()}


def clip_value(clip: CLIP) -> NativeCLIP:
    """The Sigmagraph CLIP of a pack's CLIP: its last layer and LoRA patches applied."""
    source = clip.source
    parts = tuple(part.with_patches(*found) if (found := clip.patcher.lora_patches(f"{part.slot.name}.transformer.",
                                                                                     "LoRA (CLIP.add_patches)"))
                  else part for part in source.parts)
    if clip.layer_idx == source.layer and all(a is b for a, b in zip(parts, source.parts)):
        return source
    return replace(source, parts=parts, layer=clip.layer_idx)


class VAE:
    """ComfyUI's VAE: encode images [B, H, W, C] to unscaled latents and back, whole or in tiles."""

    def __init__(self, sd: dict | None = None, device: Any = None, config: Any = None, dtype: Any = None,
                 metadata: Any = None):
        if sd is not None:
            raise ValueError("comfy.sd.VAE(sd=...) builds ComfyUI's own autoencoders; Sigmagraph's VAE values come "
                             "from its loaders (CheckpointLoaderSimple, VAELoader)")
        self.first_stage_model = None

    @classmethod
    def of(cls, vae: NativeVAE) -> "VAE":
        """The VAE a pack receives for a Sigmagraph VAE value."""
        n = cls()
        n.source = vae
        n.first_stage_model = vae.handle.managed.module
        n.device, n.vae_dtype = vae.handle.device, vae.handle.dtype
        n.output_device = torch.device("cpu")
        n.downscale_ratio = n.upscale_ratio = vae.downscale
        n.latent_channels = n.first_stage_model.config.embed_dim
        n.latent_dim, n.output_channels = 2, 3
        n.patcher = ModelPatcher(n.first_stage_model, n.device, torch.device("cpu"))
        return n

    def throw_exception_if_invalid(self) -> None:
        if self.first_stage_model is None:
            raise RuntimeError("ERROR: VAE is invalid: None")

    def encode(self, pixel_samples: Tensor) -> Tensor:
        """Latents of images (RGB, centre-cropped to a multiple of 8 pixels)."""
        self.throw_exception_if_invalid()
        return self.source.encode(pixel_samples)

    def decode(self, samples_in: Tensor, vae_options: dict | None = None) -> Tensor:
        """Images of latents."""
        self.throw_exception_if_invalid()
        return self.source.decode(samples_in)

    def decode_tiled(self, samples: Tensor, tile_x: int | None = None, tile_y: int | None = None,
                     overlap: int | None = None, tile_t: int | None = None, overlap_t: int | None = None) -> Tensor:
        """`decode` in square tiles of tile_x latent pixels (Sigmagraph's tiling: one pass, tile_y unused)."""
        self.throw_exception_if_invalid()
        scale = self.downscale_ratio
        return self.source.decode_tiled(samples, (tile_x or DECODE_TILE) * scale,
                                        (DECODE_OVERLAP if overlap is None else overlap) * scale, _progress())

    def encode_tiled(self, pixel_samples: Tensor, tile_x: int | None = None, tile_y: int | None = None,
                     overlap: int | None = None, tile_t: int | None = None, overlap_t: int | None = None) -> Tensor:
        """`encode` in square tiles of tile_x image pixels (Sigmagraph's tiling: one pass, tile_y unused)."""
        self.throw_exception_if_invalid()
        return self.source.encode_tiled(pixel_samples, tile_x or ENCODE_TILE,
                                        ENCODE_OVERLAP if overlap is None else overlap, _progress())

    def get_sd(self) -> dict[str, Tensor]:
        return self.first_stage_model.state_dict()

    def spacial_compression_decode(self) -> int:
        return self.upscale_ratio

    def spacial_compression_encode(self) -> int:
        return self.downscale_ratio

    def temporal_compression_decode(self) -> None:
        return None


def vae_value(vae: VAE) -> NativeVAE:
    """The Sigmagraph VAE of a pack's VAE."""
    vae.throw_exception_if_invalid()
    return vae.source
