"""Where weights live: on the offload device (the CPU) at rest, on the compute device while in use.

    manager = manager_for(torch.device("cuda"))
    unet = ModuleHandle(manager.register(module))        # one shared copy of the weights
    with_lora = unet.with_patches(LoraPatch(adapter, 0.8))  # another view of the same weights
    with_lora.use()(x, t, context)                       # on the device, the LoRA applied

A `ManagedModule` owns one loaded module (a UNet, a text encoder, an autoencoder): which device it
is on and which weight patches (LoRAs) are applied to it, with a backup of every weight a patch
changed. A `ModuleHandle` is that module as one branch of a workflow sees it — the shared weights
plus the branch's own patches; `use()` makes the weights exactly that (restoring backups bitwise
before applying other patches), so a cached base model is never left altered for another branch.

The `ModelManager` of a compute device moves modules onto it when they are used and, when the
device is short of memory, moves the least recently used ones back to the CPU. It holds weak
references only: a model is freed as soon as the engine's cache (or a running workflow) lets it go.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict
from typing import Callable, Iterable, Protocol

import torch
from torch import Tensor, nn

from .devices import OFFLOAD_DEVICE

RESERVE_BYTES = 1 << 30  # left free on the compute device for activations


class WeightPatch(Protocol):
    """A change to some weights of a module (a LoRA at a strength); compared by value to detect reuse."""

    def targets(self) -> Iterable[str]:
        """Names of the parameters it changes."""

    def delta(self, name: str, weight: Tensor) -> Tensor:
        """The float32 change of one parameter, on the parameter's device."""


def cuda_free_bytes(device: torch.device) -> int:
    """Free memory of a CUDA device, counting what torch's allocator holds but does not use."""
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


class ManagedModule(nn.Module):
    """One loaded module with its placement and applied patches (an nn.Module so its size is measurable)."""

    def __init__(self, module: nn.Module, manager: "ModelManager", compute_dtype: torch.dtype | None = None):
        super().__init__()
        self.module = module
        self.manager = manager
        self.compute_dtype = compute_dtype  # None: that of the weights (not so when they are stored in fp8)
        self.on_compute_device = False
        self.applied: tuple[WeightPatch, ...] | None = ()  # None while a change is under way
        self.backups: dict[str, Tensor] = {}

    @property
    def nbytes(self) -> int:
        """Bytes of the weights."""
        return sum(t.numel() * t.element_size() for t in self.module.state_dict().values())

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the module computes in: the weights' unless they are stored in another (fp8)."""
        return self.compute_dtype or next(self.module.parameters()).dtype

    @torch.no_grad()
    def move(self, device: torch.device, on_compute_device: bool) -> None:
        """Moves the weights (and nothing else: backups stay on the offload device)."""
        self.module.to(device)
        self.on_compute_device = on_compute_device

    @torch.no_grad()
    def apply_patches(self, patches: tuple[WeightPatch, ...]) -> None:
        """Makes the weights the original ones plus `patches`, restoring backups first if needed."""
        if patches == self.applied:
            return
        parameters = dict(self.module.named_parameters())
        self.applied = None  # mid-change: whatever happens next restores the backups first
        for name, original in self.backups.items():
            parameters[name].copy_(original)
        self.backups = {}
        touching: dict[str, list[WeightPatch]] = {}
        for patch in patches:
            for name in patch.targets():
                touching.setdefault(name, []).append(patch)
        for name, named_patches in touching.items():
            weight = parameters[name]
            self.backups[name] = weight.detach().to(OFFLOAD_DEVICE, copy=True)
            # Summed in float32 and rounded once, so stacked LoRAs lose no precision in fp16 weights.
            weight.copy_(weight.float() + sum(patch.delta(name, weight) for patch in named_patches))
        self.applied = patches


class ModuleHandle:
    """A managed module with one branch's patches: `use()` readies it on the device and returns it."""

    def __init__(self, managed: ManagedModule, patches: tuple[WeightPatch, ...] = ()):
        self.managed = managed
        self.patches = patches

    @property
    def device(self) -> torch.device:
        """Where the module computes (its weights may rest elsewhere until `use`)."""
        return self.managed.manager.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the module computes in."""
        return self.managed.dtype

    def with_patches(self, *patches: WeightPatch) -> "ModuleHandle":
        """A copy of this handle with more patches, on the same weights (which are not touched now)."""
        handle = copy.copy(self)
        handle.patches = self.patches + patches
        return handle

    def use(self) -> nn.Module:
        """The module on the compute device with exactly this handle's patches applied."""
        manager = self.managed.manager
        with manager.lock:
            manager.load(self.managed)
            self.managed.apply_patches(self.patches)
        return self.managed.module


class ModelManager:
    """Keeps the modules a compute device holds, least recently used first, within its memory."""

    def __init__(self, device: torch.device, free_memory: Callable[[], int] | None = None,
                 reserve: int = RESERVE_BYTES):
        self.device = device
        # None: never short of memory (the CPU computes and offloads to itself).
        self.free_memory = free_memory
        self.reserve = reserve
        self.lock = threading.RLock()
        self._loaded: OrderedDict[int, weakref.ref[ManagedModule]] = OrderedDict()

    def register(self, module: nn.Module, compute_dtype: torch.dtype | None = None) -> ManagedModule:
        """Takes charge of a module loaded on the offload device (computing in `compute_dtype`, default its weights')."""
        return ManagedModule(module.eval().requires_grad_(False), self, compute_dtype)

    def loaded(self) -> list[ManagedModule]:
        """The live modules on the compute device, least recently used first."""
        return [managed for ref in self._loaded.values() if (managed := ref()) is not None]

    def load(self, managed: ManagedModule) -> None:
        """Puts a module on the compute device, first moving least recently used ones off if room is short."""
        key = id(managed)
        if managed.on_compute_device:
            self._loaded.move_to_end(key)
            return
        if self.free_memory is not None:
            for other in self.loaded():
                if self.free_memory() >= managed.nbytes + self.reserve:
                    break
                self.offload(other)
        managed.move(self.device, True)
        # The callback forgets the module when it is garbage collected (it left the cache).
        self._loaded[key] = weakref.ref(managed, lambda _, key=key: self._loaded.pop(key, None))

    def offload(self, managed: ManagedModule) -> None:
        """Moves a module back to the offload device."""
        managed.move(OFFLOAD_DEVICE, False)
        self._loaded.pop(id(managed), None)


_MANAGERS: dict[torch.device, ModelManager] = {}


def manager_for(device: torch.device) -> ModelManager:
    """The manager of a compute device: one per device per process, as the device's memory is."""
    if device not in _MANAGERS:
        free = (lambda: cuda_free_bytes(device)) if device.type == "cuda" else None
        _MANAGERS[device] = ModelManager(device, free)
    return _MANAGERS[device]
