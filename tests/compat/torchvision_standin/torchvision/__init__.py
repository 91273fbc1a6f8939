"""A test-only stand-in for torchvision: importable, and every name raises when used (see ../README.md)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any, NoReturn


class Absent:
    """A torchvision name: attributes and subscripts lead to further absent names; using one raises."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> "Absent":
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Absent(f"{self._name}.{attribute}")

    def __getitem__(self, key: Any) -> "Absent":
        return Absent(f"{self._name}[{key!r}]")

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(f"{self._name} is not available: torchvision is replaced by a test-only stand-in")

    def __mro_entries__(self, bases: tuple) -> tuple:
        return (object,)  # a pack class deriving from a torchvision class still defines itself

    def __repr__(self) -> str:
        return f"<absent {self._name}>"


class StandInModule(types.ModuleType):
    """A torchvision module: any attribute is an absent name."""

    def __getattr__(self, attribute: str) -> Absent:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return Absent(f"{self.__name__}.{attribute}")


class StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every torchvision submodule (torchvision.transforms.v2, torchvision.ops.boxes...) as a stand-in."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


sys.modules[__name__].__class__ = StandInModule  # this package's own unknown names are absent too
__version__ = "0.0.0+standin"
__path__: list[str] = []
sys.meta_path.append(StandInFinder())
