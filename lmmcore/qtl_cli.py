"""The ``lmmcore peaks``, ``lmmcore effects`` and ``lmmcore fit1`` subcommands.

:func:`register` adds them to the ``lmmcore`` parser (:mod:`lmmcore.cli`
calls it from ``_extra_commands``). Conventions are those of
:mod:`lmmcore.cli`: bad input raises :class:`~lmmcore.errors.LMMInputError`
(exit status 2, one sentence on stderr), outputs are written atomically and
an existing file is replaced only with ``--force``.

``lmmcore scan --peaks-out`` reuses :func:`add_peak_arguments` and
:func:`peaks_from_args` (see their docstrings).

Inputs of ``effects`` and ``fit1``: the genotype flags of ``lmmcore scan``
(``--genoprobs G --map M`` or ``--genoprobs G.h5``, ``--genotypes D --map M``,
``--bed PREFIX``, ``--cross CROSS.zip``) with ``--pheno``, ``--covar`` and
``--covar-columns`` (:mod:`lmmcore.cross_cli`); :func:`_read_inputs` is the one
place that turns the flags into genotypes, phenotypes and covariates.
"""

from __future__ import annotations

import argparse
import os
import time

from typing import TYPE_CHECKING

from .cli_common import add_peak_arguments, add_strict_ids_argument, peaks_from_args, say, x_chr_arg
from .errors import LMMInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["register"]


def _distinct_outputs(args, *flags: str) -> None:
    """Check every output path (no overwrite without --force) and that no two name the same file."""
    from .io import check_output_path

    seen: dict[str, str] = {}
    for flag in flags:
        path = getattr(args, flag.lstrip("-").replace("-", "_"), None)
        if not path:
            continue
        check_output_path(path, args.force)
        key = os.path.abspath(path)
        if key in seen:
            raise LMMInputError(f"{seen[key]} and {flag} name the same file; give two different names")
        seen[key] = flag


