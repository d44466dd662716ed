"""The ``lmmcore kinship`` and ``lmmcore scan`` subcommands.

:func:`register` adds them to the ``lmmcore`` parser (:mod:`lmmcore.cli`
calls it; the helpers both use are in :mod:`lmmcore.cli_common`, so this
module does not import :mod:`lmmcore.cli`). They follow its conventions: bad input raises
:class:`~lmmcore.errors.LMMInputError`, which ``lmmcore.cli.main`` turns into
exit status 2 and a one-line message; outputs are written atomically and an
existing file is replaced only with ``--force``.

File formats
------------
Genotypes: ``--genoprobs G.csv --map M.csv`` (R/qtl2 genotype probabilities,
columns ``MARKER:GENOTYPE``), ``--genoprobs G.h5`` (lmmcore's binary file, map
inside), ``--cross CROSS.zip`` (probabilities computed by the HMM; see
:mod:`lmmcore.cross_cli`), ``--genotypes D.csv --map M.csv`` (dosages, one
column per marker) or ``--bed PREFIX`` (PLINK 1 binary ``.bed/.bim/.fam``;
dosage = count of the ``.bim``'s first allele). The map has columns
``marker, chr, pos``.

Kinship: an overall kinship is a square CSV (IDs in the first column and as
the column labels), as ``lmmcore fit --kinship`` reads. A LOCO kinship is
one long CSV whose first two columns are ``chr`` and ``id``: the rows of
chromosome c hold the n x n kinship computed without the markers of c.
``lmmcore kinship --loco`` writes that format and ``lmmcore scan --kinship``
reads both (:func:`lmmcore.io.write_kinship_file`, :func:`lmmcore.io.read_kinship_file`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time

from .cli_common import (add_output_flags, add_peak_arguments, add_strict_ids_argument, int_at_least, peaks_from_args,
                         progress_bar, say, x_chr_arg)
from .scheduler_spec import add_scheduler_argument
from .cross_cli import (
    add_genotype_source,
    check_kinship_arg,
    genotype_inputs,
    kinship_for_scan,
    phenotype_inputs,
    read_cross_arg,
    read_genotype_args,
)
from .eigen_cli import add_eigen_argument, kinship_with_eigen
from .scan_output import add_output_arguments, close_sink, executor_from_args, make_sink, write_summary
from .errors import LMMInputError

__all__ = ["register", "read_genotype_args"]


# --------------------------------------------------------------------------- #
# Argument types
# --------------------------------------------------------------------------- #
_count = int_at_least(0)
_positive = int_at_least(1)


def _add_genotype_arguments(parser: argparse.ArgumentParser, *, covariates: bool = True) -> None:
    add_genotype_source(parser, covariates=covariates)


# --------------------------------------------------------------------------- #
# Commands
# --------------------------------------------------------------------------- #
def __getattr__(name: str):
    """``read_kinship_file``, ``write_kinship_file`` (re-exported from :mod:`lmmcore.io`), imported on first use."""
    if name in ("read_kinship_file", "write_kinship_file"):
        from . import io

        return getattr(io, name)
    raise AttributeError(f"module 'lmmcore.scan_cli' has no attribute {name!r}")


def cmd_kinship(args) -> int:
    from .io import check_output_path, write_kinship_file
    from .kinship import compute_kinship, compute_loco_kinships

    check_output_path(args.out, args.force)
    started = time.perf_counter()
    genotypes = genotype_inputs(args, scan=False).genotypes
    if args.loco:
        kin = compute_loco_kinships(genotypes, kind=args.kind)
        write_kinship_file({c: k.matrix for c, k in kin.items()}, genotypes.ids, args.out, force=args.force)
        what = f"{len(kin)} LOCO kinships (one per chromosome)"
    else:
        kin = compute_kinship(genotypes, kind=args.kind)
        write_kinship_file(kin.matrix, genotypes.ids, args.out, force=args.force)
        what = f"the {kin.kind} kinship"
    say(args, f"wrote {what} of {genotypes.n} individuals from {genotypes.n_markers} markers to {args.out} "
               f"in {time.perf_counter() - started:.2f} s")
    return 0


def _progress_bar(quiet: bool):
    """The scan's ``progress`` callback and a function that closes its bar (none with ``--quiet`` or no terminal)."""
    state = {"bar": None}

    def update(done: int, total: int, desc: str) -> None:
        if state["bar"] is None:
            state["bar"] = progress_bar(quiet, total=total, desc="scanning", unit="marker", unit_scale=True) or False
        bar = state["bar"]
        if bar:
            bar.set_postfix_str(desc, refresh=False)
            bar.update(done - bar.n)

    def close() -> None:
        if state["bar"]:
            state["bar"].close()

    return update, close


