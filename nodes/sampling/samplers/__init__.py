"""Every sampler by name: `SAMPLERS` maps a name to a function with the one sampler signature.

The names are a superset of ComfyUI's, in ComfyUI's order, then ours. The nodes build their
choice lists from this mapping, so a sampler added to it (by a custom node pack) appears in
KSampler, KSamplerAdvanced and KSamplerSelect.
"""

from __future__ import annotations

from . import ddim, dpm_solver, dpmpp, er_sde, euler, multistep, res_multistep, sa_solver, score_sde, seeds, unipc
from .common import Sampler

COMFYUI_ORDER = (
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "dpm_2",
    "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp",
    "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
    "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm",
    "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
    "res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde", "seeds_2",
    "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2",
)

_ALL: dict[str, Sampler] = {}
for _module in (euler, dpm_solver, dpmpp, ddim, multistep, unipc, res_multistep, er_sde, seeds, sa_solver, score_sde):
    _ALL.update(_module.SAMPLERS)

SAMPLERS: dict[str, Sampler] = {name: _ALL[name] for name in COMFYUI_ORDER}
SAMPLERS.update({name: fn for name, fn in _ALL.items() if name not in SAMPLERS})

# ComfyUI's KSampler computes one step more and drops the second-to-last sigma for these.
DISCARD_PENULTIMATE_SIGMA = frozenset({"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"})
