"""Shared fixtures for the sampling tests: the exact mixture denoiser, and one torch thread."""

from __future__ import annotations

import pytest
import torch

from sigmagraph.nodes.sampling.analytic import GaussianMixture


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The mixture denoiser is tiny: threads only add contention on the shared CI cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mixture() -> GaussianMixture:
    return GaussianMixture.random(seed=0, components=3, channels=4, spread=1.0)
