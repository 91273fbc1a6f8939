"""Sigma schedules against published tables, closed forms computed here, diffusers and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sigmagraph.nodes.sampling.model_sampling import (
    discrete_model_sampling, edm_model_sampling, flow_model_sampling)
from sigmagraph.nodes.sampling.schedules import (
    AYS_NOISE_LEVELS, SCHEDULES, align_your_steps_sigmas, beta_quantile, beta_sigmas, edm_sigmas, exponential_sigmas,
    karras_sigmas, kl_optimal_sigmas, legacy_ddpm_sigmas, linear_quadratic_sigmas, polyexponential_sigmas,
    scheduled_sigmas, sd_turbo_sigmas, vp_sigmas)

SD = discrete_model_sampling()
SD_MIN, SD_MAX = 0.0291675, 14.614642

COMFYUI_SCHEDULER_NAMES = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal",
                           "linear_quadratic", "kl_optimal"]


def sd_table_numpy() -> np.ndarray:
    """SD's sigma table, computed independently in numpy float64."""
    betas = np.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1 - betas)
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


def assert_close(actual: torch.Tensor, expected, atol: float = 5e-5, rtol: float = 0.0) -> None:
    expected = torch.as_tensor(np.asarray(expected, dtype=np.float64))
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    torch.testing.assert_close(actual.double(), expected, atol=atol, rtol=rtol)


# ------------------------------------------------------------------------------------------ tables


def test_normal_15_steps_matches_published_sd_table():
    expected = [14.6146, 9.6826, 6.6780, 4.7746, 3.5221, 2.6666, 2.0606, 1.6156, 1.2768, 1.0097, 0.7913,
                0.6056, 0.4397, 0.2780, 0.0292, 0.0]
    sigmas = SCHEDULES["normal"](SD, 15)
    # The published table interpolates sigma linearly between integer timesteps (diffusers); ComfyUI,
    # k-diffusion and we interpolate log-sigma, which is lower by up to 8.4e-5 (9.68252 vs 9.68255).
    assert_close(sigmas, expected, atol=1e-4)
    table = sd_table_numpy()
    log_interpolated = np.exp(np.interp(np.linspace(999, 0, 15), np.arange(1000), np.log(table)))
    assert_close(sigmas, np.append(log_interpolated, 0), atol=0, rtol=2e-6)
    # The timesteps behind it are linspace(999, 0, 15): 999.0, 927.6429, 856.2857, ..., 0.0.
    fractional = discrete_model_sampling(fractional_timesteps=True)
    timesteps = fractional.timestep(sigmas[:-1])
    assert_close(timesteps[:3], [999.0, 927.6429, 856.2857], atol=1e-3)
    assert_close(timesteps, [999.0 * (1 - k / 14) for k in range(15)], atol=2e-3)
    assert float(timesteps[-1]) == 0.0


@pytest.mark.parametrize("name, expected", [
    ("normal", {0: 14.6146, 1: 10.7468, 2: 8.0815, 3: 6.2049, 4: 4.8557, 18: 0.2322, 19: 0.0292, 20: 0.0}),
    ("sgm_uniform", {0: 14.6146, 1: 10.9073, 2: 8.3072, 3: 6.4477, 19: 0.2255, 20: 0.0}),
    ("simple", {0: 14.6146, 1: 10.9042, 2: 8.3028, 3: 6.4430, 19: 0.2230, 20: 0.0}),
    ("karras", dict(enumerate([14.6146, 11.7254, 9.3402, 7.3836, 5.7894, 4.4998, 3.4647, 2.6408, 1.9909, 1.4832,
                               1.0908, 0.7909, 0.5647, 0.3964, 0.2730, 0.1842, 0.1213, 0.0779, 0.0485, 0.0292, 0]))),
    ("exponential", {0: 14.6146, 1: 10.5363, 2: 7.5961, 3: 5.4763, 19: 0.0292, 20: 0.0}),
    ("ddim_uniform", {0: 11.0283, 1: 8.3907, 2: 6.5064, 20: 0.0}),
    ("beta", {0: 14.6146, 1: 13.5157, 2: 11.5428, 3: 9.3889, 20: 0.0}),
    ("kl_optimal", {0: 14.6146, 1: 6.8071, 2: 4.4015, 3: 3.2219, 19: 0.0292, 20: 0.0}),
])
def test_comfyui_20_step_tables(name, expected):
    sigmas = SCHEDULES[name](SD, 20)
    assert len(sigmas) == 21
    for index, value in expected.items():
        assert abs(float(sigmas[index]) - value) < 5e-5, (name, index, float(sigmas[index]), value)


