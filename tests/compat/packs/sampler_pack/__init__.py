"""A ComfyUI-style pack for the tests that does what popular sampling packs do.

It wraps samplers in KSAMPLERs that read the model through model_k's inner_model chain (as
Detail-Daemon and sampler-lcm-alternative do), registers one by name (as RES4LYF does), patches
models with CFG functions, post-CFG functions, a UNet wrapper and a model_sampling object of a
star-imported class (as ComfyUI's own model-patching nodes do), and samples through comfy.sample
with a latent_preview callback (as KSampler-like pack nodes do). What the chain showed each
sampler is kept in SEEN for the tests to read.
"""

import torch

import comfy.model_management
import comfy.sample
import comfy.samplers
import latent_preview
from comfy.k_diffusion import sampling as k_diffusion_sampling
from comfy.model_sampling import *  # noqa: F403 - as packs do
from comfy.samplers import KSAMPLER, KSampler

SEEN = []  # one record per run of a fixture sampler


def seen_through(model, extra_args):
    """What a ComfyUI sampler can read about its run through model_k."""
    guider = model.inner_model
    SEEN.append({"cfg": guider.cfg, "model_sampling": guider.inner_model.model_sampling,
                 "patched_model_sampling": guider.model_patcher.get_model_object("model_sampling"),
                 "latent_format": guider.inner_model.latent_format, "extra_args": sorted(extra_args),
                 "model_options": extra_args["model_options"], "noise": model.noise, "seed": extra_args["seed"],
                 "denoise_mask": extra_args["denoise_mask"]})


def euler_through_the_chain(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """k-diffusion's Euler, after reading the run through model_k (as wrapper samplers do)."""
    seen_through(model, extra_args)
    return k_diffusion_sampling.sample_euler(model, x, sigmas, extra_args=extra_args, callback=callback,
                                             disable=disable)


def scaled_sigma_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None, *, wrapped, factor):
    """Runs the wrapped SAMPLER with the model seeing sigma * factor (Detail-Daemon's way of wrapping)."""
    seen_through(model, extra_args)

    def model_wrapper(x, sigma, **kwargs):
        return model(x, sigma * factor, **kwargs)

    model_wrapper.inner_model = model.inner_model
    return wrapped.sampler_function(model_wrapper, x, sigmas, extra_args=extra_args, callback=callback,
                                    disable=disable, **wrapped.extra_options)


# Registered by name, as RES4LYF does: the name in KSampler.SAMPLERS, the function on k_diffusion.sampling.
KSampler.SAMPLERS.append("fixture_euler")
setattr(k_diffusion_sampling, "sample_fixture_euler", euler_through_the_chain)


class FixtureEulerSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"
    CATEGORY = "fixture"

    def get_sampler(self):
        return (KSAMPLER(euler_through_the_chain),)


class FixtureScaledSigmaSampler:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"sampler": ("SAMPLER",), "factor": ("FLOAT", {"default": 1.0, "step": 0.01})}}

    RETURN_TYPES = ("SAMPLER",)
    FUNCTION = "get_sampler"
    CATEGORY = "fixture"

    def get_sampler(self, sampler, factor):
        return (KSAMPLER(scaled_sigma_sampler, extra_options={"wrapped": sampler, "factor": factor}),)


class FixtureCfgFunction:
    """set_model_sampler_cfg_function: CFG in noise space, with the guidance scaled by `factor`."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "factor": ("FLOAT", {"default": 1.0, "step": 0.01})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "fixture"

    def patch(self, model, factor):
        def cfg_function(args):
            cond, uncond = args["cond"], args["uncond"]
            return uncond + (cond - uncond) * args["cond_scale"] * factor

        m = model.clone()
        m.set_model_sampler_cfg_function(cfg_function)
        return (m,)


class FixturePostCfgFunction:
    """set_model_sampler_post_cfg_function: the guided x0 replaced by one of the predictions."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "use": (["uncond_denoised", "cond_denoised"],)}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "fixture"

    def patch(self, model, use):
        m = model.clone()
        m.set_model_sampler_post_cfg_function(lambda args: args[use])
        return (m,)


