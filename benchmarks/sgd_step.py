"""Online-SGD throughput of the particle ensemble against the same update in PyTorch.

Times, in one process, median of several batches of steps:

* meanfield's ``online_sgd`` step on the isotropic model (counter-based random numbers,
  fresh data every step, the update of SPEC section 1);
* the same update written with PyTorch batched matrix products (``torch.bmm``), its own
  random numbers, float64 (skipped when PyTorch is not installed);
* a per-replica loop of the NumPy update (what the batched form replaces).

    python benchmarks/sgd_step.py [--replicas 64] [--n 800] [--d 40] [--batch 1] [--backend numpy]

Reported: steps per second and the ensemble throughput R x N x d x B per second.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

import numpy as np

from meanfield.backend import get_backend, to_numpy
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw
from meanfield.rng import CounterRNG
from meanfield.schedules import TimeChange
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


def meanfield_rate(args: argparse.Namespace) -> float:
    backend = get_backend(args.backend)
    model = IsotropicGaussians(args.d, 0.8, ACTIVATIONS["mmn"])
    rng = CounterRNG.from_seed(0, args.replicas, backend.xp, backend.asarray)
    step = make_online_sgd(model, rng, backend, eps=EPS, batch=args.batch,
                           time_change=TimeChange())
    holder = {"state": EnsembleState(ScaledChiLaw(0.8, args.d).sample_streams(rng, args.n))}

    def run(k: int) -> None:
        state = holder["state"]
        for _ in range(k):
            state = step(state)
        to_numpy(state.theta[0, 0, 0])  # synchronise (GPU)
        holder["state"] = state

    return median_rate(run, args.steps)


def torch_rate(args: argparse.Namespace, device: str = "cpu") -> float | None:
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
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

    return median_rate(run, args.steps)


def loop_rate(args: argparse.Namespace) -> float:
    """The NumPy update, one replica at a time (a Python loop over replicas)."""
    rng = np.random.default_rng(0)
    model = IsotropicGaussians(args.d, 0.8, ACTIVATIONS["mmn"])
    theta = rng.standard_normal((args.replicas, args.n, args.d)) * (0.8 / args.d**0.5)
    act = model.activation

    def run(k: int) -> None:
        for _ in range(k):
            for i in range(args.replicas):
                y = np.where(rng.random(args.batch) < 0.5, 1.0, -1.0)
                x = rng.standard_normal((args.batch, args.d)) * np.where(y > 0, 1.8, 0.2)[:, None]
                z = x @ theta[i].T
                residual = y - act(z).mean(axis=1)
                grad = (residual[:, None] * act.derivative(z)).T @ x
                theta[i] += (2.0 * EPS / args.batch) * grad

    return median_rate(run, max(1, args.steps // 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--d", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--reference-threads", type=int, default=0,
                        help="also time meanfield on NumPy with this many BLAS threads (the "
                             "2-core reference of a GPU run), in the same process")
    args = parser.parse_args()
    work = args.replicas * args.n * args.d * args.batch
    ours = meanfield_rate(args)
    rows = [("meanfield online_sgd (" + get_backend(args.backend).name + ")", ours)]
    if args.reference_threads:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pip install threadpoolctl; without it BLAS uses every core
            threadpool_limits = contextlib.nullcontext
        with threadpool_limits(args.reference_threads):
            reference = meanfield_rate(argparse.Namespace(**{**vars(args), "backend": "numpy",
                                                             "steps": max(20, args.steps // 10)}))
        rows.append((f"meanfield online_sgd (numpy, {args.reference_threads} BLAS threads)",
                     reference))
    if get_backend(args.backend).name == "cupy":
        peer = torch_rate(args, "cuda")
        if peer is not None:
            rows.append(("PyTorch bmm, same update (CUDA)", peer))
    peer = torch_rate(args)
    if peer is not None:
        rows.append(("PyTorch bmm, same update (CPU)", peer))
    rows.append(("NumPy, loop over replicas", loop_rate(args)))
    print(f"R = {args.replicas}, N = {args.n}, d = {args.d}, B = {args.batch}, float64\n")
    print("| implementation | steps/s | R N d B per s | ratio to meanfield |")
    print("|---|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate * work:.3g} | {rate / ours:.2f} |")


if __name__ == "__main__":
    main()
