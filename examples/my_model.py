"""A plug-in model in one file: a linear unit on scaled Gaussian inputs (used by plugin_model.py).

The unit is ``sigma_*(x; theta) = theta x`` with a scalar ``theta``, the data ``x ~ N(0, s^2)``
(``s = model.scale``) and ``y = teacher * x``. Then

    R_# = s^2 teacher^2,   V(theta) = -s^2 teacher theta,   U(theta, theta') = s^2 theta theta',

and ``grad Psi(theta; rho) = s^2 (m - teacher)``, ``m`` the mean of ``rho``: every unit feels the
same force. With noise (``dynamics.beta``) and no ridge the distributional dynamics
``d rho/dt = 2 div(rho grad Psi) + (2/beta) Laplace rho`` keeps a normal law normal:

    rho_t = N(m(t), v(t)),   m(t) = teacher + (m(0) - teacher) exp(-2 s^2 t),
                             v(t) = v(0) + 4 t / beta,

and the risk is ``R(rho_t) = s^2 (m(t) - teacher)^2``. :func:`exact` returns these.

The model offers the PDE (V, and U as a rank-one kernel) and the particles through its exact
population gradient: without a data sampler, ``particles.method = "noisy_sgd"`` is the Langevin
scheme ``theta_i <- theta_i - 2 s_k grad Psi(theta_i; mu_N) + 2 sqrt(s_k / beta) g_i``
(particles/methods.py). A config names it ``[model] name = "my_model:ENTRY"``, with this folder
on ``sys.path``. docs/extending.md explains every piece; tests/plugin_models/toy_model.py is the
same idea with a data sampler (online SGD) and the compiled engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meanfield.fields import finite_float, positive_float
from meanfield.model.base import FullSpaceModel, KernelFeatures
from meanfield.model.keys import FULL_GRID_SECTIONS, normal_law
from meanfield.model.registry import ModelEntry


@dataclass(frozen=True)
class ScaledLinear(FullSpaceModel):
    """``theta x`` learning ``teacher x``, ``x ~ N(0, scale^2)``: one grid axis, ``theta``."""

    teacher: float
    scale: float = 1.0

    @property
    def ndim(self) -> int:
        return 1

    @property
    def axis_names(self) -> tuple[str, ...]:
        return ("theta",)

    @property
    def r_sharp(self) -> float:  # E[y^2]
        return self.scale**2 * self.teacher**2

    # ---- the PDE: V and U at grid points of shape (M, 1)

    def potential(self, points):
        return -(self.scale**2) * self.teacher * np.asarray(points, dtype=np.float64)[:, 0]

    def kernel_features(self, points, scale_points=None):
        # U(p, q) = sum_k weights[k] features[p, k] features[q, k]: one feature, theta itself
        features = np.asarray(points, dtype=np.float64).reshape(-1, 1)
        return KernelFeatures(features, np.array([self.scale**2]))

    # ---- the particles: theta of shape (R, N, 1) (R replicas of N units), any array backend

    def population_risk(self, theta, order, backend):
        m = backend.xp.mean(theta[..., 0], axis=-1)  # (R,)
        return self.scale**2 * (m - self.teacher) ** 2

    def population_gradient(self, theta, order, backend):  # grad Psi(theta_i; mu_N)
        xp = backend.xp
        m = xp.mean(theta, axis=-2, keepdims=True)  # (R, 1, 1)
        return xp.broadcast_to(self.scale**2 * (m - self.teacher), theta.shape)


def exact(model: ScaledLinear, t, mean0: float, std0: float, beta: float):
    """The exact law ``N(m(t), v(t))`` of the DD from ``N(mean0, std0^2)``: ``(m, sqrt(v))``."""
    t = np.asarray(t, dtype=np.float64)
    m = model.teacher + (mean0 - model.teacher) * np.exp(-2.0 * model.scale**2 * t)
    return m, np.sqrt(std0**2 + 4.0 * t / beta)


def _build(model_spec, pde_spec=None):
    return ScaledLinear(teacher=model_spec["teacher"], scale=model_spec["scale"])


ENTRY = ModelEntry(
    name="scaled_linear",
    doc="a linear unit theta x learning teacher x, x ~ N(0, scale^2) (examples/my_model.py)",
    keys={
        "model": {
            "teacher": finite_float("the teacher: y = teacher * x"),
            "scale": positive_float("standard deviation of the input x", 1.0),
        },
        **FULL_GRID_SECTIONS,  # [init] mean, std (a normal law) and [pde] bounds
    },
    build=_build,
    law=normal_law,
    reduced_dim=1,
)
ScaledLinear.model_entry = ENTRY  # so that "my_model:ScaledLinear" names the model too
