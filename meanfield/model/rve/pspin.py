"""Rotskoff and Vanden-Eijnden's spherical 3-spin benchmark: a particle-side model, no PDE.

Data: ``x`` uniform on the sphere of radius ``sqrt(d)`` in ``R^d``; target the continuous 3-spin
energy with one Gaussian coupling tensor drawn per ``teacher_seed``,

.. math::

    f(x) = \\frac1d \\sum_{p,q,r=1}^d a_{pqr} x_p x_q x_r, \\qquad a_{pqr} \\sim N(0, 1)\\ i.i.d.

Unit and network, with ``theta = (a_1, ..., a_d, b, c)`` in ``R^D``, ``D = d + 2``, all trained:

.. math::

    \\sigma_*(x; \\theta) = c\\, \\mathrm{sigmoid}(\\langle a, x\\rangle + b), \\qquad
    f_n(x) = \\frac1n \\sum_{i=1}^n \\sigma_*(x; \\theta_i), \\qquad
    L = \\tfrac12 E_x (f_n(x) - f(x))^2 .

Averaged over teachers, ``E_a f(x)^2 = |x|^6 / d^2 = d`` on the sphere, so the trivial predictor
``f_n = 0`` has loss ``d / 2`` up to a teacher-to-teacher spread.

Initial law (:meth:`PSpin.init_theta`): ``a ~ N(0, I_d / d)``, ``b ~ N(0, 1)``, ``c ~ N(0, 1)``,
independent. ``a ~ N(0, I_d/d)`` makes the pre-activation ``<a, x> ~ N(0, 1)`` for every
``|x| = sqrt(d)``. This is a documented default chosen here, not the paper's: its initial law for
``(a, b, c)`` could not be found in the sources available when this module was written. The
paper's protocol (batch ``P = n/5``, then a quench at ``P = (n/5)^2``) is run by the particle
runner; its batch rule (:func:`protocol_batches`) and the conversion between their time step and
the engine's (:func:`rve_dt`, :func:`engine_step`) are here, one place for every caller.

Math code takes an array namespace ``xp`` and uses array-API standard calls only; shapes use
``R`` replicas, ``B`` samples, ``N`` units, ``D = d + 2``.

References
----------
G. M. Rotskoff, E. Vanden-Eijnden, "Trainability and accuracy of artificial neural networks: an
interacting particle system approach", Comm. Pure Appl. Math. 75 (2022), 1889-1935
(arXiv:1805.00915), section "Numerical experiments" (the spherical 3-spin model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...fields import Field, allowed, int_at_least
from ...rng import Purpose
from ..pieces import ActivationPieces, DataPieces, EnginePieces, UnitPieces
from ..registry import ModelEntry, register

__all__ = [
    "PSpin",
    "INIT_STD_B",
    "INIT_STD_C",
    "BATCH_DIVISOR",
    "engine_step",
    "protocol_batches",
    "rve_dt",
    "sphere_sixth_moment_pairings",
]

#: standard deviation of the initial bias ``b`` (documented default, see the module docstring)
INIT_STD_B = 1.0
#: standard deviation of the initial output weight ``c`` (documented default)
INIT_STD_C = 1.0
#: the random-stream purposes this model draws from (see :meth:`PSpin.sample_data`)
PURPOSE_DATA = Purpose.DATA
PURPOSE_INIT = Purpose.INIT


@dataclass(frozen=True)
class PSpin:
    """The spherical 3-spin target learnt by sigmoid units ``c * sigmoid(<a, x> + b)``.

    Parameters
    ----------
    d : int
        Input dimension, ``d >= 1``; the parameter dimension is ``D = d + 2``.
    teacher_seed : int
        Seed of :func:`numpy.random.default_rng` that draws the coupling tensor ``a_pqr``.
    c_std : float
        Standard deviation of the initial output weights ``c`` (default :data:`INIT_STD_C`;
        the paper does not publish it: ``model.c_std`` in a config, for the sensitivity study).

    References
    ----------
    G. M. Rotskoff, E. Vanden-Eijnden, Comm. Pure Appl. Math. 75 (2022), arXiv:1805.00915.
    """

    d: int
    teacher_seed: int = 0
    c_std: float = INIT_STD_C

    def __post_init__(self) -> None:
        if isinstance(self.d, bool) or not isinstance(self.d, int | np.integer) or self.d < 1:
            raise ValueError(f"d must be an integer >= 1, got {self.d!r}")
        object.__setattr__(self, "d", int(self.d))
        if not (math.isfinite(self.c_std) and self.c_std >= 0):
            raise ValueError(f"c_std must be a finite number >= 0, got {self.c_std!r}")

    @property
    def dim(self) -> int:
        """Parameter dimension ``D = d + 2`` (weights ``a``, bias ``b``, output weight ``c``)."""
        return self.d + 2

    # ------------------------------------------------------------------ target (setup + xp)

    def teacher(self) -> np.ndarray:
        """The coupling tensor ``a_pqr ~ N(0, 1)`` i.i.d., drawn with ``teacher_seed`` (NumPy).

        Returns
        -------
        ndarray of shape ``(d, d, d)``
        """
        return np.random.default_rng(self.teacher_seed).standard_normal((self.d,) * 3)

    def target_square_mean(self, tensor: np.ndarray) -> float:
        """``E f(x)^2`` over the sphere in closed form, from its sixth moments.

        On the sphere of radius ``R = sqrt d``, ``E[x_i1 ... x_i6] = R^6 / (d (d+2) (d+4))``
        times the sum over the 15 pairings of the six indices of products of deltas, so

        .. math::

            E f^2 = \\frac{1}{d^2} \\frac{R^6}{d(d+2)(d+4)} \\sum_{\\text{15 pairings}}
            \\sum a_{pqr} a_{stu} \\delta\\delta\\delta
            = \\frac{1}{(d+2)(d+4)} \\sum_{\\text{pairings}} (\\cdots) .

        The trivial predictor ``f_n = 0`` has loss ``E f^2 / 2``.
        """
        d = self.d
        total = sum(float(np.einsum(s, tensor, tensor)) for s in sphere_sixth_moment_pairings())
        return total / ((d + 2) * (d + 4))

    def target(self, x: Any, tensor: Any, xp: Any) -> Any:
        """The 3-spin energy ``f(x) = (1/d) sum_pqr a_pqr x_p x_q x_r``.

        Parameters
        ----------
        x : array of shape ``(..., d)``
        tensor : array of shape ``(d, d, d)``
            :meth:`teacher`, moved to the backend of ``x``.
        xp : array namespace

        Returns
        -------
        array of shape ``(...)``

        Notes
        -----
        One matmul through the pair products ``x_q x_r``: memory ``(..., d^2)``.
        """
        contracted = _contract_last_two(x, tensor, xp)  # sum_qr a_pqr x_q x_r, (..., d)
        return xp.sum(contracted * x, axis=-1) / self.d

    def target_gradient(self, x: Any, tensor: Any, xp: Any) -> Any:
        """``grad_x f(x)_k = (1/d) sum_qr (a_kqr + a_qkr + a_qrk) x_q x_r`` (gradient in ``R^d``).

        Parameters
        ----------
        x : array of shape ``(..., d)``
        tensor : array of shape ``(d, d, d)``
        xp : array namespace

        Returns
        -------
        array of shape ``(..., d)``
        """
        summed = tensor + xp.permute_dims(tensor, (1, 0, 2)) + xp.permute_dims(tensor, (2, 0, 1))
        return _contract_last_two(x, summed, xp) / self.d

    # ------------------------------------------------------------------ sampling

    def inputs_from_normals(self, g: Any, xp: Any) -> Any:
        """Map standard normals to the sphere: ``x = sqrt(d) g / |g|``, uniform on it.

        Parameters
        ----------
        g : array of shape ``(..., d)``
            Independent standard normals.
        xp : array namespace

        Returns
        -------
        array of shape ``(..., d)`` with ``|x| = sqrt(d)``
        """
        norm = xp.sqrt(xp.sum(g * g, axis=-1, keepdims=True))
        return math.sqrt(self.d) * g / norm

    def sample_data(
        self, rng: Any, counter: int, batch: int, tensor: Any, xp: Any
    ) -> tuple[Any, Any]:
        """Fresh samples ``(x, f(x))`` for every replica, from the ``purpose = 0`` stream.

        Parameters
        ----------
        rng : counter-based generator
            ``rng.normal(counter, shape, purpose)`` returns ``(R, *shape)`` float64 normals.
        counter : int
            Stream position (e.g. the SGD step); the same counter gives the same draws.
        batch : int
            Number of samples ``B`` per replica.
        tensor : array of shape ``(d, d, d)``
            :meth:`teacher` on the backend.
        xp : array namespace

        Returns
        -------
        x : array of shape ``(R, B, d)``
        y : array of shape ``(R, B)``
        """
        g = xp.asarray(rng.normal(counter, (batch, self.d), purpose=PURPOSE_DATA), dtype=xp.float64)
        x = self.inputs_from_normals(g, xp)
        return x, self.target(x, tensor, xp)

    def init_theta(self, rng: Any, counter: int, n: int, xp: Any) -> Any:
        """Draw ``n`` units per replica from the initial law, from the ``purpose = 3`` stream.

        The law is ``a ~ N(0, I_d / d)``, ``b ~ N(0, INIT_STD_B^2)``, ``c ~ N(0, c_std^2)``
        (a documented default; see the module docstring).

        Parameters
        ----------
        rng : counter-based generator
        counter : int
        n : int
            Number of units ``N``.
        xp : array namespace

        Returns
        -------
        theta : array of shape ``(R, N, D)``, columns ``(a_1, ..., a_d, b, c)``
        """
        g = xp.asarray(rng.normal(counter, (n, self.dim), purpose=PURPOSE_INIT), dtype=xp.float64)
        scale = np.concatenate([np.full(self.d, 1.0 / math.sqrt(self.d)), [INIT_STD_B, self.c_std]])
        return g * xp.asarray(scale, dtype=xp.float64)

    # ------------------------------------------------------------------ network

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """Unit values ``sigma_*(x_b; theta_i) = c_i sigmoid(<a_i, x_b> + b_i)``.

        Parameters
        ----------
        x : array of shape ``(R, B, d)``
        theta : array of shape ``(R, N, D)``
        xp : array namespace

        Returns
        -------
        values : array of shape ``(R, B, N)``
        cache : array of shape ``(R, B, N)``
            The sigmoid values ``s = sigmoid(<a_i, x_b> + b_i)``, for :meth:`backward`.
        """
        d = self.d
        bias = xp.expand_dims(theta[..., d], axis=-2)  # (R, 1, N)
        out_weight = xp.expand_dims(theta[..., d + 1], axis=-2)
        s = _sigmoid(x @ xp.matrix_transpose(theta[..., :d]) + bias, xp)
        return out_weight * s, s

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        """Coefficient-weighted sum of unit gradients over the batch.

        ``G[r, i] = sum_b coef[r, b, i] grad_theta sigma_*(x[r, b]; theta[r, i])``.

        With ``s = sigmoid(<a, x> + b)``: ``grad_a = c s (1 - s) x``, ``d_b = c s (1 - s)``,
        ``d_c = s``. The ``a`` block is one batched matmul ``(R, N, B) @ (R, B, d)``; no
        ``(R, B, N, D)`` array is formed.

        Parameters
        ----------
        x : array of shape ``(R, B, d)``
        theta : array of shape ``(R, N, D)``
        cache : array of shape ``(R, B, N)``
            The sigmoid values returned by :meth:`forward` for the same ``x`` and ``theta``.
        coef : array broadcastable to ``(R, B, N)``
            E.g. ``(y - f_n(x))[..., None]`` for the SGD step.
        xp : array namespace

        Returns
        -------
        array of shape ``(R, N, D)``
        """
        d = self.d
        c = theta[..., d + 1]  # (R, N)
        weighted_s = coef * cache  # (R, B, N)
        weighted_slope = weighted_s * (1.0 - cache)
        grad_a = (xp.matrix_transpose(weighted_slope) @ x) * c[..., None]
        grad_b = xp.sum(weighted_slope, axis=-2) * c
        grad_c = xp.sum(weighted_s, axis=-2)
        return xp.concat([grad_a, grad_b[..., None], grad_c[..., None]], axis=-1)

    def unit_tangent(self, x: Any, theta: Any, cache: Any, v: Any, xp: Any) -> Any:
        """Directional derivatives of the units: ``<grad_theta sigma_*(x_b; theta_i), v_i>``.

        The forward-mode twin of :meth:`backward` (the same Jacobian, contracted from the other
        side): ``c s (1 - s) (<v_a, x> + v_b) + v_c s``. Summed over the units it is ``n`` times
        the change of ``f_n`` along ``v``.

        Parameters
        ----------
        x : array of shape ``(R, B, d)``
        theta : array of shape ``(R, N, D)``
        cache : array of shape ``(R, B, N)``
            The sigmoid values returned by :meth:`forward` for the same ``x`` and ``theta``.
        v : array of shape ``(R, N, D)``
            One direction per unit.
        xp : array namespace

        Returns
        -------
        array of shape ``(R, B, N)``
        """
        d = self.d
        c = xp.expand_dims(theta[..., d + 1], axis=-2)  # (R, 1, N)
        move = x @ xp.matrix_transpose(v[..., :d]) + xp.expand_dims(v[..., d], axis=-2)
        return c * cache * (1.0 - cache) * move + xp.expand_dims(v[..., d + 1], axis=-2) * cache

    def predict(self, x: Any, theta: Any, xp: Any) -> Any:
        """Network output ``f_n(x_b) = (1/N) sum_i sigma_*(x_b; theta_i)``.

        Parameters
        ----------
        x : array of shape ``(R, B, d)``
        theta : array of shape ``(R, N, D)``
        xp : array namespace

        Returns
        -------
        array of shape ``(R, B)``
        """
        values, _ = self.forward(x, theta, xp)
        return xp.mean(values, axis=-1)

    def test_loss(self, theta: Any, x_test: Any, f_test: Any, xp: Any) -> dict[str, Any]:
        """Monte Carlo loss ``(1/2) mean (f_n - f)^2`` on given test points, and signed residuals.

        Parameters
        ----------
        theta : array of shape ``(R, N, D)``
        x_test : array of shape ``(R, M, d)``, ``M >= 2``
        f_test : array of shape ``(R, M)``
            ``f(x_test)``, e.g. from :meth:`sample_data`.
        xp : array namespace

        Returns
        -------
        dict of arrays of shape ``(R,)``
            ``"loss"``: ``(1/2) mean_m (f_n - f)^2``; ``"loss_se"``: its Monte Carlo standard
            error (sample standard deviation over ``sqrt(M)``); ``"residual_pos"`` and
            ``"residual_neg"``: the signed residuals of Rotskoff and Vanden-Eijnden's eq. (4.11),
            ``mean_m (f - f_n) 1{f > 0}`` and ``mean_m (f_n - f) 1{f < 0}`` (averages over all
            ``M`` points; both positive when ``f_n`` shrinks ``f`` towards 0).
        """
        residual = self.predict(x_test, theta, xp) - f_test
        half_sq = 0.5 * residual * residual
        m = half_sq.shape[-1]
        return {
            "loss": xp.mean(half_sq, axis=-1),
            "loss_se": xp.std(half_sq, axis=-1, correction=1) / math.sqrt(m),
            "residual_pos": -xp.mean(residual * xp.astype(f_test > 0, residual.dtype), axis=-1),
            "residual_neg": xp.mean(residual * xp.astype(f_test < 0, residual.dtype), axis=-1),
        }


def sphere_sixth_moment_pairings() -> list[str]:
    """The 15 pairings of six indices as :func:`numpy.einsum` subscripts ``"ijk,lmn->"``.

    Positions 0-2 index the first tensor, 3-5 the second; paired positions share a letter.
    """
    letters = "abc"
    out = []
    for pairing in _pairings(list(range(6))):
        names = [""] * 6
        for letter, (i, j) in zip(letters, pairing, strict=True):
            names[i] = names[j] = letter
        out.append("".join(names[:3]) + "," + "".join(names[3:]) + "->")
    return out


def _pairings(items: list[int]) -> list[list[tuple[int, int]]]:
    """All perfect matchings of ``items`` (``(len - 1)!!`` of them)."""
    if not items:
        return [[]]
    first, rest = items[0], items[1:]
    out = []
    for k, partner in enumerate(rest):
        for tail in _pairings(rest[:k] + rest[k + 1 :]):
            out.append([(first, partner), *tail])
    return out


def _contract_last_two(x: Any, tensor: Any, xp: Any) -> Any:
    """``sum_qr T_kqr x_q x_r`` for ``x`` of shape ``(..., d)``: shape ``(..., d)``."""
    d = x.shape[-1]
    pairs = xp.reshape(x[..., :, None] * x[..., None, :], (*x.shape[:-1], d * d))
    return pairs @ xp.matrix_transpose(xp.reshape(tensor, (d, d * d)))


def _sigmoid(z: Any, xp: Any) -> Any:
    """Logistic function without overflow: ``exp`` only of ``-|z|``."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


