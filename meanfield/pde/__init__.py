"""The grid PDE: the equation, its operators, the time stepping and what watches it.

- :mod:`~meanfield.pde.operators` and :mod:`~meanfield.pde.equation`: the transport and
  potential operators on a :class:`~meanfield.grid.Grid` and :class:`MeanFieldPDE`.
- :mod:`~meanfield.pde.solvers`: the steppers (Heun with step-size control).
- :mod:`~meanfield.pde.controller`: the time loop, :func:`integrate`.
- :mod:`~meanfield.pde.trackers`: invariants, progress, storage and memory trackers.
- :mod:`~meanfield.pde.sweep`: several runs stepped as one.
- :mod:`~meanfield.pde.linearized`: the linearised equation (CLT predictions).

Nothing is imported here; import the modules.
"""
