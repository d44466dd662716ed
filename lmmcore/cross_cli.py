"""The ``lmmcore genoprob`` subcommand and the genotype sources of ``kinship``, ``scan``, ``effects``, ``fit1``.

Genotype sources (mutually exclusive): ``--genoprobs G`` (R/qtl2's CSV with
``--map``, or lmmcore's HDF5 file, ``.h5``/``.hdf5``, which holds its map),
``--genotypes D --map M`` (dosages), ``--bed PREFIX`` (PLINK), and ``--cross
FILE`` (an R/qtl2 cross, ``.zip`` or ``.yaml``/``.json``, whose genotype
probabilities are computed here by the hidden Markov model,
:func:`lmmcore.hmm.genoprob`, with ``--step --off-end --stepwidth
--error-prob --map-function`` and, with ``--alleles``, turned into allele
probabilities, :func:`lmmcore.hmm.allele_probs`).

With ``--cross``, phenotypes and covariates may come from the cross:
``--pheno`` omitted uses the cross's phenotypes and ``--covar-columns A,B``
picks covariates from the cross's covariates (text columns become indicators,
as in every covariate file); explicit ``--pheno``/``--covar`` files win.

The X chromosome: R/qtl2 gives the X of a cross its own genotype set (an
F2's ``SS, SB, BS, BB, SY, BY``; DO's 36 + 8 hemizygous genotypes), held in
the union layout of :class:`~lmmcore.genotypes.Genotypes`
(``genotypes_by_chr``). Kinships follow R/qtl2's ``calc_kinship`` defaults
(``omit_x = FALSE``, ``use_allele_probs = TRUE``): every chromosome,
X included, through allele probabilities. ``lmmcore scan --cross`` scans
the X chromosome as R/qtl2's ``scan1(..., Xcovar = get_x_covar(cross))``
(:mod:`lmmcore.xchr`): its own genotype set, the X covariates in its null
and alternative models, and the LOCO kinship of all autosomes. Effects
leave the X chromosome of a cross out (with one message); from a genotype
file, a chromosome whose genotype set differs from the others' is left out
of scans likewise.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .cli_common import add_output_flags, int_at_least, non_negative, number, progress_bar, say
from .errors import LMMInputError, report

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .cross import Cross
    from .genotypes import Genotypes

__all__ = [
    "GenotypeInputs", "add_genotype_source", "cross_genotypes", "genotype_inputs", "kinship_for_scan",
    "phenotype_inputs", "read_genotype_args", "register",
]

MAP_FUNCTIONS = ("haldane", "kosambi", "c-f", "morgan")
BINARY_SUFFIXES = (".h5", ".hdf5")


# --------------------------------------------------------------------------- #
# Argument types and flags
# --------------------------------------------------------------------------- #
def error_probability(text: str) -> float:
    """An argparse type: a probability in [0, 1)."""
    value = number(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be at least 0 and below 1, e.g. 0.002")
    return value


def chromosome_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated chromosome names."""
    names = tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))
    if not names:
        raise argparse.ArgumentTypeError("give comma-separated chromosome names, e.g. 1,2,X")
    return names


