"""A generic low-dimensional teacher-student model on the full parameter grid (SPEC 2, item 3).

Inputs ``x in R^k`` (``k = 1`` or ``2``) with law ``N(0, I_k)`` (``"gaussian"``) or uniform on
``[-1, 1]^k`` (``"uniform"``); target ``y = f(x)``, a :class:`TeacherNetwork` or a named
function of :data:`TARGETS`. The unit is

.. math::

    \\sigma_*(x; \\theta) = a\\, s(\\langle w, x\\rangle + b),

with a smooth activation ``s`` (:mod:`~meanfield.model.integrals.smooth`) and any subset of
``(a, w_1, .., w_k, b)`` trained: those form ``theta in R^D``, ``D = 1, 2`` or ``3``, in the
order given by ``trained``; the others stay at their fixed values. No reduction: the PDE grid
is the ``theta`` space itself. With a tensor-product Gauss rule ``(x_q, omega_q)`` of the input
law (:mod:`~meanfield.model.integrals.quadrature`),

.. math::

    V(\\theta) = -\\sum_q \\omega_q y_q \\sigma_*(x_q; \\theta), \\qquad
    U(\\theta, \\theta') = \\sum_q \\omega_q \\sigma_*(x_q; \\theta) \\sigma_*(x_q; \\theta'),
    \\qquad R_\\# = \\sum_q \\omega_q y_q^2 .

``U`` is thus exactly low-rank, with features ``sigma_*(x_q; theta)`` and weights
``omega_q``. On a grid the columns are optionally compressed (``compress_tol``): with
``A = Phi diag(sqrt(omega))`` on the scale points (``Phi`` the ``M x Q`` feature table) and
``V_r`` an orthonormal basis of its dominant rows (a randomized range finder,
:meth:`TeacherStudent.compression_basis`), the features become ``A V_r`` (weights 1). The rank
``r`` is the smallest whose residual kernel ``A (I - V_r V_r^T) A^T`` has diagonal
``<= compress_tol * max_i U_ii`` on the scale points; since that kernel is positive
semi-definite, every entry of ``U`` is then off by at most ``compress_tol * max_i U_ii`` there
(Cauchy-Schwarz).

The particles use the same unit function, the same coordinates (``reduce`` is the identity)
and the same nodes: ``R(mu_N) = sum_q omega_q (y_q - mean_i sigma_*(x_q; theta_i))^2``, so
population gradient descent follows exactly the DD of this quadrature model. Online SGD draws
``x`` from the input law itself; its drift is the exact one, up to the quadrature error, which
the order choice keeps below ``quad_tol``.

Choice of the quadrature order
------------------------------
With ``quad_order = None`` the number of nodes per input axis is the smallest ``n`` of a ladder
``4, 6, 8, 11, 16, ...`` (factor ``sqrt(2)``) such that doubling ``n`` moves ``V`` and ``U`` on
the check points (5 equispaced values per axis of ``bounds``, corners included: the largest
``|w|``, the sharpest integrands) and ``R_#`` by at most ``quad_tol`` times the scale
``max(R_#, max U(theta, theta))``. Gauss rules converge geometrically for these analytic
integrands, so the change under doubling estimates the error of ``n``.

References
----------
S. Mei, A. Montanari, P.-M. Nguyen, PNAS 115 (2018), eq. (7).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...backends.arrays import Backend
from ...rng import Purpose
from ..base import KernelFeatures, ReducedModel
from ..integrals.quadrature import (
    INPUT_LAWS,
    GaussRule,
    QuadratureTables,
    box_points,
    converged_order,
    gauss_rule,
    map_points,
    order_ladder,
    point_chunks,
)
from ..integrals.smooth import SmoothActivation, smooth_activation
from ..pieces import ActivationPieces, DataPieces, EnginePieces, NodePieces, UnitPieces
from .targets import TARGETS, TeacherNetwork

__all__ = ["TeacherStudent", "TeacherNetwork", "TARGETS", "QuadratureTables"]

#: parameter names of a unit, by input dimension ``k``
PARAMETER_NAMES = {1: ("a", "w", "b"), 2: ("a", "w1", "w2", "b")}
#: random-stream purpose of the inputs
PURPOSE_DATA = Purpose.DATA
#: points per axis of the box on which the order choice checks V and U
N_CHECK = 5
#: largest order per axis tried by the convergence search, by ``k``
MAX_ORDER = {1: 2048, 2: 1024}
#: instance caches filled on use (device copies of the rule, compression bases)
_CACHES = ("_device_cache", "_basis_cache")
#: initial width (times k^2) and seed of the random sketch of the feature compression
SKETCH_START = 64
SKETCH_SEED = 0


@dataclass(frozen=True)
class TeacherStudent(ReducedModel):
    """Units ``a s(<w, x> + b)`` learning ``y = f(x)``, ``x in R^k``, on the full ``theta`` grid.

    Parameters
    ----------
    k : {1, 2}
        Input dimension.
    input_law : {"gaussian", "uniform"}
        ``N(0, I_k)`` or uniform on ``[-1, 1]^k``.
    target : str or TeacherNetwork
        A name of :data:`TARGETS` or a teacher network with ``k`` inputs.
    activation : str
        ``"tanh"``, ``"erf"`` or ``"softplus"`` (:mod:`~meanfield.model.integrals.smooth`).
    trained : tuple of str
        The trained parameters, in the order of the ``theta`` coordinates: a subset of
        ``("a", "w", "b")`` (``k = 1``) or ``("a", "w1", "w2", "b")`` (``k = 2``), 1 to 3 names.
    fixed_a, fixed_w, fixed_b : float, tuple of k floats (``None``: all ones), float
        Values of the parameters that are not trained.
    bounds : tuple of (lo, hi) per theta coordinate, optional
        The box (the PDE grid's) on which the automatic order choice certifies ``V`` and ``U``;
        :meth:`validate` refuses a grid that leaves it. Particles outside it still get exact
        quadrature-model values, only with a larger quadrature error.
    quad_order : int, optional
        Gauss nodes per input axis; ``None`` chooses it from ``quad_tol`` on ``bounds``.
    quad_tol : float
        Tolerance of the order choice, relative to ``max(R_#, max U(theta, theta))``.
    compress_tol : float or None
        Column compression of the kernel features on a grid (see the module docstring);
        ``None`` keeps one feature per node.
    """

    k: int = 1
    input_law: str = "gaussian"
    target: str | TeacherNetwork = "sin"
    activation: str = "tanh"
    trained: tuple[str, ...] = ("w", "b")
    fixed_a: float = 1.0
    fixed_w: tuple[float, ...] | None = None
    fixed_b: float = 0.0
    bounds: tuple[tuple[float, float], ...] | None = None
    quad_order: int | None = None
    quad_tol: float = 1e-8
    compress_tol: float | None = 1e-12

    def __post_init__(self) -> None:
        if self.k not in PARAMETER_NAMES:
            raise ValueError(f"k must be 1 or 2, got {self.k}")
        if self.input_law not in INPUT_LAWS:
            raise ValueError(
                f"unknown input law {self.input_law!r}; allowed: {', '.join(INPUT_LAWS)}"
            )
        smooth_activation(self.activation)
        trained = tuple(self.trained)
        names = PARAMETER_NAMES[self.k]
        if (
            not 1 <= len(trained) <= 3
            or len(set(trained)) != len(trained)
            or not set(trained) <= set(names)
        ):
            raise ValueError(f"trained must be 1 to 3 distinct names among {names}, got {trained}")
        object.__setattr__(self, "trained", trained)
        fixed_w = (1.0,) * self.k if self.fixed_w is None else tuple(float(v) for v in self.fixed_w)
        if len(fixed_w) != self.k:
            raise ValueError(f"fixed_w needs k = {self.k} values, got {fixed_w}")
        object.__setattr__(self, "fixed_w", fixed_w)
        self._check_target()
        if self.bounds is not None:
            bounds = tuple((float(lo), float(hi)) for lo, hi in self.bounds)
            if len(bounds) != len(trained) or any(hi <= lo for lo, hi in bounds):
                raise ValueError(
                    f"bounds needs one (lo, hi) with lo < hi per trained "
                    f"parameter {trained}, got {self.bounds}"
                )
            object.__setattr__(self, "bounds", bounds)
        if self.quad_order is None and self.bounds is None:
            raise ValueError("give quad_order, or the bounds on which to choose it")
        if self.quad_order is not None and int(self.quad_order) < 1:
            raise ValueError(f"quad_order must be >= 1, got {self.quad_order}")
        if not self.quad_tol > 0 or (self.compress_tol is not None and not self.compress_tol > 0):
            raise ValueError("quad_tol and compress_tol must be positive")

    def __getstate__(self) -> dict:
        """Pickle the fields and the host tables, not the per-backend and per-grid caches."""
        return {k: v for k, v in self.__dict__.items() if k not in _CACHES}

    def _check_target(self) -> None:
        if isinstance(self.target, TeacherNetwork):
            if self.target.k != self.k:
                raise ValueError(f"the teacher has {self.target.k} inputs, the model k = {self.k}")
        elif self.target not in TARGETS:
            raise ValueError(
                f"unknown target {self.target!r}; allowed: "
                f"{', '.join(sorted(TARGETS))} or a TeacherNetwork"
            )
        elif TARGETS[self.target][1] > self.k:
            raise ValueError(f"target {self.target!r} needs k >= {TARGETS[self.target][1]}")

    # ---- the pointwise model: target and unit, xp-generic ------------------------------------

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return len(self.trained)

    @property
    def dim(self) -> int:
        """Parameter dimension ``D`` of a unit (the particles' ``theta`` is the grid's)."""
        return len(self.trained)

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.trained

    @property
    def act(self) -> SmoothActivation:
        return smooth_activation(self.activation)

    def target_fn(self, x: Any, xp: Any = np) -> Any:
        """``y = f(x)`` for ``x`` of shape ``(..., k)``; returns ``(...)``."""
        if isinstance(self.target, TeacherNetwork):
            return self.target(x, xp)
        return TARGETS[self.target][0](x, xp)

    def _parameter(self, name: str, theta: Any, xp: Any) -> Any:
        """A unit parameter as an array of shape ``(..., 1, N)`` (trained) or a float (fixed)."""
        if name in self.trained:
            return xp.expand_dims(theta[..., self.trained.index(name)], axis=-2)
        if name == "a":
            return self.fixed_a
        if name == "b":
            return self.fixed_b
        return self.fixed_w[0 if name == "w" else int(name[1:]) - 1]

    def _preactivation(self, x: Any, theta: Any, xp: Any) -> Any:
        """``z = <w_i, x_b> + b_i`` of shape ``(..., B, N)``."""
        names = PARAMETER_NAMES[self.k][1:-1]
        z = self._parameter("b", theta, xp) + x[..., 0:1] * self._parameter(names[0], theta, xp)
        for axis in range(1, self.k):
            z = z + x[..., axis : axis + 1] * self._parameter(names[axis], theta, xp)
        if z.shape[-1] != theta.shape[-2]:  # only "a" trained: z does not depend on the unit
            z = z + 0.0 * xp.expand_dims(theta[..., 0], axis=-2)
        return z

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        """Unit outputs ``sigma_*(x_b; theta_i)`` and the cache for :meth:`backward`.

        Parameters
        ----------
        x : array of shape ``(..., B, k)``
        theta : array of shape ``(..., N, D)``, leading axes broadcasting with ``x``'s
        xp : array namespace

        Returns
        -------
        values : array of shape ``(..., B, N)``
        cache : tuple ``(s(z), a s'(z))``, both of shape ``(..., B, N)``
        """
        z = self._preactivation(x, theta, xp)
        a = self._parameter("a", theta, xp)
        s = self.act(z, xp)
        return a * s, (s, a * self.act.derivative(z, xp))

    def unit(self, x: Any, theta: Any, xp: Any = np) -> Any:
        """``sigma_*(x_b; theta_i)``, shape ``(..., B, N)`` (see :meth:`forward`)."""
        return self._parameter("a", theta, xp) * self.act(self._preactivation(x, theta, xp), xp)

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        """``sum_b coef[..., b, i] grad_theta sigma_*(x_b; theta_i)``, shape ``(..., N, D)``.

        ``grad_a sigma_* = s(z)``, ``grad_{w_j} sigma_* = a s'(z) x_j``, ``grad_b sigma_* =
        a s'(z)``. ``coef`` broadcasts with ``(..., B, N)`` (e.g. ``(R, B, 1)``).
        """
        s, slope = cache
        weighted = coef * slope  # (..., B, N)
        w_names = PARAMETER_NAMES[self.k][1:-1]
        along_x = (
            xp.matrix_transpose(weighted) @ x if set(w_names) & set(self.trained) else None
        )  # (..., N, k): sum_b weighted[b, i] x_b
        columns = []
        for name in self.trained:
            if name == "a":
                columns.append(xp.sum(coef * s, axis=-2))
            elif name == "b":
                columns.append(xp.sum(weighted, axis=-2))
            else:
                columns.append(along_x[..., w_names.index(name)])
        return xp.stack(columns, axis=-1)

    def unit_gradient(self, x: Any, theta: Any, xp: Any = np) -> Any:
        """``grad_theta sigma_*(x_b; theta_i)``, shape ``(..., B, N, D)`` (setup and tests)."""
        s, slope = self.forward(x, theta, xp)[1]
        w_names = PARAMETER_NAMES[self.k][1:-1]
        columns = []
        for name in self.trained:
            if name == "a":
                columns.append(s)
            elif name == "b":
                columns.append(slope)
            else:
                axis = w_names.index(name)
                columns.append(slope * x[..., axis : axis + 1])
        return xp.stack(columns, axis=-1)

    def engine_pieces(self) -> EnginePieces:
        """SGD on the model's own draws, and population GD through the quadrature nodes."""
        return EnginePieces(
            unit=self.unit_pieces(), data=self.data_pieces(), nodes=self.node_pieces()
        )

    def unit_pieces(self) -> UnitPieces:
        """``a act(<w, x> + b)`` with the trained parameters' columns, for the compiled engine."""
        column = {name: i for i, name in enumerate(self.trained)}
        w_names = PARAMETER_NAMES[self.k][1:-1]
        return UnitPieces(
            ActivationPieces(self.activation),
            tuple(column.get(name, -1) for name in w_names),
            tuple(float(v) for v in self.fixed_w),
            column.get("b", -1),
            float(self.fixed_b),
            column.get("a", -1),
            float(self.fixed_a),
        )

    def data_pieces(self) -> DataPieces:
        """The target is a general function: the engine takes :meth:`sample_data`'s arrays."""
        return DataPieces("host")

    def node_pieces(self) -> NodePieces:
        """The quadrature rule of the exact risk (the one the PDE uses)."""
        tables = self.tables
        return NodePieces(
            np.asarray(tables.rule.nodes, dtype=np.float64),
            np.asarray(tables.rule.weights, dtype=np.float64),
            np.asarray(tables.y, dtype=np.float64),
        )

    def reduce(self, theta: Any, xp: Any) -> Any:
        """The identity: the grid is the full parameter space."""
        return theta

    # ---- the quadrature (host, NumPy) --------------------------------------------------------

    def rule_of_order(self, order: int) -> tuple[GaussRule, np.ndarray]:
        """The Gauss rule with ``order`` nodes per axis and the target at its nodes."""
        rule = gauss_rule(self.input_law, self.k, order)
        return rule, np.asarray(self.target_fn(rule.nodes), dtype=np.float64)

    @functools.cached_property
    def tables(self) -> QuadratureTables:
        """The rule used by both the PDE and the particles (built on first use, then kept)."""
        if self.quad_order is not None:
            rule, y = self.rule_of_order(int(self.quad_order))
            return QuadratureTables(rule, y, math.nan)
        check = box_points(self.bounds, N_CHECK)

        def quantities(order: int) -> np.ndarray:
            rule, y = self.rule_of_order(order)
            phi = self.unit(rule.nodes, check).T  # (C, Q)
            u = (phi * rule.weights) @ phi.T
            return np.concatenate([[rule.weights @ y**2], -phi @ (rule.weights * y), u.ravel()])

        reference = quantities(32)
        scale = max(
            reference[0],
            float(np.max(np.diag(reference[1 + len(check) :].reshape(len(check), -1)))),
            1e-300,
        )
        order, change = converged_order(
            lambda n: quantities(n) / scale, self.quad_tol, order_ladder(4, MAX_ORDER[self.k])
        )
        rule, y = self.rule_of_order(order)
        return QuadratureTables(rule, y, change)

    @property
    def r_sharp(self) -> float:
        tables = self.tables
        return float(tables.rule.weights @ tables.y**2)

    def potential(self, points: np.ndarray) -> np.ndarray:
        """``V = -sum_q omega_q y_q sigma_*(x_q; theta)``, shape ``(M,)``."""
        tables = self.tables
        wy = tables.rule.weights * tables.y
        return map_points(
            lambda p: -(wy @ self.unit(tables.rule.nodes, p)), points, tables.rule.n_nodes
        )

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        """``grad V``, shape ``(M, D)``."""
        tables = self.tables
        coef = -(tables.rule.weights * tables.y)[:, None]
        nodes = tables.rule.nodes

        def grad(p: np.ndarray) -> np.ndarray:
            return self.backward(nodes, p, self.forward(nodes, p, np)[1], coef, np)

        return map_points(grad, points, tables.rule.n_nodes)

    def _raw_features(self, points: np.ndarray) -> np.ndarray:
        """``sigma_*(x_q; theta_i)``, ``(M, Q)``."""
        return self.unit(self.tables.rule.nodes, np.asarray(points, dtype=np.float64)).T

    def kernel_features(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> KernelFeatures:
        """``U`` as features ``sigma_*(x_q; theta)`` with weights ``omega_q``, or compressed."""
        points = np.asarray(points, dtype=np.float64)
        basis = self.compression_basis(points if scale_points is None else scale_points)
        n_nodes = self.tables.rule.n_nodes
        if basis is None:
            features = map_points(self._raw_features, points, n_nodes)
            return KernelFeatures(features, self.tables.rule.weights.copy())
        features = map_points(lambda p: self._raw_features(p) @ basis, points, n_nodes)
        return KernelFeatures(features, np.ones(basis.shape[1]))

    def kernel_feature_gradients(
        self, points: np.ndarray, scale_points: np.ndarray | None = None
    ) -> np.ndarray:
        """Gradients of the columns of :meth:`kernel_features` (same basis): ``(M, P, D)``."""
        points = np.asarray(points, dtype=np.float64)
        basis = self.compression_basis(points if scale_points is None else scale_points)
        nodes = self.tables.rule.nodes

        def grads(p: np.ndarray) -> np.ndarray:
            g = np.moveaxis(self.unit_gradient(nodes, p), 0, 1)  # (m, Q, D)
            return g if basis is None else np.einsum("mqd,qr->mrd", g, basis)

        return map_points(grads, points, self.tables.rule.n_nodes * self.dim)

    def compression_basis(self, scale_points: np.ndarray) -> np.ndarray | None:
        """``diag(sqrt(omega)) V_r`` of shape ``(Q, r)``, or ``None`` without compression.

        Cached for the last ``scale_points`` seen (the PDE asks for it several times).
        """
        if self.compress_tol is None:
            return None
        scale_points = np.ascontiguousarray(scale_points, dtype=np.float64)
        key = (scale_points.shape, hash(scale_points.tobytes()))
        cache = self.__dict__.setdefault("_basis_cache", {})
        if key not in cache:
            cache.clear()
            cache[key] = self._compute_basis(scale_points)
        return cache[key]

    def _compute_basis(self, points: np.ndarray) -> np.ndarray:
        """Randomized range finder on the rows of ``A``, rank from the certified residual.

        Three chunked passes over the points, never holding ``A`` (``M x Q``): ``Y = A G``
        (``G`` a ``Q x l`` Gaussian sketch, fixed seed), ``B = orth(Y)^T A``, whose right
        singular vectors ``v_j`` span the dominant rows of ``A``; then the residual diagonal
        ``|A_i|^2 - sum_{j < r} (A_i v_j)^2`` for every ``r``. The smallest ``r`` with
        ``max_i`` residual ``<= compress_tol * max_i |A_i|^2`` is kept; if even ``r = l`` fails,
        ``l`` doubles (up to ``Q``, where the range finder is exact).
        """
        root = np.sqrt(self.tables.rule.weights)
        n_nodes = root.shape[0]
        rows = [slice(c.start, c.stop) for c in point_chunks(points.shape[0], n_nodes)]

        def a_rows(chunk: slice) -> np.ndarray:
            return self._raw_features(points[chunk]) * root

        sketch_rng = np.random.default_rng(SKETCH_SEED)
        width = min(n_nodes, SKETCH_START * self.k**2)
        while True:
            sketch = sketch_rng.standard_normal((n_nodes, width))
            y, _ = np.linalg.qr(np.concatenate([a_rows(c) @ sketch for c in rows]))
            small = sum(y[c].T @ a_rows(c) for c in rows)  # (l, Q)
            vectors = np.linalg.svd(small, full_matrices=False)[2].T  # (Q, l)
            residual = np.zeros(vectors.shape[1])  # max_i residual after r = 1, 2, .., l
            largest = 0.0  # max_i |A_i|^2 = max_i U_ii
            for c in rows:
                a = a_rows(c)
                norms = np.sum(a * a, axis=1)
                captured = np.cumsum((a @ vectors) ** 2, axis=1)
                residual = np.maximum(residual, np.max(norms[:, None] - captured, axis=0))
                largest = max(largest, float(norms.max()))
            ok = np.nonzero(residual <= self.compress_tol * largest)[0]
            if ok.size or width >= n_nodes:
                rank = int(ok[0]) + 1 if ok.size else vectors.shape[1]
                return root[:, None] * vectors[:, :rank]
            width = min(n_nodes, 2 * width)

    # ---- particles: exact population risk and gradient with the same nodes -------------------

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        """Fresh samples for every stream: ``x`` ``(R, batch, k)``, ``y = f(x)`` ``(R, batch)``.

        ``x`` from the ``purpose = 0`` stream: standard normals, or ``2 u - 1`` with ``u``
        uniform on ``[0, 1)``.
        """
        if self.input_law == "gaussian":
            x = rng.normal(counter, (batch, self.k), purpose=PURPOSE_DATA)
        else:
            x = 2.0 * rng.uniform(counter, (batch, self.k), purpose=PURPOSE_DATA) - 1.0
        return x, self.target_fn(x, xp)

    def _device_tables(self, backend: Backend) -> tuple[Any, Any, Any]:
        """Nodes ``(Q, k)``, weights ``(Q,)`` and ``y`` ``(Q,)`` on ``backend`` (moved once)."""
        cache = self.__dict__.setdefault("_device_cache", {})
        if backend.name not in cache:
            tables = self.tables
            cache[backend.name] = (
                backend.asarray(tables.rule.nodes),
                backend.asarray(tables.rule.weights),
                backend.asarray(tables.y),
            )
        return cache[backend.name]

    def population_risk(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``R(mu_N) = sum_q omega_q (y_q - (1/N) sum_i sigma_*(x_q; theta_i))^2``, ``(R,)``.

        ``order`` is ignored: the model's own rule is used, the one the PDE sees.
        """
        xp = backend.xp
        nodes, weights, y = self._device_tables(backend)
        residual = y - xp.mean(self.unit(nodes, theta, xp), axis=-1)  # (R, Q)
        return xp.sum(weights * residual * residual, axis=-1)

    def population_gradient(self, theta: Any, order: int | None, backend: Backend) -> Any:
        """``grad Psi(theta_i; mu_N) = sum_q omega_q (y_hat(x_q) - y_q) grad sigma_*(x_q;
        theta_i)``, shape ``(R, N, D)``; ``grad_{theta_i} R(mu_N) = (2/N)`` times this."""
        xp = backend.xp
        nodes, weights, y = self._device_tables(backend)
        values, cache = self.forward(nodes, theta, xp)
        coef = xp.expand_dims(weights * (xp.mean(values, axis=-1) - y), axis=-1)  # (R, Q, 1)
        return self.backward(nodes, theta, cache, coef, xp)

    # ---- grid checks --------------------------------------------------------------------------

    def validate(self, grid: Any) -> None:
        if grid.ndim != self.dim:
            raise ValueError(f"the grid has {grid.ndim} axes, the model trains {self.trained}")
        if self.bounds is None or self.quad_order is not None:
            return
        for (lo, hi), (blo, bhi), name in zip(grid.bounds, self.bounds, self.trained, strict=True):
            slack = 1e-9 * max(1.0, abs(blo), abs(bhi))
            if lo < blo - slack or hi > bhi + slack:
                raise ValueError(
                    f"the grid axis {name} = [{lo}, {hi}] leaves the box "
                    f"[{blo}, {bhi}] on which the quadrature was certified"
                )
