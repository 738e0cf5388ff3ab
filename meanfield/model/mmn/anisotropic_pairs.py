"""The anisotropic model in the full space ``R^d``, through the isotropic pair sums.

Given the class ``y``, ``x = S_y g`` with ``g ~ N(0, I_d)`` and ``S_y = diag(tau_y I_s0,
I_{d-s0})``, so ``<w, x> = <z_y, g>`` with the whitened unit ``z_y = S_y w``. Hence

.. math::

    R(\\mu_N) = \\sum_{y = \\pm 1} \\tfrac12 E[(\\hat y(x) - y)^2 \\mid y]
             = \\sum_y R_y(z_y), \\qquad
    \\nabla_w \\Psi(w) = \\sum_y S_y \\nabla_z \\Psi_y(z_y),

where ``R_y`` and ``Psi_y`` are those of an isotropic model with a single class of unit
variance, ``R_# = 1/2``, ``V_y(z) = -(y/2) q(|z|)`` and ``U_y(z, z') = (1/2) E[s(<z, g>)
s(<z', g>)]``. :class:`ClassView` is that model; :mod:`.isotropic_pairs` evaluates it (exact
Mehler pair sums, diagonal in closed form), so no pair formula is written twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..activations import PiecewiseLinear
from . import isotropic_pairs

__all__ = ["ClassView", "population_risk", "population_gradient", "max_pair_cosine", "pair_views"]


@dataclass(frozen=True)
class ClassView:
    """One class ``y`` of the anisotropic model in whitened units, as :mod:`.isotropic_pairs`
    expects a model: ``taus``, ``activation``, ``kernel_tol``, ``r_sharp``, ``potential_xp``
    and ``potential_slope_xp``.

    Parameters
    ----------
    activation : PiecewiseLinear
    kernel_tol : float
        Tolerance of the pair series (``order=None``).
    label : float
        The class ``y = +1`` or ``-1``.
    """

    activation: PiecewiseLinear
    kernel_tol: float
    label: float

    #: one class of unit variance; the pair sums weight it by 1/2, hence U_y = E[s s] / 2
    taus: ClassVar[tuple[float, ...]] = (1.0,)
    #: E[y^2] / 2: the class's share of R_#
    r_sharp: ClassVar[float] = 0.5

    def potential_xp(self, r: Any, backend: Any) -> Any:
        """``V_y(r) = -(y/2) q(r)`` for radii ``r = |z|`` of any shape."""
        return (-0.5 * self.label) * self.activation.gaussian_mean(r, backend)

    def potential_slope_xp(self, r: Any, backend: Any) -> Any:
        """``V_y'(r) = -(y/2) q'(r)``."""
        coeffs = self.activation.hermite_coefficients(r, 2, backend)
        slope = self.activation.hermite_derivatives(coeffs, r, backend)[..., 0]
        return (-0.5 * self.label) * slope


def _views(model: Any) -> list[tuple[ClassView, float]]:
    return [
        (ClassView(model.activation, model.kernel_tol, label), tau)
        for label, tau in zip((1.0, -1.0), model.taus, strict=True)
    ]


def pair_views(model: Any) -> list[tuple[ClassView, np.ndarray]]:
    """``(view, scale)`` per class: ``z = scale * w`` with ``scale = (tau_y I_s0, I_{d-s0})``."""
    s0, d = int(model.s0), int(model.d)
    out = []
    for view, tau in _views(model):
        scale = np.ones(d)
        scale[:s0] = tau
        out.append((view, scale))
    return out


def _whiten(theta: Any, tau: float, s0: int, xp: Any) -> Any:
    """``S theta = (tau theta_{1..s0}, theta_{s0+1..d})`` (``S`` is its own transpose)."""
    return xp.concat([tau * theta[..., :s0], theta[..., s0:]], axis=-1)


def population_risk(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``R(mu_N)`` of every replica, shape ``(R,)``, exact up to the pair-series tolerance.

    ``order=None`` picks each class's Mehler order from its largest pair correlation.
    """
    xp, s0 = backend.xp, int(model.s0)
    return sum(
        isotropic_pairs.population_risk(view, _whiten(theta, tau, s0, xp), order, backend)
        for view, tau in _views(model)
    )


def population_gradient(model: Any, theta: Any, order: int | None, backend: Any) -> Any:
    """``grad Psi(w_i; mu_N) = sum_y S_y grad_z Psi_y(z_{y,i})``, shape ``(R, N, d)``."""
    xp, s0 = backend.xp, int(model.s0)
    return sum(
        _whiten(
            isotropic_pairs.population_gradient(view, _whiten(theta, tau, s0, xp), order, backend),
            tau,
            s0,
            xp,
        )
        for view, tau in _views(model)
    )


def max_pair_cosine(model: Any, theta: Any, xp: Any) -> float:
    """Largest ``|corr(<w_i, x>, <w_j, x>)|`` of two different units, over both classes."""
    s0 = int(model.s0)
    return max(
        isotropic_pairs.max_pair_cosine(_whiten(theta, tau, s0, xp), xp) for tau in model.taus
    )