# --------------------------------------------------------------------------- #
# peaks
# --------------------------------------------------------------------------- #
def _read_scan_csv(path) -> "pd.DataFrame":
    import pandas as pd

    if not os.path.isfile(path):
        raise LMMInputError(f"scan file '{path}' does not exist; give the CSV that 'lmmcore scan --out' wrote")
    try:
        return pd.read_csv(path, dtype={"phenotype": str, "marker": str, "chr": str}, keep_default_na=True,
                           encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise LMMInputError(f"scan file '{path}' is not a readable CSV ({exc})") from None


def cmd_peaks(args) -> int:
    from .io import write_csv_atomic

    _distinct_outputs(args, "--out")
    if os.path.abspath(args.out) == os.path.abspath(args.scan):
        raise LMMInputError("--out names the scan file itself; give another name for the peaks")
    table = _read_scan_csv(args.scan)
    try:
        peaks = peaks_from_args(table, args)
    except LMMInputError as exc:
        raise LMMInputError(f"scan file '{args.scan}': {exc}") from None
    write_csv_atomic(peaks, args.out, force=args.force)
    kind = f"{args.drop:g}-LOD intervals" if args.drop is not None else f"{args.prob:g} Bayes intervals"
    say(args, f"found {len(peaks)} peak(s) above LOD {args.threshold:g} with {kind}; results in {args.out}")
    return 0


# --------------------------------------------------------------------------- #
# effects and fit1
# --------------------------------------------------------------------------- #
def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    from .scan_cli import _add_genotype_arguments

    _add_genotype_arguments(parser)
    parser.add_argument("--pheno", metavar="P.csv",
                        help="phenotypes: IDs, then one column per phenotype (with --cross, default: the cross's)")
    parser.add_argument("--covar", metavar="C.csv", help="covariates: IDs, then numeric or text columns")
    parser.add_argument("--phenotypes", required=True, metavar="NAME", help="the phenotype column to fit")
    parser.add_argument("--kinship", default="loco", metavar="loco|overall|FILE",
                        help="'loco' (default: from the markers of the other chromosomes), 'overall', or a CSV "
                             "written by 'lmmcore kinship' (square, or long with chr, id columns for LOCO)")
    parser.add_argument("--eigen", metavar="K.eig",
                        help="use the kinship(s) saved by 'lmmcore eigen' (their decomposition when the phenotype "
                             "is observed on all of the file's individuals; else U diag(d) U' restricted is "
                             "decomposed again); --kinship, if a file, is then checked against it")
    parser.add_argument("--method", choices=["reml", "ml"], default="reml", type=str.lower,
                        help="how the null h2 is estimated (default reml, as R/qtl2)")
    parser.add_argument("--contrasts", choices=["additive-dominance"], type=str.lower,
                        help="report mu, a, d (F2: genotype means mu - a, mu + d, mu + a) instead of one "
                             "effect per genotype")
    parser.add_argument("--no-zerosum", action="store_true",
                        help="genotype effects as fitted (default: centred to sum to zero, with their mean "
                             "as 'intercept', R/qtl2's zerosum)")
    parser.add_argument("--x-chr", metavar="X",
                        help="with --genoprobs, --genotypes or --bed: the X chromosome(s) (comma-separated), fitted "
                             "with their own genotype set and --x-covar in the null model (R/qtl2's nullcovar); "
                             "--cross knows its X and its covariates")
    parser.add_argument("--x-covar", metavar="XC.csv",
                        help="the X covariates of --x-chr: IDs, then numeric columns (R/qtl2's get_x_covar: sex 1 = "
                             "male; for an F2 also direction, 1 for females of the reverse cross)")
    add_strict_ids_argument(parser)
    parser.add_argument("--force", action="store_true", help="replace existing output files")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")


def _read_inputs(args):
    """``(genotypes, phenotypes, covariates, kinship)`` from the flags (``--cross`` included)."""
    from .cross_cli import check_kinship_arg, genotype_inputs, kinship_for_scan, phenotype_inputs, read_cross_arg
    from .selection import check_names, strict_cli_ids

    name = args.phenotypes.strip()
    if "," in name or not name:
        raise LMMInputError("--phenotypes takes one phenotype column name here (effects are for one phenotype)")
    if not args.pheno and not args.cross:
        raise LMMInputError("give the phenotypes with --pheno P.csv (IDs, then one column per phenotype)")
    check_kinship_arg(args.kinship)
    cross = read_cross_arg(args.cross) if args.cross else None
    pheno, covar, pheno_name = phenotype_inputs(args, cross)  # before the HMM runs
    check_names([name], pheno.columns, pheno_name)
    x_chr = x_chr_arg(args)
    inputs = genotype_inputs(args, scan=False, cross=cross, x_scan=cross is not None, x_chr=x_chr)
    chromosome = getattr(args, "chr", None)
    marker = getattr(args, "marker", None)
    if chromosome is not None and str(chromosome).strip() in inputs.left_out:
        raise LMMInputError(f"chromosome {str(chromosome).strip()} has its own genotype set (an X chromosome): name "
                            "it with --x-chr (and its covariates with --x-covar), or fit it from the cross with "
                            "--cross, which supplies them")
    where = None
    if marker is not None and marker.strip() in inputs.genotypes.markers:
        where = inputs.genotypes.chromosome[inputs.genotypes.markers.index(marker.strip())]
        if where in inputs.left_out:
            raise LMMInputError(f"marker {marker.strip()} is on chromosome {where}, which has its own genotype set (an "
                                "X chromosome): name it with --x-chr (and its covariates with --x-covar), or fit "
                                "it from the cross with --cross, which supplies them")
    if args.eigen:
        from .eigen_cli import kinship_with_eigen

        kinship = kinship_with_eigen(args, inputs, file_only=True)
    else:
        kinship = kinship_for_scan(inputs, args.kinship, args.kind)
    strict_cli_ids(args, inputs.genotypes, pheno, pheno_name, covar, kinship)
    fitted_chr = str(chromosome).strip() if chromosome is not None else where
    nullcovar = None
    if fitted_chr is not None and fitted_chr in inputs.x_chr:
        from .io import read_covariates
        from .xchr import x_covariates

        # R/qtl2: scan1coef / fit1 on X with nullcovar = get_x_covar(cross)
        nullcovar = x_covariates(cross) if cross is not None else (
            read_covariates(args.x_covar) if args.x_covar else None)
        if nullcovar is not None and args.x_covar and args.strict_ids:
            from .selection import check_same_ids

            check_same_ids({f"genotypes '{inputs.genotypes.source}'": inputs.genotypes.ids,
                            f"X covariate file '{args.x_covar}'": nullcovar.index})
    return inputs.scanned, pheno, covar, kinship, nullcovar


def cmd_effects(args) -> int:
    from .effects import scan1coef
    from .effects_blup import scan1blup
    from .io import write_csv_atomic

    _distinct_outputs(args, "--out")
    started = time.perf_counter()
    genotypes, pheno, covar, kinship, nullcovar = _read_inputs(args)
    common = dict(chromosome=str(args.chr).strip(), phenotype=args.phenotypes.strip(), kinship=kinship,
                  kind=args.kind, method=args.method, contrasts=args.contrasts, nullcovar=nullcovar)
    if args.blup:
        result = scan1blup(genotypes, pheno, covar, **common)
    else:
        result = scan1coef(genotypes, pheno, covar, zerosum=not args.no_zerosum, centred_se=args.centred_se,
                           **common)
    write_csv_atomic(result.table, args.out, force=args.force)
    say(args, f"{'BLUPs' if args.blup else 'coefficients'} of {result.phenotype} at {len(result.table)} positions "
               f"of chromosome {result.chromosome} on {result.n} individuals ({result.kinship} kinship, null h2 "
               f"{result.h2:.4f} by {result.method.upper()}) in {time.perf_counter() - started:.2f} s; "
               f"results in {args.out}")
    return 0


def cmd_fit1(args) -> int:
    from .effects import fit1
    from .io import write_csv_atomic

    _distinct_outputs(args, "--out", "--individuals-out")
    genotypes, pheno, covar, kinship, nullcovar = _read_inputs(args)
    result = fit1(genotypes, pheno, covar, marker=args.marker.strip(), phenotype=args.phenotypes.strip(),
                  kinship=kinship, kind=args.kind, method=args.method, zerosum=not args.no_zerosum,
                  contrasts=args.contrasts, nullcovar=nullcovar)
    import pandas as pd

    write_csv_atomic(pd.DataFrame([result.to_row()]), args.out, force=args.force)
    if args.individuals_out:
        write_csv_atomic(result.individuals.reset_index(), args.individuals_out, force=args.force)
    say(args, f"{result.phenotype} at {result.marker} (chr {result.chromosome}, {result.pos:g}): LOD "
               f"{result.lod:.3f}, variance explained {result.variance_explained:.3f} on {result.n} individuals; "
               f"results in {args.out}" + (f", individuals in {args.individuals_out}" if args.individuals_out else ""))
    return 0


# --------------------------------------------------------------------------- #
# Registration
# --------------------------------------------------------------------------- #
def register(subparsers) -> None:
    """Add the ``peaks``, ``effects`` and ``fit1`` subcommands to the ``lmmcore`` parser."""
    pk = subparsers.add_parser(
        "peaks",
        help="peaks of a genome scan with LOD support or Bayes credible intervals (R/qtl2's find_peaks)",
        description=(
            "Find the peaks of a scan written by 'lmmcore scan --out' (columns phenotype, marker, chr, pos, lod), "
            "with R/qtl2's find_peaks semantics: peaks above --threshold, several per chromosome when the LOD "
            "falls by --peakdrop between them, and for each a LOD support interval (--drop) or a Bayes credible "
            "interval (--prob, 10^LOD normalised over the chromosome). Output columns: phenotype, chr, pos, "
            "marker, lod, ci_lo, ci_hi, ci_lo_marker, ci_hi_marker."
        ),
    )
    pk.add_argument("--scan", required=True, metavar="scan.csv", help="the long table of 'lmmcore scan --out'")
    add_peak_arguments(pk)
    pk.add_argument("--out", required=True, metavar="peaks.csv", help="one row per peak")
    pk.add_argument("--force", action="store_true", help="replace an existing output file")
    pk.add_argument("--quiet", action="store_true", help="no summary on stderr")
    pk.set_defaults(func=cmd_peaks)

    ef = subparsers.add_parser(
        "effects",
        help="QTL effects with SEs along a chromosome (R/qtl2's scan1coef; --blup for scan1blup)",
        description=(
            "At every position of --chr fit y = (genotype columns) + covariates + e, var(e) = sigma2 (h2 K + "
            "(1 - h2) I), with h2 estimated once under the null model (REML by default) and K the LOCO kinship "
            "by default, as R/qtl2's scan1coef with a kinship. Output: one row per position with marker, chr, "
            "pos, one column per genotype named as in the probabilities (or dosage), se_<name> for each, then "
            "the covariates (and intercept) with their se_ columns. With zerosum (the default) the genotype "
            "effects are centred and their mean is 'intercept'; their SEs are R/qtl2's (those of the uncentred "
            "effects) unless --centred-se. --blup gives scan1blup's shrunken effects (random genotype effects "
            "with a REML variance per position, column h2_qtl) and their prediction-error SEs. The X chromosome "
            "(of --cross, or named by --x-chr) is fitted with its own genotypes (an F2's SS, SB, BS, BB, SY, BY), "
            "the X covariates in the null model only (R/qtl2's nullcovar = get_x_covar(cross), or --x-covar) and "
            "with --kinship loco the kinship of all autosomes."
        ),
    )
    _add_input_arguments(ef)
    ef.add_argument("--chr", required=True, metavar="C", help="the chromosome")
    ef.add_argument("--blup", action="store_true", help="BLUPs of the genotype effects (R/qtl2's scan1blup)")
    ef.add_argument("--centred-se", action="store_true",
                    help="with zerosum: exact SEs of the centred effects (R/qtl2's scan1coef keeps the uncentred ones)")
    ef.add_argument("--out", required=True, metavar="effects.csv", help="one row per position")
    ef.set_defaults(func=cmd_effects)

    f1 = subparsers.add_parser(
        "fit1",
        help="one position in full: LOD, coefficients with SEs, fitted values, polygenic BLUP (R/qtl2's fit1)",
        description=(
            "Fit the QTL model at --marker with the null h2 of its chromosome held fixed (R/qtl2's fit1 with a "
            "kinship). --out gets one row: phenotype, marker, chr, pos, n, h2, lod, the coefficients and their "
            "se_ columns, sigma2, pve_lod (1 - 10^(-2 LOD/n)), and the variance decomposition variance_qtl, "
            "variance_polygenic, variance_noise, variance_explained (the QTL's share of the phenotypic "
            "variance). --individuals-out gets id, y, fitted, residual, polygenic (BLUP of the polygenic "
            "effect), noise. On the X chromosome the X covariates are in the null model (R/qtl2's fit1 with "
            "nullcovar), so the LOD is the X scan's."
        ),
    )
    _add_input_arguments(f1)
    f1.add_argument("--marker", required=True, metavar="M", help="the marker (or pseudomarker)")
    f1.add_argument("--out", required=True, metavar="fit1.csv", help="one row")
    f1.add_argument("--individuals-out", metavar="I.csv", help="fitted values, residuals and polygenic BLUPs")
    f1.set_defaults(func=cmd_fit1)
