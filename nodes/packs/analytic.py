"""The analytic model: an exact denoiser for a seeded Gaussian mixture, usable like any MODEL.

Every sampler, schedule and workflow can run, be tested and be benchmarked without weights, and
samplers can be compared against ground truth (see nodes/sampling/analytic.py).
"""

from __future__ import annotations

import torch

from sigmagraph.engine import Combo, Float, Int, Socket, node

from ..diffusion_model import DiffusionModel, LatentFormat
from ..sampling import model_sampling as ms
from ..sampling.analytic import GaussianMixture, mixture_network
from .types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack

PREDICTIONS = ["eps", "v_prediction", "x0", "edm", "flow"]


def analytic_model(seed: int, components: int, channels: int, spread: float, prediction_type: str) -> DiffusionModel:
    """The MODEL of a seeded mixture under a parametrization (timesteps fractional, so it is exact)."""
    if prediction_type == "edm":
        sampling = ms.edm_model_sampling("edm", sigma_min=0.002, sigma_max=80.0)
    elif prediction_type == "flow":
        sampling = ms.flow_model_sampling(shift=1.0)
    else:
        sampling = ms.discrete_model_sampling(prediction_type, fractional_timesteps=True)
    mixture = GaussianMixture.random(seed, components, channels, spread)
    return DiffusionModel(mixture_network(mixture, sampling), sampling, LatentFormat(channels=channels),
                          family="analytic")


@node(returns=["MODEL"], category="loaders/analytic", display_name="Gaussian Mixture Model (analytic)")
def GaussianMixtureModel(seed: int = Int(0, min=0, max=2**32 - 1), components: int = Int(3, min=1, max=64),
                         channels: int = Int(4, min=1, max=16), spread: float = Float(1.0, min=0.01, max=100.0),
                         prediction_type=Combo(PREDICTIONS, default="eps")):
    """A model whose denoiser is exact: each latent pixel is drawn from a seeded Gaussian mixture."""
    return analytic_model(seed, components, channels, spread, prediction_type)


@node(returns=["IMAGE"], category="latent", display_name="Latent Preview Image")
def LatentPreviewImage(model=Socket("MODEL"), samples=Socket("LATENT")):
    """The cheap latent -> RGB projection used for live previews, as an image (no VAE needed)."""
    fmt = model.latent_format
    return fmt.preview_rgb(fmt.process_in(samples["samples"].float()))


@node(returns=["CONDITIONING"], category="conditioning", display_name="No Conditioning")
def NoConditioning():
    """An empty CONDITIONING for models without a text encoder (the analytic model ignores it)."""
    return [[torch.zeros(1, 1, 1), {}]]
