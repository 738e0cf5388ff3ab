"""Run the particle ensemble of a config beside the PDE (writes group ``/particles``).

Every random number of a run is a pure function of ``(seed, step)`` (counter-based generator;
the test points of a Monte Carlo risk use the index of the output time), and the quench switch
and the time change ``xi`` depend on the step index only: ``theta`` and the step count at an
output time are the whole state a resumed run needs.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.backends import Backend, to_numpy
from meanfield.fields import ConfigError, naming
from meanfield.rng import CounterRNG
from meanfield.run_setup import ParticleSetup, ParticleSpec

from .engine import EngineChoice, compiled_risk, make_advance, select_engine
from .methods import check_method, make_step
from .records import ParticleFrame, make_recorder
from .state import EnsembleState

__all__ = [
    "ParticleRun",
    "build_particle_run",
    "simulate",
    "save_steps",
    "run_particles_into",
    "particles_resume_point",
    "particles_are_complete",
    "frame_fields",
]

GROUP = "particles"

#: ``advance(state, to_step, report) -> state``: takes the ensemble to step ``to_step``, calling
#: ``report(n)`` after every ``n`` steps done
AdvanceFn = Callable[[EnsembleState, int, Callable[[int], None] | None], EnsembleState]


@dataclass(frozen=True)
class ParticleRun:
    """Everything :func:`simulate` needs (built once from a config).

    ``engine`` is ``"compiled"`` (the kernels of :mod:`particles.engine`) or ``"numpy"`` (the
    array steps of :mod:`particles.methods`, on ``backend``).
    """

    model: Any
    backend: Backend
    state: EnsembleState
    advance_fn: AdvanceFn
    record_fn: Callable[[EnsembleState], ParticleFrame]
    save_steps: tuple[int, ...]
    save_times: tuple[float, ...]
    step: float  # particles.step
    seed: int
    keep_theta: bool = False  # record_fn stores theta snapshots
    engine: str = "numpy"
    dtype: str = "float64"


def save_steps(
    save_times: Sequence[float], step: float, key: str = "dynamics.save_times"
) -> tuple[int, ...]:
    """Step indices of the output times; each must be a whole number of steps."""
    steps = []
    for t in save_times:
        k = round(t / step)
        if not _is_multiple(t, step):
            if key == "dynamics.save_times":
                divisor = _dividing_step(save_times, step)
                allowed = "a particles.step that divides every output time" + (
                    f", e.g. {divisor:g}" if divisor is not None else ""
                )
            else:
                allowed = f"a multiple of particles.step, e.g. {max(k, 1) * step:.12g}"
            raise ConfigError(
                f"{key}: {t:g} is not a multiple of particles.step = {step:g} (the "
                f"particles reach it only after a whole number of steps); "
                f"allowed: {allowed}"
            )
        steps.append(k)
    return tuple(steps)


def _is_multiple(t: float, step: float) -> bool:
    return abs(round(t / step) * step - t) <= 1e-9 * max(1.0, abs(t))


def _dividing_step(times: Sequence[float], step: float) -> float | None:
    """A round step (1, 2, 2.5 or 5 times a power of ten) below ``step`` that divides every one of
    ``times``, or None."""
    top = math.floor(math.log10(step))
    for exponent in range(top, top - 4, -1):
        for mantissa in (5.0, 2.5, 2.0, 1.0):
            candidate = float(f"{mantissa}e{exponent}")
            if candidate <= step and all(_is_multiple(t, candidate) for t in times):
                return candidate
    return None


def build_particle_run(
    setup: ParticleSetup,
    *,
    n: int | None = None,
    replicas: int | None = None,
    seed: int | None = None,
) -> ParticleRun:
    """Build the ensemble of ``setup`` (``n``, ``replicas``, ``seed`` override its options);
    :func:`meanfield.config.builders.build_particle_setup` makes ``setup`` from a config."""
    spec, backend, model = setup.spec, setup.backend, setup.model
    n = spec.n if n is None else int(n)
    replicas = spec.replicas if replicas is None else int(replicas)
    seed = spec.seed if seed is None else int(seed)
    with naming(f"particles.engine = {spec.engine!r}", "allowed here: 'numpy' or 'auto'"):
        choice = select_engine(spec.engine, model, spec.method, backend.name)
    engine = choice.engine
    if spec.dtype != "float64" and engine != "compiled":
        raise ConfigError(
            f"particles.dtype = {spec.dtype!r} needs the compiled engine (this run "
            f"uses the {engine} one); use float64 or particles.engine = 'compiled'"
        )
    rng = CounterRNG.from_seed(seed, replicas, backend.xp, backend.asarray)
    theta0 = setup.law.sample_streams(rng, n)
    if spec.dtype != "float64":
        theta0 = backend.xp.astype(theta0, getattr(backend.xp, spec.dtype))
    advance_fn = _advance_fn(spec, model, rng, backend, choice)
    steps = save_steps(spec.save_times, spec.step)
    risk_fn = _risk_fn(model, spec, steps, rng, backend, choice)
    record_fn = make_recorder(model, backend, keep_theta=spec.keep_theta, risk_fn=risk_fn)
    return ParticleRun(
        model,
        backend,
        EnsembleState(theta0),
        advance_fn,
        record_fn,
        steps,
        spec.save_times,
        spec.step,
        seed,
        spec.keep_theta,
        engine,
        spec.dtype,
    )


def _risk_fn(
    model: Any,
    spec: ParticleSpec,
    steps: tuple[int, ...],
    rng: Any,
    backend: Backend,
    choice: EngineChoice,
) -> Callable | None:
    """How a frame's risk is computed (None: the model's exact ``population_risk``).

    Models without a formula: Monte Carlo on fresh test points per record (the counter is the
    index of the output time). The MMN models on the compiled engine: the compiled pair sums.
    float32 particles: the exact risk of their float64 copy.
    """
    if hasattr(model, "test_risk"):
        points = spec.test_points
        frame_of = {k: i for i, k in enumerate(steps)}
        return lambda theta, step: model.test_risk(
            rng, frame_of[step], points, _as_float64(theta, backend), backend.xp
        )
    pair_risk = compiled_risk(model, choice)
    if pair_risk is not None:
        return lambda theta, step: {
            "risk": pair_risk(to_numpy(theta).astype(np.float64)),
            "risk_se": np.zeros(int(theta.shape[0])),
        }
    if spec.dtype != "float64":
        return lambda theta, step: {
            "risk": model.population_risk(_as_float64(theta, backend), None, backend),
            "risk_se": np.zeros(int(theta.shape[0])),
        }
    return None


def _as_float64(theta: Any, backend: Backend) -> Any:
    """``theta`` in float64 on its backend (risks are always computed in float64)."""
    return (
        theta if theta.dtype == backend.xp.float64 else backend.xp.astype(theta, backend.xp.float64)
    )


def _advance_fn(
    spec: ParticleSpec, model: Any, rng: Any, backend: Backend, choice: EngineChoice
) -> AdvanceFn:
    """The advance of ``particles.method`` on the engine of ``choice``, switching to
    ``quench_batch`` at ``quench_time`` (the compiled engine builds no NumPy step)."""
    method, dtype = spec.method, np.dtype(spec.dtype)

    def make(batch: int) -> AdvanceFn:  # the engine layer calls particles.step ``eps``
        check_method(
            method,
            eps=spec.step,
            batch=batch,
            time_change=spec.time_change,
            l2=spec.l2,
            beta=spec.beta,
        )
        if choice.engine == "compiled":
            return make_advance(
                model,
                rng,
                method=method,
                eps=spec.step,
                batch=batch,
                time_change=spec.time_change,
                l2=spec.l2,
                beta=spec.beta,
                dtype=dtype,
                backend=backend,
                choice=choice,
            )
        return _stepping(
            make_step(
                method,
                model,
                rng,
                backend,
                eps=spec.step,
                batch=batch,
                time_change=spec.time_change,
                l2=spec.l2,
                beta=spec.beta,
            )
        )

    with naming(f"particles.method = {method!r} with dynamics.beta = {spec.beta:g}"):
        first = make(spec.batch)
        if spec.quench_batch == 0:
            return first
        quench = make(spec.quench_batch)
    quench_step = save_steps([spec.quench_time], spec.step, "particles.quench_time")[0]

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        state = first(state, min(to_step, max(quench_step, state.step)), report)
        return quench(state, to_step, report)

    return advance


#: steps between progress reports of the NumPy path
REPORT_EVERY = 64


def _stepping(step_fn: Callable[[EnsembleState], EnsembleState]) -> AdvanceFn:
    """An advance that calls a one-step function (the NumPy path) until ``to_step``."""

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        done = 0
        while state.step < to_step:
            state = step_fn(state)
            done += 1
            if report is not None and done == REPORT_EVERY:
                report(done)
                done = 0
        if report is not None and done:
            report(done)
        return state

    return advance


def simulate(
    run: ParticleRun,
    *,
    on_frame: Callable[[ParticleFrame], None] | None = None,
    progress: bool = False,
    first_frame: int = 0,
    on_state: Callable[[ParticleFrame, EnsembleState], None] | None = None,
) -> list[ParticleFrame]:
    """Step the ensemble through every output step; return (and hand out) the frames.

    Parameters
    ----------
    run : ParticleRun
    on_frame : callable ``frame -> None``, optional
        Called with each frame as it is recorded.
    progress : bool
        Show a progress bar (only on a terminal).
    first_frame : int
        Index of the first output time to record; ``run.state`` must then be the state at
        output ``first_frame - 1`` (a resumed run). Only the frames from it on are returned.
    on_state : callable ``(frame, state) -> None``, optional
        Like ``on_frame``, with the ensemble state of the frame (for checkpoints).
    """
    from tqdm.auto import tqdm  # noqa: PLC0415

    frames = []
    state = run.state
    total = run.save_steps[-1]
    bar = tqdm(
        total=total,
        initial=state.step,
        unit="step",
        desc="particles",
        mininterval=0.5,
        disable=not (progress and sys.stderr.isatty()),
    )
    for target, t_out in zip(
        run.save_steps[first_frame:], run.save_times[first_frame:], strict=True
    ):
        state = run.advance_fn(state, target, bar.update)
        frame = run.record_fn(state, t_out)  # the output time itself, not target * eps
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)
        if on_state is not None:
            on_state(frame, state)
    bar.close()
    return frames


def frame_fields(frame: ParticleFrame) -> dict[str, tuple[Any, tuple[str, ...]]]:
    """The HDF5 fields of a frame (time is the first axis of every dataset)."""
    fields: dict[str, tuple[Any, tuple[str, ...]]] = {
        "reduced": (frame.reduced, ("replica", "unit", "reduced_axis")),
        "risk": (frame.risk, ("replica",)),
        "risk_se": (frame.risk_se, ("replica",)),
        "step": (frame.step, ()),
    }
    if frame.theta is not None:
        fields["theta"] = (frame.theta, ("replica", "unit", "param"))
    for key, value in frame.extras.items():
        fields[key] = (np.asarray(value), ("replica",))
    return fields


def run_particles_into(
    f: Any, run: ParticleRun, *, progress: bool = True, group: str = GROUP, resume: bool = False
) -> list[ParticleFrame]:
    """Simulate ``run`` and append every frame to ``group`` of the open HDF5 file ``f``.

    With every frame, ``theta`` of every replica and the step count go to the double-buffered
    ``checkpoint`` subgroup. With ``resume``, a group already in ``f`` is continued from its
    last complete frame (see :func:`particles_resume_point`) and only the new frames are
    returned; the finished group equals that of an uninterrupted run, bit for bit.
    """
    from meanfield.io import FrameStore, write_group_attrs  # noqa: PLC0415

    first = 0
    if resume:
        point = particles_resume_point(f, run, group)
        if point is not None:
            first, state = point
            run = dataclasses.replace(run, state=state)
    n_replicas, n_particles = run.state.n_replicas, run.state.n_particles
    k = len(run.model.axis_names)
    coords = {
        "replica": np.arange(n_replicas),
        "unit": np.arange(n_particles),
        "reduced_axis": np.arange(k),
    }
    grp = f.require_group(group)
    write_group_attrs(
        grp,
        {
            "reduced_names": ",".join(run.model.axis_names),
            "seed": run.seed,
            "step_size": run.step,
            "backend": run.backend.name,
            "engine": run.engine,
            "dtype": run.dtype,
        },
    )
    if run.keep_theta:  # the last axis of the theta snapshots
        coords["param"] = np.arange(run.state.theta.shape[-1])
    store = FrameStore(grp, coords)

    def write(frame: ParticleFrame, state: EnsembleState) -> None:
        store.append(
            frame.t,
            frame_fields(frame),
            state={"theta": to_numpy(state.theta), "step": np.int64(state.step)},
        )

    return simulate(run, on_state=write, progress=progress, first_frame=first)


def particles_resume_point(
    f: Any, run: ParticleRun, group: str = GROUP
) -> tuple[int, EnsembleState] | None:
    """Prepare ``group`` of ``f`` for a resumed run: the next frame index and the state.

    The group is cut back to its last complete frame (:func:`meanfield.io.last_checkpoint`),
    whose checkpoint holds ``theta`` and the step count; a group with no committed frame is
    deleted (``None``: start from ``run.state``).

    Raises
    ------
    ValueError
        When the group holds frames but no resume state for them, or a state of another
        shape than ``run``'s: nothing is changed.
    """
    from meanfield.io import last_checkpoint, truncate_frames  # noqa: PLC0415

    if group not in f:
        return None
    point = last_checkpoint(f[group], run.save_times)
    if point is None:
        if "time" in f[group] and len(f[group]["time"]) > 0:
            raise ValueError(f"/{group} holds frames but no resume checkpoint for them")
        del f[group]
        return None
    theta, step = point.state["theta"], int(point.state["step"])
    if theta.shape != tuple(run.state.theta.shape) or step != run.save_steps[point.index]:
        raise ValueError(
            f"/{group}/checkpoint does not match this run (theta {theta.shape}, step {step})"
        )
    truncate_frames(f[group], point.index + 1)
    theta = run.backend.asarray(theta, getattr(run.backend.xp, theta.dtype.name))
    state = EnsembleState(theta, step)
    return point.index + 1, state


def particles_are_complete(f: Any, run: ParticleRun, group: str = GROUP) -> bool:
    """Whether ``group`` of ``f`` holds every output frame of ``run``."""
    from meanfield.io import last_checkpoint  # noqa: PLC0415

    if group not in f:
        return False
    point = last_checkpoint(f[group], run.save_times)
    return point is not None and point.index == len(run.save_times) - 1
