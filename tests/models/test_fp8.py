"""fp8 weight storage: linear weights kept in float8 (cast on load, or as a file stores them, scaled or not; T5 too),
up-cast layer by layer. The reference is the same network in float32 with its weights rounded through
float8 and back: up-casting per layer must give exactly its output, and both stay within fp8's error
of the unrounded float32 network."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from diffusers_layout import relative_error
from sigmagraph.nodes.models.families import SD3
from sigmagraph.nodes.models.flux import Flux
from sigmagraph.nodes.models.loading import load_text_encoders, load_unet
from sigmagraph.nodes.models.module_init import meta_module
from sigmagraph.nodes.models.t5 import T5EncoderModel
from sigmagraph.nodes.models.weight_storage import UpcastLinear

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
FP8_MAX = 448.0  # the largest float8_e4m3fn


def linear_names(module: nn.Module) -> set[str]:
    return {f"{name}.weight" for name, layer in module.named_modules() if isinstance(layer, nn.Linear)}


@torch.no_grad()
def flux_output(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    x, context = torch.randn(1, 16, 8, 8, generator=generator), torch.randn(1, 5, 4096, generator=generator)
    y = torch.randn(1, 768, generator=generator)
    return model.network(x, torch.tensor([0.5]), context, y=y, guidance=torch.tensor([3.5]))


@torch.no_grad()
def reference_output(state: dict[str, torch.Tensor], config) -> torch.Tensor:
    flux = meta_module(Flux, config)
    flux.load_state_dict({key: value.float() for key, value in state.items()}, assign=True)
    generator = torch.Generator().manual_seed(0)
    x, context = torch.randn(1, 16, 8, 8, generator=generator), torch.randn(1, 5, 4096, generator=generator)
    y = torch.randn(1, 768, generator=generator)
    return flux.eval()(x, torch.tensor([0.5]), context, y, torch.tensor([3.5]))


def test_fp8_storage_up_casts_each_layer_exactly(random_models):
    path = random_models.flow_split("flux-dev")["network"]
    model = load_unet(path, path.name, CPU, storage=torch.float8_e4m3fn)
    flux = model.network.managed.module
    linears = linear_names(flux)
    dtypes = {name: tensor.dtype for name, tensor in flux.state_dict().items()}
    assert {dtypes[name] for name in linears} == {torch.float8_e4m3fn}
    assert {dtype for name, dtype in dtypes.items() if name not in linears} == {torch.float32}
    assert model.network.dtype == torch.float32 and isinstance(flux.img_in, UpcastLinear)
    state = load_file(path)
    rounded = {key: value.to(torch.float8_e4m3fn) if key in linears else value for key, value in state.items()}
    out = flux_output(model)
    assert relative_error(out, reference_output(rounded, flux.config)) < 1e-5
    assert relative_error(out, reference_output(state, flux.config)) < 0.1  # fp8's 3-bit mantissa


def test_scaled_fp8_files_load_in_fp8_and_honour_scale_weight(random_models, tmp_path):
    path = random_models.flow_split("flux-dev")["network"]
    state = {key: value.float() for key, value in load_file(path).items()}
    linears = linear_names(load_unet(path, path.name, CPU).network.managed.module)
    scaled, dequantized = {"scaled_fp8": torch.zeros(0, dtype=torch.float8_e4m3fn)}, {}
    for key, value in state.items():
        if key in linears:
            scale = value.abs().max() / FP8_MAX
            stored = (value / scale).to(torch.float8_e4m3fn)
            layer = key.removesuffix(".weight")
            scaled.update({key: stored, f"{layer}.scale_weight": scale.reshape(()),
                           f"{layer}.scale_input": torch.ones(())})
            dequantized[key] = stored.float() * scale
        else:
            scaled[key] = dequantized[key] = value.to(torch.bfloat16)
    save_file(scaled, str(tmp_path / "flux_fp8_scaled.safetensors"))
    model = load_unet(tmp_path / "flux_fp8_scaled.safetensors", "flux_fp8_scaled.safetensors", CPU)
    flux = model.network.managed.module
    assert flux.double_blocks[0].img_attn.qkv.weight.dtype == torch.float8_e4m3fn
    assert flux.double_blocks[0].img_attn.qkv.scale_weight is not None
    assert relative_error(flux_output(model), reference_output(dequantized, flux.config)) < 1e-5
    # Asked for float32, the same file is up-cast on load (and the scales are still applied).
    full = load_unet(tmp_path / "flux_fp8_scaled.safetensors", "flux_fp8_scaled.safetensors", CPU, torch.float32)
    assert full.network.managed.module.img_in.weight.dtype == torch.float32
    assert relative_error(flux_output(full), reference_output(dequantized, flux.config)) < 1e-5


@torch.no_grad()
def test_an_fp8_t5_file_stays_in_fp8(random_models, tmp_path):
    source = random_models.flow_split("flux-dev")["t5xxl"]
    state = load_file(source)
    fp8 = {key: value.to(torch.float8_e4m3fn) if value.ndim == 2 and key != "shared.weight" else value
           for key, value in state.items()}
    save_file(fp8, str(tmp_path / "t5xxl_fp8_e4m3fn.safetensors"))
    (tmp_path / "t5_tokenizer").symlink_to(source.parent / "t5_tokenizer")
    clip = load_text_encoders([(tmp_path / "t5xxl_fp8_e4m3fn.safetensors", "t5xxl_fp8_e4m3fn.safetensors")], CPU,
                              families=(SD3,))
    t5 = clip.part("t5xxl").managed.module
    assert t5.encoder.block[0].layer[1].DenseReluDense.wi_0.weight.dtype == torch.float8_e4m3fn
    reference = meta_module(T5EncoderModel, t5.config)
    reference.load_state_dict({key: value.float() for key, value in fp8.items()}, assign=True)
    ids = torch.tensor([[5, 9, 1, 0, 0]])
    assert relative_error(t5(ids), reference.eval()(ids)) < 1e-5