#: purpose tag of the test points drawn at each record
PURPOSE_TEST = Purpose.TEST


@dataclass(frozen=True)
class PSpinTask:
    """A :class:`PSpin` model with its teacher tensor on a backend: the particle-side model.

    It offers what the particle methods call on any model (``dim``, ``axis_names``,
    ``sample_data(rng, counter, batch, xp)``, ``forward``, ``backward``, ``reduce``) and an
    initial law with ``sample_streams(rng, n)``.
    """

    model: PSpin
    tensor: Any

    axis_names = ("a_norm", "b", "c")

    @property
    def dim(self) -> int:
        return self.model.dim

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        return self.model.sample_data(rng, counter, batch, self.tensor, xp)

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        return self.model.forward(x, theta, xp)

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        return self.model.backward(x, theta, cache, coef, xp)

    def engine_pieces(self) -> EnginePieces:
        """One-pass SGD with the data drawn in the kernel."""
        return EnginePieces(unit=self.unit_pieces(), data=self.data_pieces())

    def unit_pieces(self) -> UnitPieces:
        """``c sigmoid(<a, x> + b)`` with ``theta = (a, b, c)``, for the compiled engine."""
        return UnitPieces.dense(ActivationPieces("sigmoid"), self.model.d, bias=True, output=True)

    def data_pieces(self) -> DataPieces:
        """Inputs on the sphere and the 3-spin target with this task's tensor."""
        return DataPieces("pspin", tensor=np.asarray(self.model.teacher()))

    def reduce(self, theta: Any, xp: Any) -> Any:
        """``(|a|, b, c)`` per unit: shape ``(..., N, 3)``."""
        d = self.model.d
        a_norm = xp.sqrt(xp.sum(theta[..., :d] * theta[..., :d], axis=-1, keepdims=True))
        return xp.concat([a_norm, theta[..., d:]], axis=-1)

    def sample_streams(self, rng: Any, n: int) -> Any:
        """Initial units, ``(R, n, D)`` (counter 0)."""
        return self.model.init_theta(rng, 0, n, rng.xp)

    def test_risk(
        self, rng: Any, counter: int, n_points: int, theta: Any, xp: Any
    ) -> dict[str, Any]:
        """Test loss on ``n_points`` fresh points (purpose :data:`PURPOSE_TEST`), as records."""
        g = rng.normal(counter, (n_points, self.model.d), purpose=PURPOSE_TEST)
        x = self.model.inputs_from_normals(g, xp)
        out = self.model.test_loss(theta, x, self.model.target(x, self.tensor, xp), xp)
        return {
            "risk": out["loss"],
            "risk_se": out["loss_se"],
            "residual_pos": out["residual_pos"],
            "residual_neg": out["residual_neg"],
        }


