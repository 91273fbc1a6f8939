"""ComfyUI's `comfy.model_management` over Sigmagraph's devices, model manager and interrupt flag.

Devices and dtypes are those Sigmagraph's loaders use for the active Config. Sigmagraph moves a
model onto its device when it is used (nodes/models/manager.py), so `load_models_gpu` has nothing
left to do. Interrupts act on the running node's run: `throw_exception_if_processing_interrupted`
raises the engine's Interrupted, which is also ComfyUI's InterruptProcessingException here.
"""

from __future__ import annotations

import enum
import os
from typing import Any

import torch
from torch import nn

from sigmagraph.compat import state
from sigmagraph.engine import Interrupted
from sigmagraph.nodes.models import devices
from sigmagraph.nodes.models.manager import cuda_free_bytes, manager_for


class VRAMState(enum.Enum):
    DISABLED = 0  # no separate video memory: the CPU computes
    NO_VRAM = 1
    LOW_VRAM = 2
    NORMAL_VRAM = 3
    HIGH_VRAM = 4
    SHARED = 5


class CPUState(enum.Enum):
    GPU = 0
    CPU = 1
    MPS = 2


InterruptProcessingException = Interrupted
OOM_EXCEPTION = torch.cuda.OutOfMemoryError
XFORMERS_IS_AVAILABLE = False  # Sigmagraph's attention is torch's scaled_dot_product_attention
in_training = False


def get_torch_device() -> torch.device:
    """The device models compute on."""
    return devices.compute_device(state.config().device)


def _dtype_override() -> torch.dtype | None:
    name = state.config().dtype
    return devices.parse_dtype(name) if name else None


def cpu_mode() -> bool:
    """Whether models compute on the CPU."""
    return get_torch_device().type == "cpu"


def mps_mode() -> bool:
    """Whether models compute on Apple's MPS."""
    return get_torch_device().type == "mps"


def is_device_type(device: Any, kind: str) -> bool:
    """Whether `device` is a torch device of this type ("cpu", "cuda", "mps"...)."""
    return getattr(device, "type", None) == kind


def is_device_cpu(device: Any) -> bool:
    """Whether `device` is the CPU."""
    return is_device_type(device, "cpu")


def is_device_mps(device: Any) -> bool:
    """Whether `device` is Apple's MPS."""
    return is_device_type(device, "mps")


def is_device_cuda(device: Any) -> bool:
    """Whether `device` is a CUDA device."""
    return is_device_type(device, "cuda")


def is_intel_xpu() -> bool:
    """Whether models compute on an Intel XPU."""
    return is_device_type(get_torch_device(), "xpu")


def is_directml_enabled() -> bool:
    """Whether DirectML is in use: never under Sigmagraph."""
    return False  # Sigmagraph never runs on DirectML


def is_nvidia() -> bool:
    """Whether models compute on an NVIDIA GPU (CUDA build of torch)."""
    return is_device_cuda(get_torch_device()) and torch.version.cuda is not None


def is_amd() -> bool:
    """Whether models compute on an AMD GPU (ROCm build of torch)."""
    return is_device_cuda(get_torch_device()) and torch.version.hip is not None


vram_state = VRAMState.DISABLED if cpu_mode() else VRAMState.NORMAL_VRAM
cpu_state = CPUState.CPU if cpu_mode() else CPUState.GPU


def get_torch_device_name(device: Any) -> str:
    """ComfyUI's device label ("cuda:0 NVIDIA ... : cudaMallocAsync", "cpu")."""
    if is_device_cuda(device):
        return f"{device} {torch.cuda.get_device_name(device)} : {torch.cuda.get_allocator_backend()}"
    return str(getattr(device, "type", device))


def get_autocast_device(dev: Any) -> str:
    """The device type autocast takes for `dev`."""
    return getattr(dev, "type", "cuda")


def intermediate_device() -> torch.device:
    """Where node outputs (images, latents) rest between nodes: the CPU, as in Sigmagraph's nodes."""
    return devices.OFFLOAD_DEVICE


def intermediate_dtype() -> torch.dtype:
    """The dtype of node outputs between nodes."""
    return torch.float32


def unet_offload_device() -> torch.device:
    """Where model weights rest when not in use: the CPU."""
    return devices.OFFLOAD_DEVICE


text_encoder_offload_device = vae_offload_device = unet_offload_device


def text_encoder_device() -> torch.device:
    """The device text encoders (and autoencoders) compute on: the compute device."""
    return get_torch_device()


vae_device = text_encoder_device


def unet_dtype(device: Any = None, model_params: int = 0, supported_dtypes: Any = None,
               weight_dtype: torch.dtype | None = None) -> torch.dtype:
    """The dtype diffusion-model weights are kept in on `device` (the compute device by default)."""
    return devices.weight_dtype(device or get_torch_device(), weight_dtype or _dtype_override())


def text_encoder_dtype(device: Any = None) -> torch.dtype:
    """The dtype text-encoder weights are kept in on `device`."""
    return devices.weight_dtype(device or text_encoder_device(), _dtype_override())


def vae_dtype(device: Any = None, allowed_dtypes: Any = None) -> torch.dtype:
    """The autoencoder's dtype: never float16 (bfloat16 where supported, else float32)."""
    return devices.vae_dtype(device or vae_device(), _dtype_override())


