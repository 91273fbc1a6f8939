"""Reading weights from model files: safetensors through memory maps, legacy pickles only as plain tensors.

    with open_checkpoint(path, "v1-5.safetensors") as checkpoint:
        checkpoint.shape("model.diffusion_model.input_blocks.0.0.weight")
        unet = module_init.meta_module(UNetModel, config)
        load_weights(unet, checkpoint.items("model.diffusion_model."), torch.float32, "v1-5.safetensors (UNet)")

Memory and time. A module is built on the meta device (no storage, no init); each stored
tensor is then cast once from the file's pages into memory of its own in the final dtype, and
assigned to the module (`load_state_dict(assign=True)`): no second copy, no throwaway init, no
read buffer. The file is mapped a window at a time (WINDOW_BYTES), so its pages count in the
process's RSS only while the tensors they hold are being cast, and a tensor larger than a window
(SD3's 452 MiB position table) is cast a window's worth at a time with the file pages of each
part released once copied: loading peaks at the model plus about one window, where one map of
the whole file would keep all of it resident.

Safety. `.ckpt/.pt/.pth/.bin` files are pickles; they are read only through
`torch.load(weights_only=True)`, which refuses any object that is not a tensor, a container or a
number (a pickled class instance, a function call), so opening a file never runs its code.
Every failure — missing, truncated, corrupt or unsafe file — is a `CheckpointError` naming it.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import pickle
import re
import struct
import zipfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

log = logging.getLogger(__name__)

SAFETENSORS_EXTENSIONS = (".safetensors", ".sft")
PICKLE_EXTENSIONS = (".ckpt", ".pt", ".pth", ".bin")
MODEL_EXTENSIONS = SAFETENSORS_EXTENSIONS + PICKLE_EXTENSIONS
# How much of a safetensors file is mapped at once: large enough that mapping costs nothing,
# small against any model (a few percent of SD 1.5's weights).
WINDOW_BYTES = 64 << 20

# Attribute of a tensor viewing a file window: (the window, the tensor's byte offset in it), so that
# load_weights can release the pages it has copied (views made from it by reshaping carry none).
FILE_PAGES = "_sigmagraph_file_pages"

# safetensors' dtype names (https://github.com/huggingface/safetensors, "Format").
SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


class CheckpointError(ValueError):
    """A model file that cannot be used; the message names the file and what is wrong."""


class Checkpoint(ABC):
    """The tensors of one model file by key, read on demand; close it (or use `with`) when done."""

    def __init__(self, name: str, metadata: dict[str, str]):
        self.name = name
        self.metadata = metadata

    @abstractmethod
    def keys(self) -> list[str]:
        """Every tensor key, in file order."""

    @abstractmethod
    def shape(self, key: str) -> tuple[int, ...]:
        """The shape of a tensor, without reading it."""

    @abstractmethod
    def view(self, key: str) -> Tensor:
        """A tensor as stored (dtype and values), possibly sharing the file's pages: cast or copy it, then drop it."""

    @abstractmethod
    def __contains__(self, key: str) -> bool: ...

    def read(self, key: str) -> Tensor:
        """A tensor as stored (dtype and values), in memory of its own."""
        return self.view(key).clone()

    def close(self) -> None:
        """Releases the file."""

    def keys_under(self, prefix: str) -> list[str]:
        """The keys starting with `prefix`, with the prefix removed."""
        return [key[len(prefix):] for key in self.keys() if key.startswith(prefix)]

    def items(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """(key without prefix, `view` of the tensor) for every key under `prefix`, in file order."""
        for key in self.keys():
            if key.startswith(prefix):
                yield key[len(prefix):], self.view(key)

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SafetensorsCheckpoint(Checkpoint):
    """A .safetensors file: the header validated by safe_open, tensors viewed through windows of a memory map."""

    def __init__(self, path: Path, name: str):
        try:
            with safe_open(str(path), framework="pt") as handle:  # validates header, offsets and size
                metadata = handle.metadata() or {}
        except SafetensorError as error:
            raise CheckpointError(f"{name}: not a valid safetensors file (truncated or corrupt: {error})") from None
        super().__init__(name, metadata)
        self._file = open(path, "rb")
        (header_size,) = struct.unpack("<Q", self._file.read(8))
        header = json.loads(self._file.read(header_size))
        header.pop("__metadata__", None)
        data_start = 8 + header_size
        # Absolute byte ranges, in the order the data lies in the file (the header's is alphabetical).
        self._entries: dict[str, dict[str, Any]] = {
            key: {**entry, "range": (data_start + entry["data_offsets"][0], data_start + entry["data_offsets"][1])}
            for key, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])}
        self._window: tuple[int, int, mmap.mmap | None] = (0, 0, None)

    def keys(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._entries[key]["shape"])

    def view(self, key: str) -> Tensor:
        """The tensor in a read-only, copy-on-write map of the file; the map lives while a view of it does."""
        entry = self._entries[key]
        dtype = SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CheckpointError(f"{self.name}: tensor {key!r} has the unsupported dtype {entry['dtype']}")
        begin, end = entry["range"]
        if end == begin:
            return torch.empty(entry["shape"], dtype=dtype)
        start, stop, window = self._window
        if window is None or not start <= begin <= end <= stop:
            size = os.fstat(self._file.fileno()).st_size
            if size < end:  # mapped pages past the end of the file would crash the process when read
                raise CheckpointError(f"{self.name}: the file ends inside tensor {key!r} (truncated while in use?)")
            start = begin - begin % mmap.ALLOCATIONGRANULARITY
            stop = min(max(end, start + WINDOW_BYTES), size)
            window = mmap.mmap(self._file.fileno(), stop - start, offset=start, access=mmap.ACCESS_COPY)
            self._window = (start, stop, window)
        count = (end - begin) // dtype.itemsize
        tensor = torch.frombuffer(window, dtype=dtype, count=count, offset=begin - start).reshape(entry["shape"])
        setattr(tensor, FILE_PAGES, (window, begin - start))
        return tensor

    def close(self) -> None:
        self._window = (0, 0, None)  # views still held keep their window mapped
        self._file.close()


