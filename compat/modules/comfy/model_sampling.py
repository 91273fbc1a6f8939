"""ComfyUI's `comfy.model_sampling`: prediction mixins and noise-level classes over Sigmagraph's ModelSampling.

Packs star-import it and combine a noise-level class with a prediction mixin
(`class ModelSamplingAdvanced(ModelSamplingDiscrete, EPS): pass`), then patch a model with an
instance (`model.add_object_patch("model_sampling", instance)`); see sigmagraph.compat.model_sampling.
"""

from sigmagraph.compat.model_sampling import (CONST, EDM, EPS, V_PREDICTION, X0, ModelSamplingContinuousEDM,
                                              ModelSamplingContinuousV, ModelSamplingDiscrete,
                                              ModelSamplingDiscreteFlow, ModelSamplingFlux, StableCascadeSampling,
                                              time_snr_shift)

__all__ = ["CONST", "EDM", "EPS", "V_PREDICTION", "X0", "ModelSamplingContinuousEDM", "ModelSamplingContinuousV",
           "ModelSamplingDiscrete", "ModelSamplingDiscreteFlow", "ModelSamplingFlux", "StableCascadeSampling",
           "time_snr_shift"]
