"""ComfyUI's `comfy.patcher_extension`: the names and containers of wrappers and callbacks.

Packs register wrappers and callbacks on a ModelPatcher or in model_options["transformer_options"]
with these helpers, and run their own wrapped functions with WrapperExecutor. Sigmagraph's
sampling keeps what they register but calls none of them (converting the MODEL back names them).
"""

from __future__ import annotations

from typing import Any, Callable

from sigmagraph.compat.patcher import create_model_options_clone as copy_nested_dicts
from sigmagraph.compat.patcher import keyed_add, keyed_all, keyed_get


class CallbacksMP:
    ON_CLONE = "on_clone"
    ON_LOAD = "on_load_after"
    ON_DETACH = "on_detach_after"
    ON_CLEANUP = "on_cleanup"
    ON_PRE_RUN = "on_pre_run"
    ON_PREPARE_STATE = "on_prepare_state"
    ON_APPLY_HOOKS = "on_apply_hooks"
    ON_REGISTER_ALL_HOOK_PATCHES = "on_register_all_hook_patches"
    ON_INJECT_MODEL = "on_inject_model"
    ON_EJECT_MODEL = "on_eject_model"

    @classmethod
    def init_callbacks(cls) -> dict[str, dict[str, list[Callable]]]:
        return {}


class WrappersMP:
    OUTER_SAMPLE = "outer_sample"
    PREPARE_SAMPLING = "prepare_sampling"
    SAMPLER_SAMPLE = "sampler_sample"
    PREDICT_NOISE = "predict_noise"
    CALC_COND_BATCH = "calc_cond_batch"
    APPLY_MODEL = "apply_model"
    DIFFUSION_MODEL = "diffusion_model"

    @classmethod
    def init_wrappers(cls) -> dict[str, dict[str, list[Callable]]]:
        return {}


def _table(options: dict, name: str, is_model_options: bool, create: bool) -> dict:
    """transformer_options[name] ({kind: {key: [functions]}}), optionally created."""
    if is_model_options:
        options = options.setdefault("transformer_options", {}) if create else options.get("transformer_options", {})
    return options.setdefault(name, {}) if create else options.get(name, {})


def _table_functions(table: str) -> tuple[Callable, ...]:
    """add, add_with_key, get_with_key and get_all of the `callbacks` or `wrappers` table of transformer_options."""
    def add_with_key(kind: str, key: str | None, function: Callable, transformer_options: dict,
                     is_model_options: bool = False) -> None:
        keyed_add(_table(transformer_options, table, is_model_options, True), kind, key, function)

    def add(kind: str, function: Callable, transformer_options: dict, is_model_options: bool = False) -> None:
        add_with_key(kind, None, function, transformer_options, is_model_options)

    def get_with_key(kind: str, key: str | None, transformer_options: dict,
                     is_model_options: bool = False) -> list[Callable]:
        return keyed_get(_table(transformer_options, table, is_model_options, False), kind, key)

    def get_all(kind: str, transformer_options: dict, is_model_options: bool = False) -> list[Callable]:
        return keyed_all(_table(transformer_options, table, is_model_options, False), kind)

    return add, add_with_key, get_with_key, get_all


add_callback, add_callback_with_key, get_callbacks_with_key, get_all_callbacks = _table_functions("callbacks")
add_wrapper, add_wrapper_with_key, get_wrappers_with_key, get_all_wrappers = _table_functions("wrappers")


class WrapperExecutor:
    """Calls `original` through a stack of wrappers: each gets this executor, and calls it to go one level in."""

    def __init__(self, original: Callable, class_obj: Any, wrappers: list[Callable], idx: int):
        self.original, self.class_obj = original, class_obj  # class_obj: the instance a wrapped method belongs to
        self.wrappers, self.idx = list(wrappers), idx
        self.is_last = idx == len(wrappers)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Runs the next wrapper, or the original function after the last one."""
        return WrapperExecutor(self.original, self.class_obj, self.wrappers, self.idx + 1).execute(*args, **kwargs)

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Starts the stack (a wrapper calls the executor it received instead)."""
        if self.is_last:
            return self.original(*args, **kwargs)
        return self.wrappers[self.idx](self, *args, **kwargs)

    @classmethod
    def new_executor(cls, original: Callable, wrappers: list[Callable], idx: int = 0) -> "WrapperExecutor":
        return cls(original, None, wrappers, idx)

    @classmethod
    def new_class_executor(cls, original: Callable, class_obj: Any, wrappers: list[Callable],
                           idx: int = 0) -> "WrapperExecutor":
        return cls(original, class_obj, wrappers, idx)


class PatcherInjection:
    """A pair of functions that change a model in place and undo it."""

    def __init__(self, inject: Callable, eject: Callable):
        self.inject, self.eject = inject, eject


def merge_nested_dicts(dict1: dict, dict2: dict, copy_dict1: bool = True) -> dict:
    """dict1 with dict2 merged in: nested dicts merged, lists concatenated, other values replaced."""
    merged = copy_nested_dicts(dict1) if copy_dict1 else dict1
    for key, value in dict2.items():
        if isinstance(value, dict):
            merged[key] = merge_nested_dicts(value, merged.setdefault(key, {}))
        elif isinstance(value, list):
            merged.setdefault(key, []).extend(value)
        else:
            merged[key] = value
    return merged


__all__ = ["CallbacksMP", "PatcherInjection", "WrapperExecutor", "WrappersMP", "add_callback",
           "add_callback_with_key", "add_wrapper", "add_wrapper_with_key", "copy_nested_dicts", "get_all_callbacks",
           "get_all_wrappers", "get_callbacks_with_key", "get_wrappers_with_key", "merge_nested_dicts"]
