"""Model parametrizations: SD's table, sigma <-> timestep, exact x0 from exact network targets, zsnr."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sigmagraph.nodes.sampling.model_sampling import (
    ModelSampling, NetworkDenoiser, beta_schedule, discrete_model_sampling, edm_model_sampling, flow_model_sampling,
    rescale_zero_terminal_snr, ve_model_sampling)

SD = discrete_model_sampling()


def sd_table_numpy() -> np.ndarray:
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


# ---------------------------------------------------------------------------------------- tables


def test_sd_table_range():
    assert abs(SD.sigma_min - 0.0291675) < 5e-7
    assert abs(SD.sigma_max - 14.614642) < 5e-6
    np.testing.assert_allclose(SD.sigmas.double().numpy(), sd_table_numpy(), rtol=1e-6)


@pytest.mark.parametrize("ours, theirs", [("scaled_linear", "scaled_linear"), ("linear", "linear"),
                                          ("cosine", "squaredcos_cap_v2")])
def test_beta_schedules_match_diffusers(ours, theirs):
    diffusers = pytest.importorskip("diffusers")
    start, end = (0.0001, 0.02) if ours == "linear" else (0.00085, 0.012)
    expected = diffusers.DDPMScheduler(beta_start=start, beta_end=end, beta_schedule=theirs).betas.double()
    torch.testing.assert_close(beta_schedule(ours, 1000, start, end), expected, rtol=1e-5, atol=1e-9)


def test_zero_terminal_snr_rescale_follows_the_paper():
    alphas_cumprod = torch.cumprod(1 - beta_schedule("scaled_linear"), dim=0)
    rescaled = rescale_zero_terminal_snr(alphas_cumprod)
    snr = rescaled / (1 - rescaled)
    assert float(snr[-1]) == 0.0  # terminal SNR zero: the last sigma is infinite
    assert math.isinf(float(((1 - rescaled[-1]) / rescaled[-1]).sqrt()))
    assert math.isclose(float(rescaled[0]), float(alphas_cumprod[0]), rel_tol=1e-12)  # first step kept
    assert bool((rescaled[1:] < rescaled[:-1]).all())
    diffusers = pytest.importorskip("diffusers")
    reference = diffusers.DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                        rescale_betas_zero_snr=True).alphas_cumprod.double()
    torch.testing.assert_close(rescaled[:-1], reference[:-1], rtol=1e-4, atol=1e-7)


def test_zsnr_model_starts_from_near_zero_snr_at_a_finite_sigma():
    zsnr = discrete_model_sampling("v_prediction", zsnr=True)
    terminal_alpha_cumprod = 1 / (1 + zsnr.sigma_max**2)
    assert terminal_alpha_cumprod < 1e-7 and math.isfinite(zsnr.sigma_max)
    assert abs(zsnr.sigma_max - 4518.8) < 0.1  # ComfyUI's stand-in for the infinite sigma
    assert abs(zsnr.sigma_min - SD.sigma_min) < 1e-6  # the first step is unchanged


# ------------------------------------------------------------------------------ sigma <-> timestep


def test_integer_timesteps_nearest_in_log_sigma():
    table = sd_table_numpy()
    sigma = torch.tensor(np.exp(np.random.default_rng(0).uniform(np.log(0.02), np.log(20.0), 500)),
                         dtype=torch.float32)
    expected = np.abs(np.log(sigma.double().numpy())[:, None] - np.log(table)[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(SD.timestep(sigma).numpy(), expected)
    t = torch.arange(1000, dtype=torch.float32)
    torch.testing.assert_close(SD.timestep(SD.sigma(t)), t)


def test_fractional_timesteps_interpolate_log_sigma():
    fractional = discrete_model_sampling(fractional_timesteps=True)
    t = torch.tensor([0.0, 0.25, 17.5, 500.125, 998.9, 999.0])
    torch.testing.assert_close(fractional.timestep(fractional.sigma(t)), t, atol=2e-3, rtol=0)
    # sigma(t) is exp of the linear interpolation of log sigma, computed here from the numpy table.
    expected = np.exp(np.interp(t.double().numpy(), np.arange(1000), np.log(sd_table_numpy())))
    np.testing.assert_allclose(SD.sigma(t).double().numpy(), expected, rtol=2e-6)
    # Outside the table the timestep saturates.
    assert fractional.timestep(torch.tensor([100.0, 1e-3])).tolist() == [999.0, 0.0]


def test_percent_to_sigma():
    assert SD.percent_to_sigma(0.0) > 1e8 and SD.percent_to_sigma(1.0) == 0.0
    assert math.isclose(SD.percent_to_sigma(0.5), float(SD.sigma(torch.tensor(499.5))), rel_tol=1e-6)
    edm = edm_model_sampling(sigma_min=0.002, sigma_max=120.0)
    assert math.isclose(edm.percent_to_sigma(0.25), math.exp(math.log(0.002) + 0.75 * math.log(120 / 0.002)))
    flow = flow_model_sampling(shift=3.0)
    assert flow.percent_to_sigma(0.0) == 1.0 and flow.percent_to_sigma(1.0) == 0.0
    assert math.isclose(flow.percent_to_sigma(0.5), 3 * 0.5 / (1 + 2 * 0.5))


def test_continuous_and_flow_timesteps():
    sigma = torch.tensor([0.01, 1.0, 80.0])
    torch.testing.assert_close(edm_model_sampling().timestep(sigma), sigma.log() / 4)  # EDM c_noise
    torch.testing.assert_close(ve_model_sampling().timestep(sigma), (sigma / 2).log())
    torch.testing.assert_close(edm_model_sampling().sigma(edm_model_sampling().timestep(sigma)), sigma)
    flow = flow_model_sampling(shift=3.0)
    s = torch.tensor([0.1, 0.5, 0.9])
    torch.testing.assert_close(flow.timestep(s), s * 1000)
    torch.testing.assert_close(flow.sigma(s * 1000), 3 * s / (1 + 2 * s))
    assert math.isclose(flow.sigma_max, 1.0) and math.isclose(flow.sigma_min, 3e-3 / (1 + 2e-3), rel_tol=1e-6)


def test_lcm_uses_the_50_distilled_timesteps_and_diffusers_boundary_scalings():
    lcm = discrete_model_sampling("lcm")
    table = sd_table_numpy()
    np.testing.assert_allclose(lcm.sigmas.double().numpy(), table[19::20], rtol=1e-6)
    assert lcm.timestep(torch.tensor([14.6146, 0.0292, 1.0])).tolist() == [999.0, 19.0, 359.0]
    diffusers = pytest.importorskip("diffusers")
    reference = diffusers.LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    sigma = torch.tensor(table[[999, 499, 19]], dtype=torch.float32)
    c_skip, c_out, _ = lcm.scalings(sigma)
    for i, t in enumerate([999, 499, 19]):
        skip, out = reference.get_scalings_for_boundary_condition_discrete(t)
        # x0 = skip x + out (x - sigma eps) = (skip + out) x - out sigma eps
        assert math.isclose(float(c_skip[i]), skip + out, rel_tol=1e-6)
        assert math.isclose(float(c_out[i]), -out * float(sigma[i]), rel_tol=1e-6)


# --------------------------------------------------------------------- parametrizations, exactly


@pytest.fixture
def noisy(mixture):
    """x0 from the mixture, noise, and sigmas per batch item (float64)."""
    g = torch.Generator().manual_seed(1)
    x0 = mixture.sample((4, 4, 5, 5), g)
    noise = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    sigma = torch.tensor([0.05, 0.7, 3.0, 14.0], dtype=torch.float64)
    return x0, noise, sigma


def bcast(v):
    return v.reshape(-1, 1, 1, 1)


def test_eps_input_is_the_ddpm_forward_process(noisy):
    x0, noise, sigma = noisy
    alpha_bar = 1 / (1 + sigma**2)  # from sigma = sqrt((1 - abar) / abar)
    expected = bcast(alpha_bar.sqrt()) * x0 + bcast((1 - alpha_bar).sqrt()) * noise
    torch.testing.assert_close(SD.calculate_input(sigma, x0 + bcast(sigma) * noise), expected)


@pytest.mark.parametrize("prediction", ["eps", "v_prediction", "x0", "edm", "ve"])
def test_exact_targets_give_exact_x0(noisy, prediction):
    x0, noise, sigma = noisy
    ms = (edm_model_sampling() if prediction == "edm" else ve_model_sampling() if prediction == "ve"
          else discrete_model_sampling(prediction))
    x = x0 + bcast(sigma) * noise
    # The training targets, from the papers: eps; v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho);
    # x0; EDM's F = (x0 - c_skip x) / c_out with sigma_data 0.5; VE's F = (x0 - x) / sigma.
    s = bcast(sigma)
    sd = 0.5
    target = {
        "eps": noise,
        "v_prediction": (noise - s * x0) / (1 + s**2).sqrt(),
        "x0": x0,
        "edm": (x0 - sd**2 / (s**2 + sd**2) * x) / (s * sd / (s**2 + sd**2).sqrt()),
        "ve": (x0 - x) / s,
    }[prediction]
    torch.testing.assert_close(ms.calculate_denoised(sigma, target, x), x0)


@pytest.mark.parametrize("prediction", ["eps", "v_prediction", "edm"])
def test_bayes_optimal_outputs_give_the_posterior_mean(mixture, noisy, prediction):
    x0, noise, sigma = noisy
    ms = edm_model_sampling() if prediction == "edm" else discrete_model_sampling(prediction)
    x = x0 + bcast(sigma) * noise
    posterior = mixture.denoise(x, sigma)  # E[x0 | x]
    s = bcast(sigma)
    expected_noise = (x - posterior) / s
    output = {"eps": expected_noise,
              "v_prediction": (expected_noise - s * posterior) / (1 + s**2).sqrt(),
              "edm": (posterior - 0.25 / (s**2 + 0.25) * x) / (s * 0.5 / (s**2 + 0.25).sqrt())}[prediction]
    torch.testing.assert_close(ms.calculate_denoised(sigma, output, x), posterior)


def test_flow_velocity_gives_exact_x0(mixture, noisy):
    x0, noise, _ = noisy
    sigma = torch.tensor([0.02, 0.3, 0.7, 0.98], dtype=torch.float64)
    s = bcast(sigma)
    flow = flow_model_sampling(shift=3.0)
    x = (1 - s) * x0 + s * noise  # the rectified-flow interpolant
    torch.testing.assert_close(flow.calculate_input(sigma, x), x)
    torch.testing.assert_close(flow.calculate_denoised(sigma, noise - x0, x), x0)
    # Bayes-optimal velocity: E[noise - x0 | x], with E[x0 | x] from the equivalent VE problem.
    posterior = mixture.denoise(x / (1 - s), sigma / (1 - sigma))
    velocity = (x - (1 - s) * posterior) / s - posterior
    torch.testing.assert_close(flow.calculate_denoised(sigma, velocity, x), posterior)


def test_network_denoiser_feeds_integer_timesteps_and_recovers_the_posterior(mixture, noisy):
    x0, noise, _ = noisy
    table = torch.tensor(sd_table_numpy())
    timesteps = torch.tensor([3, 250, 640, 999])
    sigma = table[timesteps].float()
    seen = []

    def oracle_eps_net(x_in, t, **cond):
        """Predicts E[eps | x] from the VP input, knowing the schedule: what a perfect UNet would do."""
        seen.append((t.clone(), cond))
        s = bcast(table[t.long()])
        x = x_in * (1 + s**2).sqrt()
        return (x - mixture.denoise(x, s.flatten())) / s

    x = x0 + bcast(sigma.double()) * noise
    denoised = NetworkDenoiser(oracle_eps_net, SD)(x, sigma, c_crossattn=torch.zeros(4, 2, 3))
    torch.testing.assert_close(denoised, mixture.denoise(x, sigma.double()), rtol=1e-5, atol=1e-6)
    assert seen[0][0].tolist() == timesteps.tolist() and seen[0][0].dtype == torch.float32
    assert set(seen[0][1]) == {"c_crossattn"}


# ----------------------------------------------------------------------------------- noise scaling


def test_noise_scaling():
    noise, latent = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    sigma = torch.tensor(SD.sigma_max)
    assert SD.is_max_denoise(sigma) and not SD.is_max_denoise(sigma * 0.9)
    torch.testing.assert_close(SD.noise_scaling(sigma, noise, latent, max_denoise=True),
                               noise * math.sqrt(1 + SD.sigma_max**2) + latent)
    torch.testing.assert_close(SD.noise_scaling(torch.tensor(2.0), noise, latent), noise * 2.0 + latent)
    assert SD.inverse_noise_scaling(sigma, latent) is latent
    flow = flow_model_sampling(shift=3.0)
    x = flow.noise_scaling(torch.tensor(0.4), noise, latent, max_denoise=True)
    torch.testing.assert_close(x, 0.4 * noise + 0.6 * latent)
    # Leftover noise comes back in a form that noise_scaling without new noise restores exactly.
    restored = flow.noise_scaling(torch.tensor(0.4), torch.zeros_like(noise), flow.inverse_noise_scaling(0.4, x))
    torch.testing.assert_close(restored, x)


def test_unknown_prediction_is_refused():
    with pytest.raises(ValueError, match="unknown prediction"):
        ModelSampling(SD.levels, "epsilon")
