"""An independent implementation of RVE's eq. (4.5), to check `meanfield reproduce rve-kernel`.

Plain NumPy written from the equations (Rotskoff & Vanden-Eijnden, CPAM 2022, arXiv:1805.00915,
eq. (4.5), with the sign of the exponent corrected), not from the package's gradient code: only
``PSpin(d, teacher).teacher()`` is shared, so that both learn the same 3-spin tensor ``a``.

    f(x)        = (1/d) sum_pqr a_pqr x_p x_q x_r,   x on S^{d-1}(sqrt d)
    phi(x, y)   = exp(-alpha |x - y|^2 / 2)
    dC_i/dt     = f(Y_i) - (1/n) sum_j C_j phi(Y_i, Y_j)
    dY_i/dt     = P_{Y_i} [ C_i grad f(Y_i) - (1/n) sum_j C_i C_j grad_{Y_i} phi(Y_i, Y_j) ]

Explicit Euler with step ``dt``; noise ``sqrt(2 dt / beta)`` times standard normals on ``C`` and
(projected) on ``Y`` for the first ``noise_fraction * steps`` steps; ``Y`` renormalised to
``|Y| = sqrt d`` after every step; ``C = c_std * N(0, 1)`` and ``Y`` uniform at the start (NumPy's
``default_rng``, not the package's counter-based streams: the same law, other draws). The run
goes on by a quarter of its length at a time, after the first ``steps``, until the loss on a
fixed validation set of points changes by at most ``flat_tolerance`` (relative) over the last
20 % of the steps, or ``max_steps``. The test loss ``(1/2) mean (f_n - f)^2`` is then measured
on ``test_points`` fresh uniform points. The protocol's numbers are read from the paper config
(``data/configs/reproduce/rve-kernel.paper.toml``); the five teachers run as one batch.

    python benchmarks/rve_kernel_independent.py [--n 8 16 32 64] [--teachers 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import time
import tomllib
from pathlib import Path

import numpy as np

from meanfield.model.rve.pspin import PSpin

CONFIG = (
    Path(__file__).resolve().parents[1] / "data" / "configs" / "reproduce" / "rve-kernel.paper.toml"
)


def _contract(tensor: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``sum_qr tensor[t, k, q, r] x[t, b, q] x[t, b, r]``: ``(T, B, d)``."""
    t, b, d = x.shape
    pairs = (x[..., :, None] * x[..., None, :]).reshape(t, b, d * d)
    return pairs @ tensor.reshape(t, d, d * d).transpose(0, 2, 1)


