"""ComfyUI's `comfy.cli_args`: `args`, its command-line options with ComfyUI's names and defaults.

Sigmagraph's own command line is not ComfyUI's, so `args` holds ComfyUI's defaults, except the
options that describe Sigmagraph's configuration (`cpu`, the folders, `cache_none`...), which
are read from the active Config whenever they are asked for.
"""

from __future__ import annotations

import argparse
import enum
import os
from typing import Any, Callable

from sigmagraph.compat import state
from sigmagraph.engine import Config


class LatentPreviewMethod(enum.Enum):
    NoPreviews = "none"
    Auto = "auto"
    Latent2RGB = "latent2rgb"
    TAESD = "taesd"

    @classmethod
    def from_string(cls, value: str) -> "LatentPreviewMethod | None":
        return next((member for member in cls if member.value == value), None)


class PerformanceFeature(enum.Enum):
    Fp16Accumulation = "fp16_accumulation"
    Fp8MatrixMultiplication = "fp8_matrix_mult"
    CublasOps = "cublas_ops"
    AutoTune = "autotune"


DEFAULTS = {
    "listen": "127.0.0.1", "port": 8188, "tls_keyfile": None, "tls_certfile": None, "enable_cors_header": None,
    "max_upload_size": 100, "base_directory": None, "extra_model_paths_config": None, "auto_launch": False,
    "disable_auto_launch": False, "cuda_device": None, "default_device": None, "cuda_malloc": False,
    "disable_cuda_malloc": False, "force_fp32": False, "force_fp16": False, "fp32_unet": False, "fp64_unet": False,
    "bf16_unet": False, "fp16_unet": False, "fp8_e4m3fn_unet": False, "fp8_e5m2_unet": False,
    "fp8_e8m0fnu_unet": False, "fp16_vae": False, "fp32_vae": False, "bf16_vae": False, "cpu_vae": False,
    "fp8_e4m3fn_text_enc": False, "fp8_e5m2_text_enc": False, "fp16_text_enc": False, "fp32_text_enc": False,
    "bf16_text_enc": False, "force_channels_last": False, "directml": None, "oneapi_device_selector": None,
    "disable_ipex_optimize": False, "supports_fp8_compute": False,
    # Sigmagraph's samplers always send latent -> RGB previews.
    "preview_method": LatentPreviewMethod.Latent2RGB, "preview_size": 512,
    "cache_classic": False, "cache_lru": 0, "cache_ram": 0, "use_split_cross_attention": False,
    "use_quad_cross_attention": False, "use_pytorch_cross_attention": False, "use_sage_attention": False,
    "use_flash_attention": False, "disable_xformers": False, "force_upcast_attention": False,
    "dont_upcast_attention": False, "gpu_only": False, "highvram": False, "normalvram": False, "lowvram": False,
    "novram": False, "reserve_vram": None, "async_offload": False, "default_hashing_function": "sha256",
    "disable_smart_memory": False, "deterministic": False, "fast": set(), "mmap_torch_files": False,
    "disable_mmap": False, "dont_print_server": False, "quick_test_for_ci": False, "windows_standalone_build": False,
    "disable_metadata": False, "whitelist_custom_nodes": [], "disable_api_nodes": False, "multi_user": False,
    "verbose": "INFO", "log_stdout": False, "front_end_version": "comfyanonymous/ComfyUI@latest",
    "front_end_root": None, "user_directory": None, "enable_compress_response_body": False,
    "comfy_api_base": "https://api.comfy.org",
}


def _from_config(read: Callable[[Config], Any]) -> property:
    """A read-only option whose value the active Config gives."""
    return property(lambda self: read(state.config()))


class Args(argparse.Namespace):
    """ComfyUI's parsed options; those Sigmagraph's Config decides are read from the active Config."""

    cpu = _from_config(lambda config: config.device == "cpu")
    output_directory = _from_config(lambda config: os.path.abspath(config.output_dir))
    input_directory = _from_config(lambda config: os.path.abspath(config.input_dir))
    temp_directory = _from_config(lambda config: os.path.abspath(config.temp_dir))
    models_directory = _from_config(lambda config: os.path.abspath(config.models_dir))
    cache_none = _from_config(lambda config: not config.cache_enabled)
    disable_all_custom_nodes = _from_config(lambda config: config.disable_custom_nodes)


args = Args(**{name: value.copy() if isinstance(value, (set, list)) else value for name, value in DEFAULTS.items()})