def test_four_step_normal_and_karras_from_design():
    assert_close(SCHEDULES["normal"](SD, 4), [14.61464, 2.918307, 0.932358, 0.029167, 0.0], atol=5e-6)
    assert_close(SCHEDULES["karras"](SD, 4), [14.614643, 3.168605, 0.446919, 0.029167, 0.0], atol=5e-6)


def test_align_your_steps_sd1_table_and_interpolation():
    # NVIDIA's AYS timesteps for SD1.5 and SDXL; the tables are SD's sigmas there.
    table = sd_table_numpy()
    sd1 = table[[999, 850, 736, 645, 545, 455, 343, 233, 124, 24, 0]]
    sdxl = table[[999, 845, 730, 587, 443, 310, 193, 116, 53, 13, 0]]
    assert_close(align_your_steps_sigmas("SD1", 10), np.append(sd1[:-1], 0.0), atol=0, rtol=1e-6)
    assert_close(align_your_steps_sigmas("SDXL", 10), np.append(sdxl[:-1], 0.0), atol=0, rtol=1e-6)
    published = [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.0]  # diffusers AysSchedules
    assert_close(align_your_steps_sigmas("SD1", 10), published, atol=3e-3)
    # Log-linear resampling of the 11 levels, computed here with numpy's interp.
    levels = np.array(AYS_NOISE_LEVELS["SDXL"])
    expected = np.exp(np.interp(np.linspace(0, 1, 26), np.linspace(0, 1, 11), np.log(levels[::-1])))[::-1].copy()
    expected[-1] = 0.0
    assert_close(align_your_steps_sigmas("SDXL", 25), expected, atol=1e-5)
    # denoise keeps the last round(steps * denoise) steps of the full schedule.
    assert_close(align_your_steps_sigmas("SD1", 10, denoise=0.5), np.append(sd1[5:-1], 0.0), atol=0, rtol=1e-6)
    assert len(align_your_steps_sigmas("SVD", 10, denoise=0.0)) == 0


# ------------------------------------------------------------------------------------ closed forms


@pytest.mark.parametrize("steps", [1, 2, 7, 30])
def test_range_schedules_match_closed_forms(steps):
    smin, smax, rho = 0.03, 80.0, 7.0
    ramp = np.linspace(0, 1, steps)
    karras = (smax ** (1 / rho) + ramp * (smin ** (1 / rho) - smax ** (1 / rho))) ** rho
    assert_close(karras_sigmas(steps, smin, smax, rho), np.append(karras, 0), atol=0, rtol=2e-6)
    assert_close(edm_sigmas(steps), np.append((0.002 ** (1 / 7) * ramp + 80 ** (1 / 7) * (1 - ramp)) ** 7, 0),
                 atol=0, rtol=2e-6)
    exponential = np.exp(np.log(smax) + ramp * (np.log(smin) - np.log(smax)))
    assert_close(exponential_sigmas(steps, smin, smax), np.append(exponential, 0), atol=0, rtol=2e-6)
    r = np.linspace(1, 0, steps)
    poly = np.exp(r**2.5 * (np.log(smax) - np.log(smin)) + np.log(smin))
    assert_close(polyexponential_sigmas(steps, smin, smax, rho=2.5), np.append(poly, 0), atol=0, rtol=2e-6)
    t = np.linspace(1, 1e-3, steps)
    vp = np.sqrt(np.exp(19.9 * t**2 / 2 + 0.1 * t) - 1)
    assert_close(vp_sigmas(steps), np.append(vp, 0), atol=0, rtol=2e-6)
    kl = np.tan(np.arctan(smax) + np.linspace(0, 1, steps) * (np.arctan(smin) - np.arctan(smax)))
    # tan near pi/2 amplifies float32 rounding of the angle (ComfyUI computes in float32 too).
    assert_close(kl_optimal_sigmas(steps, smin, smax), np.append(kl, 0), atol=0, rtol=2e-5)