def target(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``f(x)`` for teachers ``a (T, d, d, d)`` and points ``x (T, B, d)``: ``(T, B)``."""
    return np.sum(_contract(a, x) * x, axis=-1) / x.shape[-1]


def symmetrised(a: np.ndarray) -> np.ndarray:
    """``a_kqr + a_qkr + a_qrk`` (index ``k`` in each slot), for the gradient: ``(T, d, d, d)``."""
    return a + a.transpose(0, 2, 1, 3) + a.transpose(0, 3, 1, 2)


def target_gradient(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``grad f(y)_k = (1/d) sum_qr (a_kqr + a_qkr + a_qrk) y_q y_r``: ``(T, N, d)``."""
    return _contract(symmetrised(a), y) / y.shape[-1]


def network(c: np.ndarray, y: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """``f_n(x) = (1/n) sum_i c_i phi(x, y_i)``: ``(T, B)``."""
    sq = (
        np.sum(x * x, -1)[..., :, None]
        + np.sum(y * y, -1)[..., None, :]
        - 2 * x @ y.transpose(0, 2, 1)
    )
    return np.einsum("tbi,ti->tb", np.exp(-0.5 * alpha * np.maximum(sq, 0.0)), c) / c.shape[-1]


def half_square_error(a, c, y, x, alpha, chunk=50_000) -> np.ndarray:
    """``(1/2) mean_b (f_n(x_b) - f(x_b))^2`` per teacher, over points ``x (T, B, d)``."""
    total = np.zeros(x.shape[0])
    for start in range(0, x.shape[1], chunk):
        part = x[:, start : start + chunk]
        total += 0.5 * np.sum((network(c, y, part, alpha) - target(a, part)) ** 2, axis=-1)
    return total / x.shape[1]


def sphere(gen: np.random.Generator, shape: tuple[int, ...], d: int) -> np.ndarray:
    g = gen.standard_normal((*shape, d))
    return math.sqrt(d) * g / np.linalg.norm(g, axis=-1, keepdims=True)


def project(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    return v - np.sum(v * y, -1, keepdims=True) / np.sum(y * y, -1, keepdims=True) * y


def euler_step(a, g, c, y, alpha, dt, noise_amp, gen):
    """One step of (4.5) for every teacher (``g = symmetrised(a)``); returns the new ``(c, y)``."""
    n, d = c.shape[-1], y.shape[-1]
    sq = np.sum(y * y, -1)
    dist = sq[..., :, None] + sq[..., None, :] - 2 * y @ y.transpose(0, 2, 1)
    phi = np.exp(-0.5 * alpha * np.maximum(dist, 0.0))  # (T, N, N)
    phi_c = (phi @ c[..., None])[..., 0]
    # sum_j c_j grad_{y_i} phi(y_i, y_j) = -alpha sum_j c_j phi_ij (y_i - y_j)
    pull = -alpha * (phi_c[..., None] * y - phi @ (c[..., None] * y))
    grad = _contract(g, y) / d
    c_dot = np.sum(grad * y, axis=-1) / 3 - phi_c / n  # f(y) = <y, grad f(y)> / 3 (cubic)
    y_dot = c[..., None] * (grad - pull / n)
    c_new = c + dt * c_dot
    move = dt * y_dot
    if noise_amp > 0:
        c_new = c_new + noise_amp * gen.standard_normal(c.shape)
        move = move + noise_amp * gen.standard_normal(y.shape)
    y_new = y + project(y, move)
    return c_new, math.sqrt(d) * y_new / np.linalg.norm(y_new, axis=-1, keepdims=True)


def train(n: int, teachers: list[int], p: dict, seed: int) -> dict:
    d, alpha, dt = p["d"], p["alpha"], p["step"]
    gen = np.random.default_rng([seed, n])
    a = np.stack([PSpin(d, t).teacher() for t in teachers])
    g = symmetrised(a)
    c = p["c_std"] * gen.standard_normal((len(teachers), n))
    y = sphere(gen, (len(teachers), n), d)
    x_val = sphere(gen, (len(teachers), 20_000), d)
    noise_steps = int(round(p["noise_fraction"] * p["steps"]))
    amp = math.sqrt(2 * dt / p["beta"]) if math.isfinite(p["beta"]) else 0.0
    steps, losses, done, target_steps = [], [], 0, p["steps"]
    while True:
        while done < target_steps:
            c, y = euler_step(a, g, c, y, alpha, dt, amp if done < noise_steps else 0.0, gen)
            done += 1
            if done == int(0.8 * p["steps"]):
                steps.append(done)
                losses.append(half_square_error(a, c, y, x_val, alpha))
        steps.append(done)
        losses.append(half_square_error(a, c, y, x_val, alpha))
        at = max(k for k, s in enumerate(steps) if s <= 0.8 * done)
        trend = (losses[at] - losses[-1]) / losses[-1]
        if np.all(np.abs(trend) <= p["flat_tolerance"]) or done >= p["max_steps"]:
            break
        target_steps = min(math.ceil(done / 0.8), p["max_steps"])
    x_test = sphere(gen, (len(teachers), p["test_points"]), d)
    return {
        "test": half_square_error(a, c, y, x_test, alpha),
        "steps": done,
        "trend": trend,
        "converged": bool(np.all(np.abs(trend) <= p["flat_tolerance"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--teachers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--step", type=float, help="dt (default: the paper config's)")
    parser.add_argument("--max-steps", type=int, help="default: the paper config's")
    parser.add_argument("--test-points", type=int, help="default: the paper config's")
    args = parser.parse_args()
    with CONFIG.open("rb") as fh:
        raw = tomllib.load(fh)
    proto = raw["protocol"]
    p = {
        "d": raw["model"]["d"],
        "alpha": raw["model"]["alpha"],
        "c_std": raw["particles"]["c_std"],
        "step": args.step or proto["step_collocation"],
        "beta": proto["beta"],
        "steps": proto["steps"],
        "noise_fraction": proto["noise_fraction"],
        "max_steps": args.max_steps or proto["max_steps"],
        "flat_tolerance": proto["flat_tolerance"],
        "test_points": args.test_points or proto["test_points"],
    }
    print(f"protocol: {p}")
    teachers = list(range(args.teachers))
    print("| n | median | range | per teacher | steps | max abs trend | converged | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.n:
        start = time.perf_counter()
        out = train(n, teachers, p, args.seed)
        test = out["test"]
        print(
            f"| {n} | {np.median(test):.4g} | {test.min():.4g} - {test.max():.4g} | "
            f"{', '.join(f'{v:.4g}' for v in test)} | {out['steps']} | "
            f"{np.max(np.abs(out['trend'])):.2g} | {out['converged']} | "
            f"{time.perf_counter() - start:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
