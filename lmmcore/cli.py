"""The ``lmmcore`` command line.

Flags and output columns are a contract that other tools rely on: extend
them, never rename them. Exit status: 0 success, 2 bad input or usage (with a
one-line message on stderr that names the file, column or ID and what to do),
1 an unexpected internal error (reported without a traceback unless
``LMMCORE_DEBUG=1``).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from typing import Sequence

from .cli_common import (PROG, Console, Parser, add_output_flags, add_strict_ids_argument, int_at_least, positive_float,
                         progress_bar, say)
from .cross_cli import register as register_cross_commands
from .scheduler_spec import add_scheduler_argument
from .eigen_cli import add_eigen_argument
from .eigen_cli import register as register_eigen_command
from .errors import LMMInputError, reporting
from .qtl_cli import register as register_qtl_commands
from .scan_cli import register as register_scan_commands

__all__ = ["PROG", "build_parser", "main"]

_positive_int = int_at_least(3)  # grid sizes


def cmd_fit(args) -> int:
    from .batch import PatternCache, profile_table, results_table
    from .batch_table import fit_table
    from .io import check_output_path, load_data, write_csv_atomic

    check_output_path(args.out, args.force)
    if args.profile_out:
        check_output_path(args.profile_out, args.force)
        if os.path.abspath(args.profile_out) == os.path.abspath(args.out):
            raise LMMInputError("--out and --profile-out name the same file; give two different names")
    started = time.perf_counter()
    saved = None
    if args.eigen:
        from .eigenstore import load_data_with_eigen, read_eigen

        saved = read_eigen(args.eigen)
        data = load_data_with_eigen(saved, args.pheno, args.covar, args.kinship, strict_ids=args.strict_ids)
    elif args.kinship:
        data = load_data(args.kinship, args.pheno, args.covar, strict_ids=args.strict_ids)
    else:
        raise LMMInputError("give the kinship with --kinship K.csv, or its saved decomposition with --eigen K.eig")
    phenotypes = [p.strip() for p in args.phenotypes.split(",") if p.strip()] if args.phenotypes else None
    say(args, f"loaded {data.summary()}")
    # decompositions, and (for --profile-out) rotations, shared by the fit and the profile; without
    # --profile-out no rotation is kept (nor its fingerprint of the phenotypes computed)
    cache = PatternCache(rotations=bool(args.profile_out))
    if saved is not None:
        from .eigenstore import seed_cache

        seed_cache(cache, data, saved)
    bar = None

    def progress(done, total, desc):
        nonlocal bar
        if bar is None:
            bar = progress_bar(args.quiet, total=total, desc="fitting", unit="pattern") or False
        if bar:
            bar.set_postfix_str(desc, refresh=False)
            bar.update(1)

    options = dict(method=args.method, tol=args.tol, kinship_scale=args.kinship_scale, cache=cache, progress=progress)
    if args.scheduler:  # blocks of phenotypes on a Dask cluster
        from .distributed_fit import cluster_fit

        table = results_table(cluster_fit(args.scheduler, data, phenotypes, say=lambda message: say(args, message),
                                          **options))
    else:  # the table from whole columns: no object per phenotype
        table = fit_table(data, phenotypes, **options)
    if bar:
        bar.close()
    write_csv_atomic(table, args.out, force=args.force)
    if args.profile_out:
        import numpy as np

        profiles = profile_table(
            data,
            phenotypes,
            np.linspace(0.0, 1.0, args.grid),
            method=args.method,
            kinship_scale=args.kinship_scale,
            cache=cache,
        )
        write_csv_atomic(profiles, args.profile_out, force=args.force)
    n_boundary = int(table["boundary"].sum())
    say(
        args,
        f"fitted {len(table)} phenotype(s) by {args.method.upper()} in {time.perf_counter() - started:.2f} s "
        f"({len(cache)} eigendecomposition(s)); {n_boundary} on a boundary; results in {args.out}",
    )
    return 0


def cmd_simulate(args) -> int:
    from .example import write_example_dataset

    written = write_example_dataset(args.out_dir, seed=args.seed, n=args.n, force=args.force)
    say(args, f"wrote the example data set to {args.out_dir}" + (f" ({len(written)} files)" if written else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Exact linear mixed models for heritability and QTL mapping.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    fit = sub.add_parser(
        "fit",
        help="estimate heritability of one or many phenotypes",
        description=(
            "Fit y = Xb + e, var(e) = sigma2 (h2 K + (1 - h2) I) for every phenotype by ML or REML. "
            "Individuals are aligned by the IDs in the first column of each file."
        ),
    )
    fit.add_argument("--kinship", metavar="K.csv",
                     help="n x n kinship, IDs as row and column labels (or K.h5 from 'lmmcore kinship'); "
                          "needed unless --eigen is given")
    add_eigen_argument(fit)
    fit.add_argument("--pheno", required=True, metavar="P.csv", help="phenotypes: IDs, then one column per phenotype")
    fit.add_argument("--covar", metavar="C.csv", help="covariates: IDs, then numeric or text columns")
    fit.add_argument("--phenotypes", metavar="A,B,...", help="comma-separated phenotype columns (default: all)")
    add_strict_ids_argument(fit)
    fit.add_argument("--method", choices=["reml", "ml"], default="reml", type=str.lower)
    fit.add_argument("--tol", type=positive_float, default=1e-7, metavar="T",
                     help="absolute tolerance on h2 (default 1e-7)")
    fit.add_argument("--out", required=True, metavar="results.csv", help="one row per phenotype")
    fit.add_argument("--profile-out", metavar="profile.csv",
                     help="write phenotype, method, h2, loglik on --grid points from 0 to 1")
    fit.add_argument("--grid", type=_positive_int, default=101, metavar="N",
                     help="number of h2 values in --profile-out (default 101)")
    fit.add_argument("--kinship-scale", default="1", metavar="C|diag|gower",
                     help="fit c*K instead of K, to report h2 on another kinship scale "
                          "(2 = R/qtl2's 2K; diag = mean diagonal 1; gower = Gower-centred); default 1")
    add_scheduler_argument(fit, "blocks of phenotypes", "the values are the in-process fit's byte for byte "
                           "(each task fits whole blocks of 512 phenotypes of a missingness pattern, as the "
                           "in-process fit does)")
    add_output_flags(fit, force="replace existing output files", quiet="no progress or summary on stderr")
    fit.set_defaults(func=cmd_fit, kinship_or_eigen=True)

    sim = sub.add_parser(
        "simulate",
        help="regenerate the bundled example data set",
        description="Simulate the example population, genotypes, kinship and phenotypes (fixed seed).",
    )
    sim.add_argument("--out-dir", default="assets", metavar="DIR")
    sim.add_argument("--seed", type=int, default=20261123)
    sim.add_argument("--n", type=int, default=300, help="number of individuals (default 300)")
    sim.add_argument("--force", action="store_true", help="replace existing files")
    sim.add_argument("--quiet", action="store_true")
    sim.set_defaults(func=cmd_simulate)

    register_scan_commands(sub)
    register_eigen_command(sub)  # eigen
    register_qtl_commands(sub)  # peaks, effects, fit1
    register_cross_commands(sub)  # genoprob
    return parser


class _VersionAction(argparse.Action):
    """``--version``: the installed version, looked up only when asked (``importlib.metadata`` is slow to import)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show program's version number and exit"):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser._print_message(f"{PROG} {_version()}\n", sys.stdout)
        parser.exit()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lmm-explorer")
    except Exception:  # pragma: no cover - not installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lmmcore`` console script.

    The command runs inside ``reporting(console)``: the engine's messages go
    to a :class:`~lmmcore.cli_common.Console`, which prints each once on
    stderr. Bad input exits with status 2 and one line, never a traceback.

    Without ``argv`` (the console script, ``python -m lmmcore.cli``: the
    process exits when this returns) the objects left are frozen
    (:func:`gc.freeze`) once the command is done, its files written and
    closed: the interpreter's exit then skips their cycle collections, which
    after importing pandas, pyarrow and SciPy cost a fresh ``lmmcore scan``
    about 0.15 s. Called with ``argv`` (tests, other programs), nothing is
    frozen.
    """
    code = _run(argv)
    if argv is None:
        gc.freeze()
    return code


def _run(argv: Sequence[str] | None) -> int:
    """:func:`main`'s command: parse ``argv``, run the subcommand, turn a failure into an exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "kinship_or_eigen", False) and not args.kinship and not args.eigen:
        parser.error(f"{args.command}: one of the arguments --kinship --eigen is required")
    console = Console()
    args.console = console
    try:
        with reporting(console):
            return int(args.func(args))
    except BaseException as exc:  # noqa: BLE001 - each kind gets its exit status below
        return _failure(exc)


def _failure(exc: BaseException) -> int:
    """Say why the command stopped; the exit status (re-raises what is not the user's business)."""
    if isinstance(exc, LMMInputError):
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if isinstance(getattr(exc, "exit_status", None), int):  # e.g. lmmcore.distributed.ClusterError
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    if isinstance(exc, KeyboardInterrupt):
        print(f"{PROG}: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    if isinstance(exc, MemoryError):
        print(f"{PROG}: error: not enough memory for this data set", file=sys.stderr)
        return 1
    if not isinstance(exc, Exception) or os.environ.get("LMMCORE_DEBUG"):
        raise exc
    # never a traceback for users
    print(
        f"{PROG}: internal error: {type(exc).__name__}: {exc}. This is a bug; please report it "
        "with the command you ran (set LMMCORE_DEBUG=1 to see the traceback).",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
