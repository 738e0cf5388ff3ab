"""The GPU twin of the SGD kernel under numba's CUDA simulator, against the CPU kernel.

numba's simulator (``NUMBA_ENABLE_CUDASIM=1``) runs ``@cuda.jit`` kernels as Python threads
on the CPU: every thread block, shared array and barrier of :mod:`particles.engine.cuda`
executes, so its indexing, reductions and random-number layout are checked here without a
GPU. The simulator must be switched on before numba.cuda is imported, so the comparison runs
in a subprocess. What it cannot check (compilation by the real CUDA compiler, speed) is in
``benchmarks/gpu_session.sh``, and ``meanfield info --selftest`` on a GPU machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import math
    import numpy as np
    from meanfield.backends import get_backend
    from meanfield.model import ACTIVATIONS, AnisotropicGaussians, IsotropicGaussians, PSpin
    from meanfield.model import PSpinTask, ScaledChiLaw
    from meanfield.rng import CounterRNG
    from meanfield.schedules import TimeChange
    from particles.engine.advance import make_gpu_sgd_advance, make_sgd_advance
    from particles.state import EnsembleState

    def compare(name, model, law, n, steps, **options):
        rng = CounterRNG.from_seed(4, 2, np)
        theta = law(rng, n)
        pieces = model.engine_pieces()
        cpu = make_sgd_advance(model, pieces, rng, **options)(EnsembleState(theta), steps).theta
        gpu = make_gpu_sgd_advance(model, pieces, rng, get_backend("numpy"), threads=16,
                                   **options)
        state = gpu(gpu(EnsembleState(theta), steps // 2), steps)
        moved = np.max(np.abs(cpu - theta))
        error = np.max(np.abs(state.theta - cpu)) / np.max(np.abs(cpu))
        assert state.theta.shape == theta.shape and state.step == steps
        print(name, error, moved)

    plain = {"time_change": TimeChange()}
    iso = IsotropicGaussians(6, 0.8, ACTIVATIONS["mmn"])
    compare("isotropic B=1", iso, ScaledChiLaw(0.8, 6).sample_streams, 40, 12, eps=1e-3,
            batch=1, **plain)
    compare("isotropic B=3 noisy l2", IsotropicGaussians(6, 0.8, ACTIVATIONS["mmn_nonmonotone"]),
            ScaledChiLaw(0.8, 6).sample_streams, 24, 6, eps=1e-3, batch=3, l2=0.1, beta=50.0,
            time_change=TimeChange(power=-0.25))
    compare("anisotropic B=2", AnisotropicGaussians(6, 2, 0.6, ACTIVATIONS["mmn"]),
            ScaledChiLaw(0.8, 6).sample_streams, 20, 6, eps=1e-3, batch=2, **plain)
    task = PSpinTask(PSpin(4, teacher_seed=1), PSpin(4, teacher_seed=1).teacher())
    compare("pspin B=2", task, task.sample_streams, 10, 5, eps=1e-2, batch=2, **plain)

    # the GPU cases of `meanfield info --selftest`, through its own code path
    from particles import selftest
    numpy = get_backend("numpy")
    cases = selftest.gpu_engine_cases()
    assert set(cases) == {"isotropic online_sgd (d=40, B=4)", "pspin online_sgd (d=6, B=6)",
                          "anisotropic online_sgd (d=12, s0=3)"}, cases
    name = "anisotropic online_sgd (d=12, s0=3)"
    gpu = selftest._compiled_case(name, numpy, gpu=True, threads=8)
    reference = selftest._case(name, numpy)
    print("selftest-gpu-case", np.max(np.abs(gpu - reference)) / np.max(np.abs(reference)),
          np.max(np.abs(reference)))
""")


def test_gpu_kernel_matches_the_cpu_kernel_under_the_simulator() -> None:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert len(rows) == 5, done.stdout
    for *name, error, moved in rows:
        # the block reduction sums y_hat in another order than the CPU kernel: round-off
        assert float(error) < 1e-13, (name, error)
        assert float(moved) > 1e-3, (name, "the run did not move: a void comparison")


@pytest.mark.gpu
def test_gpu_kernel_matches_the_cpu_kernel_on_a_gpu() -> None:
    """On a real GPU: the same comparison with CuPy arrays (skipped without one)."""
    from meanfield.backends import available_backends, get_backend

    if "cupy" not in available_backends():
        pytest.skip("CuPy or a GPU is not available")
    import numpy as np

    from meanfield.backends import to_numpy
    from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw
    from meanfield.rng import CounterRNG
    from meanfield.schedules import TimeChange
    from particles.engine.advance import make_gpu_sgd_advance, make_sgd_advance
    from particles.state import EnsembleState

    cupy = get_backend("cupy")
    model = IsotropicGaussians(40, 0.8, ACTIVATIONS["mmn"])
    host_rng = CounterRNG.from_seed(4, 8, np)
    theta = ScaledChiLaw(0.8, 40).sample_streams(host_rng, 800)
    options = {"eps": 1e-5, "batch": 1, "time_change": TimeChange()}
    pieces = model.engine_pieces()
    cpu = make_sgd_advance(model, pieces, host_rng, **options)(EnsembleState(theta), 2000).theta
    rng = CounterRNG.from_seed(4, 8, cupy.xp, cupy.asarray)
    gpu = make_gpu_sgd_advance(model, pieces, rng, cupy, **options)(
        EnsembleState(cupy.asarray(theta)), 2000
    )
    # CUDA's log/cos/sin differ from glibc's in the last place; 2,000 steps keep that < 1e-10
    np.testing.assert_allclose(to_numpy(gpu.theta), cpu, rtol=0, atol=1e-10 * np.max(np.abs(cpu)))
