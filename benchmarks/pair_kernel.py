"""Exact risk R(mu_N) of an ensemble of MMN units: compiled pair sums, NumPy, pure Mehler series.

Three sets of R x N units in R^d (default 64 x 800, d = 40, the isotropic model):

* ``random``: the initial law, ``w ~ N(0, kappa^2 I / d)`` (pair cosines about N(0, 1/d));
* ``trained``: units after SGD training, read from a ``meanfield run`` file's last checkpoint
  (``--trained FILE.h5``, e.g. the full-size run of data/configs/full/mmn-isotropic.toml),
  tiled to R replicas;
* ``aligned``: units in narrow cones around 8 directions (pair cosines up to 0.999), the
  case where the Mehler series needs thousands of terms.

For each: the compiled pair sums (particles.engine.population, the default in runs), the NumPy
reference (Mehler below |c| = 1/2, closed form above) and the pure Mehler series of the
previous implementation (order from the largest pair cosine, at most 2,500 terms). Medians of
``--repeats`` runs, one process; the compiled column excludes its first call (compilation).

    python benchmarks/pair_kernel.py [--replicas 64] [--n 800] [--d 40] [--trained FILE.h5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from meanfield.backends import get_backend
from meanfield.model import ACTIVATIONS, IsotropicGaussians, ScaledChiLaw
from meanfield.model.mmn.isotropic_pairs import MAX_PAIR_ORDER, max_pair_cosine, pair_order
from meanfield.rng import CounterRNG
from particles.engine.population import pair_population_risk

NUMPY = get_backend("numpy")


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def unit_sets(args: argparse.Namespace) -> dict[str, np.ndarray]:
    rng = CounterRNG.from_seed(0, args.replicas, np)
    sets = {"random": ScaledChiLaw(0.8, args.d).sample_streams(rng, args.n)}
    if args.trained:
        import h5py

        with h5py.File(args.trained, "r") as f:
            group = f["particles/checkpoint"]
            slot = int(np.argmax(group["step"][:]))
            theta = group["theta"][slot]
        reps = -(-args.replicas // theta.shape[0])
        sets["trained"] = np.concatenate([theta] * reps)[: args.replicas]
    generator = np.random.default_rng(1)
    centres = generator.standard_normal((8, args.d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    pick = generator.integers(0, 8, (args.replicas, args.n))
    spread = 0.03 * generator.standard_normal((args.replicas, args.n, args.d))
    directions = centres[pick] + spread
    radii = generator.uniform(0.5, 4.0, (args.replicas, args.n, 1))
    sets["aligned"] = radii * directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--n", type=int, default=800)
    parser.add_argument("--d", type=int, default=40)
    parser.add_argument("--trained", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--skip-series",
        action="store_true",
        help="skip the pure series (minutes per frame at 64 x 800)",
    )
    args = parser.parse_args()
    model = IsotropicGaussians(args.d, 0.8, ACTIVATIONS["mmn"])
    print(f"R = {args.replicas}, N = {args.n}, d = {args.d}, kernel_tol = {model.kernel_tol:g}\n")
    print(
        "| units | max pair cosine | pairs above 1/2 | compiled s | NumPy s | "
        "pure series order | pure series s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, theta in unit_sets(args).items():
        c_max = max_pair_cosine(theta, np)
        r = np.linalg.norm(theta, axis=-1)
        cos = np.einsum("rik,rjk->rij", theta / r[..., None], theta / r[..., None])
        above = (np.sum(np.abs(cos) > 0.5) - np.prod(cos.shape[:2])) / (
            cos.size - np.prod(cos.shape[:2])
        )
        pair_population_risk(model, theta[:1])  # compile or load the kernels
        compiled = median_time(lambda theta=theta: pair_population_risk(model, theta), args.repeats)
        reference = median_time(lambda theta=theta: model.population_risk(theta, None, NUMPY), 1)
        try:
            order = pair_order(c_max, model.kernel_tol)
        except ValueError:  # above MAX_PAIR_ORDER: the previous implementation refused
            order = None
        if order is None:
            series, shown = "exceeds the limit", f"> {MAX_PAIR_ORDER}"
        elif args.skip_series:
            series, shown = "skipped", str(order)
        else:
            series_fn = lambda theta=theta, order=order: model.population_risk(  # noqa: E731
                theta, order, NUMPY
            )
            series = f"{median_time(series_fn, 1):.1f}"
            shown = str(order)
        print(
            f"| {name} | {c_max:.4f} | {100 * above:.3f} % | {compiled:.2f} | "
            f"{reference:.1f} | {shown} | {series} |"
        )


if __name__ == "__main__":
    main()
