"""The lab's tests run the tiny analytic model: one torch thread, as in the sampling tests."""

from tests.sampling.conftest import one_thread  # noqa: F401 - an autouse fixture
