"""The ``meanfield`` console command: argument parsing only, the work is done elsewhere.

Subcommands::

    meanfield run CONFIG -o OUT.h5 [--set section.key=value ...] [--force | --resume] [--quiet]
                  [--dry-run]
    meanfield reproduce NAME -o DIR [--scale small|paper|gpu] [--set section.key=value ...]
    meanfield reproduce package.module:Attribute -o DIR ...   # an experiment of your own
    meanfield reproduce --list
    meanfield info FILE | meanfield info --selftest [--backend NAME]
    meanfield info --models [NAME ...]
    meanfield plot FILE -o DIR
    meanfield --version

Exit status: 0 on success (``--resume`` of a finished file included), 1 when a self-test fails,
2 for a bad configuration, command line or output path, or a file ``--resume`` cannot continue
(one ``error:`` line on stderr, no traceback), 3 when a run stops on a violated invariant (mass,
positivity, free-energy decay).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from meanfield import __version__
from meanfield.config import ConfigError, load_config

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INVARIANT = 0, 1, 2, 3

_RUN_EPILOG = """examples:
  meanfield run data/configs/mmn-isotropic.toml -o out.h5
  meanfield run mmn-isotropic -o out.h5           # the same shipped config, by name, from anywhere
  meanfield run cfg.toml -o out.h5 --set pde.cells=1200 --set model.d=inf --set init.d=40
  meanfield run cfg.toml -o out.h5 --dry-run      # print the resolved config, run nothing
  meanfield run cfg.toml -o out.h5 --resume       # continue a killed run (same config)
"""
_STUDY_EPILOG = """examples:
  meanfield study mmn-isotropic-study -o study.h5   # data/configs/mmn-isotropic-study.toml
  meanfield study cfg.toml -o study.h5 --scheduler tcp://10.0.0.5:8786   # a dask cluster
  meanfield plot study.h5 -o figures/
"""
_SWEEP_EPILOG = """examples:
  meanfield sweep data/configs/mmn-nonmonotone-kappa0.4.toml -o sweep.h5 \\
      --over init.kappa=0.05,0.1,0.15,0.2,0.3,0.4     # one equation, six initial laws
  meanfield sweep cfg.toml -o sweep.h5 --over model.delta=0.5,0.7,0.9   # stacked equations
  meanfield plot sweep.h5 -o figures/
"""
_REPRODUCE_EPILOG = """examples:
  meanfield reproduce --list
  meanfield reproduce rve-pspin -o rve-pspin              # small: minutes on 2 cores
  meanfield reproduce rve-pspin --scale paper -o rve-pspin-paper
  meanfield reproduce rve-pspin --scale paper --set "study.n=[32, 64, 128]" -o DIR
  meanfield reproduce mypackage.myexp:EXPERIMENT -o DIR   # an experiment of your own
A rerun with the same DIR reuses the finished jobs in DIR/runs (an interrupted run continues).
"""
_INFO_EPILOG = """examples:
  meanfield info out.h5                  # attributes, config, datasets, time range
  meanfield info --selftest --backend numpy
  meanfield info --models                # every model: what it offers, its keys and their help
  meanfield info --models quadratic mypackage.models:MyModel
"""
_PLOT_EPILOG = """example:
  meanfield plot out.h5 -o figures/
"""
_MAIN_EPILOG = """examples:
  meanfield run data/configs/mmn-isotropic.toml -o out.h5
  meanfield run mmn-isotropic -o out.h5            # a shipped config by name, from any directory
  meanfield sweep data/configs/mmn-nonmonotone-kappa0.4.toml -o sweep.h5 --over init.kappa=0.1,0.4
  meanfield reproduce --list
  meanfield info out.h5
  meanfield plot out.h5 -o figures/