# ----------------------------------------------------------------------------- RVE's protocol

#: RVE's batch divisor: ``P = n / 5`` points per step, ``(n / 5)^2`` during the quench
BATCH_DIVISOR = 5


def protocol_batches(n: int, divisor: int = BATCH_DIVISOR) -> tuple[int, int]:
    """RVE's batches at width ``n``: ``(floor(n / divisor), floor((n / divisor)^2))``, each >= 1.

    The quench batch squares ``n / divisor`` before the floor, as the paper writes it
    (``P = (n/5)^2``): at ``n = 32`` the batches are 6 and 40 (not ``6^2 = 36``). The reproduction
    and ``meanfield study`` of a p-spin config both take their batches from here.
    """
    return max(1, math.floor(n / divisor)), max(1, math.floor((n / divisor) ** 2))


def rve_dt(step: float) -> float:
    """RVE's time step ``dt`` of the particle engine's ``particles.step``: ``2 step``.

    Their update is ``Z <- Z - dt grad_Z L_P`` with ``L_P = (n / 2P) sum_p (f - f_n)^2`` over
    the batch, so unit ``i`` moves by ``(dt / P) sum_p (f - f_n)(x_p) grad sigma_*(x_p;
    theta_i)`` (``f_n`` carries ``1/n``). The engine's online SGD moves it by ``(2 step / B)
    sum_b (y_b - f_n(x_b)) grad sigma_*`` (the gradient of the risk ``E (y - f_n)^2`` in
    mean-field time), hence ``dt = 2 step`` (tested on one step of the engine).
    """
    return 2.0 * step


