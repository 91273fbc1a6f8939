# custom_nodes/palette_pack/midpoint.py
from sigmagraph.nodes.sampling import SAMPLERS
from sigmagraph.nodes.sampling.samplers.common import bind_denoiser, notify, steps, to_d


def midpoint(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """Explicit midpoint (RK2) in sigma; the last step to sigma = 0 lands on the denoised estimate. NFE 2N - 1."""
    denoise = bind_denoiser(model, x, extra_args)  # denoise(x, sigma): sigma per batch item, the seed left out
    for i in steps(len(sigmas) - 1, disable):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = denoise(x, sigma)
        notify(callback, i, x, sigma, sigma, denoised)
        if sigma_next == 0:
            x = denoised
            continue
        sigma_mid = (sigma * sigma_next).sqrt()  # the geometric midpoint suits the log-spaced schedules
        x_mid = x + to_d(x, sigma, denoised) * (sigma_mid - sigma)
        x = x + to_d(x_mid, sigma_mid, denoise(x_mid, sigma_mid)) * (sigma_next - sigma)
    return x


SAMPLERS["midpoint"] = midpoint
