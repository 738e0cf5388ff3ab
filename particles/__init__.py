"""particles: finite-N SGD ensembles that run beside the PDE (SPEC section 4).

R replicas of N units are one array ``theta`` of shape ``(R, N, D)``; the methods
(``online_sgd``, ``noisy_sgd``, ``gd``) share the model layer of :mod:`meanfield`.
"""

from .methods import METHODS, make_gd, make_online_sgd, make_step
from .records import ParticleFrame, make_recorder
from .run import ParticleRun, build_particle_run, run_particles_into, simulate
from .state import EnsembleState

__all__ = [
    "METHODS",
    "make_gd",
    "make_online_sgd",
    "make_step",
    "ParticleFrame",
    "make_recorder",
    "ParticleRun",
    "build_particle_run",
    "run_particles_into",
    "simulate",
    "EnsembleState",
]
