"""Gaussian-kernel units on the sphere learning the 3-spin energy, in closed form.

This is Rotskoff and Vanden-Eijnden's "Experiment 1": inputs ``x`` uniform on the sphere
``S^{d-1}(sqrt d)``, centres ``y_i`` on the same sphere, units

.. math::

    \\varphi(x, y) = e^{-\\alpha |x - y|^2 / 2}
    = e^{-\\alpha d}\\, e^{\\alpha \\langle x, y\\rangle}, \\qquad
    f_n(x) = \\frac1n \\sum_{i=1}^n c_i \\varphi(x, y_i),

with ``(c_i, y_i)`` all trained, and the 3-spin target ``f`` of :class:`~.pspin.PSpin` (one
implementation: :meth:`PSpin.teacher` and :meth:`PSpin.target` are reused here). The loss is

.. math::

    L(c, y) = \\tfrac12 E f^2 - \\frac1n \\sum_i c_i F_i + \\frac1{2n^2} \\sum_{ij} c_i c_j K_{ij},
    \\quad K_{ij} = E\\, \\varphi(x, y_i) \\varphi(x, y_j), \\quad F_i = E\\, f(x) \\varphi(x, y_i).

The paper's (4.3)-(4.5) print ``exp(-alpha x.y)``; on the sphere the Gaussian form above equals
``exp(-alpha d) exp(+alpha x.y)``, so the printed sign is a typo (with the minus sign the unit
would peak at ``x = -y``, not at its centre).

Closed forms
------------
Everything follows from the moment generating function of the uniform law on the sphere,
``M(v) = E e^{<v, x>} = Gamma(nu + 1) (2/s)^nu I_nu(s)``, ``nu = d/2 - 1``, ``s = sqrt(d) |v|``.
As a function of ``u = |v|^2 / 2`` write ``M = h(u)``; with ``ds/du = d/s`` and
``(1/s d/ds)^k [s^-nu I_nu(s)] = s^{-nu-k} I_{nu+k}(s)``,

.. math::

    h^{(k)}(u) = d^k\\, \\Gamma(\\nu+1)\\, 2^\\nu s^{-\\nu-k} I_{\\nu+k}(s)
    = \\Big(\\frac d2\\Big)^k \\Gamma(\\nu+1) \\sum_{m\\ge0}
      \\frac{z^m}{m!\\, \\Gamma(m+\\nu+k+1)}, \\qquad z = \\frac{s^2}4 = \\frac{d u}2 .

The series has positive coefficients, so it is summed by Horner's rule without cancellation;
the number of terms is fixed at setup for the largest argument, ``s = 2 alpha d`` (two centres
equal), and checked there (:meth:`SphereKernel.series_coefficients`).

* ``K_ij = e^{-2 alpha d} h(u_ij)`` with ``u_ij = alpha^2 |y_i + y_j|^2 / 2``; its gradient in the
  first centre is ``d_{y_i} K_ij = e^{-2 alpha d} alpha^2 h'(u_ij) (y_i + y_j)``.
* With ``v = alpha y_i``, ``u = |v|^2/2``: differentiating ``h(|v|^2/2)`` three times,
  ``E[x_p x_q x_r e^{<v,x>}] = h''' v_p v_q v_r + h'' (delta_pr v_q + delta_qr v_p +
  delta_pq v_r)``, so

  .. math::

      F_i = e^{-\\alpha d} \\big[ h'''(u) f(v) + h''(u) \\langle b, v\\rangle / d \\big],
      \\qquad b_k = \\sum_p (a_{pkp} + a_{kpp} + a_{ppk}),

  ``f(v) = (1/d) a(v, v, v)`` being the target itself evaluated at ``v``, and
  ``grad_y F_i = alpha e^{-alpha d} [(h'''' f(v) + h''' <b,v>/d) v + h''' grad f(v) + h'' b/d]``.
* ``E f^2 = (1/d^2) sum a_pqr a_stu E[x_p x_q x_r x_s x_t x_u]`` with, on the sphere of radius
  ``R = sqrt d``, ``E[x_i1 ... x_i6] = R^6 / (d (d+2) (d+4))`` times the sum over the 15
  pairings of the six indices of products of Kronecker deltas.

Two objectives
--------------
The flow (4.5) as the paper prints it moves the units with ``f`` and ``phi`` themselves,

.. math::

    \\dot c_i = f(y_i) - \\frac1n \\sum_j c_j \\varphi(y_i, y_j), \\qquad
    \\dot y_i = P_{y_i}\\Big[c_i \\nabla f(y_i) - \\frac1n \\sum_j c_i c_j
    \\nabla_{y_i} \\varphi(y_i, y_j)\\Big],

the gradient flow of ``n E`` for the *collocation* energy (:meth:`SphereKernelTask.collocation`)

.. math::

    E(c, y) = -\\frac1n \\sum_i c_i f(y_i) + \\frac1{2n^2} \\sum_{ij} c_i c_j \\varphi(y_i, y_j)
    = \\tfrac12 \\|f - f_n\\|_H^2 - \\tfrac12 \\|f\\|_H^2

(``H`` the RKHS of ``phi``, when ``f`` lies in it). The ``"l2"`` objective is the loss ``L``
above, whose minimiser is the best ``L^2`` fit. Both are selected by name,
:meth:`SphereKernelTask.objective_gradient`; the test loss reported is ``L`` in both. As
``alpha -> infinity`` the two meet: ``E_x[g(x) phi(x, y)]`` concentrates at ``y``, so
``F_i / m_alpha -> f(y_i)`` and ``K_ij / m_{2 alpha} -> exp(-alpha |y_i - y_j|^2 / 4)`` with
``m_alpha = E_x phi(x, y)`` (:meth:`SphereKernelTask.unit_mass`).

The functions of ``y`` are written for ``|y_i| = sqrt d`` (the factor ``e^{-2 alpha d}``); their
gradients are those of that extension to ``R^d``, whose tangential part is the gradient on the
sphere. Math code takes an array namespace ``xp`` and uses array-API standard calls only, so it
runs on NumPy, CuPy and ``array_api_strict``; the setup (series coefficients, ``E f^2``, the
trace vector ``b``) is NumPy/SciPy, moved once by :meth:`SphereKernel.task`. Shapes: ``...``
leading (replica) axes, ``N`` units, ``B`` points.

References
----------
G. M. Rotskoff, E. Vanden-Eijnden, "Trainability and accuracy of artificial neural networks: an
interacting particle system approach", Comm. Pure Appl. Math. 75 (2022), 1889-1935
(arXiv:1805.00915), section 4, eqs. (4.3)-(4.5) and Fig. 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

from ...backends.arrays import to_numpy
from ...rng import Purpose
from ..pieces import EnginePieces, SphereUnitPieces
from .pspin import PSpin

__all__ = ["SphereKernel", "SphereKernelTask", "MAX_ORDER", "OBJECTIVES"]

#: highest derivative ``h^(k)`` needed: ``k = 4`` for the gradient of ``F``
MAX_ORDER = 4
#: relative size of the neglected tail of every series at the largest argument
SERIES_TAIL = 1e-17
#: purpose tag of the Monte Carlo test points
PURPOSE_TEST = Purpose.TEST
#: the objectives a flow can descend, by name: (4.5) as printed first, then the L2(mu) loss
OBJECTIVES = ("collocation", "l2")


@dataclass(frozen=True)
class SphereKernel:
    """Gaussian units ``exp(-alpha |x - y|^2 / 2)`` on ``S^{d-1}(sqrt d)``, 3-spin target.

    Parameters
    ----------
    d : int
        Input dimension, ``d >= 2``.
    alpha : float
        Inverse squared width of the units, ``alpha > 0`` (the paper: ``alpha = 5/d``).
    teacher_seed : int
        Seed of the 3-spin coupling tensor, drawn by :meth:`PSpin.teacher`.

    References
    ----------
    G. M. Rotskoff, E. Vanden-Eijnden, Comm. Pure Appl. Math. 75 (2022), arXiv:1805.00915.
    """

    d: int
    alpha: float
    teacher_seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.d, bool) or not isinstance(self.d, int | np.integer) or self.d < 2:
            raise ValueError(f"d must be an integer >= 2, got {self.d!r}")
        if not (
            isinstance(self.alpha, int | float) and math.isfinite(self.alpha) and self.alpha > 0
        ):
            raise ValueError(f"alpha must be a finite number > 0, got {self.alpha!r}")
        object.__setattr__(self, "d", int(self.d))
        object.__setattr__(self, "alpha", float(self.alpha))

    @property
    def nu(self) -> float:
        """Bessel order ``nu = d/2 - 1`` of the sphere's moment generating function."""
        return self.d / 2 - 1

    @property
    def pspin(self) -> PSpin:
        """The 3-spin target with this model's ``d`` and ``teacher_seed``."""
        return PSpin(self.d, self.teacher_seed)

    @property
    def max_z(self) -> float:
        """Largest series argument ``z = s^2/4``: ``s = 2 alpha d`` for two equal centres."""
        return (self.alpha * self.d) ** 2

    # ------------------------------------------------------------------ setup (NumPy)

    def series_coefficients(self) -> np.ndarray:
        """Coefficients ``a_km`` of ``h^(k)(u) = sum_m a_km z^m``, ``k = 0..MAX_ORDER``.

        ``a_km = (d/2)^k Gamma(nu+1) / (m! Gamma(m + nu + k + 1))``. The number of terms ``M``
        is the smallest for which, at ``z = max_z``, the neglected tail of every order is below
        ``SERIES_TAIL`` times the sum. All terms are positive and the tail holds only powers
        above the mean power of the sum, so its relative size grows with ``z``: the bound at
        ``max_z`` holds for every smaller ``z``.

        Returns
        -------
        ndarray of shape ``(MAX_ORDER + 1, M)``
        """
        order = np.arange(MAX_ORDER + 1)[:, None]
        m = np.arange(400)[None, :]
        log_a = (
            order * math.log(self.d / 2)
            + gammaln(self.nu + 1)
            - gammaln(m + 1)
            - gammaln(m + self.nu + order + 1)
        )
        log_terms = log_a + m * math.log(max(self.max_z, 1e-300))
        terms = np.exp(log_terms - log_terms.max(axis=1, keepdims=True))
        tails = np.cumsum(terms[:, ::-1], axis=1)[:, ::-1] / terms.sum(axis=1, keepdims=True)
        n_terms = int(max(np.argmax(row <= SERIES_TAIL) for row in tails))
        if n_terms < 1 or not np.all(tails[:, n_terms] <= SERIES_TAIL):
            raise ValueError(f"the series needs more than 400 terms at z = {self.max_z}")
        return np.exp(log_a[:, :n_terms])

    def trace_vector(self, tensor: np.ndarray) -> np.ndarray:
        """``b_k = sum_p (a_pkp + a_kpp + a_ppk)``: the tensor's delta contractions, ``(d,)``."""
        return (
            np.einsum("pkp->k", tensor) + np.einsum("kpp->k", tensor) + np.einsum("ppk->k", tensor)
        )

    def target_square_mean(self, tensor: np.ndarray) -> float:
        """``E f(x)^2`` in closed form: :meth:`PSpin.target_square_mean`."""
        return self.pspin.target_square_mean(tensor)

    def task(self, asarray: Callable[..., Any]) -> SphereKernelTask:
        """Draw the teacher, do the setup in NumPy and move it once with ``asarray``.

        Parameters
        ----------
        asarray : callable
            ``asarray(host_array)`` onto the backend, float64 (e.g. ``Backend.asarray``).
        """
        tensor = self.pspin.teacher()
        coefficients = self.series_coefficients()
        return SphereKernelTask(
            model=self,
            tensor=asarray(tensor),
            trace=asarray(self.trace_vector(tensor)),
            coefficients=tuple(tuple(float(a) for a in row) for row in coefficients),
            target_square=self.target_square_mean(tensor),
        )


