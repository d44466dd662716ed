"""An uploaded R/qtl2 cross made into the dashboard's data: phenotypes, covariates, kinship, genotypes.

Pure functions (no state, no panel): they may run in a worker thread. The
cross is read from the upload's bytes by :func:`lmmcore.read_cross` (no
temporary file), its genotype probabilities come from the hidden Markov
model (:func:`lmmcore.genoprob`, R/qtl2's ``calc_genoprob``) and the kinship
from its allele probabilities (:func:`lmmcore.allele_probs`,
:func:`lmmcore.compute_kinship`: R/qtl2's ``calc_kinship`` with its defaults
``use_allele_probs = TRUE`` and ``omit_x = FALSE``, so the X chromosome counts
in the kinship).

The genome scan includes the X chromosome as ``lmmcore scan --cross`` does
(R/qtl2's ``scan1(..., Xcovar = get_x_covar(cross))``): the genotypes keep X
with its own genotype set (an F2's ``SS, SB, BS, BB, SY, BY``) and the scan,
the effects and ``fit1`` get the X chromosome and the cross's X covariates
(:func:`lmmcore.x_covariates`); the engine does the rest
(:func:`lmmcore.scan.scan`'s ``x_chr``/``xcovar``, the ``nullcovar`` of
:func:`lmmcore.scan1coef`, :func:`lmmcore.scan1blup`, :func:`lmmcore.fit1`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmmcore import LMMInputError, allele_probs, compute_kinship, genoprob, read_cross, x_covariates
from lmmcore.cross import Cross
from lmmcore.crosstypes import cross_model
from lmmcore.genotypes import Genotypes
from lmmcore.xchr import has_own_sets

from .data import display_name
from .messages import engine_messages
from .prepare import FitOptions, PendingJob, PreparedData, build_pending
from .scan_jobs import PreparedGenotypes

__all__ = [
    "ERROR_PROB",
    "CrossData",
    "GenoprobProfile",
    "read_cross_upload",
    "cross_data",
    "cross_tables",
    "prepare_cross",
    "scan_genotypes",
    "prepare_cross_genotypes",
    "prepare_cross_upload",
    "prepare_cross_scan",
    "genoprob_profile",
]

#: Genotyping error probability of the HMM (R/qtl2's ``calc_genoprob`` default).
ERROR_PROB = 1e-4

#: How the data summary describes the kinship of a cross.
KINSHIP_NOTE = ("kinship from the HMM's allele probabilities at the markers (R/qtl2's calc_kinship; autosomes "
                "and X, omit_x = FALSE)")


@dataclass(frozen=True, eq=False)
class CrossData:
    """A cross read from an upload with its genotype probabilities.

    Attributes
    ----------
    cross : Cross
    name : str
        The uploaded file's name (for messages).
    genotypes : Genotypes
        :func:`lmmcore.genoprob` at the markers (``step=0``); for a cross of
        more than two founders (DO, HS, MAGIC) its founder (allele)
        probabilities, all that the kinship and the scan use (``alleles=True``:
        a session never holds DO's 36 or 44 genotype probabilities per
        position, 4.5 to 5.5 times as many numbers).
    kinship : DataFrame
        R/qtl2's kinship of the allele probabilities, labelled by ID.
    messages : tuple of str
        What the reader and the HMM reported.
    """

    cross: Cross
    name: str
    genotypes: Genotypes
    kinship: pd.DataFrame
    messages: tuple[str, ...] = ()

    @property
    def x_chromosomes(self) -> tuple[str, ...]:
        """The chromosomes the HMM treats as X (scanned with their own genotypes and the X covariates)."""
        if not cross_model(self.cross.crosstype, self.cross.source).handles_x:
            return ()
        return tuple(c for c in self.cross.x_chr if c in self.genotypes.chromosomes)


def read_cross_upload(filename: str | None, content: bytes) -> tuple[Cross, list[str]]:
    """Read an uploaded cross zip from its bytes; messages name the user's file.

    Raises
    ------
    LMMInputError
        For an empty file, a file that is not a zip, a zip without a control
        file, or anything :func:`lmmcore.read_cross` refuses.
    """
    shown = display_name(filename or "cross.zip")
    if not content:
        raise LMMInputError(f"the cross file '{shown}' is empty; upload an R/qtl2 cross zip (a control file "
                            "and its CSV files)")
    with engine_messages() as messages:
        cross = read_cross(bytes(content), name=shown)
    return cross, list(messages)


def cross_data(cross: Cross, name: str, messages: tuple[str, ...] | list[str] = ()) -> CrossData:
    """Genotype probabilities (HMM) and the kinship of a cross."""
    founders = len(cross.alleles) > 2
    with engine_messages() as more:
        genotypes = genoprob(cross, error_prob=ERROR_PROB, alleles=founders)
        kinship = compute_kinship(genotypes if founders else allele_probs(genotypes))
    ids = [str(i) for i in kinship.ids]
    table = pd.DataFrame(kinship.matrix, index=ids, columns=ids)
    return CrossData(cross, name, genotypes, table, tuple(dict.fromkeys([*messages, *more])))


def cross_tables(data: CrossData) -> dict[str, pd.DataFrame]:
    """``{"phenotypes", "kinship"[, "covariates"]}``: the tables a CSV upload would give.

    Covariates are the cross's covariate columns (numbers as numbers, text as
    text: the engine makes indicators of text, as for a covariate file).

    Raises
    ------
    LMMInputError
        When the cross has no phenotypes.
    """
    cross = data.cross
    if cross.pheno.shape[1] == 0:
        raise LMMInputError(f"the cross '{data.name}' has no phenotypes; the dashboard needs phenotypes to fit "
                            "(add a pheno file to the cross's control file)")
    pheno = cross.pheno.copy()
    pheno.index = pheno.index.astype(str)
    tables = {"phenotypes": pheno, "kinship": data.kinship}
    if cross.covar is not None and cross.covar.shape[1]:
        covar = cross.covar.copy()
        covar.index = covar.index.astype(str)
        tables["covariates"] = covar
    return tables


def prepare_cross(filename: str | None, content: bytes, options: FitOptions = FitOptions(),
                  generation: int = 0) -> tuple[PreparedData, CrossData]:
    """Read a cross upload, run the HMM, compute the kinship, align and fit (pure; may run in a worker thread).

    Raises
    ------
    LMMInputError
        Naming the file and what is wrong.
    """
    cross, messages = read_cross_upload(filename, content)
    data = cross_data(cross, display_name(filename or "cross.zip"), messages)
    tables = cross_tables(data)
    names = {"phenotypes": data.name, "kinship": f"kinship of {data.name}"}
    if "covariates" in tables:
        names["covariates"] = data.name
    job = PendingJob(tables, names, data.messages, generation, f"cross {data.name}; {KINSHIP_NOTE}")
    return build_pending(job, options), data


def scan_genotypes(data: CrossData) -> tuple[Genotypes, tuple[str, ...], pd.DataFrame | None]:
    """The genotypes a scan uses, the X chromosome(s) and the X covariates.

    Every chromosome is scanned: the X chromosome(s) of a cross type whose
    model knows X (:attr:`CrossData.x_chromosomes`) with their own genotype
    set and the cross's X covariates (:func:`lmmcore.x_covariates`, R/qtl2's
    ``get_x_covar``; None when there is no X); a type that treats X as an
    autosome (``riself``, ``dh``, ...) scans it as one, as R/qtl2 does.
    """
    x_chr = data.x_chromosomes
    return data.genotypes, x_chr, (x_covariates(data.cross) if x_chr else None)


def _x_label(x_chr: tuple[str, ...], xcovar: pd.DataFrame | None, genotypes: Genotypes) -> str:
    """What the genotype label says of the X chromosome: its genotypes (when its own) and its covariates."""
    if not x_chr:
        return ""
    own = (genotypes.genotypes_by_chr or {}).get(x_chr[0]) if has_own_sets(genotypes) else None
    covs = ", ".join(map(str, xcovar.columns)) if xcovar is not None and xcovar.shape[1] else "none"
    return (f"; chromosome {', '.join(x_chr)}" + (f" with its own genotypes {', '.join(own)}" if own else "")
            + f" and the X covariates ({covs})")


def prepare_cross_genotypes(data: CrossData) -> PreparedGenotypes:
    """The cross's probabilities ready for the scan tab, with the X chromosome and its covariates.

    A cross of more than two founders (Diversity Outbred, heterogeneous
    stock, MAGIC) is scanned on its founder (allele) probabilities, as R/qtl2
    users scan it (``genoprob_to_alleleprob`` before ``scan1``; ``lmmcore scan
    --cross --alleles``): a test of the 36 DO genotypes has 35 degrees of
    freedom, and its LOD is not comparable with the usual founder scan's 7.
    Two-founder crosses keep their genotype probabilities (``AA, AB, BB``;
    on the X chromosome its own set, e.g. an F2's ``SS, SB, BS, BB, SY, BY``).
    """
    genotypes, x_chr, xcovar = scan_genotypes(data)  # founder probabilities already for > 2 founders
    what = "HMM genotype probabilities"
    if len(data.cross.alleles) > 2:
        what = f"HMM founder probabilities, {len(data.cross.alleles)} founders"
    genotypes = replace(genotypes, source=data.name)
    return PreparedGenotypes(genotypes, f"uploaded: {data.name} ({what}{_x_label(x_chr, xcovar, genotypes)})",
                             data.messages, x_chr=x_chr, xcovar=xcovar, files=data.name)


@dataclass(frozen=True)
class GenoprobProfile:
    """One individual's genotype probabilities along one chromosome (R/qtl2's ``plot_genoprob``).

    Attributes
    ----------
    individual, chromosome : str
    step : float
        Pseudomarkers every ``step`` cM (0: markers only).
    probs : DataFrame
        Columns ``position`` (cM), ``marker``, ``pseudomarker`` (bool), then
        one column per genotype of the chromosome (R/qtl2's order).
    observed : DataFrame
        Columns ``marker``, ``position``, ``genotype``: the genotype observed
        at each typed marker, as coded in the cross's files (missing ones
        left out).
    genotypes : tuple of str
        The chromosome's genotypes.
    """

    individual: str
    chromosome: str
    step: float
    probs: pd.DataFrame
    observed: pd.DataFrame
    genotypes: tuple[str, ...]


def genoprob_profile(cross: Cross, individual: str, chromosome: str, step: float = 0.0,
                     error_prob: float = ERROR_PROB) -> GenoprobProfile:
    """Genotype probabilities of one individual on one chromosome, and the genotypes observed at its markers.

    Runs :func:`lmmcore.genoprob` on that chromosome only (every individual:
    the HMM is vectorised across them) with pseudomarkers every ``step`` cM.

    Raises
    ------
    LMMInputError
        For an individual or chromosome that the cross does not have.
    """
    individual, chromosome = str(individual), str(chromosome)
    if individual not in cross.ids:
        raise LMMInputError(f"individual '{individual}' is not in the cross '{cross.source}'")
    if chromosome not in cross.chromosomes:
        raise LMMInputError(f"chromosome '{chromosome}' is not in the cross '{cross.source}' "
                            f"(it has {', '.join(cross.chromosomes)})")
    with engine_messages():
        g = genoprob(cross, step=float(step), error_prob=error_prob, chromosomes=[chromosome])
    row = cross.ids.index(individual)
    names = g.genotypes_by_chr[chromosome]
    cols = [g.genotype_names.index(n) for n in names]
    typed = cross.gmap[chromosome]
    probs = pd.DataFrame({"position": g.position, "marker": list(g.markers),
                          "pseudomarker": ~np.isin(np.asarray(g.markers, dtype=object), list(typed.index))})
    for name, k in zip(names, cols):
        probs[name] = g.probs[row, :, k]
    codes = cross.geno[chromosome][row]
    label = {v: k for k, v in cross.genotype_codes.items()}
    seen = codes > 0
    observed = pd.DataFrame({
        "marker": [str(m) for m in typed.index[seen]],
        "position": typed.to_numpy(float)[seen],
        "genotype": [label.get(int(c), str(int(c))) for c in codes[seen]],
    })
    return GenoprobProfile(individual, chromosome, float(step), probs, observed, tuple(names))


def prepare_cross_upload(filename: str | None, content: bytes, data, key) -> tuple[PreparedGenotypes, object]:
    """A cross zip as scan genotypes: read, HMM, then :func:`prepare_cross_scan` (pure; may run in a worker thread).

    Raises
    ------
    LMMInputError
        From the reader, the HMM, the check of shared IDs or the scan.
    """
    cross, messages = read_cross_upload(filename, content)
    return prepare_cross_scan(cross_data(cross, display_name(filename or "cross.zip"), messages), data, key)


def prepare_cross_scan(cross: CrossData, data, key) -> tuple[PreparedGenotypes, object]:
    """A cross's probabilities as scan genotypes, checked against the phenotype data in use and scanned once for ``key``.

    As :func:`app.scan_jobs.prepare_upload` for genotype files (pure; may run
    in a worker thread); the X chromosome is scanned with its own genotypes
    and the cross's X covariates.

    Raises
    ------
    LMMInputError
        From :func:`~app.scan_jobs.check_shared_ids` or the scan.
    """
    from .scan_jobs import check_shared_ids, make_job, run_scan

    prepared = prepare_cross_genotypes(cross)
    check_shared_ids(prepared.genotypes, data, prepared.genotypes.source)
    entry = None
    if key is not None and data is not None:
        entry = run_scan(make_job(key, prepared.genotypes, data, prepared.x_chr, prepared.xcovar))
    return prepared, entry