run 'meanfield COMMAND --help' for the options of each command.
"""


def _error(message: object) -> None:
    """Print ``error: message`` as one line on stderr."""
    print("error: " + " ".join(str(message).splitlines()), file=sys.stderr)


def _is_invariant_violation(exc: BaseException) -> bool:
    try:
        from meanfield.pde.trackers import InvariantViolation
    except ImportError:
        return False
    return isinstance(exc, InvariantViolation)


def _prepare(args: argparse.Namespace) -> tuple[object, Path] | int:
    """Load the config; handle --dry-run and an existing output. An int is the exit status."""
    config = load_config(args.config, args.set)
    if args.dry_run:
        from compare.cost import estimate_cost

        lines = estimate_cost(config)  # builds the run, so it also checks the grid and model
        print(config.to_toml(), end="")
        print("\n# estimated cost")
        for line in lines:
            print(f"# {line}")
        return EXIT_OK
    out = Path(args.output)
    resume = getattr(args, "resume", None)
    if out.exists() and not args.force and not resume:
        options = (
            "--force to overwrite it"
            if resume is None
            else "--resume to continue it or --force to overwrite it"
        )
        _error(f"{out} exists; pass {options} (nothing is overwritten silently)")
        return EXIT_USAGE
    return config, out


def _prepared(
    command: Callable[[argparse.Namespace, Any, Path], int],
) -> Callable[[argparse.Namespace], int]:
    """The handler that runs ``command(args, config, out)`` after :func:`_prepare`."""

    def handler(args: argparse.Namespace) -> int:
        prepared = _prepare(args)
        return prepared if isinstance(prepared, int) else command(args, *prepared)

    return handler


def _cmd_run(args: argparse.Namespace, config: Any, out: Path) -> int:
    from compare.runner import run_config

    try:
        run_config(
            config, out, force=args.force, progress=not args.quiet, resume=args.resume, report=print
        )
    except FileExistsError as exc:
        _error(exc)
        return EXIT_USAGE
    except Exception as exc:
        if _is_invariant_violation(exc):
            _error(exc)
            return EXIT_INVARIANT
        raise
    return EXIT_OK


def _cmd_study(args: argparse.Namespace, config: Any, out: Path) -> int:
    from compare.study import run_study

    try:
        study = run_study(
            config,
            out,
            scheduler=args.scheduler,
            workers=args.workers,
            force=args.force,
            progress=not args.quiet,
        )
    except (FileExistsError, ImportError) as exc:
        _error(exc)
        return EXIT_USAGE
    for failure in study.failures:
        print(f"failed job: {failure}", file=sys.stderr)
    return EXIT_OK if not study.failures else EXIT_FAILED


def _cmd_sweep(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.exists() and not args.force:
        _error(f"{out} exists; pass --force to overwrite it (nothing is overwritten silently)")
        return EXIT_USAGE
    from compare.sweeps import run_sweep

    result = run_sweep(args.config, args.over, out, overrides=args.set, force=args.force)
    if not args.quiet:
        print(
            f"{out}: {result.risk.shape[1]} runs, {result.n_steps} steps, {result.wall_time:.1f} s"
        )
    return EXIT_OK


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from compare.reproduce import EXPERIMENTS, Options, entry_point_names, get_experiment, reproduce

    if args.list:
        experiments = [*EXPERIMENTS.values(), *map(get_experiment, entry_point_names())]
        width = max(len(experiment.name) for experiment in experiments)
        for experiment in experiments:
            print(
                f"{experiment.name:<{width}}  [{'|'.join(experiment.scales)}]  "
                f"{experiment.paper}: {experiment.title}"
            )
        return EXIT_OK
    if args.name is None or args.output is None:
        _error("give an experiment NAME and -o DIR, or --list")
        return EXIT_USAGE
    options = Options(
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.quiet,
        report=(lambda line: None) if args.quiet else print,
    )
    try:
        reproduce(args.name, args.output, scale=args.scale, overrides=args.set, options=options)
    except (ImportError, RuntimeError) as exc:
        _error(exc)
        return EXIT_FAILED
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    if args.models is not None:
        from meanfield.config.schema import describe_models

        print(describe_models(args.models))
        return EXIT_OK
    if args.selftest:
        from meanfield.selftest import run_selftest
        from particles.selftest import run_selftest as run_particle_selftest

        options = {} if args.backend is None else {"backend": args.backend}
        pde_ok = run_selftest(print, **options)
        particles_ok = run_particle_selftest(print, **options)
        print("particle selftest passed" if particles_ok else "particle selftest FAILED")
        return EXIT_OK if pde_ok and particles_ok else EXIT_FAILED
    if args.file is None:
        _error("give a FILE, or --selftest")
        return EXIT_USAGE
    from compare.summary import summary

    try:
        text = summary(args.file)
    except OSError as exc:
        _error(f"cannot read {args.file}: {exc}")
        return EXIT_USAGE
    print(text)
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from compare.figures import plot_any

    try:
        written = plot_any(args.file, args.output)
    except OSError as exc:
        _error(f"cannot read {args.file}: {exc}")
        return EXIT_USAGE
    for path in written:
        print(path)
    return EXIT_OK


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def _shared_options() -> dict[str, argparse.ArgumentParser]:
    """The options several subcommands share, each defined once in a parent parser."""
    overrides, output, force, progress, dry_run, pool = (_parent() for _ in range(6))
    overrides.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        help="override a config value (TOML syntax; repeatable)",
    )
    output.add_argument(
        "-o", "--output", metavar="OUT.h5", required=True, help="HDF5 file to write"
    )
    force.add_argument("--force", action="store_true", help=_FORCE_HELP)
    progress.add_argument("--quiet", action="store_true", help="no progress output")
    dry_run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config as TOML and its estimated cost, and exit without running",
    )
    pool.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="dask.distributed scheduler (tcp://host:port); 'local' runs the "
        "jobs in this process; default: a local process pool",
    )
    pool.add_argument(
        "--workers",
        type=int,
        default=None,
        help="process-pool size (default: the CPU count; 2 for reproduce)",
    )
    return {
        "overrides": overrides,
        "output": output,
        "force": force,
        "progress": progress,
        "dry_run": dry_run,
        "pool": pool,
    }


_FORCE_HELP = "overwrite OUT.h5 if it exists"
_CONFIG_HELP = (
    "TOML {}: a path, or the name of a shipped config without .toml (mmn-isotropic "
    "is data/configs/mmn-isotropic.toml; an unknown name lists them)"
)


def _add_run(
    subparsers: argparse._SubParsersAction, shared: dict[str, argparse.ArgumentParser]
) -> None:
    run = subparsers.add_parser(
        "run",
        help="run the PDE of a TOML config and write an HDF5 file",
        description="Validate CONFIG, then run it and write OUT.h5.",
        epilog=_RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[shared[k] for k in ("output", "overrides", "progress", "dry_run")],
    )
    run.add_argument("config", metavar="CONFIG", help=_CONFIG_HELP.format("run configuration"))
    existing = run.add_mutually_exclusive_group()
    existing.add_argument("--force", action="store_true", help=_FORCE_HELP)
    existing.add_argument(
        "--resume",
        action="store_true",
        help="continue OUT.h5 from its last complete frames (same config and "
        "--set values); a finished file is left as it is",
    )
    run.set_defaults(handler=_prepared(_cmd_run))

    study = subparsers.add_parser(
        "study",
        help="LLN/CLT study: particle ensembles over N against the PDE",
        description="Run the PDE once and particle ensembles for every N of [study], then "
        "write errors, N Var, CLT predictions and fitted slopes to OUT.h5.",
        epilog=_STUDY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[
            shared[k] for k in ("output", "overrides", "pool", "force", "progress", "dry_run")
        ],
    )
    study.add_argument(
        "config",
        metavar="CONFIG",
        help=_CONFIG_HELP.format("config with [pde], [particles] and [study]"),
    )
    study.set_defaults(handler=_prepared(_cmd_study))


def _add_sweep(
    subparsers: argparse._SubParsersAction, shared: dict[str, argparse.ArgumentParser]
) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="the PDE of a config at several values of one key, stepped together",
        description="Build CONFIG once per value of --over (each checked like a run), step "
        "the PDE runs together and write group /sweep of OUT.h5.",
        epilog=_SWEEP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[shared[k] for k in ("output", "overrides", "force")],
    )
    sweep.add_argument("config", metavar="CONFIG", help=_CONFIG_HELP.format("config with [pde]"))
    sweep.add_argument(
        "--over",
        metavar="SECTION.KEY=V1,V2,...",
        required=True,
        help="the swept key and its values (numbers)",
    )
    sweep.add_argument("--quiet", action="store_true", help="print nothing on success")
    sweep.set_defaults(handler=_cmd_sweep)


def _add_reproduce(
    subparsers: argparse._SubParsersAction, shared: dict[str, argparse.ArgumentParser]
) -> None:
    rep = subparsers.add_parser(
        "reproduce",
        help="run a published experiment and compare with the paper",
        description="Run experiment NAME from its shipped config at --scale, write its figures "
        "and DIR/results.csv (experiment, quantity, x, ours, ours_low, ours_high, paper_low, "
        "paper_high). NAME is a built-in experiment (--list), 'package.module:Attribute' (an "
        "experiment of your own) or an entry point of the group meanfield.experiments.",
        epilog=_REPRODUCE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[shared[k] for k in ("overrides", "pool", "progress")],
    )
    rep.add_argument("name", metavar="NAME", nargs="?", help="experiment (see --list)")
    rep.add_argument("-o", "--output", metavar="DIR", help="output directory")
    rep.add_argument("--list", action="store_true", help="name the experiments and exit")
    rep.add_argument(
        "--scale",
        choices=("small", "paper", "gpu"),
        default="small",
        help="small: minutes on 2 cores; paper: the published size; gpu: larger "
        "than two cores afford (where an experiment ships it)",
    )
    rep.set_defaults(handler=_cmd_reproduce)


def _add_info_and_plot(subparsers: argparse._SubParsersAction) -> None:
    info = subparsers.add_parser(
        "info",
        help="describe a run file or the models, or run the self-test",
        description="Print a summary of FILE, the models and their config keys with "
        "--models, or check this installation with --selftest.",
        epilog=_INFO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("file", metavar="FILE", nargs="?", help="HDF5 run file")
    info.add_argument("--selftest", action="store_true", help="run the installation self-test")
    info.add_argument(
        "--backend", metavar="NAME", help="backend for --selftest (auto, numpy, cupy)"
    )
    info.add_argument(
        "--models",
        metavar="NAME",
        nargs="*",
        default=None,
        help="list the models (all, or those NAMEd: built-in names or "
        "'package.module:Attribute') with their config keys and exit",
    )
    info.set_defaults(handler=_cmd_info)
    plot = subparsers.add_parser(
        "plot",
        help="write the figures of a run file",
        description="Write the figures of FILE into DIR and print their paths.",
        epilog=_PLOT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plot.add_argument("file", metavar="FILE", help="HDF5 run file")
    plot.add_argument("-o", "--output", metavar="DIR", required=True, help="figure directory")
    plot.set_defaults(handler=_cmd_plot)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``meanfield`` command."""
    parser = argparse.ArgumentParser(
        prog="meanfield",
        description="Mean-field distributional dynamics of two-layer networks: grid PDE "
        "solver and finite-n particle SGD.",
        epilog=_MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"meanfield {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = _shared_options()
    _add_run(subparsers, shared)
    _add_sweep(subparsers, shared)
    _add_reproduce(subparsers, shared)
    _add_info_and_plot(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``meanfield`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` when ``None``.

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return args.handler(args)
    except ConfigError as exc:
        _error(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # stdout piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
