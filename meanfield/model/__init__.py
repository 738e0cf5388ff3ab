"""The model layer: V, U and their gradients, written once for the PDE and the particles."""

from .activations import ACTIVATIONS, PiecewiseLinear, activation_from_spec
from .anisotropic import AnisotropicGaussians
from .base import KernelFeatures, ReducedModel
from .cosine import CosineInteraction
from .isotropic import IsotropicGaussians
from .laws import (
    GridTooSmallError,
    NormalLaw,
    ReluSelectionLaw,
    ScaledChiLaw,
    ScaledChiPairLaw,
    initial_density,
)
from .pspin import PSpin, PSpinTask
from .relu_selection import ReluSelection
from .solvable import (
    FeatureModel,
    LinearUnit,
    QuadraticPotential,
    linear_unit_moments,
    ou_moments,
)
from .teacher_student import TeacherNetwork, TeacherStudent

__all__ = [
    "ACTIVATIONS",
    "PiecewiseLinear",
    "activation_from_spec",
    "KernelFeatures",
    "ReducedModel",
    "IsotropicGaussians",
    "AnisotropicGaussians",
    "ReluSelection",
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
]