def engine_step(dt: float) -> float:
    """``particles.step`` of RVE's time step ``dt``: ``dt / 2`` (the inverse of :func:`rve_dt`)."""
    return dt / 2.0


# ----------------------------------------------------------------------------- the config entry


def _build(spec: Any, pde: Any = None) -> PSpin:
    return PSpin(
        d=int(spec["d"]),
        teacher_seed=int(spec.get("teacher_seed", 0)),
        c_std=float(spec.get("c_std", INIT_STD_C)),
    )


def _particle_setup(model: PSpin, backend: Any) -> tuple[PSpinTask, PSpinTask]:
    """The particles hold the teacher tensor on the device; the task is also the initial law."""
    task = PSpinTask(model, backend.asarray(model.teacher()))
    return task, task


def _study_protocol(config: Any, n: int) -> list[str]:
    """Rotskoff and Vanden-Eijnden's batches at width ``n`` (:func:`protocol_batches`): ``P =
    n/5``, and ``(n/5)^2`` after ``quench_time`` when the config quenches."""
    batch, quench_batch = protocol_batches(n)
    out = [f"particles.batch={batch}"]
    if config.particles.get("quench_batch", 0) > 0:
        out.append(f"particles.quench_batch={quench_batch}")
    return out


ENTRY = register(
    ModelEntry(
        name="pspin",
        doc="Rotskoff and Vanden-Eijnden's spherical 3-spin benchmark (particles only)",
        keys={
            "model": {
                "d": int_at_least(
                    2, "input dimension d (x uniform on the sphere of radius sqrt(d))"
                ),
                "teacher_seed": int_at_least(0, "seed of the teacher tensor a_pqr", 0),
                "c_std": Field(
                    ("float",),
                    "standard deviation of the initial output weights c (not published by RVE)",
                    INIT_STD_C,
                    allowed("a finite float >= 0", lambda v: math.isfinite(v) and v >= 0),
                ),
            }
        },
        build=_build,
        reduced_dim=0,
        pde=False,
        no_pde_reason="its D = d + 2 parameters are too many for a grid",
        particle_setup=_particle_setup,
        study_overrides=_study_protocol,
    )
)
