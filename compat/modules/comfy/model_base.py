"""ComfyUI's `comfy.model_base`: ModelType and the model classes packs test a MODEL's `model` against."""

from sigmagraph.compat import models as _models

ModelType = _models.ModelType
BaseModel = _models.BaseModel
SDXL = _models.SDXL
SDXLRefiner = _models.SDXLRefiner
Flux = _models.Flux
globals().update(_models.OTHER_CLASSES)
