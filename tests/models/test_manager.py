"""The model manager: least-recently-used eviction under a memory budget, and release with the last reference."""

from __future__ import annotations

import gc
import weakref

import torch
from torch import nn

from conftest import small_model
from sigmagraph.engine.cache import measure_bytes
from sigmagraph.nodes.models.manager import ModelManager, ModuleHandle

MEGABYTE = 2**20


def module_of(megabytes: int) -> nn.Module:
    return nn.Linear(MEGABYTE // 4, megabytes, bias=False)  # float32: `megabytes` MiB


def test_least_recently_used_modules_leave_the_device_when_memory_is_short():
    # A device of 2.5 MiB: room for two of the three 1 MiB modules beside a 0.5 MiB reserve.
    manager = ModelManager(torch.device("cpu"), reserve=MEGABYTE // 2,
                           free_memory=lambda: int(2.5 * MEGABYTE) - sum(m.nbytes for m in manager.loaded()))
    a, b, c = (ModuleHandle(manager.register(module_of(1))) for _ in range(3))
    a.use()
    b.use()
    assert manager.loaded() == [a.managed, b.managed]
    c.use()
    assert manager.loaded() == [b.managed, c.managed] and not a.managed.on_compute_device
    b.use()  # b becomes the most recently used ...
    a.use()  # ... so c goes
    assert manager.loaded() == [b.managed, a.managed]


def test_a_model_is_freed_with_its_last_reference():
    manager = ModelManager(torch.device("cpu"))
    model, unet, _ = small_model(manager=manager)
    model.network.use()
    assert manager.loaded() == [model.network.managed]
    released = weakref.ref(unet)
    del model, unet
    gc.collect()
    assert released() is None and manager.loaded() == []


def test_the_cache_measures_a_model_by_its_weights():
    model, unet, _ = small_model()
    weights = sum(t.numel() * t.element_size() for t in unet.state_dict().values())
    # The weights, and the 1000-entry sigma table of its parametrization.
    assert weights <= measure_bytes(([model],)) <= weights + 8000
