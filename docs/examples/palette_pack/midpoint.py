# custom_nodes/palette_pack/midpoint.py
from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.samplers.common import steps, to_d


def midpoint(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Explicit midpoint (RK2) in sigma; the last step to sigma = 0 is an Euler step. NFE 2N - 1."""
    extra_args, s_in = extra_args or {}, x.new_ones(x.shape[0])
    for i in steps(len(sigmas) - 1, disable):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
        d = to_d(x, sigma, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_mid = (sigma * sigma_next).sqrt()  # the geometric midpoint suits the log-spaced schedules
        x_mid = x + d * (sigma_mid - sigma)
        x = x + to_d(x_mid, sigma_mid, model(x_mid, sigma_mid * s_in, **extra_args)) * (sigma_next - sigma)
    return x


SAMPLERS["midpoint"] = midpoint
