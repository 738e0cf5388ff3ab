"""Particle SGD throughput: the compiled engine, the NumPy steps and PyTorch, against the GEMM.

Times, in one process on the same machine, medians of several batches of steps:

* the compiled engine (``particles.engine``, numba; the GPU twin with ``--backend cupy``);
* meanfield's NumPy step (``particles.methods.make_online_sgd``), the reference;
* the same update written with PyTorch batched matrix products (its own random numbers,
  float64; skipped when PyTorch is not installed);
* a large FP64 matrix product (1024 x 1024), the hardware's own rate on this machine.

Flops are counted as ``4 N D B`` per replica and step (a forward and a backward pass over the
``D`` parameters of each of the ``N`` units for each of the ``B`` samples); the last column
gives that rate as a fraction of the matrix product's.

    python benchmarks/sgd_step.py [--model isotropic|pspin] [--replicas 64] [--n 800]
                                  [--d 40] [--batch 1] [--backend numpy]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np

from meanfield.backends import get_backend, to_numpy
from meanfield.model import ACTIVATIONS, IsotropicGaussians, PSpin, PSpinTask, ScaledChiLaw
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
from particles.engine import make_advance
from particles.methods import make_online_sgd
from particles.state import EnsembleState

EPS = 1e-5


def median_rate(run_steps: Callable[[int], None], steps: int, batches: int = 5) -> float:
    """Median steps per second over ``batches`` runs of ``steps`` steps (after a warm-up)."""
    run_steps(max(1, steps // 10))
    rates = []
    for _ in range(batches):
        start = time.perf_counter()
        run_steps(steps)
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def gemm_rate(size: int = 1024, repeats: int = 7) -> float:
    """FP64 flops per second of a ``size x size`` matrix product (median)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2.0 * size**3 / statistics.median(times)


def shape_gemm_rate(batch: int, n_inputs: int, n_units: int, repeats: int = 7) -> float:
    """FP64 flops per second of the two products of a batched step, ``X W`` (``B x k`` by
    ``k x N``) and ``X^T G`` (``k x B`` by ``B x N``): BLAS's own rate at this shape."""
    rng = np.random.default_rng(0)
    x, w, g = (
        rng.random((batch, n_inputs)),
        rng.random((n_inputs, n_units)),
        rng.random((batch, n_units)),
    )
    x @ w
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        x @ w
        x.T @ g
        times.append(time.perf_counter() - start)
    return 4.0 * batch * n_inputs * n_units / statistics.median(times)


def _model_and_units(args: argparse.Namespace, rng: CounterRNG) -> tuple[object, object]:
    if args.model == "pspin":
        model = PSpin(args.d, teacher_seed=0)
        task = PSpinTask(
            model, rng.xp.asarray(model.teacher()) if args.backend == "cupy" else model.teacher()
        )
        return task, task.sample_streams(rng, args.n)
    return (
        IsotropicGaussians(args.d, 0.8, ACTIVATIONS["mmn"]),
        ScaledChiLaw(0.8, args.d).sample_streams(rng, args.n),
    )


def numpy_rate(args: argparse.Namespace, backend_name: str = "numpy") -> float:
    backend = get_backend(backend_name)
    rng = CounterRNG.from_seed(0, args.replicas, backend.xp, backend.asarray)
    model, theta = _model_and_units(args, rng)
    step = make_online_sgd(model, rng, backend, eps=EPS, batch=args.batch, time_change=TimeChange())
    holder = {"state": EnsembleState(theta)}

    def run(k: int) -> None:
        state = holder["state"]
        for _ in range(k):
            state = step(state)
        to_numpy(state.theta[0, 0, 0])  # synchronise (GPU)
        holder["state"] = state

    return median_rate(run, args.numpy_steps)


def compiled_rate(args: argparse.Namespace) -> float:
    backend = get_backend(args.backend)
    rng = CounterRNG.from_seed(0, args.replicas, backend.xp, backend.asarray)
    model, theta = _model_and_units(args, rng)
    advance = make_advance(
        model,
        rng,
        method="online_sgd",
        eps=EPS,
        batch=args.batch,
        time_change=TimeChange(),
        backend=backend,
    )
    holder = {"state": EnsembleState(theta)}

    def run(k: int) -> None:
        state = advance(holder["state"], holder["state"].step + k)
        to_numpy(state.theta[0, 0, 0])  # synchronise (GPU)
        holder["state"] = state

    run(1)  # compile (or load from the cache) before timing
    return median_rate(run, args.steps)