def should_use_fp16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    """Whether diffusion-model weights are float16 on `device`."""
    return unet_dtype(device) == torch.float16


def should_use_bf16(device: Any = None, model_params: int = 0, prioritize_performance: bool = True,
                    manual_cast: bool = False) -> bool:
    """Whether diffusion-model weights are bfloat16 on `device`."""
    return unet_dtype(device) == torch.bfloat16


def xformers_enabled() -> bool:
    """Whether xformers attention is used: never (torch's scaled_dot_product_attention is)."""
    return XFORMERS_IS_AVAILABLE


xformers_enabled_vae = xformers_enabled


def pytorch_attention_enabled() -> bool:
    """Whether torch's scaled_dot_product_attention is used: always."""
    return True


def device_supports_non_blocking(device: Any) -> bool:
    """Whether copies to `device` may be non-blocking."""
    return is_device_cuda(device)


def _ram() -> tuple[int, int]:
    """(total, available) RAM in bytes; zeros where the platform does not say."""
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


def get_total_memory(dev: Any = None, torch_total_too: bool = False) -> int | tuple[int, int]:
    """The device's memory in bytes (RAM for the CPU); with torch_total_too, also what torch holds."""
    dev = dev or get_torch_device()
    if is_device_cuda(dev):
        total, reserved = torch.cuda.mem_get_info(dev)[1], torch.cuda.memory_reserved(dev)
    else:
        total = reserved = _ram()[0]
    return (total, reserved) if torch_total_too else total


def get_free_memory(dev: Any = None, torch_free_too: bool = False) -> int | tuple[int, int]:
    """The device's free memory in bytes (available RAM for the CPU); with torch_free_too, also torch's slack."""
    dev = dev or get_torch_device()
    if is_device_cuda(dev):
        free = cuda_free_bytes(dev)
        torch_free = torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
    else:
        free = torch_free = _ram()[1]
    return (free, torch_free) if torch_free_too else free


def module_size(module: nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.nelement() * t.element_size() for t in module.state_dict().values())


def soft_empty_cache(force: bool = False) -> None:
    """Returns the memory torch's allocator holds but does not use."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def unload_all_models() -> None:
    """Moves every model off the compute device."""
    manager = manager_for(get_torch_device())
    for managed in manager.loaded():
        manager.offload(managed)


def free_memory(memory_required: int, device: Any, keep_loaded: Any = ()) -> None:
    """Moves the least recently used models off `device` until memory_required bytes are free."""
    if not is_device_cuda(device):
        return  # the CPU holds every model anyway
    manager = manager_for(device)
    for managed in manager.loaded():
        if get_free_memory(device) >= memory_required:
            break
        manager.offload(managed)


def load_models_gpu(models: Any, memory_required: int = 0, force_patch_weights: bool = False,
                    minimum_memory_required: int | None = None, force_full_load: bool = False) -> None:
    """Nothing to do: Sigmagraph puts a model on its device when it is used."""


def load_model_gpu(model: Any) -> None:
    """load_models_gpu for one model."""
    load_models_gpu([model])


def cast_to(weight: torch.Tensor, dtype: torch.dtype | None = None, device: Any = None, non_blocking: bool = False,
            copy: bool = False, stream: Any = None) -> torch.Tensor:
    """`weight` in dtype on device; the same tensor when nothing changes and no copy is asked for."""
    return weight.to(device=device, dtype=dtype, non_blocking=non_blocking, copy=copy)


def cast_to_device(tensor: torch.Tensor, device: Any, dtype: torch.dtype | None, copy: bool = False
                   ) -> torch.Tensor:
    """`tensor` in dtype on device (non-blocking where the device allows)."""
    return cast_to(tensor, dtype, device, device_supports_non_blocking(device), copy)


def is_oom(error: BaseException) -> bool:
    """Whether an exception is a device or host running out of memory."""
    return isinstance(error, (OOM_EXCEPTION, MemoryError)) or "out of memory" in str(error).lower()


def raise_non_oom(error: BaseException) -> None:
    """Re-raises `error` unless it is an out-of-memory error (callers then fall back, e.g. to tiling)."""
    if not is_oom(error):
        raise error


def _interrupt_target() -> tuple[Any, str | None]:
    """(the interrupt flag, the prompt id) of the running node's run, else the flag of work outside runs."""
    run = state.current_run()
    return (run.interrupt, run.prompt_id) if run else (state.idle_interrupt, None)


def interrupt_current_processing(value: bool = True) -> None:
    """Asks the current run to stop at its next check (value=False withdraws the request)."""
    flag, prompt_id = _interrupt_target()
    flag.request(prompt_id) if value else flag.clear()


def processing_interrupted() -> bool:
    """Whether the current run (or, outside runs, the process) was asked to stop."""
    flag, prompt_id = _interrupt_target()
    return flag.is_set_for(prompt_id)


def throw_exception_if_processing_interrupted() -> None:
    """Raises Interrupted (InterruptProcessingException) when the current run was asked to stop.

    Outside a run the request is then withdrawn, as ComfyUI's global flag is; a run's flag is its executor's.
    """
    flag, prompt_id = _interrupt_target()
    if flag.is_set_for(prompt_id):
        if state.current_run() is None:
            flag.clear()
        raise InterruptProcessingException("processing interrupted")
