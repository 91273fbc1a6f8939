"""CLIP vision towers against transformers (CLIPVisionModelWithProjection, SiglipVisionModel) with the same weights.

Small configs run in milliseconds; the full-size presets are checked by shape only, on transformers'
modules built on the meta device from the published configs.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sigmagraph.engine import Session
from sigmagraph.nodes.models import clip_vision
from sigmagraph.nodes.models.clip_vision import (SIGLIP_SO400M, VIT_BIGG14, VIT_H14, VIT_L14, CLIPVisionModel,
                                                 canonical_state_dict, config_from_shapes, preprocess)
from sigmagraph.nodes.models.clip_vision_model import clip_vision_from_state_dict, load_clip_vision
from sigmagraph.nodes.models.module_init import init_random_
from sigmagraph.nodes.packs.clip_vision import CLIPVisionEncode

transformers = pytest.importorskip("transformers", reason="transformers (the reference) is not installed")

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=28,
            patch_size=7)


def tiny_clip(activation: str = "quick_gelu", seed: int = 0):
    """A random transformers CLIPVisionModelWithProjection of width 32, and its state dict."""
    config = transformers.CLIPVisionConfig(**TINY, projection_dim=16, hidden_act=activation)
    model = init_random_(transformers.CLIPVisionModelWithProjection(config).eval(), seed)
    return model, model.state_dict()


def openclip_layout(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tower in OpenCLIP's `visual.*` names (fused q/k/v, `proj` applied as x @ proj), text keys beside it."""
    names = {"embeddings.class_embedding": "class_embedding", "embeddings.patch_embedding.weight": "conv1.weight",
             "embeddings.position_embedding.weight": "positional_embedding", "pre_layrnorm": "ln_pre",
             "post_layernorm": "ln_post", "layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc",
             "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj", "encoder.layers": "transformer.resblocks"}
    out = {"logit_scale": torch.tensor(4.6), "token_embedding.weight": torch.zeros(10, 8)}
    for key, value in state_dict.items():
        if key == "visual_projection.weight":
            out["visual.proj"] = value.t().contiguous()
            continue
        if "self_attn.k_proj" in key or "self_attn.v_proj" in key or key.endswith("position_ids"):
            continue
        if "self_attn.q_proj" in key:
            kind = key.rsplit(".", 1)[1]
            parts = [state_dict[key.replace("q_proj", name)] for name in ("q_proj", "k_proj", "v_proj")]
            key = key.replace("self_attn.q_proj", "attn.in_proj").replace(f".{kind}", f"_{kind}")
            value = torch.cat(parts)
        key = key.removeprefix("vision_model.")
        for ours, theirs in names.items():
            key = key.replace(ours, theirs)
        out["visual." + key] = value
    return out


def test_clip_tower_matches_transformers():
    reference, state_dict = tiny_clip()
    config = config_from_shapes(canonical_state_dict(state_dict), replace(VIT_L14, heads=4))
    model = CLIPVisionModel(config).eval()
    model.load_state_dict(canonical_state_dict(state_dict))
    pixels = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True)
        out = model(pixels)
    torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.penultimate_hidden_states, expected.hidden_states[-2], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.image_embeds, expected.image_embeds, atol=1e-5, rtol=0)
    assert out.mm_projected is None