@dataclass(frozen=True)
class SphereKernelTask:
    """A :class:`SphereKernel` with its teacher on a backend: the closed-form loss and gradients.

    Build it with :meth:`SphereKernel.task`. ``coefficients[k]`` are the series coefficients of
    ``h^(k)`` (host floats), ``target_square`` is ``E f^2``.
    """

    model: SphereKernel
    tensor: Any
    trace: Any
    coefficients: tuple[tuple[float, ...], ...]
    target_square: float

    def engine_pieces(self) -> EnginePieces:
        """The kernel-unit flows on the compiled engine (host NumPy copies of the teacher)."""
        return EnginePieces(
            sphere=SphereUnitPieces(
                np.asarray(to_numpy(self.tensor), dtype=np.float64),
                np.asarray(to_numpy(self.trace), dtype=np.float64),
                self.coefficients,
                self.model.alpha,
            )
        )

    # ------------------------------------------------------------------ radial functions

    def radial(self, u: Any, order: int, xp: Any) -> Any:
        """``h^(order)(u)``, ``h(u) = E e^{<v, x>}`` at ``|v|^2 = 2u``, elementwise.

        Parameters
        ----------
        u : array, ``0 <= u <= alpha^2 * 2 d`` (the range the series was sized for)
        order : int, ``0 <= order <= MAX_ORDER``
        xp : array namespace
        """
        return _horner(u * (self.model.d / 2), self.coefficients[order], 1.0, xp)

    def pair_terms(self, y: Any, xp: Any) -> tuple[Any, Any]:
        """``K`` and the slope ``Q`` with ``d_{y_i} K_ij = Q_ij (y_i + y_j)``.

        .. math::

            K_{ij} = e^{-2\\alpha d} h(u_{ij}), \\quad Q_{ij} = e^{-2\\alpha d} \\alpha^2
            h'(u_{ij}), \\quad u_{ij} = \\alpha^2 |y_i + y_j|^2 / 2 .

        Parameters
        ----------
        y : array of shape ``(..., N, d)``
        xp : array namespace

        Returns
        -------
        K, Q : arrays of shape ``(..., N, N)``, symmetric
        """
        model = self.model
        sq = xp.sum(y * y, axis=-1)
        sum_sq = sq[..., :, None] + sq[..., None, :] + 2.0 * (y @ xp.matrix_transpose(y))
        z = sum_sq * (model.d * model.alpha**2 / 4)  # z = s^2/4, s = sqrt(d) alpha |y_i + y_j|
        scale = math.exp(-2.0 * model.alpha * model.d)
        kernel = _horner(z, self.coefficients[0], scale, xp)
        slope = _horner(z, self.coefficients[1], scale * model.alpha**2, xp)
        return kernel, slope

    def kernel(self, y: Any, xp: Any) -> Any:
        """``K_ij = E phi(x, y_i) phi(x, y_j)``: shape ``(..., N, N)``."""
        return self.pair_terms(y, xp)[0]

    def kernel_gradient(self, y: Any, xp: Any) -> Any:
        """``d K_ij / d y_i`` (first centre only): shape ``(..., N, N, d)``, memory ``N^2 d``."""
        slope = self.pair_terms(y, xp)[1]
        return slope[..., None] * (y[..., :, None, :] + y[..., None, :, :])

    def projection_gradient(self, y: Any, xp: Any) -> tuple[Any, Any]:
        """``F_i = E f(x) phi(x, y_i)`` and its gradient in ``y_i``.

        Parameters
        ----------
        y : array of shape ``(..., N, d)``
        xp : array namespace

        Returns
        -------
        F : array of shape ``(..., N)``
        grad_F : array of shape ``(..., N, d)``
        """
        model = self.model
        alpha, d = model.alpha, model.d
        v = alpha * y
        u = xp.sum(v * v, axis=-1) / 2
        h2, h3, h4 = (self.radial(u, k, xp) for k in (2, 3, 4))
        pspin = model.pspin
        cubic = pspin.target(v, self.tensor, xp)  # f(v) = a(v, v, v) / d
        linear = xp.sum(v * self.trace, axis=-1) / d  # <b, v> / d
        scale = math.exp(-alpha * d)
        value = scale * (h3 * cubic + h2 * linear)
        radial_part = (h4 * cubic + h3 * linear)[..., None] * v
        grad = (
            alpha
            * scale
            * (
                radial_part
                + h3[..., None] * pspin.target_gradient(v, self.tensor, xp)
                + h2[..., None] * (self.trace / d)
            )
        )
        return value, grad

    def projection(self, y: Any, xp: Any) -> Any:
        """``F_i = E f(x) phi(x, y_i)``: shape ``(..., N)``."""
        return self.projection_gradient(y, xp)[0]

    # ------------------------------------------------------------------ loss

    def loss(self, c: Any, y: Any, xp: Any) -> Any:
        """``L = E f^2/2 - (1/N) sum c_i F_i + (1/(2N^2)) sum c_i c_j K_ij``: shape ``(...)``.

        Parameters
        ----------
        c : array of shape ``(..., N)``
        y : array of shape ``(..., N, d)``
        xp : array namespace
        """
        n = c.shape[-1]
        kernel_c = (self.kernel(y, xp) @ c[..., None])[..., 0]
        return (
            0.5 * self.target_square
            - xp.sum(c * self.projection(y, xp), axis=-1) / n
            + xp.sum(c * kernel_c, axis=-1) / (2 * n * n)
        )

    def loss_gradient(self, c: Any, y: Any, xp: Any) -> tuple[Any, Any, Any]:
        """The loss and its gradients in ``c`` and (ambient, untangential) ``y``.

        .. math::

            \\partial_{c_i} L = -\\frac{F_i}{N} + \\frac{(Kc)_i}{N^2}, \\qquad
            \\nabla_{y_i} L = \\frac{c_i}{N}\\Big(-\\nabla F_i + \\frac1N \\sum_j c_j Q_{ij}
            (y_i + y_j)\\Big).

        Parameters
        ----------
        c : array of shape ``(..., N)``
        y : array of shape ``(..., N, d)``
        xp : array namespace

        Returns
        -------
        loss : array of shape ``(...)``
        grad_c : array of shape ``(..., N)``
        grad_y : array of shape ``(..., N, d)``
        """
        n = c.shape[-1]
        kernel, slope = self.pair_terms(y, xp)
        value, grad_value = self.projection_gradient(y, xp)
        kernel_c = (kernel @ c[..., None])[..., 0]
        slope_c = (slope @ c[..., None])[..., 0]
        pull = slope_c[..., None] * y + slope @ (c[..., None] * y)  # sum_j c_j Q_ij (y_i + y_j)
        loss = (
            0.5 * self.target_square
            - xp.sum(c * value, axis=-1) / n
            + xp.sum(c * kernel_c, axis=-1) / (2 * n * n)
        )
        grad_c = (kernel_c / n - value) / n
        grad_y = (c / n)[..., None] * (pull / n - grad_value)
        return loss, grad_c, grad_y

    # ------------------------------------------------------------------ collocation (4.5)

    def unit_mass(self, alpha: float) -> float:
        """``m_alpha = E_x exp(-alpha |x - y|^2 / 2) = e^{-alpha d} h(alpha^2 d / 2)``, any ``y``.

        Host float, for the ``alpha`` given (not the model's): the narrow-unit limit of
        ``F`` divides by ``m_alpha`` and that of ``K`` by ``m_{2 alpha}``. Summed by the model's
        series, so ``alpha <= 2 model.alpha``.
        """
        model = self.model
        if not 0 < alpha <= 2 * model.alpha:
            raise ValueError(f"alpha must lie in (0, {2 * model.alpha}], got {alpha!r}")
        z = np.asarray([(alpha * model.d) ** 2 / 4])  # z = d u / 2 at u = alpha^2 d / 2
        return float(_horner(z, self.coefficients[0], math.exp(-alpha * model.d), np)[0])

    def unit_kernel(self, y: Any, xp: Any) -> Any:
        """``phi(y_i, y_j) = exp(-alpha |y_i - y_j|^2 / 2)``: shape ``(..., N, N)``, symmetric.

        Parameters
        ----------
        y : array of shape ``(..., N, d)``
        xp : array namespace
        """
        return self.predict_units(y, y, xp)

    def collocation(self, c: Any, y: Any, xp: Any) -> Any:
        """``E = -(1/N) sum_i c_i f(y_i) + (1/(2 N^2)) sum_ij c_i c_j phi(y_i, y_j)``: ``(...)``.

        Parameters
        ----------
        c : array of shape ``(..., N)``
        y : array of shape ``(..., N, d)``
        xp : array namespace
        """
        return self.collocation_gradient(c, y, xp)[0]

    def collocation_gradient(self, c: Any, y: Any, xp: Any) -> tuple[Any, Any, Any]:
        """The collocation energy and its gradients in ``c`` and (ambient) ``y``.

        With ``Phi_ij = phi(y_i, y_j)`` and ``nabla_{y_i} phi(y_i, y_j) = -alpha (y_i - y_j)
        Phi_ij`` (the Gaussian form, a function on all of ``R^d``):

        .. math::

            \\partial_{c_i} E = -\\frac{f(y_i)}{N} + \\frac{(\\Phi c)_i}{N^2}, \\qquad
            \\nabla_{y_i} E = -\\frac{c_i}{N}\\Big(\\nabla f(y_i) + \\frac{\\alpha}{N}
            \\big[(\\Phi c)_i\\, y_i - (\\Phi (c y))_i\\big]\\Big),

        so that ``-N grad E`` is the right-hand side of (4.5) before the tangent projection.

        Parameters
        ----------
        c : array of shape ``(..., N)``
        y : array of shape ``(..., N, d)``
        xp : array namespace

        Returns
        -------
        energy : array of shape ``(...)``
        grad_c : array of shape ``(..., N)``
        grad_y : array of shape ``(..., N, d)``
        """
        n = c.shape[-1]
        pspin = self.model.pspin
        units = self.unit_kernel(y, xp)
        value = pspin.target(y, self.tensor, xp)
        units_c = (units @ c[..., None])[..., 0]
        pull = units_c[..., None] * y - units @ (c[..., None] * y)  # sum_j c_j Phi_ij (y_i - y_j)
        energy = (xp.sum(c * units_c, axis=-1) / (2 * n) - xp.sum(c * value, axis=-1)) / n
        grad_c = (units_c / n - value) / n
        grad_y = -(c / n)[..., None] * (
            pspin.target_gradient(y, self.tensor, xp) + (self.model.alpha / n) * pull
        )
        return energy, grad_c, grad_y

    def objective_gradient(self, name: str) -> Callable[[Any, Any, Any], tuple[Any, Any, Any]]:
        """``(c, y, xp) -> (value, grad_c, grad_y)`` of the objective ``name`` (:data:`OBJECTIVES`).

        ``"collocation"``: :meth:`collocation_gradient`, the energy whose flow is (4.5) as printed;
        ``"l2"``: :meth:`loss_gradient`, the ``L^2(mu)`` loss.
        """
        methods = {"collocation": self.collocation_gradient, "l2": self.loss_gradient}
        if name not in methods:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {name!r}")
        return methods[name]

    # ------------------------------------------------------------------ network on points

    def predict(self, x: Any, c: Any, y: Any, xp: Any) -> Any:
        """``f_n(x_b) = (1/N) sum_i c_i exp(-alpha |x_b - y_i|^2 / 2)``.

        Parameters
        ----------
        x : array of shape ``(..., B, d)``
        c : array of shape ``(..., N)``
        y : array of shape ``(..., N, d)``
        xp : array namespace

        Returns
        -------
        array of shape ``(..., B)``
        """
        return (self.predict_units(x, y, xp) @ c[..., None])[..., 0] / c.shape[-1]

    def predict_units(self, x: Any, y: Any, xp: Any) -> Any:
        """``exp(-alpha |x_b - y_i|^2 / 2)``: shape ``(..., B, N)`` for ``x (..., B, d)``."""
        dist = (
            xp.sum(x * x, axis=-1)[..., :, None]
            + xp.sum(y * y, axis=-1)[..., None, :]
            - 2.0 * (x @ xp.matrix_transpose(y))
        )
        return xp.exp(-0.5 * self.model.alpha * xp.maximum(dist, 0.0))

    def test_loss(
        self, c: Any, y: Any, rng: Any, n_points: int, xp: Any, chunk: int = 1 << 14
    ) -> dict[str, Any]:
        """Monte Carlo loss ``(1/2) mean (f_n - f)^2`` on ``n_points`` fresh uniform points.

        Parameters
        ----------
        c : array of shape ``(R, N)``
        y : array of shape ``(R, N, d)``
        rng : counter-based generator
            ``rng.normal(counter, shape, purpose)`` returns ``(R, *shape)`` normals; chunk
            ``k`` uses counter ``k`` and purpose :data:`PURPOSE_TEST`.
        n_points : int
            Points per replica, ``>= 2``.
        xp : array namespace
        chunk : int
            Points per chunk: memory ``R * chunk * (N + d^2)`` floats.

        Returns
        -------
        dict of arrays of shape ``(R,)``
            ``"loss"`` and ``"loss_se"``, its standard error (sample std over ``sqrt(P)``).
        """
        pspin = self.model.pspin
        total = xp.zeros(c.shape[:-1], dtype=xp.float64)
        total_sq = xp.zeros(c.shape[:-1], dtype=xp.float64)
        for k, start in enumerate(range(0, n_points, chunk)):
            size = min(chunk, n_points - start)
            x = pspin.inputs_from_normals(
                rng.normal(k, (size, self.model.d), purpose=PURPOSE_TEST), xp
            )
            residual = self.predict(x, c, y, xp) - pspin.target(x, self.tensor, xp)
            half_sq = 0.5 * residual * residual
            total = total + xp.sum(half_sq, axis=-1)
            total_sq = total_sq + xp.sum(half_sq * half_sq, axis=-1)
        mean = total / n_points
        var = (total_sq / n_points - mean * mean) * (n_points / (n_points - 1))
        return {"loss": mean, "loss_se": xp.sqrt(xp.maximum(var, 0.0) / n_points)}


def _horner(z: Any, coefficients: tuple[float, ...], scale: float, xp: Any) -> Any:
    """``scale * sum_m coefficients[m] z^m`` by Horner's rule (positive terms: no cancellation).

    The accumulator is a fresh array updated in place, so no temporary is made per term.
    """
    out = xp.full_like(z, scale * coefficients[-1])
    for a in reversed(coefficients[:-1]):
        out *= z
        out += scale * a
    return out
