"""Image, latent, conditioning and VAE nodes, and the CLIP value (SDXL's joined encoders, clip skip)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import small_sdxl_clip
from sigmagraph.engine import Session
from sigmagraph.nodes.models.clip import encode
from sigmagraph.nodes.models.manager import ModelManager, ModuleHandle
from sigmagraph.nodes.models.module_init import empty_module, init_random_
from sigmagraph.nodes.models.runtime import VAE
from sigmagraph.nodes.models.vae import SD_VAE, AutoencoderKL
from sigmagraph.nodes.packs.conditioning import (CLIPSetLastLayer, CLIPTextEncodeSDXL, ConditioningCombine,
                                                 ConditioningSetArea, ConditioningSetTimestepRange, ConditioningZeroOut)
from sigmagraph.nodes.packs.image import ImageInvert, ImageScale, ImageScaleBy, LoadImage, LoadImageMask
from sigmagraph.nodes.packs.latent import (LatentFromBatch, LatentUpscale, LatentUpscaleBy, LoadLatent,
                                           RepeatLatentBatch, SaveLatent, SetLatentNoiseMask)
from sigmagraph.nodes.packs.vae import VAEEncodeForInpaint, inpaint_pixels
from sigmagraph.nodes.resize import bislerp, resize


def write_rgba(path, size=(24, 16)):
    """An RGBA image whose alpha is 255 on the left half and 0 on the right half."""
    rgba = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:, : size[0] // 2, 3] = 255
    Image.fromarray(rgba, "RGBA").save(path)


def test_load_image_masks_the_transparent_part(context):
    context.config.input_dir.mkdir(parents=True)
    write_rgba(context.config.input_dir / "rgba.png")
    Image.new("RGB", (10, 6), (0, 255, 0)).save(context.config.input_dir / "rgb.jpg")
    image, mask = LoadImage(image="rgba.png", ctx=context)
    assert image.shape == (1, 16, 24, 3) and mask.shape == (1, 16, 24)
    assert torch.allclose(image[..., 0], torch.tensor(200 / 255))
    assert mask[0, :, :12].eq(0).all() and mask[0, :, 12:].eq(1).all()
    image, mask = LoadImage(image="rgb.jpg", ctx=context)
    assert image.shape == (1, 6, 10, 3) and torch.equal(mask, torch.zeros(1, 64, 64))
    assert LoadImageMask(image="rgba.png", channel="alpha", ctx=context)[0, 0, -1] == 1
    assert torch.allclose(LoadImageMask(image="rgba.png", channel="red", ctx=context), torch.tensor(200 / 255))


def test_save_latent_then_load_latent_round_trip(context):
    samples = torch.randn(2, 4, 5, 7)
    ui = SaveLatent(samples={"samples": samples}, filename_prefix="latents/test", prompt={"1": {}},
                    extra_pnginfo={"workflow": {"a": 1}}, ctx=context).ui["latents"][0]
    assert (ui["subfolder"], ui["filename"]) == ("latents", "test_00001_.latent")
    context.config.input_dir.mkdir(parents=True)
    shutil.copy(context.config.output_dir / "latents" / ui["filename"], context.config.input_dir / "saved.latent")
    assert torch.equal(LoadLatent(latent="saved.latent", ctx=context)["samples"], samples)
    # Files from before ComfyUI stored latents unscaled carry no format marker: undo SD's scale.
    save_file({"latent_tensor": samples}, str(context.config.input_dir / "old.latent"))
    torch.testing.assert_close(LoadLatent(latent="old.latent", ctx=context)["samples"], samples / 0.18215)


def test_latent_workflow_saves_through_the_session(config):
    session = Session(config)
    result = session.run({"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 48,
                                                                              "batch_size": 3}},
                          "2": {"class_type": "LatentFromBatch", "inputs": {"samples": ["1", 0], "batch_index": 1,
                                                                            "length": 2}},
                          "3": {"class_type": "SaveLatent", "inputs": {"samples": ["2", 0], "filename_prefix": "x"}}})
    assert result.ok, result.error
    with safe_open(str(config.output_dir / "x_00001_.latent"), "pt") as file:
        assert file.get_tensor("latent_tensor").shape == (2, 4, 6, 8)
        assert json.loads(file.metadata()["prompt"])["3"]["class_type"] == "SaveLatent"


def test_batch_nodes_keep_batch_indices_and_masks():
    latent = {"samples": torch.arange(4.0).reshape(4, 1, 1, 1).expand(4, 4, 2, 2).clone(),
              "noise_mask": torch.ones(2, 1, 2, 2)}
    picked = LatentFromBatch(samples=latent, batch_index=1, length=2)
    assert picked["batch_index"] == [1, 2] and picked["samples"][:, 0, 0, 0].tolist() == [1.0, 2.0]
    assert picked["noise_mask"].shape == (2, 1, 2, 2)
    repeated = RepeatLatentBatch(samples=picked, amount=3)
    assert repeated["samples"].shape[0] == 6 and repeated["batch_index"] == [1, 2, 3, 4, 5, 6]
    masked = SetLatentNoiseMask(samples={"samples": torch.zeros(1, 4, 8, 8)}, mask=torch.ones(16, 16))
    assert masked["noise_mask"].shape == (1, 1, 16, 16)


def test_resizing_latents_and_images():
    latent = {"samples": torch.randn(1, 4, 8, 12)}
    assert LatentUpscale(samples=latent, upscale_method="bislerp", width=0, height=128, crop="disabled")["samples"].shape \
        == (1, 4, 16, 24)
    assert LatentUpscaleBy(samples=latent, upscale_method="bilinear", scale_by=1.5)["samples"].shape == (1, 4, 12, 18)
    assert LatentUpscale(samples=latent, upscale_method="area", width=0, height=0, crop="disabled") is latent
    torch.testing.assert_close(bislerp(latent["samples"], 12, 8), latent["samples"])  # same size: same pixels
    # Slerp keeps the channel norm of a pixel halfway between two vectors of equal norm.
    pair = torch.tensor([[[[3.0, 0.0]], [[0.0, 3.0]]]])  # [1, C=2, H=1, W=2]: (3, 0) and (0, 3)
    middle = bislerp(pair, 4, 1)[0, :, 0, 1]
    assert torch.isclose(middle.norm(), torch.tensor(3.0))
    image = torch.rand(2, 30, 40, 3)
    assert ImageScale(image=image, upscale_method="lanczos", width=20, height=0, crop="disabled").shape == (2, 15, 20, 3)
    assert ImageScale(image=image, upscale_method="bicubic", width=30, height=30, crop="center").shape == (2, 30, 30, 3)
    assert ImageScaleBy(image=image, upscale_method="nearest-exact", scale_by=0.5).shape == (2, 15, 20, 3)
    assert torch.equal(ImageInvert(image=image), 1 - image)
    with pytest.raises(ValueError, match="unknown upscale method 'cubic'"):
        resize(image, 3, 3, "cubic")


def test_inpaint_input_greys_the_masked_pixels_and_grows_the_noise_mask():
    pixels = torch.rand(1, 20, 21, 3)  # cropped to 16 x 16 around the centre
    mask = torch.zeros(20, 21)
    mask[8:12, 8:12] = 1.0
    greyed, noise_mask = inpaint_pixels(pixels, mask, grow_mask_by=2)
    assert greyed.shape == (1, 16, 16, 3) and noise_mask.shape == (1, 1, 16, 16)
    cropped_mask = mask[2:18, 2:18]  # the crop starts at ((20 % 8) // 2, (21 % 8) // 2) = (2, 2)
    assert torch.equal(greyed[0][cropped_mask.bool()], torch.full((16, 3), 0.5))
    assert torch.equal(greyed[0][~cropped_mask.bool()], pixels[0, 2:18, 2:18][~cropped_mask.bool()])
    assert noise_mask.sum() > cropped_mask.sum() and noise_mask[0, 0][cropped_mask.bool()].eq(1).all()
    vae = VAE(ModuleHandle(ModelManager(torch.device("cpu")).register(
        init_random_(empty_module(AutoencoderKL, replace(SD_VAE, ch=32)), 0))))
    latent = VAEEncodeForInpaint(pixels=pixels, vae=vae, mask=mask, grow_mask_by=6)
    assert latent["samples"].shape == (1, 4, 2, 2) and latent["noise_mask"].shape == (1, 1, 16, 16)


def test_conditioning_operations():
    cond = [[torch.ones(1, 77, 8), {"pooled_output": torch.ones(1, 8)}]]
    area = ConditioningSetArea(conditioning=cond, width=256, height=128, x=64, y=32, strength=0.5)
    assert area[0][1] == {"pooled_output": cond[0][1]["pooled_output"], "area": (16, 32, 4, 8), "strength": 0.5,
                          "set_area_to_bounds": False}
    assert "area" not in cond[0][1]  # the input is not modified
    ranged = ConditioningSetTimestepRange(conditioning=cond, start=0.2, end=0.8)
    assert (ranged[0][1]["start_percent"], ranged[0][1]["end_percent"]) == (0.2, 0.8)
    zero = ConditioningZeroOut(conditioning=cond)
    assert not zero[0][0].any() and not zero[0][1]["pooled_output"].any() and cond[0][0].all()
    assert len(ConditioningCombine(conditioning_1=cond, conditioning_2=zero)) == 2


def test_sdxl_clip_joins_its_encoders_and_honours_clip_skip():
    clip = small_sdxl_clip()
    (cond, options), = clip.encode("a castle on a hill")
    assert cond.shape == (1, 77, 64 + 128) and options["pooled_output"].shape == (1, 96)
    windows = clip.tokenize("a castle on a hill")
    for part, features in zip(clip.parts, (slice(0, 64), slice(64, 192))):
        alone, pooled = encode(part.use(), windows[part.slot.name], part.slot.settings)
        torch.testing.assert_close(cond[..., features], alone)
    torch.testing.assert_close(options["pooled_output"], pooled)  # the pooled output is bigG's

    skipped = CLIPSetLastLayer(clip=clip, stop_at_clip_layer=-1)
    last, = skipped.encode("a castle on a hill")
    assert not torch.allclose(last[0], cond)  # SDXL reads the penultimate layer by default
    assert torch.equal(last[1]["pooled_output"], options["pooled_output"])  # pooled always from the final layer

    (both, sizes), = CLIPTextEncodeSDXL(clip=clip, width=896, height=1152, crop_w=0, crop_h=16, target_width=1024,
                                        target_height=1024, text_g="a castle", text_l="stone, " * 60)
    assert both.shape == (1, 154, 192)  # text_l needs two windows: text_g is padded with the empty prompt's
    assert (sizes["width"], sizes["height"], sizes["crop_h"], sizes["target_width"]) == (896, 1152, 16, 1024)
