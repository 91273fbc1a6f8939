"""Interpolating quadrature shared by the multistep and exponential samplers.

A multistep sampler replaces a quantity it has sampled at a few past times (model outputs) by
their Lagrange interpolant and integrates it over the next step against a weight: 1 for
Adams-Bashforth in sigma, an exponential for exponential integrators (RES, SA-Solver), a
change of time variable for DEIS. ER-SDE integrates its noise scaler, UniPC needs phi-functions.
All of these are scalar integrals of smooth functions, computed once per step in float64 by
32-point Gauss-Legendre quadrature, which integrates polynomials up to degree 63 exactly and
analytic integrands to rounding error. One rule then serves every method, and none of them
needs a closed form with cancellations at small steps (e.g. (e^h - 1 - h) / h^2).

`riemann_sum` is the other rule, kept only because ComfyUI's er_sde and deis integrate that way
and samplers under ComfyUI's names give ComfyUI's numbers.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

Fn = Callable[[np.ndarray], np.ndarray]

_POINTS, _WEIGHTS = np.polynomial.legendre.leggauss(32)


def integrate(f: Fn, a: float, b: float) -> np.ndarray:
    """The integral of f from a to b by Gauss-Legendre quadrature; f maps points [n] to values [..., n]."""
    half = (b - a) / 2
    return half * (f((a + b) / 2 + half * _POINTS) @ _WEIGHTS)


def riemann_sum(f: Fn, a: float, b: float, n: int, endpoint: bool) -> np.ndarray:
    """(b - a) / n times the sum of f at n evenly spaced points from a: up to b included (endpoint) or short of it."""
    points = np.linspace(a, b, n, endpoint=endpoint)
    return f(points).sum(-1) * ((b - a) / n)


def lagrange_basis(nodes: Sequence[float], t: np.ndarray) -> np.ndarray:
    """The Lagrange basis polynomials through `nodes`, evaluated at t: shape [len(nodes), len(t)]."""
    basis = np.ones((len(nodes), len(t)))
    for j, node in enumerate(nodes):
        for m, other in enumerate(nodes):
            if m != j:
                basis[j] *= (t - other) / (node - other)
    return basis


def interpolant_weights(nodes: Sequence[float], a: float, b: float, time: Fn | None = None,
                        weight: Fn | None = None) -> list[float]:
    """w_j = integral from a to b of L_j(time(u)) weight(u) du, for the Lagrange basis L_j through `nodes`.

    sum_j w_j f_j is then the integral of weight times the interpolant of values f_j given at
    `nodes`. `time` maps the integration variable u to the variable the nodes live in (the
    identity by default); `weight` defaults to 1.
    """
    def integrand(u: np.ndarray) -> np.ndarray:
        basis = lagrange_basis(nodes, u if time is None else time(u))
        return basis if weight is None else basis * weight(u)

    return integrate(integrand, a, b).tolist()


def phi(k: int, z: float) -> float:
    """The exponential-integrator function phi_k(z) = integral_0^1 e^((1 - s) z) s^(k-1) / (k-1)! ds, k >= 1.

    phi_1(z) = (e^z - 1) / z, phi_2(z) = (e^z - 1 - z) / z^2, ..., each finite at z = 0.
    """
    return float(integrate(lambda s: np.exp((1 - s) * z) * s ** (k - 1), 0.0, 1.0)) / math.factorial(k - 1)
