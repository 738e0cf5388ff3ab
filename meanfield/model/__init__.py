"""The model layer: V, U and their gradients, written once for the PDE and the particles."""

from .activations import ACTIVATIONS, PiecewiseLinear, activation_from_spec
from .base import KernelFeatures, ReducedModel
from .isotropic import IsotropicGaussians
from .laws import GridTooSmallError, NormalLaw, ScaledChiLaw, initial_density
from .pspin import PSpin, PSpinTask
from .solvable import FeatureModel, QuadraticPotential, ou_moments

__all__ = [
    "ACTIVATIONS",
    "PiecewiseLinear",
    "activation_from_spec",
    "KernelFeatures",
    "ReducedModel",
    "IsotropicGaussians",
    "QuadraticPotential",
    "PSpin",
    "PSpinTask",
    "FeatureModel",
    "ou_moments",
    "ScaledChiLaw",
    "NormalLaw",
    "initial_density",
    "GridTooSmallError",
]
