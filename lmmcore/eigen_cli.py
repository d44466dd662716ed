"""The ``lmmcore eigen`` subcommand and the ``--eigen`` flag of ``fit``, ``scan``, ``effects`` and ``fit1``.

``lmmcore eigen`` saves the eigendecomposition(s) of a kinship (read, or
computed from genotypes like ``lmmcore kinship``) in a binary file
(:mod:`lmmcore.eigenstore`); ``--eigen K.eig`` makes the other commands reuse
it instead of reading a kinship CSV and decomposing it.
"""

from __future__ import annotations

import argparse
import time

from .cli_common import add_output_flags, say
from .errors import LMMInputError

__all__ = ["register", "add_eigen_argument", "EIGEN_HELP", "kinship_with_eigen"]

EIGEN_HELP = (
    "reuse the eigendecomposition saved by 'lmmcore eigen' instead of reading and decomposing the kinship; "
    "a phenotype observed on all of its individuals uses it as saved (identical results), one observed on "
    "fewer gets their sub-kinship (recovered as U diag(d) U') decomposed again. With a kinship FILE as well, "
    "its IDs and sha256 hash must match the saved ones"
)


def add_eigen_argument(parser: argparse.ArgumentParser) -> None:
    """``--eigen K.eig``."""
    parser.add_argument("--eigen", metavar="K.eig", help=EIGEN_HELP)


def kinship_with_eigen(args, inputs, *, file_only: bool = False):
    """The ``kinship=`` argument of the scan for ``--eigen`` (a checked :class:`~lmmcore.eigenstore.SavedEigen`).

    ``args.kinship``, when a file, must hold the kinship(s) that were
    decomposed (same IDs, same hash); ``loco``/``overall`` must name the
    saved mode (unless ``file_only``: then they are ignored, as for the
    commands whose ``--kinship`` defaults to ``loco``).
    """
    from .eigenstore import read_eigen
    from .io import read_kinship_file

    saved = read_eigen(args.eigen)
    key = (args.kinship or "").strip()
    if not key:
        return saved
    if key.lower() in ("loco", "overall"):
        if not file_only and key.lower() != saved.mode:
            raise LMMInputError(
                f"--kinship {key} asks for {'LOCO' if key.lower() == 'loco' else 'one overall'} kinship(s) but "
                f"{saved.name} holds {'LOCO kinships' if saved.mode == 'loco' else 'one overall kinship'}; "
                "leave --kinship out to use the eigen file as it is"
            )
        return saved
    given = read_kinship_file(key)
    mats = given if isinstance(given, dict) else {"all": given}
    if set(mats) != set(saved.labels):
        raise LMMInputError(
            f"kinship file '{key}' has kinships for {', '.join(mats)} but {saved.name} for "
            f"{', '.join(saved.labels)}; give the kinship file the eigen file was made from"
        )
    for label, frame in mats.items():
        saved.check_kinship(frame.to_numpy(dtype=float), frame.index, label, what=f"kinship file '{key}'")
    return saved


def cmd_eigen(args) -> int:
    from .eigenstore import decompose_kinships, write_eigen
    from .io import check_output_path, read_kinship_file

    check_output_path(args.out, args.force)
    started = time.perf_counter()
    if args.kinship:
        given = read_kinship_file(args.kinship)
        if isinstance(given, dict):
            ids = list(next(iter(given.values())).index)
            kinships = {c: k.loc[ids, ids].to_numpy(dtype=float) for c, k in given.items()}
        else:
            ids, kinships = list(given.index), given.to_numpy(dtype=float)
        if args.loco and not isinstance(given, dict):
            raise LMMInputError(f"kinship file '{args.kinship}' holds one kinship; --loco needs the LOCO "
                                "kinships of 'lmmcore kinship --loco' (or give genotypes)")
        source = f"kinship file '{args.kinship}'"
    else:
        from .cross_cli import genotype_inputs
        from .kinship import compute_kinship, compute_loco_kinships

        genotypes = genotype_inputs(args, scan=False).genotypes
        ids = list(genotypes.ids)
        if args.loco:
            kinships = {c: k.matrix for c, k in compute_loco_kinships(genotypes, kind=args.kind).items()}
        else:
            kinships = compute_kinship(genotypes, kind=args.kind).matrix
        source = f"{genotypes.n_markers} markers"
    saved = decompose_kinships(kinships, ids)
    write_eigen(saved, args.out, force=args.force)
    what = f"{len(saved.labels)} LOCO kinships" if saved.mode == "loco" else "the kinship"
    say(args, f"wrote the eigendecomposition of {what} of {len(ids)} individuals ({source}) to {args.out} "
              f"in {time.perf_counter() - started:.2f} s")
    return 0


def register(subparsers) -> None:
    """Add the ``eigen`` subcommand."""
    from .cross_cli import add_genotype_source

    eig = subparsers.add_parser(
        "eigen",
        help="save the eigendecomposition of a kinship for reuse (--eigen of fit, scan, effects, fit1)",
        description=(
            "Eigendecompose a kinship, K = U diag(d) U', and save d, U, the IDs in order and a sha256 hash of "
            "the kinship in a binary HDF5 file (for --loco one decomposition per chromosome, with its "
            "chromosome). The kinship is read (--kinship, CSV or .h5) or computed from genotypes as "
            "'lmmcore kinship' computes it. 'lmmcore fit/scan/effects/fit1 --eigen FILE' then skip reading "
            "and decomposing the kinship; phenotypes observed on fewer individuals than the file has get "
            "their sub-kinship recovered (U diag(d) U' restricted) and decomposed again."
        ),
    )
    add_genotype_source(eig, covariates=False)
    # exactly one of --kinship, --genoprobs, --genotypes, --bed, --cross: --kinship joins the genotype
    # sources' mutually exclusive group (argparse keeps no public handle on it; found by its --genoprobs)
    group = next(g for g in eig._mutually_exclusive_groups
                 if any("--genoprobs" in a.option_strings for a in g._group_actions))
    group.add_argument("--kinship", metavar="K.csv|K.h5",
                       help="the kinship to decompose (CSV or .h5, as 'lmmcore kinship' writes it)")
    eig.add_argument("--loco", action="store_true",
                     help="one decomposition per chromosome, of the kinship leaving that chromosome out")
    eig.add_argument("--out", required=True, metavar="K.eig", help="output file (HDF5)")
    add_output_flags(eig, force="replace an existing output file", quiet="no summary on stderr")
    eig.set_defaults(func=cmd_eigen)