def torch_rate(args: argparse.Namespace, device: str = "cpu") -> float | None:
    """The isotropic update with PyTorch batched products (p-spin: not written)."""
    try:
        import torch
    except ImportError:
        return None
    if (device == "cuda" and not torch.cuda.is_available()) or args.model != "isotropic":
        return None
    torch.manual_seed(0)
    r, n, d, b = args.replicas, args.n, args.d, args.batch
    kw = {"dtype": torch.float64, "device": device}
    theta = torch.randn(r, n, d, **kw) * (0.8 / d**0.5)
    taus = torch.tensor([1.8, 0.2], **kw)

    def activation(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # s = -2.5 below 0.5, 7.5 above 1.5, slope 10 between (the mmn activation)
        inside = (z > 0.5) & (z < 1.5)
        return -2.5 + 10.0 * torch.clamp(z - 0.5, 0.0, 1.0), 10.0 * inside.to(z.dtype)

    def run(k: int) -> None:
        nonlocal theta
        for _ in range(k):
            labels = torch.randint(0, 2, (r, b), device=device)
            y = 1.0 - 2.0 * labels.to(torch.float64)
            x = torch.randn(r, b, d, **kw) * taus[labels][..., None]
            values, slopes = activation(torch.bmm(x, theta.transpose(1, 2)))
            residual = y - values.mean(dim=-1)
            grad = torch.bmm((residual[..., None] * slopes).transpose(1, 2), x)
            theta = theta + (2.0 * EPS / b) * grad
        float(theta[0, 0, 0])  # synchronise (GPU)

    return median_rate(run, args.numpy_steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("isotropic", "pspin"), default="isotropic")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--d", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument(
        "--steps", type=int, default=2000, help="steps per timed batch (compiled engine)"
    )
    parser.add_argument(
        "--numpy-steps",
        type=int,
        default=100,
        help="steps per timed batch of the NumPy and PyTorch updates",
    )
    parser.add_argument("--backend", default="numpy")
    parser.add_argument(
        "--reference-threads",
        type=int,
        default=0,
        help="time the NumPy step with this many BLAS threads (the 2-core reference of a GPU run)",
    )
    args = parser.parse_args()
    dim = args.d + 2 if args.model == "pspin" else args.d
    flops = 4.0 * args.replicas * args.n * dim * args.batch  # per step
    gemm = gemm_rate()
    name = get_backend(args.backend).name
    rows = [(f"compiled engine ({'GPU' if name == 'cupy' else 'numba, CPU'})", compiled_rate(args))]
    threads = args.reference_threads
    limit = contextlib.nullcontext
    if threads:
        try:
            from threadpoolctl import threadpool_limits

            limit = lambda: threadpool_limits(threads)  # noqa: E731
        except ImportError:  # pip install threadpoolctl; without it BLAS uses every core
            pass
    with limit():
        rows.append(
            (
                f"NumPy step (reference{f', {threads} BLAS threads' if threads else ''})",
                numpy_rate(args),
            )
        )
    if name == "cupy":
        rows.append(("NumPy step on CuPy", numpy_rate(args, "cupy")))
        peer = torch_rate(args, "cuda")
        if peer is not None:
            rows.append(("PyTorch bmm, same update (CUDA)", peer))
    peer = torch_rate(args)
    if peer is not None:
        rows.append(("PyTorch bmm, same update (CPU)", peer))
    reference = rows[1][1]
    print(
        f"{args.model}: R = {args.replicas}, N = {args.n}, d = {args.d}, B = {args.batch}, "
        f"float64; FP64 GEMM (1024^3, same process): {gemm / 1e9:.1f} GFLOP/s"
    )
    if args.batch >= 16:
        shape = shape_gemm_rate(args.batch, args.d, args.n)
        print(
            f"the step's two products at this shape in BLAS (X W and X^T G, one replica): "
            f"{shape / 1e9:.1f} GFLOP/s, {100 * shape / gemm:.0f} % of the square GEMM"
        )
    print()
    print("| implementation | steps/s | GFLOP/s (4 N D B R) | % of GEMM | ratio to NumPy |")
    print("|---|---|---|---|---|")
    for label, rate in rows:
        print(
            f"| {label} | {rate:.1f} | {rate * flops / 1e9:.2f} | "
            f"{100 * rate * flops / gemm:.1f} | {rate / reference:.2f} |"
        )


if __name__ == "__main__":
    main()
