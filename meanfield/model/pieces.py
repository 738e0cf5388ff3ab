"""What a model hands a compiled particle engine: plain numbers describing its unit and data.

A compiled kernel cannot call the array-API methods of a model, so the models describe
themselves with these small records instead. Each record is built by the model from its own
parameters (``IsotropicGaussians.unit_pieces()`` and so on): the model stays the one owner of
its unit, its data law and its kernel, and the engine (``particles.engine``) only reads the
numbers. The NumPy methods of the model remain the reference the engine is tested against.

The unit shape shared by every model with data is

.. math::

    \\sigma_*(x; \\theta) = c\\, h(\\langle w, x \\rangle + b),

with each of ``w`` (one entry per input), ``b`` and ``c`` either a column of ``theta`` or a
fixed number, and ``h`` one of the activations of :data:`ACTIVATION_KINDS`. The MMN models
describe their exact pair kernel by ``pair_views()`` instead (isotropic views of whitened
units, see :meth:`IsotropicGaussians.pair_views`).

A model hands all of its records over at once, as one :class:`EnginePieces` from its
``engine_pieces()`` (the protocol :class:`meanfield.model.base.ParticleEngineModel`); the engine
runs a method on the kernel whose records are there (``particles.engine.select_engine``). The
kernels know the kinds of :data:`ACTIVATION_KINDS` and :data:`DATA_KINDS` by their index here:
a new kind is added to these tuples and to the kernels' branches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATION_KINDS",
    "DATA_KINDS",
    "ActivationPieces",
    "UnitPieces",
    "DataPieces",
    "SeparablePieces",
    "NodePieces",
    "SphereUnitPieces",
    "EnginePieces",
]

#: activation codes of the compiled engine (index = code)
ACTIVATION_KINDS = ("piecewise_linear", "linear", "sigmoid", "tanh", "erf", "softplus")

#: data laws the engine draws inside its kernels; "host" means the model's own
#: ``sample_data`` is called for a chunk of steps and the arrays are handed over
DATA_KINDS = ("host", "mixture", "pspin")


@dataclass(frozen=True)
class ActivationPieces:
    """An activation ``h`` by kind; a piecewise-linear one with its knots and slope jumps.

    Attributes
    ----------
    kind : str
        One of :data:`ACTIVATION_KINDS`.
    knots : array of shape ``(n_knots,)``
        Knot positions ``t_i`` (piecewise-linear only).
    jumps : array of shape ``(n_knots,)``
        Slope jumps ``J_i`` at the knots: ``h(z) = left + sum_i J_i (z - t_i)_+``.
    left : float
        ``h`` left of the first knot.
    """

    kind: str
    knots: np.ndarray = field(default_factory=lambda: np.zeros(0))
    jumps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    left: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ACTIVATION_KINDS:
            raise ValueError(f"unknown activation kind {self.kind!r}; known: {ACTIVATION_KINDS}")

    @property
    def code(self) -> int:
        return ACTIVATION_KINDS.index(self.kind)


@dataclass(frozen=True)
class UnitPieces:
    """Where the parts of ``c h(<w, x> + b)`` live: a ``theta`` column, or a fixed value.

    Attributes
    ----------
    activation : ActivationPieces
    w_columns : tuple of int
        For each input ``j``, the ``theta`` column of ``w_j``, or -1 when it is fixed.
    w_fixed : tuple of float
        The fixed ``w_j`` (ignored where a column is given).
    b_column, c_column : int
        ``theta`` column of ``b`` and ``c``, or -1.
    b_fixed, c_fixed : float
    """

    activation: ActivationPieces
    w_columns: tuple[int, ...]
    w_fixed: tuple[float, ...]
    b_column: int = -1
    b_fixed: float = 0.0
    c_column: int = -1
    c_fixed: float = 1.0

    @property
    def n_inputs(self) -> int:
        return len(self.w_columns)

    @classmethod
    def dense(
        cls,
        activation: ActivationPieces,
        n_inputs: int,
        *,
        bias: bool = False,
        output: bool = False,
    ) -> UnitPieces:
        """``w`` in columns ``0..k-1``, then ``b`` and ``c`` (when trained) in that order."""
        b_column = n_inputs if bias else -1
        c_column = n_inputs + int(bias) if output else -1
        return cls(
            activation, tuple(range(n_inputs)), (0.0,) * n_inputs, b_column, 0.0, c_column, 1.0
        )


@dataclass(frozen=True)
class DataPieces:
    """The data law, for the laws the engine draws itself.

    Attributes
    ----------
    kind : str
        One of :data:`DATA_KINDS`.
    class_scales : array of shape ``(2, k)``
        ``"mixture"``: ``y = +1`` or ``-1`` with probability 1/2 (a uniform of purpose 1
        below 1/2 means ``+1``), ``x_j = class_scales[0 if y > 0 else 1, j] g_j`` with
        standard normals ``g`` of purpose 0.
    tensor : array of shape ``(d, d, d)``
        ``"pspin"``: ``x = sqrt(d) g / |g|``, ``y = (1/d) sum_pqr T_pqr x_p x_q x_r``.
    """

    kind: str
    class_scales: np.ndarray = field(default_factory=lambda: np.zeros((2, 0)))
    tensor: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ValueError(f"unknown data kind {self.kind!r}; known: {DATA_KINDS}")

    @property
    def code(self) -> int:
        return DATA_KINDS.index(self.kind)


@dataclass(frozen=True)
class SeparablePieces:
    """A model whose ``V`` and ``U`` are sums over the axes of ``theta`` (no data needed).

    ``V(theta) = sum_a sum_m poly[a, m] theta_a^m`` (``m = 0..4``) and
    ``U(theta, theta') = sum_a (linear[a] theta_a theta'_a + cosine[a] cos(theta_a - theta'_a))``.
    """

    poly: np.ndarray
    linear: np.ndarray
    cosine: np.ndarray
    r_sharp: float


@dataclass(frozen=True)
class NodePieces:
    """A quadrature rule for the population risk: ``E_x`` is ``sum_q weights_q`` at ``nodes``.

    Attributes
    ----------
    nodes : array of shape ``(n_nodes, k)``
    weights : array of shape ``(n_nodes,)``
    targets : array of shape ``(n_nodes,)``
        ``y`` at the nodes.
    """

    nodes: np.ndarray
    weights: np.ndarray
    targets: np.ndarray


@dataclass(frozen=True)
class SphereUnitPieces:
    """Gaussian-kernel units ``c exp(-alpha |x - y|^2 / 2)`` with centres ``y`` on the sphere
    ``S^{d-1}(sqrt d)`` learning a 3-spin target (the kernel-unit flows, method ``kernel_gd``):
    ``theta = (c, y_1, ..., y_d)``.

    Attributes
    ----------
    tensor : array of shape ``(d, d, d)``
        The target's coupling tensor ``a``: ``f(x) = (1/d) a(x, x, x)``.
    trace : array of shape ``(d,)``
        ``b_k = sum_p (a_pkp + a_kpp + a_ppk)``.
    coefficients : tuple of tuples of float
        Row ``k``: the series coefficients of ``h^(k)`` (``k = 0 .. 4``).
    alpha : float
        Inverse squared width of the units.
    """

    tensor: np.ndarray
    trace: np.ndarray
    coefficients: tuple[tuple[float, ...], ...]
    alpha: float

    @property
    def d(self) -> int:
        return int(self.tensor.shape[0])


@dataclass(frozen=True)
class EnginePieces:
    """Everything a model offers the compiled particle engine; ``None`` where it offers nothing.

    Each compiled kernel runs where its records are given (``particles.engine``):

    * one-pass SGD (``online_sgd``, ``noisy_sgd``) of a model with data: ``unit`` and ``data``;
    * the SGD methods of a model without data (its exact gradient), and ``gd``: ``separable``;
    * ``gd`` by quadrature: ``unit`` and ``nodes``; ``gd`` by the exact pair kernel: ``pairs``;
    * the kernel-unit flows (``kernel_gd``): ``sphere``.

    Attributes
    ----------
    unit : UnitPieces, optional
    data : DataPieces, optional
        With ``kind = "host"`` the engine calls the model's own ``sample_data``.
    separable : SeparablePieces, optional
    nodes : NodePieces, optional
    pairs : sequence of ``(view, scale)``, optional
        The exact pair kernel as isotropic views (:meth:`IsotropicGaussians.pair_views`).
    sphere : SphereUnitPieces, optional
    """

    unit: UnitPieces | None = None
    data: DataPieces | None = None
    separable: SeparablePieces | None = None
    nodes: NodePieces | None = None
    pairs: Sequence[tuple[Any, np.ndarray | None]] | None = None
    sphere: SphereUnitPieces | None = None
