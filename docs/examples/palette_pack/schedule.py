# custom_nodes/palette_pack/schedule.py
import torch

from sigmagraph.nodes.sampling import SCHEDULES


def log_linear_quadratic(model_sampling, steps):
    """Sigmas whose log falls quadratically: more steps at low noise than `exponential`."""
    ramp = torch.linspace(0, 1, steps) ** 0.5
    log_sigmas = torch.lerp(torch.tensor(model_sampling.sigma_max).log(), torch.tensor(model_sampling.sigma_min).log(), ramp)
    return torch.cat([log_sigmas.exp(), torch.zeros(1)])


SCHEDULES["log_linear_quadratic"] = log_linear_quadratic
