"""ComfyUI's `comfy.sampler_helpers`: preparing a sampling run.

Sigmagraph readies a model on its device when it is used, so preparing and cleaning up load
nothing; the conditioning helpers keep ComfyUI's shapes.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

import comfy.utils
from sigmagraph.compat.guiders import convert_cond  # noqa: F401 - ComfyUI's name


def prepare_mask(noise_mask: Tensor, shape: tuple[int, ...], device: Any) -> Tensor:
    """A noise mask resized and repeated to a latent's shape, on `device`."""
    return comfy.utils.reshape_mask(noise_mask, shape).to(device)


def get_models_from_cond(cond: list[dict], model_type: str) -> list:
    """The models (controlnets, gligen...) that convert_cond's entries hold under `model_type`."""
    models = []
    for entry in cond:
        if model_type in entry:
            models += entry[model_type] if isinstance(entry[model_type], list) else [entry[model_type]]
    return models


def cleanup_additional_models(models: list) -> None:
    """Calls `cleanup()` on the models that have one."""
    for model in models:
        if hasattr(model, "cleanup"):
            model.cleanup()


def prepare_sampling(model: Any, noise_shape: tuple[int, ...], conds: dict, model_options: dict | None = None
                     ) -> tuple[Any, dict, list]:
    """(the model object, the conditions, the additional models loaded: none) of a run."""
    return model.model, conds, []


def cleanup_models(conds: dict, models: list) -> None:
    """Cleans up the additional models of a run and the controlnets of its conditions."""
    cleanup_additional_models(models)
    cleanup_additional_models(set(m for cond in conds.values() for m in get_models_from_cond(cond, "control")))