def test_siglip_tower_matches_transformers():
    config = transformers.SiglipVisionConfig(**TINY)
    reference = init_random_(transformers.SiglipVisionModel(config).eval(), 2)
    # ComfyUI's SigLIP files hold the tower under vision_model., its pooling head (unused) included.
    state_dict = {"vision_model." + key: value for key, value in reference.state_dict().items()}
    ours = canonical_state_dict(state_dict)
    model = CLIPVisionModel(config_from_shapes(ours, replace(SIGLIP_SO400M, heads=4))).eval()
    assert model.config.siglip and model.config.projection_dim is None
    model.load_state_dict({key: value for key, value in ours.items() if ".head." not in key})
    pixels = torch.randn(2, 3, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference(pixel_values=pixels, output_hidden_states=True)
        out = model(pixels)
    torch.testing.assert_close(out.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.image_embeds, expected.last_hidden_state, atol=1e-5, rtol=0)  # ComfyUI's choice
    torch.testing.assert_close(out.penultimate_hidden_states, expected.hidden_states[-2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["transformers", "openclip"])
def test_file_in_either_layout_encodes_as_transformers(layout, config, monkeypatch):
    monkeypatch.setitem(clip_vision.PRESETS, 32, replace(VIT_H14, heads=4))  # width 32 stands for ViT-H here
    reference, state_dict = tiny_clip("gelu", seed=4)
    stored = openclip_layout(state_dict) if layout == "openclip" else state_dict
    folder = config.models_dir / "clip_vision"
    folder.mkdir()
    save_file({key: value.contiguous() for key, value in stored.items()}, folder / "vision.safetensors")
    model = load_clip_vision(folder / "vision.safetensors", "vision.safetensors", torch.device("cpu"))
    assert model.config == replace(VIT_H14, heads=4, width=32, layers=3, mlp_width=64, patch_size=7, image_size=28,
                                   projection_dim=16)
    image = torch.rand(2, 40, 30, 3, generator=torch.Generator().manual_seed(5))
    for crop in (True, False):
        out = CLIPVisionEncode(clip_vision=model, image=image, crop="center" if crop else "none")
        with torch.no_grad():
            expected = reference(pixel_values=preprocess(image, model.config, crop), output_hidden_states=True)
        torch.testing.assert_close(out.image_embeds, expected.image_embeds, atol=1e-5, rtol=0)
        torch.testing.assert_close(out.penultimate_hidden_states, expected.hidden_states[-2], atol=1e-5, rtol=0)


def test_llava_projector_reads_the_penultimate_patch_tokens(monkeypatch):
    monkeypatch.setitem(clip_vision.PRESETS, 32, replace(VIT_L14, heads=4))
    reference, state_dict = tiny_clip(seed=6)
    generator = torch.Generator().manual_seed(7)
    projector = {"multi_modal_projector.linear_1.weight": torch.randn(48, 32, generator=generator) * 0.1,
                 "multi_modal_projector.linear_1.bias": torch.randn(48, generator=generator) * 0.1,
                 "multi_modal_projector.linear_2.weight": torch.randn(48, 48, generator=generator) * 0.1,
                 "multi_modal_projector.linear_2.bias": torch.randn(48, generator=generator) * 0.1}
    model = clip_vision_from_state_dict({**state_dict, **projector}, "llava", torch.device("cpu"))
    image = torch.rand(1, 28, 28, 3, generator=generator)
    out = model.encode(image)
    with torch.no_grad():
        hidden = reference(pixel_values=preprocess(image, model.config), output_hidden_states=True).hidden_states[-2]
    tokens = hidden[:, 1:] @ projector["multi_modal_projector.linear_1.weight"].t() + projector[
        "multi_modal_projector.linear_1.bias"]
    expected = (torch.nn.functional.gelu(tokens) @ projector["multi_modal_projector.linear_2.weight"].t()
                + projector["multi_modal_projector.linear_2.bias"])
    torch.testing.assert_close(out.mm_projected, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("published, preset", [
    (dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
          projection_dim=768, image_size=224), VIT_L14),
    (dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
          projection_dim=768, image_size=336), replace(VIT_L14, image_size=336)),
    (dict(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=16,
          projection_dim=1024, image_size=224, hidden_act="gelu"), VIT_H14),
    (dict(hidden_size=1664, intermediate_size=8192, num_hidden_layers=48, num_attention_heads=16,
          projection_dim=1280, image_size=224, hidden_act="gelu"), VIT_BIGG14),
])
def test_full_size_towers_are_detected_by_shapes(published, preset):
    """The published configs of OpenAI's ViT-L/14 (224, 336) and LAION's ViT-H/14 and ViT-bigG/14."""
    with torch.device("meta"):
        config = transformers.CLIPVisionConfig(patch_size=14, **published)
        reference = transformers.CLIPVisionModelWithProjection(config)
    found = config_from_shapes(canonical_state_dict(reference.state_dict()))
    assert found == preset
    assert found.heads == published["num_attention_heads"]
    assert found.activation == {"quick_gelu": "quick_gelu", "gelu": "gelu"}[published.get("hidden_act", "quick_gelu")]


def test_preprocess_crops_the_centre_and_normalises():
    size = 28
    image = torch.rand(1, size, 2 * size, 3, generator=torch.Generator().manual_seed(8))
    config = replace(VIT_L14, image_size=size)
    mean, std = torch.tensor(config.image_mean).view(3, 1, 1), torch.tensor(config.image_std).view(3, 1, 1)
    # The shortest side is already the input size: no resampling, the middle square, 8-bit levels.
    middle = image[0, :, size // 2: size // 2 + size].movedim(-1, 0)
    expected = ((255 * middle).round() / 255 - mean) / std
    torch.testing.assert_close(preprocess(image, config)[0], expected, atol=1e-5, rtol=0)
    squashed = preprocess(torch.full((1, 10, 50, 4), 0.6), config, crop=False)  # alpha dropped, whole image kept
    torch.testing.assert_close(squashed, ((torch.full((1, 3, size, size), 153 / 255) - mean) / std), atol=1e-5, rtol=0)


def test_unknown_width_and_missing_tower_name_the_file():
    with pytest.raises(ValueError, match=r"odd\.safetensors: .*width 32"):
        clip_vision_from_state_dict(tiny_clip()[1], "odd.safetensors", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"text\.safetensors: no CLIP vision model found"):
        clip_vision_from_state_dict({"text_model.final_layer_norm.weight": torch.ones(4)}, "text.safetensors",
                                    torch.device("cpu"))


def test_workflow_loads_and_encodes(config, monkeypatch):
    monkeypatch.setitem(clip_vision.PRESETS, 32, replace(VIT_L14, heads=4))
    _, state_dict = tiny_clip(seed=9)
    (config.models_dir / "clip_vision").mkdir()
    save_file(state_dict, config.models_dir / "clip_vision" / "tiny.safetensors")
    config.input_dir.mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 30, 90)).save(config.input_dir / "red.png")
    workflow = {
        "1": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "tiny.safetensors"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "red.png"}},
        "3": {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["1", 0], "image": ["2", 0], "crop": "none"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }
    result = Session(config).run(workflow)
    assert result.ok, result.error
    assert "image_embeds" in result.ui_outputs["4"]["text"][0]