def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _prefetch_kinship(args):
    """Read and decompose a plain ``--kinship FILE`` in a background thread (:mod:`lmmcore.kinship_csv`), or None.

    Started before the imports of pandas and SciPy, which it overlaps; what
    it needs is imported here first (:mod:`lmmcore.prefetch`).
    """
    key = (args.kinship or "").strip()
    if (args.eigen or not key or key.lower() in ("loco", "overall") or key.lower().endswith((".h5", ".hdf5"))
            or not os.path.isfile(key)):
        return None
    import numpy  # noqa: F401 - imported before the thread starts: see lmmcore.prefetch
    import pyarrow.csv  # noqa: F401

    from .kinship_csv import prepare_kinship
    from .prefetch import Prefetch

    # with --threads the scan's BLAS runs on one thread, and so must its decomposition (the same bits): not here
    return Prefetch(prepare_kinship, key, os.path.basename(key) or key, decompose=not args.threads)


def _prefetch_plink(args):
    """Read ``--bed PREFIX`` in a background thread (:mod:`lmmcore.prefetch`) while SciPy is imported, or None."""
    if not args.bed:
        return None
    import bed_reader  # noqa: F401 - imported before the thread starts (it imports scipy.sparse)

    from .genotypes import read_plink
    from .prefetch import Prefetch

    return Prefetch(read_plink, args.bed)


def _prefetch_scan_module(args):
    """``--cross``: import :mod:`lmmcore.scan` (SciPy's special functions among its imports) in a background thread.

    The main thread meanwhile reads the cross and runs the HMM (whose
    threads release the GIL); what those need is imported here first
    (:mod:`lmmcore.prefetch`). None without ``--cross``.
    """
    if not args.cross:
        return None
    import importlib

    from . import cross_files, crosstypes, genomap, hmm, xchr  # noqa: F401
    from .prefetch import Prefetch

    return Prefetch(importlib.import_module, "lmmcore.scan")