def test_polyexponential_with_rho_one_is_exponential():
    torch.testing.assert_close(polyexponential_sigmas(12, 0.1, 10.0), exponential_sigmas(12, 0.1, 10.0))


@pytest.mark.parametrize("steps", [2, 9, 30])
def test_linear_quadratic_is_linear_then_a_smooth_quadratic(steps):
    sigmas = linear_quadratic_sigmas(SD, steps).double()
    level = (1 - sigmas / SD.sigma_max).numpy()  # 0 -> 1 over the run
    half, threshold = steps // 2, 0.025
    np.testing.assert_allclose(level[:half], np.arange(half) * threshold / half, atol=1e-6)
    # The quadratic q joins the line with equal value and slope at i = half and reaches 1 at i = steps.
    system = np.array([[half**2, half, 1], [2 * half, 1, 0], [steps**2, steps, 1]], dtype=np.float64)
    a, b, c = np.linalg.solve(system, [threshold, threshold / half, 1.0])
    i = np.arange(half, steps + 1)
    np.testing.assert_allclose(level[half:], a * i**2 + b * i + c, atol=1e-6)


# ----------------------------------------------------------------------------- table-based schedules


def test_table_schedules_against_numpy_table():
    table = sd_table_numpy()
    # ComfyUI simple: table[-(1 + int(i * 1000 / n))]; ddim_uniform: table[1 + k (1000 // n)] reversed.
    simple = [table[-(1 + int(i * (1000 / 13)))] for i in range(13)] + [0.0]
    assert_close(SCHEDULES["simple"](SD, 13), simple, atol=0, rtol=1e-6)
    ddim = [table[t] for t in range(1, 1000, 1000 // 25)][::-1] + [0.0]
    assert_close(SCHEDULES["ddim_uniform"](SD, 25), ddim, atol=0, rtol=1e-6)
    # sgm's LegacyDDPMDiscretization: numpy's linspace(999, 0, n, endpoint=False) truncated to int.
    timesteps = np.linspace(999, 0, 13, endpoint=False).astype(int)
    assert_close(legacy_ddpm_sigmas(SD, 13), np.append(table[timesteps], 0), atol=0, rtol=1e-6)


def test_ddim_uniform_walks_the_whole_table_like_comfyui():
    # 1000 // 7 = 142 and 1 + 142 k < 1000 for k = 0..7: eight steps for seven asked.
    assert len(SCHEDULES["ddim_uniform"](SD, 7)) == 9


@pytest.mark.parametrize("steps, alpha, beta", [(20, 0.6, 0.6), (9, 0.6, 0.6), (40, 0.5, 2.0), (33, 3.0, 0.7),
                                                 (300, 0.6, 0.6)])
def test_beta_schedule_matches_scipy(steps, alpha, beta):
    scipy_stats = pytest.importorskip("scipy.stats")
    table = SD.sigmas.double().numpy()
    quantiles = 1 - np.linspace(0, 1, steps, endpoint=False)
    timesteps = np.rint(scipy_stats.beta.ppf(quantiles, alpha, beta) * 999).astype(int)
    keep = np.concatenate([[True], timesteps[1:] != timesteps[:-1]])
    expected = np.append(table[timesteps[keep]], 0.0)
    assert_close(beta_sigmas(SD, steps, alpha, beta), expected, atol=0, rtol=1e-6)
    if (alpha, beta) == (0.6, 0.6):
        torch.testing.assert_close(SCHEDULES["beta"](SD, steps), beta_sigmas(SD, steps, alpha, beta))


def test_beta_quantile_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    uniform = torch.rand(200, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q = torch.cat([torch.linspace(0, 1, 101, dtype=torch.float64), uniform])
    for alpha, beta in [(0.6, 0.6), (0.5, 2.0), (4.0, 1.5), (30.0, 45.0), (0.2, 0.2)]:
        np.testing.assert_allclose(beta_quantile(q, alpha, beta).numpy(), scipy_stats.beta.ppf(q.numpy(), alpha, beta),
                                   atol=1e-12)


# --------------------------------------------------------------------------------- diffusers parity


def diffusers_euler_sigmas(steps: int, **config) -> np.ndarray:
    diffusers = pytest.importorskip("diffusers")
    scheduler = diffusers.EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 **config)
    scheduler.set_timesteps(steps)
    return scheduler.sigmas.double().numpy()


def test_ddim_uniform_is_diffusers_leading_spacing_with_offset_one():
    expected = diffusers_euler_sigmas(50, timestep_spacing="leading", steps_offset=1)
    sigmas = SCHEDULES["ddim_uniform"](SD, 50)
    assert abs(float(sigmas[0]) - 13.1204) < 5e-5
    assert_close(sigmas, expected, atol=0, rtol=1e-5)  # diffusers builds its table in float32


def test_simple_is_diffusers_trailing_spacing():
    expected = diffusers_euler_sigmas(50, timestep_spacing="trailing")
    sigmas = SCHEDULES["simple"](SD, 50)
    assert abs(float(sigmas[0]) - 14.6147) < 1e-4  # the anchor comes from a float32 table: 14.61465
    assert_close(sigmas, expected, atol=0, rtol=1e-5)


def test_normal_and_karras_agree_with_diffusers():
    # diffusers interpolates sigma linearly between timesteps, ComfyUI (and we) log-linearly.
    assert_close(SCHEDULES["normal"](SD, 20), diffusers_euler_sigmas(20, timestep_spacing="linspace"), atol=1e-4)
    assert_close(SCHEDULES["karras"](SD, 20), diffusers_euler_sigmas(20, use_karras_sigmas=True), atol=1e-4)


# ------------------------------------------------------------------------------ contracts and denoise


MODELS = {"sd": SD, "edm": edm_model_sampling(), "flow": flow_model_sampling(shift=3.0),
          "lcm": discrete_model_sampling("lcm")}


def test_schedule_names_include_comfyui_list_in_order():
    assert list(SCHEDULES)[:len(COMFYUI_SCHEDULER_NAMES)] == COMFYUI_SCHEDULER_NAMES


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("steps", [1, 2, 8, 25])
def test_every_schedule_descends_to_zero(model, steps):
    for name, schedule in SCHEDULES.items():
        sigmas = schedule(MODELS[model], steps)
        assert sigmas.dtype == torch.float32 and sigmas.ndim == 1, name
        assert float(sigmas[-1]) == 0.0 and bool((sigmas[:-1] > 0).all()), (name, sigmas)
        assert bool((sigmas[1:] < sigmas[:-1]).all()), (name, sigmas)
        if name not in ("ddim_uniform", "beta"):  # ComfyUI's step-count quirks, kept for parity
            assert len(sigmas) == steps + 1, name


def test_scheduled_sigmas_denoise_like_ksampler():
    full = SCHEDULES["karras"](SD, 20)
    torch.testing.assert_close(scheduled_sigmas(SD, "karras", 20), full)
    # denoise 0.5 with 10 steps: the last 11 sigmas of int(10 / 0.5) = 20 steps.
    torch.testing.assert_close(scheduled_sigmas(SD, "karras", 10, denoise=0.5), full[-11:])
    assert len(scheduled_sigmas(SD, "normal", 7, denoise=0.3)) == 8  # from int(7 / 0.3) = 23 steps
    torch.testing.assert_close(scheduled_sigmas(SD, "normal", 7, denoise=0.3), SCHEDULES["normal"](SD, 23)[-8:])
    assert scheduled_sigmas(SD, "normal", 20, denoise=0.0).shape == (0,)
    with pytest.raises(ValueError, match="unknown scheduler"):
        scheduled_sigmas(SD, "nope", 20)


def test_scheduled_sigmas_discard_penultimate():
    longer = SCHEDULES["normal"](SD, 11)
    sigmas = scheduled_sigmas(SD, "normal", 10, discard_penultimate=True)
    torch.testing.assert_close(sigmas, torch.cat([longer[:-2], longer[-1:]]))


def test_sd_turbo_timesteps():
    table = sd_table_numpy()
    assert_close(sd_turbo_sigmas(SD, 1), [table[999], 0.0], atol=0, rtol=1e-6)
    assert_close(sd_turbo_sigmas(SD, 4), [table[999], table[899], table[799], table[699], 0.0], atol=0, rtol=1e-6)
    assert_close(sd_turbo_sigmas(SD, 2, denoise=0.5), [table[499], table[399], 0.0], atol=0, rtol=1e-6)


def test_known_sd_range():
    assert math.isclose(SD.sigma_min, SD_MIN, abs_tol=5e-7) and math.isclose(SD.sigma_max, SD_MAX, abs_tol=5e-6)
