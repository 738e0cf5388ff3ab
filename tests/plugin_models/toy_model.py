"""A user model declared entirely outside the package: a linear unit under another name.

``sigma_*(x; theta) = <theta, x>``, ``x ~ N(0, I_D)``, ``y = <teacher, x> + e`` with
``e ~ N(0, noise)``; so ``V(theta) = -<teacher, theta>``, ``U(theta, theta') = <theta, theta'>``
and the mean of the DD solves ``dm/dtau = -2 (m - teacher)`` exactly (noiseless, no ridge):
``m(tau) = teacher + (m_0 - teacher) e^{-2 tau}``, whatever the grid or the number of particles
(population GD keeps the empirical mean on the same curve).

Config: ``[model] name = "tests.plugin_models.toy_model:ToyLinear"`` (the class carries its
entry as ``model_entry``) or ``"tests.plugin_models.toy_model:ENTRY"`` (the entry itself).

The model also runs on the compiled particle engine: ``engine_pieces`` describes it (the
protocol :class:`meanfield.model.base.ParticleEngineModel`; docs/extending.md, "Running a model
on the compiled engine").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.fields import Field, allowed, is_finite_number
from meanfield.model.base import FullSpaceModel, KernelFeatures
from meanfield.model.keys import FULL_GRID_SECTIONS, normal_law
from meanfield.model.pieces import (
    ActivationPieces,
    DataPieces,
    EnginePieces,
    SeparablePieces,
    UnitPieces,
)
from meanfield.model.registry import ModelEntry
from meanfield.rng import Purpose


@dataclass(frozen=True)
class ToyLinear(FullSpaceModel):
    """``<theta, x>`` learning ``<teacher, x> + noise``; ``D = len(teacher)`` grid axes."""

    teacher: tuple[float, ...]
    noise: float = 0.0

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return len(self.teacher)

    @property
    def axis_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(f"t{i}" for i in range(self.ndim))

    @property
    def r_sharp(self) -> float:
        return float(np.sum(np.square(self.teacher))) + self.noise

    # ---- the PDE: V and a rank-D kernel on the grid points (n, D)

    def potential(self, points: np.ndarray) -> np.ndarray:
        return -np.asarray(points, dtype=np.float64) @ np.asarray(self.teacher)

    def kernel_features(self, points: np.ndarray, scale_points: Any = None) -> KernelFeatures:
        features = np.array(points, dtype=np.float64).reshape(-1, self.ndim)
        return KernelFeatures(features, np.ones(self.ndim))

    def potential_gradient(self, points: np.ndarray) -> np.ndarray:
        n = np.asarray(points).shape[0]
        return np.broadcast_to(-np.asarray(self.teacher), (n, self.ndim)).copy()

    def kernel_feature_gradients(self, points: np.ndarray, scale_points: Any = None) -> np.ndarray:
        n = np.asarray(points).shape[0]
        return np.broadcast_to(np.eye(self.ndim), (n, self.ndim, self.ndim)).copy()

    # ---- the particles: theta (R, N, D), data x (R, B, D), y (R, B)

    def population_gradient(self, theta: Any, order: Any, backend: Any) -> Any:
        xp = backend.xp
        star = backend.asarray(np.asarray(self.teacher), theta.dtype)
        return xp.broadcast_to(xp.mean(theta, axis=-2, keepdims=True) - star, theta.shape)

    def population_risk(self, theta: Any, order: Any, backend: Any) -> Any:
        xp = backend.xp
        star = backend.asarray(np.asarray(self.teacher), theta.dtype)
        return self.noise + xp.sum((xp.mean(theta, axis=-2) - star) ** 2, axis=-1)

    def sample_data(self, rng: Any, counter: int, batch: int, xp: Any) -> tuple[Any, Any]:
        x = rng.normal(counter, (batch, self.ndim), purpose=Purpose.DATA)
        y = sum(s * x[..., a] for a, s in enumerate(self.teacher))
        if self.noise > 0.0:
            y = y + math.sqrt(self.noise) * rng.normal(counter, (batch,), purpose=Purpose.LABEL)
        return x, y

    def forward(self, x: Any, theta: Any, xp: Any) -> tuple[Any, Any]:
        return x @ xp.matrix_transpose(theta), None

    def backward(self, x: Any, theta: Any, cache: Any, coef: Any, xp: Any) -> Any:
        return xp.broadcast_to(xp.matrix_transpose(coef) @ x, theta.shape)

    # ---- the compiled engine: the same unit, data and potentials as plain numbers

    def engine_pieces(self) -> EnginePieces:
        """SGD: the unit ``1 * linear(<w, x>)``, ``w`` in the columns of ``theta``, on the draws
        of :meth:`sample_data` ("host"); GD: ``V = -<teacher, theta>`` and
        ``U = <theta, theta'>``, sums over the axes (``poly[a] = (0, -teacher_a, 0, 0, 0)``,
        ``linear[a] = 1``)."""
        poly = np.zeros((self.ndim, 5))
        poly[:, 1] = -np.asarray(self.teacher)
        return EnginePieces(
            unit=UnitPieces.dense(ActivationPieces("linear"), self.ndim),
            data=DataPieces("host"),
            separable=SeparablePieces(poly, np.ones(self.ndim), np.zeros(self.ndim), self.r_sharp),
        )


def _build(spec: Any, pde: Any = None) -> ToyLinear:
    return ToyLinear(teacher=tuple(spec["teacher"]), noise=float(spec["noise"]))


ENTRY = ModelEntry(
    name="toy_linear",
    doc="a linear unit learning a linear teacher, declared outside the package",
    keys={
        "model": {
            "teacher": Field(
                ("array",),
                "teacher vector: y = <teacher, x> + noise, 1 or 2 entries",
                check=allowed(
                    "an array of 1 or 2 finite floats",
                    lambda v: 1 <= len(v) <= 2 and all(map(is_finite_number, v)),
                ),
                convert=lambda v, ctx: tuple(float(x) for x in v),
            ),
            "noise": Field(
                ("float",),
                "variance of the label noise",
                0.0,
                allowed("a finite float >= 0", lambda v: 0 <= v < math.inf),
            ),
        },
        **FULL_GRID_SECTIONS,
    },
    build=_build,
    law=normal_law,
    reduced_dim=lambda spec: len(spec["teacher"]),
)

ToyLinear.model_entry = ENTRY  # the class carries its entry