def cmd_scan(args) -> int:
    prefetch = _prefetch_kinship(args)  # first: it runs while pandas and SciPy are imported
    from .io import check_output_path, write_csv_atomic

    plink = _prefetch_plink(args)
    scan_module = _prefetch_scan_module(args)
    if scan_module is None:
        from .scan import scan

    check_output_path(args.out, args.force)
    if args.perm_out:
        if not args.perm:
            raise LMMInputError("--perm-out needs --perm N (the number of permutations)")
        check_output_path(args.perm_out, args.force)
        if os.path.abspath(args.perm_out) == os.path.abspath(args.out):
            raise LMMInputError("--out and --perm-out name the same file; give two different names")
    if args.perm_strata and not args.perm:
        raise LMMInputError("--perm-strata needs --perm N (the number of permutations)")
    rotated = args.perm_scheme == "rotated"
    if args.perm_x_separate and not args.perm:
        raise LMMInputError("--perm-x-separate needs --perm N (the number of permutations)")
    if args.perm_x_separate and rotated:
        raise LMMInputError("--perm-x-separate applies to --perm-scheme genotypes (R/qtl2's perm_Xsp); drop one")
    x_chr = x_chr_arg(args)
    if args.perm_x_separate and not (args.cross or x_chr):
        raise LMMInputError("--perm-x-separate needs an X chromosome: --cross, or --x-chr with a genotype file")
    if rotated and args.perm_strata:
        raise LMMInputError("--perm-strata applies to --perm-scheme genotypes; rotated-residual permutations "
                            "are exchangeable without strata (drop --perm-strata)")
    if args.peaks_out:
        check_output_path(args.peaks_out, args.force)
        others = [os.path.abspath(p) for p in (args.out, args.perm_out) if p]
        if os.path.abspath(args.peaks_out) in others:
            raise LMMInputError("--peaks-out names the same file as --out or --perm-out; give another name")
    sink, peaks_sink = make_sink(args)  # a Parquet file is claimed here, before any work
    select = [p.strip() for p in args.phenotypes.split(",") if p.strip()] if args.phenotypes else None
    if args.phenotypes is not None and not select:
        raise LMMInputError("--phenotypes is empty; give comma-separated phenotype column names")
    if not args.pheno and not args.cross:
        raise LMMInputError("give the phenotypes with --pheno P.csv (IDs, then one column per phenotype), "
                            "or use --cross with a cross that has them")
    started = time.perf_counter()
    if args.kinship is None and not args.eigen:
        raise LMMInputError("give --kinship loco|overall|FILE, or a saved decomposition with --eigen K.eig")
    if args.kinship is not None:
        check_kinship_arg(args.kinship)
    cross = read_cross_arg(args.cross) if args.cross else None
    pheno, covar, pheno_name = phenotype_inputs(args, cross)  # before the HMM runs
    if select:
        from .selection import check_names

        check_names(select, pheno.columns, pheno_name)
    inputs = genotype_inputs(args, cross=cross, x_scan=True, x_chr=x_chr, plink=plink)
    genotypes = inputs.scanned
    prepared = prefetch.result() if prefetch is not None else None
    kinship = (kinship_with_eigen(args, inputs) if args.eigen
               else kinship_for_scan(inputs, args.kinship, args.kind, prepared=prepared))
    scan_kinship = kinship
    if prepared is not None and prepared.eig is not None:
        from .kinship_source import DecomposedKinship

        scan_kinship = DecomposedKinship(kinship, prepared.eig)  # decomposed while the command imported
    del prepared  # its matrix lives on in the frame
    from .selection import strict_cli_ids

    strict_cli_ids(args, inputs.genotypes, pheno, pheno_name, covar, kinship)
    x_options = {}
    if inputs.x_chr:
        from .io import read_covariates
        from .xchr import x_covariates

        xcovar = x_covariates(cross) if cross is not None else (read_covariates(args.x_covar) if args.x_covar
                                                                 else None)
        x_options = dict(x_chr=inputs.x_chr, xcovar=xcovar, perm_x_separate=args.perm_x_separate)
    elif args.perm_x_separate:
        raise LMMInputError(f"--perm-x-separate: the cross '{cross.source}' has no X chromosome to scan "
                            "(or its cross type treats X as an autosome); drop the flag")
    say(args, f"read {genotypes.n} genotyped individuals at {genotypes.n_markers} markers "
               f"({'genotype probabilities' if genotypes.kind == 'genoprobs' else 'dosages'})")
    if args.scheduler and args.threads:
        raise LMMInputError("--threads runs the scan's tasks on this machine's threads and --scheduler on a Dask "
                            "cluster; give one of them")
    executor = None
    if args.scheduler:
        from .distributed import cluster_executor

        executor = cluster_executor(args.scheduler, lambda message: say(args, message))
    if scan_module is not None:
        scan = scan_module.result().scan
    update, close = _progress_bar(args.quiet)
    blas = _one_blas_thread() if args.threads else contextlib.nullcontext()  # --threads: tasks, not BLAS, in parallel
    try:
        with blas:
            result = scan(
                genotypes,
                pheno,
                covar,
                kinship=scan_kinship,
                kind=args.kind,
                method=args.method,
                refit=args.refit,
                lrt_likelihood=args.lrt_likelihood,
                select=select,
                n_perm=0 if rotated else args.perm,
                perm_strata=args.perm_strata,
                seed=args.seed,
                chunk=args.chunk,
                progress=update,
                memory=args.memory,
                sink=sink,
                executor=executor or executor_from_args(args),
                **x_options,
            )
    except BaseException:
        if sink is not None:
            close_sink(sink, ok=False)
        raise
    finally:
        close()
        if executor is not None:
            executor.close()
    permutations = result.permutations
    if rotated and args.perm:
        from .perm_rotated import rotated_permutations

        perm_genotypes, perm_kinship = genotypes, kinship
        if inputs.x_chr:  # rotated permutations know no X covariates: the autosomes' thresholds
            from .errors import report
            from .xchr import select_chromosomes

            autos = [c for c in genotypes.chromosomes if c not in inputs.x_chr]
            perm_genotypes = select_chromosomes(genotypes, autos)
            if isinstance(kinship, dict):
                perm_kinship = {c: kinship[c] for c in autos}
            report(f"--perm-scheme rotated: the thresholds come from the autosomes only (chromosome "
                   f"{', '.join(inputs.x_chr)} is not permuted with its X covariates)")
        permutations = rotated_permutations(
            perm_genotypes, pheno, covar, phenotype=list(result.phenotypes), n_perm=args.perm, seed=args.seed,
            kinship=perm_kinship, kind=args.kind, method=args.method,
        )
    if sink is not None:
        close_sink(sink, ok=True)
    if args.summary:
        write_summary(result.summary, args)
    elif sink is None:
        write_csv_atomic(result.table, args.out, force=args.force)
    if args.peaks_out:
        peaks = peaks_sink.result if peaks_sink is not None else peaks_from_args(result, args)
        write_csv_atomic(peaks, args.peaks_out, force=args.force)
    if permutations is not None:
        thresholds = permutations.thresholds
        if args.perm_out:
            write_csv_atomic(thresholds, args.perm_out, force=args.force)
        else:
            print(f"# genome-wide LOD thresholds from {args.perm} permutations "
                  f"({permutations.scheme})")
            print(thresholds.to_csv(index=False), end="")
    if sink is None:
        table = result.table
        best = table.loc[table["lod"].idxmax()] if table["lod"].notna().any() else None
        flagged = int((table["flag"] != "").sum())
    else:
        stats = sink.stats
        best = (dict(lod=stats.best_lod, phenotype=stats.best_phenotype, marker=stats.best_marker, chr=stats.best_chr)
                if stats.best_phenotype else None)
        flagged = stats.flagged
    summary = (
        f"scanned {len(result.phenotypes)} phenotype(s) at {genotypes.n_markers} markers on "
        f"{result.n_individuals} individuals ({result.kinship} kinship, "
        f"{'fixed and re-estimated' if args.refit else 'fixed'} h2) in {time.perf_counter() - started:.2f} s"
    )
    if best is not None:
        summary += f"; highest LOD {best['lod']:.2f} ({best['phenotype']} at {best['marker']}, chr {best['chr']})"
    if flagged:
        summary += f"; {flagged} row(s) flagged (see the flag column)"
    say(args, summary + f"; results in {args.out}" + (f", thresholds in {args.perm_out}" if args.perm_out else "")
        + (f", peaks in {args.peaks_out}" if args.peaks_out else ""))
    return 0