class FixtureUnetWrapper:
    """set_model_unet_function_wrapper: calls apply_model, optionally swapping the cond and uncond chunks."""

    CALLS = []

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "swap": ("BOOLEAN", {"default": False})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "fixture"

    def patch(self, model, swap):
        def wrapper(apply_model, args):
            FixtureUnetWrapper.CALLS.append({"keys": sorted(args), "cond_or_uncond": list(args["cond_or_uncond"]),
                                             "c": sorted(args["c"]), "batch": args["input"].shape[0]})
            out = apply_model(args["input"], args["timestep"], **args["c"])
            if swap and sorted(args["cond_or_uncond"]) == [0, 1]:
                first, second = out.chunk(2)
                out = torch.cat([second, first])
            return out

        m = model.clone()
        m.set_model_unet_function_wrapper(wrapper)
        return (m,)


class FixtureModelSampling:
    """ComfyUI's ModelSamplingDiscrete / ModelSamplingSD3 nodes, with classes of the star-imported module."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "sampling": (["eps", "v_prediction", "flow"],),
                             "shift": ("FLOAT", {"default": 3.0})}}

    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"
    CATEGORY = "fixture"

    def patch(self, model, sampling, shift):
        base = ModelSamplingDiscreteFlow if sampling == "flow" else ModelSamplingDiscrete  # noqa: F405
        prediction = {"eps": EPS, "v_prediction": V_PREDICTION, "flow": CONST}[sampling]  # noqa: F405

        class ModelSamplingAdvanced(base, prediction):
            pass

        model_sampling = ModelSamplingAdvanced(model.model.model_config)
        if sampling == "flow":
            model_sampling.set_parameters(shift=shift, multiplier=1000)
        m = model.clone()
        m.add_object_patch("model_sampling", model_sampling)
        return (m,)


class FixtureCommonKSampler:
    """A KSampler written as packs write theirs: comfy.sample.sample with a latent_preview callback."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "seed": ("INT", {"default": 0}), "steps": ("INT", {"default": 8}),
                             "cfg": ("FLOAT", {"default": 5.0}),
                             "sampler_name": (comfy.samplers.KSampler.SAMPLERS,),
                             "scheduler": (comfy.samplers.KSampler.SCHEDULERS,), "positive": ("CONDITIONING",),
                             "negative": ("CONDITIONING",), "latent_image": ("LATENT",),
                             "denoise": ("FLOAT", {"default": 1.0})}}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "sample"
    CATEGORY = "fixture"

    def sample(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image, denoise):
        latent = comfy.sample.fix_empty_latent_channels(model, latent_image["samples"])
        noise = comfy.sample.prepare_noise(latent, seed, latent_image.get("batch_index"))
        comfy.model_management.load_models_gpu([model])
        callback = latent_preview.prepare_callback(model, steps)
        samples = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                                      denoise=denoise, noise_mask=latent_image.get("noise_mask"), callback=callback,
                                      seed=seed)
        return ({**latent_image, "samples": samples},)


class FixtureVAERoundTrip:
    """comfy.sd.VAE's decode and encode, as packs call them."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"vae": ("VAE",), "samples": ("LATENT",)}}

    RETURN_TYPES = ("IMAGE", "LATENT")
    FUNCTION = "run"
    CATEGORY = "fixture"

    def run(self, vae, samples):
        images = vae.decode(samples["samples"])
        return images, {"samples": vae.encode(images[:, :, :, :3])}


NODE_CLASS_MAPPINGS = {
    "FixtureEulerSampler": FixtureEulerSampler, "FixtureScaledSigmaSampler": FixtureScaledSigmaSampler,
    "FixtureCfgFunction": FixtureCfgFunction, "FixturePostCfgFunction": FixturePostCfgFunction,
    "FixtureUnetWrapper": FixtureUnetWrapper, "FixtureModelSampling": FixtureModelSampling,
    "FixtureCommonKSampler": FixtureCommonKSampler, "FixtureVAERoundTrip": FixtureVAERoundTrip,
}
