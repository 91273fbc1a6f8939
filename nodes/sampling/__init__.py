"""The diffusion math library: schedules, samplers, parametrizations, guidance, noise.

Importable without the node system. The two public mappings:
- `SAMPLERS`: sampler name -> `sampler(model, x, sigmas, extra_args, callback, disable, **params)`;
- `SCHEDULES`: schedule name -> `schedule(model_sampling, steps) -> sigmas`.
Adding an entry to either makes it selectable in every node that offers samplers or schedules;
`contract.check_sampler` checks that a sampler keeps the promises every sampler makes.
"""

from .samplers import SAMPLERS
from .schedules import SCHEDULES

__all__ = ["SAMPLERS", "SCHEDULES"]