# --------------------------------------------------------------------------- #
# Registration
# --------------------------------------------------------------------------- #
def register(subparsers) -> None:
    """Add the ``kinship`` and ``scan`` subcommands to the ``lmmcore`` parser."""
    kin = subparsers.add_parser(
        "kinship",
        help="compute a kinship matrix (overall or leave-one-chromosome-out) from genotypes",
        description=(
            "Compute the kinship of the genotyped individuals: R/qtl2's calc_kinship for genotype "
            "probabilities, or the standardized/centered relationship matrix for dosages. Without --loco "
            "the output is a square CSV (IDs in the first column and as column labels), the format of "
            "'lmmcore fit --kinship'. With --loco the output is ONE long CSV with the columns chr, id, "
            "then one column per individual: the rows of chromosome c are the kinship computed without "
            "the markers of c. Both formats are read by 'lmmcore scan --kinship FILE'. With --cross (or "
            "probabilities whose X chromosome has its own genotypes) the kinship follows R/qtl2's calc_kinship "
            "defaults: allele probabilities (use_allele_probs = TRUE) of every chromosome, the X chromosome "
            "included (omit_x = FALSE); --chromosomes limits it to some chromosomes."
        ),
    )
    _add_genotype_arguments(kin, covariates=False)
    kin.add_argument("--loco", action="store_true", help="one kinship per chromosome, leaving that chromosome out")
    kin.add_argument("--out", required=True, metavar="K.csv", help="output CSV")
    add_output_flags(kin, force="replace an existing output file", quiet="no summary on stderr")
    kin.set_defaults(func=cmd_kinship)

    sc = subparsers.add_parser(
        "scan",
        help="genome scan with a linear mixed model (LOD scores, exact tests, permutation thresholds)",
        description=(
            "Scan the genome: at every marker fit y = Xb + (marker columns) + e, "
            "var(e) = sigma2 (h2 K + (1 - h2) I). The default is R/qtl2's scan1 with a kinship: h2 "
            "estimated under the null (per chromosome with --kinship loco) and held fixed; "
            "LOD = (n/2) log10(RSS0/RSS1), p-value from chi-square with the marker's degrees of freedom "
            "(1 for dosages, k-1 for k genotypes: the first genotype is the reference). --refit adds "
            "GEMMA's exact tests with h2 re-estimated at every marker: the likelihood-ratio test "
            "(ML, -lmm 2: columns h2_ml, lrt, lod_lrt, p_lrt) and the Wald test (REML, -lmm 1: "
            "h2_reml, beta_wald_*, se_wald_*, wald, p_wald). Monomorphic markers get NaN and a flag. "
            "With --cross, the X chromosome is scanned as R/qtl2's scan1(..., Xcovar = get_x_covar(cross)): "
            "with its own genotypes (e.g. SS, SB, BS, BB, SY, BY for an F2), the X covariates (sex, and cross "
            "direction among females for an F2) in its null and alternative models, and with --kinship loco the "
            "kinship of all autosomes; the X covariates' directions are not counted in its df. With "
            "--alleles, whose X columns do not span sex, the X covariates stay in the alternative model, "
            "as if they were in R's addcovar (R/qtl2 drops them there and can give negative LODs)."
        ),
        epilog=(
            "Permutations (--perm N): R/qtl2's scan1perm scheme. The genotype rows are permuted relative "
            "to the phenotypes, covariates and kinship (which stay together), within the strata of "
            "--perm-strata if given; each permutation is scanned with the fixed-h2 scan at the null h2 of "
            "the observed data, and its genome-wide maximum LOD is recorded. The thresholds (the 1 - alpha "
            "quantiles of the maxima, alpha = 0.01, 0.05, 0.10, 0.20) apply to the 'lod' column. They are "
            "written to --perm-out (columns phenotype, alpha, lod_threshold, n_perm) or, without "
            "--perm-out, printed to stdout as CSV. With related individuals, genotype permutations break "
            "the relatedness the model assumes and their thresholds can be far too low; --perm-scheme rotated "
            "permutes the rotated, whitened null residuals instead (Abney 2015), which are exchangeable "
            "under the fitted null model."
        ),
    )
    _add_genotype_arguments(sc)
    sc.add_argument("--pheno", metavar="P.csv",
                    help="phenotypes: IDs, then one column per phenotype (with --cross, default: the cross's)")
    sc.add_argument("--covar", metavar="C.csv", help="covariates: IDs, then numeric or text columns")
    sc.add_argument("--phenotypes", metavar="A,B,...", help="comma-separated phenotype columns (default: all)")
    add_strict_ids_argument(sc)
    add_eigen_argument(sc)
    sc.add_argument("--kinship", metavar="loco|overall|FILE",
                    help="'loco' (one kinship per chromosome, leaving it out; computed from the genotypes), "
                         "'overall' (one kinship from all markers), or a CSV written by 'lmmcore kinship' "
                         "(square, or long with chr, id columns for LOCO)")
    sc.add_argument("--method", choices=["reml", "ml"], default="reml", type=str.lower,
                    help="how the null h2 of the fixed-h2 scan is estimated (default reml, as R/qtl2)")
    sc.add_argument("--refit", action="store_true",
                    help="also re-estimate h2 at every marker: LRT (ML) and Wald (REML) tests, as GEMMA")
    sc.add_argument("--lrt-likelihood", choices=["full", "projected"], default="full", type=str.lower,
                    help="ML likelihood of --refit's LRT: 'full' (all n observations, as GEMMA; default) or "
                         "'projected' (leaving out kinship null-space directions fitted by the covariates, "
                         "as 'lmmcore fit --method ml'); the same for a non-singular kinship")
    sc.add_argument("--perm", type=_count, default=0, metavar="N",
                    help="permutations for genome-wide LOD thresholds (default 0: none)")
    sc.add_argument("--perm-strata", metavar="COLUMN",
                    help="permute within the groups of this column of the covariate file")
    sc.add_argument("--perm-out", metavar="T.csv", help="write the permutation thresholds here (else stdout)")
    sc.add_argument("--perm-scheme", choices=["genotypes", "rotated"], default="genotypes", type=str.lower,
                    help="what --perm permutes: 'genotypes' (R/qtl2's scan1perm; default) or 'rotated' "
                         "(the whitened null residuals, Abney 2015: valid with related individuals)")
    sc.add_argument("--perm-x-separate", action="store_true",
                    help="with --cross and --perm N: separate thresholds for the autosomes and X (R/qtl2's "
                         "perm_Xsp with chr_lengths): X under ceiling(N L_A / L_X) permutations, levels "
                         "1 - (1 - alpha)^(L_region / L); the thresholds get a 'region' column (A or X)")
    sc.add_argument("--x-chr", metavar="X",
                    help="with --genoprobs, --genotypes or --bed: scan these chromosomes (comma-separated) as X "
                         "chromosomes: their own genotype set and --x-covar in their null and alternative models "
                         "(R/qtl2's Xcovar); without it they are scanned as any chromosome (or, with their own "
                         "genotype set, left out). --cross knows its X")
    sc.add_argument("--x-covar", metavar="XC.csv",
                    help="the X covariates of --x-chr: IDs, then numeric columns (R/qtl2's get_x_covar: sex 1 = "
                         "male; for an F2 also direction, 1 for females of the reverse cross)")
    sc.add_argument("--seed", type=int, default=None, help="seed of the permutations")
    sc.add_argument("--chunk", type=_positive, default=None, metavar="M",
                    help="markers per chunk (default: about 32 MiB of rotated genotypes)")
    add_scheduler_argument(sc, "the scan's chunks (with --refit and --perm)")
    sc.add_argument("--out", required=True, metavar="scan.csv",
                    help="results, one row per phenotype and marker (long format)")
    add_output_arguments(sc)
    sc.add_argument("--peaks-out", metavar="peaks.csv",
                    help="also write the peaks with support intervals, as 'lmmcore peaks' (the options below)")
    peaks = sc.add_argument_group("peaks (with --peaks-out or --summary peaks)")
    add_peak_arguments(peaks, required=False)
    add_output_flags(sc, force="replace existing output files", quiet="no progress bar or summary on stderr")
    sc.set_defaults(func=cmd_scan, kinship_or_eigen=True)  # one of them: checked by lmmcore.cli.main
