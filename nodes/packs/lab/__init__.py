"""The sampler lab: compare samplers and schedules on the user's own model, record and branch runs,
see schedules and the forward process, fit schedules to a model, and inpaint with RePaint.

Thin nodes over the math library (nodes/sampling: trajectory.py, repaint.py, forward.py,
schedule_fit.py) and drawing.py; one pack, whose nodes live in the submodules imported here.
"""

from typing import TYPE_CHECKING

from .grid import SamplerBenchmark, SamplerGrid, SamplerGridCell, SamplerGridTable
from .optimize import OptimizeSchedule
from .plots import NoisedLatent, NoisePreview, SigmasPlot
from .repaint import SamplerRePaint
from .trajectory import BranchFromStep, RecordTrajectory

if TYPE_CHECKING:
    from sigmagraph.engine.server.pack_hooks import ServerLink

__all__ = ["BranchFromStep", "NoisePreview", "NoisedLatent", "OptimizeSchedule", "RecordTrajectory", "SamplerBenchmark",
           "SamplerGrid", "SamplerGridCell", "SamplerGridTable", "SamplerRePaint", "SigmasPlot"]


def attach_server(link: "ServerLink") -> None:
    """Adds the editor's route for the inline schedule curves (schedule_view.py)."""
    from .schedule_view import add_routes  # here, so that runs without a server never import aiohttp

    add_routes(link)
