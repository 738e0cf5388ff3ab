"""The model layer: V, U and their gradients, written once for the PDE and the particles.

Each model module registers a :class:`ModelEntry` (its config keys, builders, grid axes) at
import; importing this package imports them all, which fills the registry
(:mod:`meanfield.model.registry`, where the protocol of a user model is described).
"""

from .activations import ACTIVATIONS, PiecewiseLinear, activation_from_spec
from .base import KernelFeatures, ReducedModel
from .cosine import CosineInteraction
from .laws import (
    GridTooSmallError,
    NormalLaw,
    ReluSelectionLaw,
    ScaledChiLaw,
    ScaledChiPairLaw,
    initial_density,
)
from .mmn.anisotropic import AnisotropicGaussians
from .mmn.isotropic import IsotropicGaussians
from .mmn.relu_isotropic import ReluIsotropic, ReluIsotropicLaw
from .mmn.relu_selection import ReluSelection
from .registry import ModelEntry, Tolerance, builtin_entries, model_entry, register
from .rve.pspin import PSpin, PSpinTask
from .solvable import (
    FeatureModel,
    LinearUnit,
    QuadraticPotential,
    linear_unit_moments,
    ou_moments,
)
from .teacher_student.entry import ENTRY as _TEACHER_STUDENT_ENTRY  # noqa: F401 (registers)
from .teacher_student.model import TeacherNetwork, TeacherStudent

__all__ = [
    "ACTIVATIONS",
    "PiecewiseLinear",
    "activation_from_spec",
    "KernelFeatures",
    "ReducedModel",
    "IsotropicGaussians",
    "AnisotropicGaussians",
    "ReluSelection",
    "ReluIsotropic",
    "ReluIsotropicLaw",
    "TeacherStudent",
    "TeacherNetwork",
    "QuadraticPotential",
    "LinearUnit",
    "CosineInteraction",
    "PSpin",
    "PSpinTask",
    "FeatureModel",
    "ou_moments",
    "linear_unit_moments",
    "ScaledChiLaw",
    "ScaledChiPairLaw",
    "NormalLaw",
    "ReluSelectionLaw",
    "initial_density",
    "GridTooSmallError",
    "ModelEntry",
    "Tolerance",
    "register",
    "model_entry",
    "builtin_entries",
]
