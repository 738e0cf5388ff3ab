"""Time steppers for the DD (SSP Runge-Kutta; no RK4: it is not positivity preserving)."""

from .heun import Carry, Proposal, make_heun_attempt

#: ``name -> factory(rhs_fn, cfl, backend) -> (propose, commit)``
STEPPERS = {"heun": make_heun_attempt}

__all__ = ["Carry", "Proposal", "make_heun_attempt", "STEPPERS"]
