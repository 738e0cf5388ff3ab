"""The characteristics solver: the noiseless DD on weighted points, in any number of axes.

- :mod:`.rule`: the initial law as a composite Gauss rule in normal scores (:class:`CellRule`).
- :mod:`.field`: the velocity, risk and free energy of weighted points (the model's V and
  low-rank U).
- :mod:`.stepper`: embedded Runge-Kutta pairs and the step-size controller.
- :mod:`.solver`: the time loop (:func:`integrate_points`), its invariants and frames.
- :mod:`.refine`: splitting cells where the flow map stretches, pass by pass.
- :mod:`.density`: densities of the points on a stated grid.
- :mod:`.adjoint`: the reverse pass, ``phi_0`` and the CLT prediction.
"""

from .field import ModelAtPoints, ridge_is_euclidean
from .refine import CharacteristicsRun, Refinement, solve_with_refinement
from .rule import CellRule, axis_laws_of
from .solver import (
    CharacteristicsPDE,
    PointInvariantTracker,
    PointResume,
    StepRecord,
    integrate_points,
)

__all__ = [
    "CellRule",
    "axis_laws_of",
    "ModelAtPoints",
    "ridge_is_euclidean",
    "CharacteristicsPDE",
    "PointInvariantTracker",
    "PointResume",
    "StepRecord",
    "integrate_points",
    "Refinement",
    "CharacteristicsRun",
    "solve_with_refinement",
]
