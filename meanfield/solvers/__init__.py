"""Time steppers for the DD (SSP Runge-Kutta; no RK4: it is not positivity preserving)."""

from .heun import StepResult, make_heun_stepper

STEPPERS = {"heun": make_heun_stepper}

__all__ = ["StepResult", "make_heun_stepper", "STEPPERS"]
