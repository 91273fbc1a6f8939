"""Seeing schedules and noise: SigmasPlot draws SIGMAS, NoisedLatent / NoisePreview show the forward process."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sigmagraph.engine import Socket, String, node

from ...sampling.forward import forward_sample, noised
from ...sampling.noise import initial_noise
from ..sampling import SEED
from ..types import SOCKET_TYPES  # noqa: F401 - registers the socket types with this pack
from .common import CATEGORY
from .drawing import Series, as_image, labelled_grid, line_chart, side_by_side

OPTIONAL_SIGMAS = Socket("SIGMAS", optional=True)


def labels_of(text: str, count: int) -> list[str]:
    """The comma-separated labels in text, completed with "sigmas N" for the unnamed ones."""
    given = [label.strip() for label in text.split(",") if label.strip()]
    return [given[k] if k < len(given) else f"sigmas {k + 1}" for k in range(count)]


def log_snr(sigma: float) -> float:
    """log SNR = -2 log sigma (in sigma form the signal keeps unit scale); +inf at sigma 0."""
    return -2.0 * math.log(sigma) if sigma > 0 else math.inf


def sigmas_chart(schedules: list[Tensor], labels: list[str]) -> Tensor:
    """Two charts side by side, sigma and log-SNR against step, one line per schedule."""
    steps = [list(range(len(s))) for s in schedules]
    sigma = [Series(label, xs, [float(v) for v in s]) for label, xs, s in zip(labels, steps, schedules)]
    snr = [Series(label, xs, [log_snr(float(v)) for v in s]) for label, xs, s in zip(labels, steps, schedules)]
    return as_image(side_by_side([line_chart(sigma, "sigma", "step", "sigma"),
                                  line_chart(snr, "log SNR = -2 log sigma", "step", "log SNR")]))


@node(returns=["IMAGE"], category=CATEGORY)
def SigmasPlot(sigmas=Socket("SIGMAS"), sigmas_2=OPTIONAL_SIGMAS, sigmas_3=OPTIONAL_SIGMAS, sigmas_4=OPTIONAL_SIGMAS,
               labels: str = String("", tooltip="comma-separated names of the schedules, e.g. 'karras, normal'")):
    """Draws up to four schedules as sigma and log-SNR against step, each labelled."""
    schedules = [s for s in (sigmas, sigmas_2, sigmas_3, sigmas_4) if s is not None]
    return sigmas_chart(schedules, labels_of(labels, len(schedules)))


def _noise(latent: dict, seed: int) -> Tensor:
    return initial_noise(latent["samples"].shape, seed, latent.get("batch_index"))


@node(returns=["LATENT"], category=CATEGORY)
def NoisedLatent(model=Socket("MODEL"), samples=Socket("LATENT"), sigmas=Socket("SIGMAS"), noise_seed: int = SEED):
    """The latent noised to each sigma (a batch, sigma-major), with one seeded noise for all: each entry
    continues with a sampler from its sigma without new noise (SamplerCustom, add_noise off)."""
    fmt, sampling = model.latent_format, model.model_sampling
    latent, noise = fmt.process_in(samples["samples"].float()), _noise(samples, noise_seed)
    batch = [fmt.process_out(noised(sampling, latent, noise, float(sigma))) for sigma in sigmas]
    return {"samples": torch.cat(batch)}


@node(returns=["IMAGE"], category=CATEGORY)
def NoisePreview(model=Socket("MODEL"), vae=Socket("VAE"), image=Socket("IMAGE"), sigmas=Socket("SIGMAS"),
                 noise_seed: int = SEED):
    """The textbook "image -> noise" strip: the image's x_t at each sigma (sqrt(a) x0 + sqrt(1 - a) n), decoded,
    captioned with sigma."""
    fmt, sampling = model.latent_format, model.model_sampling
    encoded = {"samples": vae.encode(image[:1])}
    latent, noise = fmt.process_in(encoded["samples"].float()), _noise(encoded, noise_seed)
    frames = torch.cat([fmt.process_out(forward_sample(sampling, latent, noise, float(s))) for s in sigmas])
    decoded = vae.decode(frames)
    captions = [f"sigma {float(s):.3g}" for s in sigmas]
    return as_image(labelled_grid(decoded, 1, len(captions), [], [], captions))