def add_hmm_arguments(parser) -> None:
    """The options of the hidden Markov model (R/qtl2's ``calc_genoprob`` and ``insert_pseudomarkers``)."""
    parser.add_argument("--step", type=non_negative, default=0.0, metavar="CM",
                        help="pseudomarkers every CM cM (default 0: markers only), named as R/qtl2 (c1.loc28)")
    parser.add_argument("--off-end", type=non_negative, default=0.0, metavar="CM",
                        help="pseudomarkers up to CM cM beyond the first and last marker (default 0)")
    parser.add_argument("--stepwidth", choices=["fixed", "max"], default="fixed", type=str.lower,
                        help="'fixed' grid every --step cM, or 'max': fewest pseudomarkers so that no gap "
                             "exceeds --step (default fixed)")
    parser.add_argument("--error-prob", type=error_probability, default=1e-4, metavar="E",
                        help="genotyping error probability (default 1e-4, as R/qtl2's calc_genoprob)")
    parser.add_argument("--map-function", choices=list(MAP_FUNCTIONS), default="haldane", type=str.lower,
                        help="genetic map to recombination fractions (default haldane, as R/qtl2)")
    parser.add_argument("--alleles", action="store_true",
                        help="allele (founder) probabilities instead of genotype probabilities "
                             "(R/qtl2's genoprob_to_alleleprob)")
    parser.add_argument("--chromosomes", type=chromosome_list, metavar="1,2,X",
                        help="only these chromosomes (probabilities, kinships and scan)")
    parser.add_argument("--cores", type=int_at_least(0), default=1, metavar="N",
                        help="threads computing chromosomes in parallel (0: one per CPU; default 1)")