class PickleCheckpoint(Checkpoint):
    """A torch.save file, unpickled with weights_only=True (tensors memory-mapped when the format allows)."""

    def __init__(self, path: Path, name: str):
        try:
            # mmap needs the zip format of torch >= 1.6; older files are read into memory.
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
        except pickle.UnpicklingError as error:
            raise CheckpointError(f"{name}: refusing to load it: the file holds Python objects other than "
                                  f"tensors ({_unpickler_reason(error)}); only plain tensor checkpoints are "
                                  f"read, convert it to .safetensors with a tool you trust") from None
        except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
            # torch's first sentence says what failed; the rest is advice about torch.load.
            reason = str(error).split(". ")[0] or type(error).__name__
            raise CheckpointError(f"{name}: not a readable checkpoint (truncated or corrupt: {reason})") from None
        # Lightning checkpoints nest the weights under "state_dict" beside training state, basicsr's
        # (ESRGAN upscalers) under "params_ema" or "params".
        wrapper = next((key for key in ("state_dict", "params_ema", "params")
                        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict)), None)
        if wrapper is not None:
            loaded = loaded[wrapper]
        if not isinstance(loaded, dict):
            raise CheckpointError(f"{name}: holds a {type(loaded).__name__}, not a dictionary of tensors")
        super().__init__(name, {})
        self._tensors = {key: value for key, value in loaded.items() if isinstance(value, Tensor)}
        if not self._tensors:
            raise CheckpointError(f"{name}: holds no tensors")

    def keys(self) -> list[str]:
        return list(self._tensors)

    def __contains__(self, key: str) -> bool:
        return key in self._tensors

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._tensors[key].shape)

    def view(self, key: str) -> Tensor:
        return self._tensors[key]

    def close(self) -> None:
        self._tensors = {}


