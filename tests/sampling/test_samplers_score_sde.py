"""Score-SDE predictor-corrector samplers against Song et al. (2021) Algorithms 2-5 written out: VE in
sigma, VP entirely in the variance-preserving frame with the score from the noise prediction."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.nodes.sampling.samplers.score_sde import pc_ve, pc_vp

from .sampler_testkit import Recorded, karras, noisy_start


def langevin(x, score, z, snr, a):
    """Algorithm 4/5's step: eps = 2 a (snr |z| / |g|)^2 per batch item, x + eps g + sqrt(2 eps) z."""
    norm = lambda v: v.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)  # noqa: E731
    eps = 2 * a * (snr * norm(z) / norm(score)) ** 2
    return x + eps * score + (2 * eps).sqrt() * z


SNR = 0.2


def run_with_recorded_noise(sampler, mixture, corrector_steps: int):
    """(sigmas, start, our result, a replay of the same noise for the reference) of a 6-step Karras run."""
    sigmas = karras(6)
    x = noisy_start((2, 4, 4, 4))
    ours = sampler(mixture, x, sigmas, disable=True, snr=SNR, corrector_steps=corrector_steps,
                   noise_sampler=Recorded(x.shape, seed=1))
    return sigmas, x, ours, Recorded(x.shape, seed=1)


@pytest.mark.parametrize("corrector_steps", [0, 1, 2])
def test_pc_ve_is_algorithm_2(corrector_steps, mixture):
    sigmas, x, ours, reference_noise = run_with_recorded_noise(pc_ve, mixture, corrector_steps)
    snr = SNR
    s = sigmas.tolist()
    expected = x
    for i in range(len(s) - 1):
        for _ in range(corrector_steps):
            score = (mixture(expected, sigmas[i].expand(2)) - expected) / s[i] ** 2
            expected = langevin(expected, score, reference_noise(s[i], s[i]), snr, 1.0)
        score = (mixture(expected, sigmas[i].expand(2)) - expected) / s[i] ** 2
        expected = expected + (s[i] ** 2 - s[i + 1] ** 2) * score
        if s[i + 1] > 0:
            expected = expected + (s[i] ** 2 - s[i + 1] ** 2) ** 0.5 * reference_noise(s[i], s[i + 1])
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-11)


@pytest.mark.parametrize("corrector_steps", [0, 1])
def test_pc_vp_is_algorithm_3_in_the_vp_frame(corrector_steps, mixture):
    """x_vp = sqrt(alpha_bar) x, beta_i = 1 - alpha_bar_i / alpha_bar_{i+1}, score = -eps / sqrt(1 - alpha_bar)."""
    sigmas, x, ours, reference_noise = run_with_recorded_noise(pc_vp, mixture, corrector_steps)
    snr = SNR

    abars = 1 / (1 + sigmas**2)

    def score(x_vp, i):
        scaled = x_vp / abars[i] ** 0.5
        eps = (scaled - mixture(scaled, sigmas[i].expand(2))) / sigmas[i]
        return -eps / (1 - abars[i]) ** 0.5

    x_vp = x * abars[0] ** 0.5
    for i in range(len(sigmas) - 1):
        beta = 1 - abars[i] / abars[i + 1]
        for _ in range(corrector_steps):
            x_vp = langevin(x_vp, score(x_vp, i), reference_noise(0, 0), snr, 1 - beta)
        x_vp = (2 - (1 - beta) ** 0.5) * x_vp + beta * score(x_vp, i)
        if sigmas[i + 1] > 0:
            x_vp = x_vp + beta**0.5 * reference_noise(0, 0)
    torch.testing.assert_close(ours, x_vp / abars[-1] ** 0.5, rtol=0, atol=1e-11)
