"""Smooth activations written once for the PDE setup (NumPy) and the particles (any ``xp``).

Each activation is a :class:`SmoothActivation`: ``act(z, xp)`` and ``act.derivative(z, xp)``
call only functions of the array API standard (``tanh``, ``exp``, ``logaddexp``, ``abs``,
``where``, ``minimum``, ``sign``), so the same callable builds the quadrature tables in NumPy at
setup and runs in the particle hot loop on NumPy, CuPy or :mod:`array_api_strict`.

* ``tanh``: :math:`\\tanh z`, derivative :math:`1 - \\tanh^2 z`.
* ``erf``: :math:`\\mathrm{erf}\\, z` (no rescaling of ``z``), derivative
  :math:`\\tfrac{2}{\\sqrt\\pi} e^{-z^2}`. The standard has no ``erf``, so it is evaluated by
  Moshier's rational approximations of the Cephes library (the ones behind SciPy's ``ndtr``):
  ``erf z = z T(z^2) / U(z^2)`` for ``|z| <= 1`` and ``erf z = sign(z) (1 - e^{-z^2} P(|z|) /
  Q(|z|))`` for ``1 < |z| <= 6``; beyond 6, ``erfc |z| < 2.2e-17`` and ``erf z = sign(z)`` to
  double precision. Agreement with :func:`scipy.special.erf` is checked to a few ulp in the tests.
* ``softplus``: :math:`\\log(1 + e^z)` via ``logaddexp(0, z)`` (no overflow), derivative the
  logistic function written as :math:`(1 + \\tanh(z/2))/2` (no overflow either).

ReLU is not offered: its kink makes the Gauss quadrature of ``V`` and ``U`` converge only
algebraically, which defeats the tolerance-driven choice of the quadrature order.

References
----------
S. L. Moshier, *Methods and Programs for Mathematical Functions*, Prentice Hall (1989); the
Cephes Math Library (``ndtr.c``), public domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SmoothActivation", "SMOOTH_ACTIVATIONS", "smooth_activation", "erf"]

#: Cephes ``erf`` on ``|z| <= 1``: ``z T(z^2) / U(z^2)``, coefficients from the highest degree,
#: ``U`` monic (its leading 1 omitted)
_ERF_T = (
    9.60497373987051638749e0,
    9.00260197203842689217e1,
    2.23200534594684319226e3,
    7.00332514112805075473e3,
    5.55923013010394962768e4,
)
_ERF_U = (
    3.35617141647503099647e1,
    5.21357949780152679795e2,
    4.59432382970980127987e3,
    2.26290000613890934246e4,
    4.92673942608635921086e4,
)
#: Cephes ``erfc`` on ``1 <= |z| < 8``: ``exp(-z^2) P(|z|) / Q(|z|)``, ``Q`` monic
_ERFC_P = (
    2.46196981473530512524e-10,
    5.64189564831068821977e-1,
    7.46321056442269912687e0,
    4.86371970985681366614e1,
    1.96520832956077098242e2,
    5.26445194995477358631e2,
    9.34528527171957607540e2,
    1.02755188689515710272e3,
    5.57535335369399327526e2,
)
_ERFC_Q = (
    1.32281951154744992508e1,
    8.67072140885989742329e1,
    3.54937778887819891062e2,
    9.75708501743205489753e2,
    1.82390916687909736289e3,
    2.24633760818710981792e3,
    1.65666309194161350182e3,
    5.57535340817727675546e2,
)
#: beyond this ``|z|``, ``erfc(|z|) < 2.2e-17``: ``erf z = sign(z)`` in double precision
_ERF_SATURATION = 6.0
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _horner(z: Any, coefficients: tuple[float, ...], monic: bool) -> Any:
    """``sum_j c_j z^(n - j)``, with a leading ``z^n`` first when ``monic``."""
    out = z + coefficients[0] if monic else 0.0 * z + coefficients[0]
    for c in coefficients[1:]:
        out = out * z + c
    return out


def erf(z: Any, xp: Any = np) -> Any:
    """The error function from array-API elementwise calls only (see the module docstring).

    Parameters
    ----------
    z : array
    xp : array namespace of ``z``

    Returns
    -------
    array of the shape of ``z``
    """
    mag = xp.abs(z)
    inner = xp.minimum(mag, 1.0)  # both branches are evaluated: keep each in its own range
    outer = xp.minimum(xp.maximum(mag, 1.0), _ERF_SATURATION)
    sq = inner * inner
    small = inner * _horner(sq, _ERF_T, False) / _horner(sq, _ERF_U, True)
    large = 1.0 - xp.exp(-outer * outer) * _horner(outer, _ERFC_P, False) / _horner(
        outer, _ERFC_Q, True
    )
    return xp.sign(z) * xp.where(mag <= 1.0, small, large)


@dataclass(frozen=True)
class SmoothActivation:
    """A smooth activation ``s`` and its derivative, for NumPy and any array namespace.

    Parameters
    ----------
    name : str
    fn : callable ``(z, xp) -> s(z)``
    derivative_fn : callable ``(z, xp) -> s'(z)``
    """

    name: str
    fn: Callable[[Any, Any], Any]
    derivative_fn: Callable[[Any, Any], Any]

    def __call__(self, z: Any, xp: Any = np) -> Any:
        return self.fn(z, xp)

    def derivative(self, z: Any, xp: Any = np) -> Any:
        return self.derivative_fn(z, xp)


def _tanh_slope(z: Any, xp: Any) -> Any:
    t = xp.tanh(z)
    return 1.0 - t * t


#: the activations by name
SMOOTH_ACTIVATIONS: dict[str, SmoothActivation] = {
    "tanh": SmoothActivation("tanh", lambda z, xp: xp.tanh(z), _tanh_slope),
    "erf": SmoothActivation("erf", erf, lambda z, xp: _TWO_OVER_SQRT_PI * xp.exp(-z * z)),
    "softplus": SmoothActivation(
        "softplus",
        lambda z, xp: xp.logaddexp(0.0 * z, z),
        lambda z, xp: 0.5 + 0.5 * xp.tanh(0.5 * z),
    ),
}


def smooth_activation(name: str) -> SmoothActivation:
    """Look up an activation of :data:`SMOOTH_ACTIVATIONS`; ``ValueError`` for unknown names."""
    try:
        return SMOOTH_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; allowed: {', '.join(sorted(SMOOTH_ACTIVATIONS))}"
        ) from None