def _unpickler_reason(error: Exception) -> str:
    """What torch's weights-only unpickler refused, e.g. "it refers to posix.system"."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return f"it refers to {found[1]}" if found else str(error).splitlines()[0]


def open_checkpoint(path: Path | str, name: str | None = None) -> Checkpoint:
    """Opens a model file by its extension; `name` (default: the file name) is used in errors."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise CheckpointError(f"{name}: no such file")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_EXTENSIONS:
        return SafetensorsCheckpoint(path, name)
    if suffix in PICKLE_EXTENSIONS:
        return PickleCheckpoint(path, name)
    raise CheckpointError(f"{name}: unknown model file type {suffix!r}; expected one of {', '.join(MODEL_EXTENSIONS)}")


@torch.no_grad()
def load_weights(module: nn.Module, tensors: Iterable[tuple[str, Tensor]], dtype: torch.dtype, source: str,
                 memory_format: torch.memory_format = torch.contiguous_format,
                 dtypes: Mapping[str, torch.dtype] | None = None) -> None:
    """Gives a module (built on the meta device) its weights: each (name, tensor) cast once into `dtype`.

    `dtypes` gives some parameters another storage dtype by name (fp8 linear weights, weight_storage.py).

    Each tensor becomes memory of its own, contiguous (4-D kernels in `memory_format`), and is
    assigned to the parameter of that name, so the module holds its weights and nothing else.
    Every parameter must be given, with its shape (a CheckpointError naming `source` otherwise);
    a 1x1 convolution stored as a Linear weight or the reverse, as conversions from diffusers
    leave them, is reshaped. Names the module does not have are logged and skipped.
    """
    targets = module.state_dict(keep_vars=True)
    weights: dict[str, Tensor] = {}
    unexpected = []
    for name, tensor in tensors:
        target = targets.get(name)
        if target is None:
            unexpected.append(name)
            continue
        if tensor.shape != target.shape:
            if _without_unit_dims(tensor.shape) != _without_unit_dims(target.shape):
                raise CheckpointError(f"{source}: {name} has shape {tuple(tensor.shape)} but this model's is "
                                      f"{tuple(target.shape)}")
            tensor = tensor.reshape(target.shape)
        layout = memory_format if tensor.dim() == 4 else torch.contiguous_format
        weights[name] = cast_copy(tensor, (dtypes or {}).get(name, dtype), layout)
    missing = targets.keys() - weights.keys()
    if missing:
        raise CheckpointError(f"{source}: {len(missing)} weight(s) missing, e.g. {', '.join(sorted(missing)[:3])}")
    if unexpected:
        log.warning("%s: ignored %d unexpected weight(s), e.g. %s", source, len(unexpected), ", ".join(unexpected[:3]))
    module.load_state_dict(weights, assign=True)


def cast_copy(tensor: Tensor, dtype: torch.dtype, layout: torch.memory_format) -> Tensor:
    """`tensor` cast into memory of its own. A file view larger than a window is cast a window's worth at a
    time, and the file pages of each part are released once copied (madvise DONTNEED on the private,
    unwritten map: the pages are dropped, never the data), so it never sits whole in memory beside its copy."""
    pages = getattr(tensor, FILE_PAGES, None)
    nbytes = tensor.numel() * tensor.element_size()
    chunked = pages is not None and nbytes > WINDOW_BYTES and layout == torch.contiguous_format
    if not chunked or not hasattr(mmap, "MADV_DONTNEED"):
        return tensor.to(dtype=dtype, memory_format=layout, copy=True)
    window, offset = pages
    source, out = tensor.reshape(-1), torch.empty(tensor.shape, dtype=dtype)
    target, step = out.view(-1), WINDOW_BYTES // tensor.element_size()
    for first in range(0, source.numel(), step):
        last = min(first + step, source.numel())
        target[first:last].copy_(source[first:last])
        begin = -(-(offset + first * tensor.element_size()) // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside
        end = (offset + last * tensor.element_size()) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > begin:
            window.madvise(mmap.MADV_DONTNEED, begin, end - begin)
    return out


def _without_unit_dims(shape: torch.Size) -> tuple[int, ...]:
    """A shape without its trailing 1s: [512, 512, 1, 1] and [512, 512] hold the same 1x1 kernel."""
    dims = list(shape)
    while len(dims) > 2 and dims[-1] == 1:
        dims.pop()
    return tuple(dims)