def add_genotype_source(parser: argparse.ArgumentParser, *, covariates: bool) -> None:
    """``--genoprobs | --genotypes | --bed | --cross`` with ``--map``, ``--kind`` and the cross options.

    ``covariates`` adds ``--covar-columns`` (commands that fit phenotypes).
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--genoprobs", metavar="G.csv|G.h5",
                        help="genotype probabilities: R/qtl2's CSV (IDs, then MARKER:GENOTYPE columns; needs --map) "
                             "or the binary file of 'lmmcore genoprob --out G.h5' (.h5/.hdf5, map inside)")
    source.add_argument("--genotypes", metavar="D.csv",
                        help="allele dosages in [0, 2]: IDs, then one column per marker (needs --map)")
    source.add_argument("--bed", metavar="PREFIX",
                        help="PLINK 1 binary files PREFIX.bed/.bim/.fam (dosage of the .bim's first allele)")
    source.add_argument("--cross", metavar="CROSS.zip",
                        help="an R/qtl2 cross (.zip, or a .yaml/.json control file): genotype probabilities by "
                             "the hidden Markov model (options below); its phenotypes and covariates are used "
                             "unless --pheno/--covar are given")
    parser.add_argument("--map", metavar="M.csv", help="marker map with columns marker, chr, pos")
    parser.add_argument("--kind", choices=["standardized", "centered"], default="standardized", type=str.lower,
                        help="kinship from dosages: standardized (GCTA's GRM, default) or centered "
                             "(GEMMA's -gk 1); genotype probabilities always give R/qtl2's calc_kinship")
    hmm = parser.add_argument_group("cross options (with --cross; --chromosomes also for other sources)")
    add_hmm_arguments(hmm)
    if covariates:
        hmm.add_argument("--covar-columns", metavar="A,B,...",
                         help="covariate columns to use: from --covar if given, else from the cross's covariates "
                              "(text columns become indicators); without it a cross's covariates are not used")


# --------------------------------------------------------------------------- #
# Reading a cross and computing its probabilities
# --------------------------------------------------------------------------- #
def read_cross_arg(path: str) -> "Cross":
    """:func:`lmmcore.read_cross` of ``--cross``, with a sentence for a missing file."""
    from .cross_files import read_cross

    if not os.path.exists(path):
        raise LMMInputError(f"cross file '{path}' does not exist; give an R/qtl2 cross (.zip, or a .yaml/.json "
                            "control file beside its files)")
    return read_cross(path)  # a folder or another kind of file: read_cross says what to give


def _check_chromosomes(have: Sequence[str], wanted: Sequence[str] | None, where: str) -> list[str]:
    if wanted is None:
        return list(have)
    unknown = [c for c in wanted if c not in have]
    if unknown:
        raise LMMInputError(f"--chromosomes names {', '.join(unknown)}, which {where} does not have "
                            f"(it has {', '.join(have)}); check the chromosome names")
    return [c for c in have if c in set(wanted)]


def cross_genotypes(cross: "Cross", args, *, quiet: bool = False) -> "Genotypes":
    """Genotype (or, with ``args.alleles``, allele) probabilities of a cross.

    ``lmmcore.genoprob(cross, ..., alleles=args.alleles)``: with ``--alleles``
    each chromosome becomes allele probabilities as soon as it is computed, so
    the genotype probabilities of all chromosomes are never held at once. A
    progress bar on stderr (a terminal only; none with ``quiet``) counts the
    chromosomes as they are done.
    """
    from .hmm import genoprob

    chromosomes = _check_chromosomes(cross.chromosomes, args.chromosomes, f"the cross '{cross.source}'")
    bar = progress_bar(quiet, total=len(chromosomes), desc="genotype probabilities", unit="chr")

    def done(chromosome: str) -> None:
        bar.set_postfix_str(f"chr {chromosome}", refresh=False)
        bar.update(1)

    try:
        return genoprob(cross, chromosomes=chromosomes, step=args.step, off_end=args.off_end,
                        stepwidth=args.stepwidth, error_prob=args.error_prob, map_function=args.map_function,
                        cores=args.cores, alleles=bool(args.alleles), progress=None if bar is None else done)
    finally:
        if bar is not None:
            bar.close()


# --------------------------------------------------------------------------- #
# Genotype inputs of kinship, scan, effects, fit1
# --------------------------------------------------------------------------- #
def read_genotype_args(args, plink=None) -> "Genotypes":
    """Read the genotypes named by ``--genoprobs/--genotypes/--bed`` (and ``--map``); not ``--cross``.

    ``plink`` is a :class:`~lmmcore.prefetch.Prefetch` of ``read_plink(args.bed)`` started earlier, or None.
    """
    from .genotypes import read_dosages, read_genoprobs, read_plink

    if args.bed:
        if args.map:
            report("--map is ignored with --bed: positions come from the .bim file")
        return plink.result() if plink is not None else read_plink(args.bed)
    if args.genoprobs and str(args.genoprobs).lower().endswith(BINARY_SUFFIXES):
        from .genostore import read_genotypes_h5

        if args.map:
            report("--map is ignored with an .h5 genotype file: its map is inside the file")
        return read_genotypes_h5(args.genoprobs)
    flag = "--genoprobs" if args.genoprobs else "--genotypes"
    if not args.map:
        raise LMMInputError(f"{flag} needs the marker map: add --map M.csv (columns marker, chr, pos)")
    if args.genoprobs:
        return read_genoprobs(args.genoprobs, args.map)
    return read_dosages(args.genotypes, args.map)


@dataclass(frozen=True, eq=False)
class GenotypeInputs:
    """The genotypes a command works on.

    Attributes
    ----------
    genotypes : Genotypes
        Every chromosome read or computed (after ``--chromosomes``).
    scanned : Genotypes
        The chromosomes to scan: ``genotypes`` without ``left_out``.
    left_out : tuple of str
        Chromosomes not scanned: the X chromosome of a cross, or a
        chromosome with its own genotype set in a genotype file.
    cross : Cross or None
        The cross, with ``--cross``.
    x_chr : tuple of str
        The cross's X chromosome(s) when they are scanned (``lmmcore scan
        --cross``): in ``scanned``, to be scanned with their own genotype
        set and the X covariates (:func:`lmmcore.scan.scan`'s ``x_chr``).
    """

    genotypes: "Genotypes"
    scanned: "Genotypes"
    left_out: tuple[str, ...]
    cross: "Cross | None" = None
    x_chr: tuple[str, ...] = ()


def _own_sets(genotypes: "Genotypes", x_chr: Sequence[str] = ()) -> list[str]:
    """Chromosomes whose genotype set differs from the most common one (union layout).

    The most common set is counted over the chromosomes not named in
    ``x_chr`` (all of them if that leaves none); a tie goes to the set of
    the first of those chromosomes, so the answer never depends on the
    order of a hash (one autosome and one X chromosome tie).
    """
    by_chr = genotypes.genotypes_by_chr
    if not by_chr or len(set(by_chr.values())) < 2:
        return []
    named = [c for c in genotypes.chromosomes if c in by_chr]
    sets = [by_chr[c] for c in named if c not in x_chr] or [by_chr[c] for c in named]
    common = max(dict.fromkeys(sets), key=sets.count)  # the first of the most common, in chromosome order
    return [c for c in genotypes.chromosomes if by_chr.get(c, common) != common]


def genotype_inputs(args, *, scan: bool = True, cross: "Cross | None" = None, x_scan: bool = False,
                    x_chr: Sequence[str] = (), plink=None) -> GenotypeInputs:
    """The genotypes of the flags (``--cross`` through the HMM), and which chromosomes a scan leaves out.

    With ``scan``, the left-out chromosomes are named in one message. With
    ``x_scan``, the X chromosome of a ``--cross`` is scanned
    (:attr:`GenotypeInputs.x_chr`) rather than left out; from a genotype
    file, the chromosomes ``x_chr`` (``--x-chr``) are.
    ``cross`` is the cross of ``--cross`` when the caller has read it
    (:func:`read_cross_arg`) to check phenotypes before the HMM runs; ``plink``
    the PLINK files read already (see :func:`read_genotype_args`).
    """
    if getattr(args, "cross", None):
        cross = read_cross_arg(args.cross) if cross is None else cross
        if args.map:
            report("--map is ignored with --cross: the map is the cross's")
        genotypes = cross_genotypes(cross, args, quiet=args.quiet)
        from .crosstypes import cross_model

        # a type whose model ignores X (riself, dh, haploid) has it as an autosome, scanned as R/qtl2 does
        handles_x = cross_model(cross.crosstype, cross.source).handles_x
        left_out = [c for c in genotypes.chromosomes if handles_x and cross.is_x_chr.get(c, False)]
        why = "the cross's X chromosome"
        if x_scan:
            return GenotypeInputs(genotypes=genotypes, scanned=genotypes, left_out=(), cross=cross,
                                  x_chr=tuple(left_out))
    else:
        genotypes = read_genotype_args(args, plink=plink)
        wanted = getattr(args, "chromosomes", None)
        if wanted is not None:
            from .xchr import select_chromosomes

            chosen = _check_chromosomes(genotypes.chromosomes, wanted, f"'{genotypes.source}'")
            genotypes = select_chromosomes(genotypes, chosen)
        x_chr = tuple(str(c) for c in x_chr)
        unknown = [c for c in x_chr if c not in genotypes.chromosomes]
        if unknown:
            raise LMMInputError(f"--x-chr names {', '.join(unknown)}, which '{genotypes.source}' does not have "
                                f"(it has {', '.join(genotypes.chromosomes)}); check the chromosome names")
        left_out = [c for c in _own_sets(genotypes, x_chr) if c not in x_chr]
        why = "its own genotype set, as an X chromosome"
    scanned = genotypes
    if left_out and len(left_out) < len(genotypes.chromosomes):
        from .xchr import select_chromosomes

        scanned = select_chromosomes(genotypes, [c for c in genotypes.chromosomes if c not in left_out])
        if scan:
            report(f"chromosome {', '.join(left_out)} ({why}) is left out of the scan (scan it as an X chromosome "
                   "with --x-chr and its covariates with --x-covar); its markers still count in the kinships, as "
                   "in R/qtl2's calc_kinship")
    elif left_out and scan:
        raise LMMInputError(f"chromosome {', '.join(left_out)} ({why}) cannot be scanned as an autosome; scan "
                            "it as an X chromosome with --x-chr (and --x-covar), or add autosomes to --chromosomes")
    return GenotypeInputs(genotypes=genotypes, scanned=scanned, left_out=tuple(left_out), cross=cross,
                          x_chr=tuple(x_chr) if cross is None else ())


def check_kinship_arg(key: str) -> str:
    """``--kinship`` stripped; a file that does not exist is an error (checked before any work)."""
    key = key.strip()
    if key.lower() not in ("loco", "overall") and not os.path.isfile(key):
        raise LMMInputError(f"kinship file '{key}' does not exist; give 'loco', 'overall' or a CSV file")
    return key


def kinship_for_scan(inputs: GenotypeInputs, key: str, kind: str, prepared=None):
    """The ``kinship=`` argument of :func:`lmmcore.scan.scan` for ``--kinship loco|overall|FILE``.

    ``loco`` and ``overall`` stay as they are (the scan computes them from
    its genotypes) unless chromosomes are left out: then they are computed here from
    :attr:`GenotypeInputs.genotypes` (every chromosome, X included, as
    R/qtl2's ``calc_kinship`` defaults, ``omit_x = FALSE``) and LOCO gives one matrix per scanned
    chromosome. ``prepared`` is the kinship file read already
    (:func:`lmmcore.kinship_csv.prepare_kinship`, a
    :class:`~lmmcore.kinship_csv.PlainKinship`), or None.
    """
    from .io import plain_kinship_frame, read_kinship_file
    from .kinship import compute_kinship, compute_loco_kinships

    key = check_kinship_arg(key)
    mode = key.lower()
    if mode not in ("loco", "overall"):
        if prepared is not None:
            return plain_kinship_frame(prepared, os.path.basename(key) or key)
        return read_kinship_file(key)
    if not inputs.left_out:
        return mode
    source = inputs.genotypes
    if mode == "overall":
        return compute_kinship(source, kind=kind)
    loco = compute_loco_kinships(source, kind=kind)
    return {c: loco[c] for c in inputs.scanned.chromosomes}


def phenotype_inputs(args, cross: "Cross | None") -> tuple["pd.DataFrame", "pd.DataFrame | None", str]:
    """``(phenotypes, covariates, name of the phenotype source)`` from ``--pheno --covar --covar-columns``."""
    from .io import read_covariates, read_phenotypes

    if args.pheno:
        pheno, pheno_name = read_phenotypes(args.pheno), f"phenotype file '{args.pheno}'"
    elif cross is not None:
        pheno, pheno_name = cross.pheno, f"the cross '{cross.source}'"
        if pheno.shape[1] == 0:
            raise LMMInputError(f"the cross '{cross.source}' has no phenotypes; give them with --pheno P.csv")
    else:
        raise LMMInputError("give the phenotypes with --pheno P.csv (IDs, then one column per phenotype), "
                            "or use --cross with a cross that has them")
    columns = getattr(args, "covar_columns", None)
    if args.covar:
        covar, covar_name = read_covariates(args.covar), f"covariate file '{args.covar}'"
    elif columns is not None and cross is not None:
        covar, covar_name = cross.covar, f"the cross '{cross.source}'"
        if covar is None or covar.shape[1] == 0:
            raise LMMInputError(f"--covar-columns: the cross '{cross.source}' has no covariates; give a "
                                "covariate file with --covar C.csv")
    elif columns is not None:
        raise LMMInputError("--covar-columns picks columns of --covar C.csv or of a --cross's covariates; "
                            "give one of them")
    else:
        covar, covar_name = None, ""
    if columns is not None:
        names = [c.strip() for c in columns.split(",") if c.strip()]
        if not names:
            raise LMMInputError("--covar-columns is empty; give comma-separated covariate column names")
        have = [str(c) for c in covar.columns]
        missing = [c for c in names if c not in have]
        if missing:
            raise LMMInputError(f"--covar-columns names {', '.join(missing)}, which {covar_name} does not have; "
                                f"its columns are: {', '.join(have[:20])}")
        covar = covar.loc[:, [covar.columns[have.index(c)] for c in names]]
    return pheno, covar, pheno_name


# --------------------------------------------------------------------------- #
# lmmcore genoprob
# --------------------------------------------------------------------------- #
def _write_probabilities(genotypes: "Genotypes", path: str, force: bool) -> None:
    from .io import atomic_output

    if str(path).lower().endswith(BINARY_SUFFIXES):
        from .genostore import write_genotypes_h5

        write_genotypes_h5(genotypes, path, force=force)
        return
    from .hmm import write_genoprobs

    with atomic_output(path, force=force) as tmp:
        write_genoprobs(genotypes, tmp, force=True)


def map_table(genotypes: "Genotypes") -> "pd.DataFrame":
    """The map of the markers and pseudomarkers: columns ``marker, chr, pos`` (what ``--map`` reads)."""
    import pandas as pd

    return pd.DataFrame({"marker": list(genotypes.markers), "chr": list(genotypes.chromosome),
                         "pos": genotypes.position})


def cmd_genoprob(args) -> int:
    import numpy as np

    from .io import check_output_path, write_csv_atomic

    out = str(args.out)
    if not out.lower().endswith((".csv",) + BINARY_SUFFIXES):
        raise LMMInputError(f"--out '{out}' must end in .csv (R/qtl2's MARKER:GENOTYPE columns) or .h5/.hdf5 "
                            "(lmmcore's binary file)")
    check_output_path(out, args.force)
    if args.map_out:
        check_output_path(args.map_out, args.force)
        if os.path.abspath(args.map_out) == os.path.abspath(out):
            raise LMMInputError("--out and --map-out name the same file; give two different names")
    started = time.perf_counter()
    cross = read_cross_arg(args.cross)
    genotypes = cross_genotypes(cross, args, quiet=args.quiet)
    _write_probabilities(genotypes, out, args.force)
    if args.map_out:
        write_csv_atomic(map_table(genotypes), args.map_out, force=args.force)
    n_pseudo = genotypes.n_markers - sum(int(np.isin(cross.gmap[c].index, genotypes.markers).sum())
                                         for c in genotypes.chromosomes)
    say(args, f"wrote {'allele' if args.alleles else 'genotype'} probabilities of {genotypes.n} individuals at "
               f"{genotypes.n_markers} positions ({n_pseudo} pseudomarkers) on {len(genotypes.chromosomes)} "
               f"chromosome(s) to {out}" + (f", map in {args.map_out}" if args.map_out else "")
        + f" in {time.perf_counter() - started:.2f} s")
    return 0


def register(subparsers) -> None:
    """Add the ``genoprob`` subcommand to the ``lmmcore`` parser."""
    gp = subparsers.add_parser(
        "genoprob",
        help="genotype probabilities of an R/qtl2 cross by the hidden Markov model (R/qtl2's calc_genoprob)",
        description=(
            "Read an R/qtl2 cross (.zip, or a .yaml/.json control file) and compute the probability of every "
            "genotype at every marker (and pseudomarker with --step) given the observed markers, as R/qtl2's "
            "calc_genoprob; --alleles gives allele probabilities (genoprob_to_alleleprob). The output is chosen "
            "by its extension: .csv is R/qtl2's layout (IDs first, then MARKER:GENOTYPE columns with each "
            "chromosome's own genotypes, e.g. SS, SB, BS, BB, SY, BY on an F2's X), which --genoprobs reads "
            "with --map; .h5/.hdf5 is lmmcore's binary file (map, IDs and genotype names inside), which "
            "--genoprobs reads without --map."
        ),
    )
    gp.add_argument("--cross", required=True, metavar="CROSS.zip", help="the R/qtl2 cross")
    add_hmm_arguments(gp)
    gp.add_argument("--map-out", metavar="M.csv",
                    help="also write the map of markers and pseudomarkers (marker, chr, pos), as --map reads it")
    gp.add_argument("--out", required=True, metavar="G.csv|G.h5", help="the probabilities (.csv, .h5 or .hdf5)")
    add_output_flags(gp, force="replace existing output files", quiet="no progress bar or summary on stderr")
    gp.set_defaults(func=cmd_genoprob)
