"""The X chromosome in scans: R/qtl2's X covariates, chromosome subsets, and X-specific thresholds.

R/qtl2 scans the X chromosome of a cross with extra additive covariates,
``Xcovar = get_x_covar(cross)``, in the null and the alternative model of
the X markers only (:func:`lmmcore.scan.scan` with ``xcovar`` and
``x_chr``). They are, as R/qtl2's C++ cross classes build them:

* ``f2``: (1) one sex and one direction: none; (2) all female, both
  directions: ``direction`` (1 for the reverse cross, ``cross_info == 1``);
  (3) both sexes, one direction: ``sex`` (1 = male); (4) both sexes and both
  directions: ``sex`` and ``direction`` (1 for *females* of the reverse
  direction, 0 otherwise: a male's X comes from his mother whatever the
  direction, so the direction matters for females only).
* every other cross type: ``sex`` (1 = male) when both sexes are present,
  else none.

Separate permutation thresholds for the autosomes and X (R/qtl2's
``scan1perm(..., perm_Xsp = TRUE, chr_lengths = chr_lengths(map))``): with
``L_A`` and ``L_X`` the summed lengths (``max - min`` position of each
chromosome) of the autosomes and X, the autosomes are scanned under
``N`` permutations and X under ``N_X = ceiling(N L_A / L_X)``, and the
thresholds at level ``alpha`` are the ``1 - alpha_A`` and ``1 - alpha_X``
quantiles of the two sets of maxima, with

    alpha_A = 1 - (1 - alpha)^(L_A / L),   alpha_X = 1 - (1 - alpha)^(L_X / L),

``L = L_A + L_X`` (R/qtl2's ``summary_scan1perm``), so that the chance of a
false positive anywhere in the genome is ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError
from .genotypes import Genotypes
from .markers import FLAG_RANK_DEFICIENT

if TYPE_CHECKING:  # pragma: no cover
    from .cross import Cross

__all__ = ["x_covariates", "select_chromosomes", "chromosome_lengths", "n_perm_x", "xsp_thresholds",
           "has_own_sets", "x_scan_covariates", "merge_part_tables", "x_flags"]


def x_covariates(cross: "Cross") -> pd.DataFrame:
    """The X chromosome covariates of a cross (R/qtl2's ``get_x_covar``).

    Parameters
    ----------
    cross : Cross

    Returns
    -------
    DataFrame
        Indexed by the cross's IDs (``cross.ids``), float columns ``sex``
        (1 = male, 0 = female) and/or ``direction`` as described in the
        module docstring; no columns where R/qtl2 returns ``NULL``.
    """
    female = np.asarray(cross.is_female, dtype=bool)
    n = female.size
    male = (~female).astype(float)
    both_sexes = 0 < int(female.sum()) < n
    cols: dict[str, np.ndarray] = {}
    if cross.crosstype == "f2":
        info = np.asarray(cross.cross_info)
        reverse = (info[:, 0] == 1) if info.ndim == 2 and info.shape[1] else np.zeros(n, dtype=bool)
        both_dirs = 0 < int(reverse.sum()) < n
        if both_sexes:
            cols["sex"] = male
        if both_dirs and (both_sexes or female.all()):
            cols["direction"] = (reverse & female).astype(float) if both_sexes else reverse.astype(float)
    elif both_sexes:
        cols["sex"] = male
    return pd.DataFrame(cols, index=pd.Index([str(i) for i in cross.ids], name="id"), dtype=float)


def select_chromosomes(genotypes: Genotypes, chromosomes: Sequence[str]) -> Genotypes:
    """The markers of ``chromosomes`` only.

    In the union layout (``genotypes_by_chr``) the genotypes that none of
    the kept chromosomes has are dropped too, so that the autosomes of an
    F2 keep ``SS, SB, BB`` and not the X's ``BS, SY, BY`` (all zero there),
    and its X keeps its own ``SS, SB, BS, BB, SY, BY``.
    """
    keep = np.isin(np.asarray(genotypes.chromosome, dtype=object), list(chromosomes))
    if keep.all():
        return genotypes
    idx = np.flatnonzero(keep)
    by_chr = genotypes.genotypes_by_chr
    fields = dict(markers=tuple(genotypes.markers[k] for k in idx),
                  chromosome=tuple(genotypes.chromosome[k] for k in idx), position=genotypes.position[idx])
    if genotypes.probs is None:
        return replace(genotypes, dosage=genotypes.dosage[:, idx], **fields)
    names = genotypes.genotype_names
    if by_chr is not None:
        by_chr = {c: v for c, v in by_chr.items() if c in set(chromosomes)}
        kept = {g for v in by_chr.values() for g in v}
        names = tuple(g for g in genotypes.genotype_names if g in kept)
        fields["genotypes_by_chr"] = by_chr
    cols = [genotypes.genotype_names.index(g) for g in names]
    probs = genotypes.probs[:, idx]
    if len(cols) < len(genotypes.genotype_names):
        probs = probs[:, :, cols]
        if genotypes.allele_map is not None:  # the kept genotypes' rows and the alleles they carry
            rows = genotypes.allele_map[cols]
            carried = rows.any(axis=0)
            fields["alleles"] = tuple(a for a, keep in zip(genotypes.alleles, carried) if keep)
            fields["allele_map"] = rows[:, carried]
    return replace(genotypes, probs=probs, genotype_names=names, **fields)


def chromosome_lengths(genotypes: Genotypes) -> dict[str, float]:
    """Length of every chromosome: its largest minus its smallest position (R/qtl2's ``chr_lengths``)."""
    chrom = np.asarray(genotypes.chromosome, dtype=object)
    pos = np.asarray(genotypes.position, dtype=float)
    return {c: float(np.nanmax(pos[chrom == c]) - np.nanmin(pos[chrom == c])) for c in genotypes.chromosomes}


def _collapse(lengths: Mapping[str, float], x_chr: Sequence[str]) -> tuple[float, float]:
    L_A = float(sum(v for c, v in lengths.items() if c not in set(x_chr)))
    L_X = float(sum(v for c, v in lengths.items() if c in set(x_chr)))
    if L_A < 1e-12 or L_X < 1e-12:
        raise LMMInputError(
            f"separate X thresholds need autosomes and an X chromosome of positive length (autosomes {L_A:g}, "
            f"X {L_X:g}); drop the X-separate option"
        )
    return L_A, L_X


def n_perm_x(n_perm: int, lengths: Mapping[str, float], x_chr: Sequence[str]) -> int:
    """Permutations of the X chromosome: ``ceiling(n_perm L_A / L_X)`` (R/qtl2's ``scan1perm``)."""
    L_A, L_X = _collapse(lengths, x_chr)
    return int(math.ceil(n_perm * L_A / L_X))


def xsp_thresholds(max_a: pd.DataFrame, max_x: pd.DataFrame, lengths: Mapping[str, float], x_chr: Sequence[str],
                   alphas: Sequence[float]) -> pd.DataFrame:
    """Thresholds of the autosomes and X from their own permutation maxima.

    Returns
    -------
    DataFrame
        Columns ``phenotype, region, alpha, lod_threshold, n_perm``
        (``region`` ``A`` or ``X``); ``alpha`` is the genome-wide level, and
        each region's threshold is the quantile at ``1 - alpha_A`` or
        ``1 - alpha_X`` (module docstring).
    """
    L_A, L_X = _collapse(lengths, x_chr)
    total = L_A + L_X
    rows = []
    for name in max_a.columns:
        for region, frame, share in (("A", max_a, L_A / total), ("X", max_x, L_X / total)):
            values = frame[name].to_numpy(dtype=float)
            values = values[~np.isnan(values)]
            for a in alphas:
                level = 1.0 - (1.0 - float(a)) ** share
                t = float(np.quantile(values, 1.0 - level)) if values.size else float("nan")
                rows.append({"phenotype": name, "region": region, "alpha": float(a), "lod_threshold": t,
                             "n_perm": int(values.size)})
    return pd.DataFrame(rows, columns=["phenotype", "region", "alpha", "lod_threshold", "n_perm"])


def has_own_sets(genotypes: Genotypes) -> bool:
    """True when chromosomes of genotype probabilities have different genotype sets (the union layout)."""
    by_chr = genotypes.genotypes_by_chr
    return genotypes.kind == "genoprobs" and bool(by_chr) and len(set(by_chr.values())) > 1


def x_scan_covariates(covariates: pd.DataFrame | None, xcovar: pd.DataFrame | None,
                      ids: Sequence[str]) -> pd.DataFrame | None:
    """The covariates of the X markers: ``covariates`` with the columns of ``xcovar`` added.

    ``xcovar`` must be numeric and cover every individual of ``ids`` (those
    with genotypes, phenotypes and covariates). A column of ``xcovar`` that
    the covariates already span on those individuals (as the design codes
    them: the intercept, numeric columns, indicators of text columns; within
    the design's dependence tolerance) is left out without a message, as
    R/qtl2's ``drop_xcovar`` does: a text ``Sex`` covariate makes the X
    covariate ``sex`` redundant. A name that clashes with a covariate's gets
    the prefix ``X_``.
    """
    if xcovar is None or xcovar.shape[1] == 0:
        return covariates
    if not isinstance(xcovar, pd.DataFrame):
        raise LMMInputError("xcovar must be a DataFrame indexed by individual ID (see lmmcore.x_covariates)")
    xc = xcovar.copy()
    xc.index = xc.index.astype(str)
    xc.columns = [str(c) for c in xc.columns]
    bad = [c for c in xc.columns if not pd.api.types.is_numeric_dtype(xc[c])]
    if bad:
        raise LMMInputError(f"X covariate column '{bad[0]}' is not numeric; code it as numbers (e.g. sex 1 = male)")
    # one reindex, not a lookup per individual: an ID that is absent gets a row of NaN
    incomplete = xc.reindex(list(ids)).isna().any(axis=1).to_numpy()
    missing = [i for i, bad in zip(ids, incomplete) if bad]
    if missing:
        raise LMMInputError(f"the X covariates have no value for individual '{missing[0]}' ({len(missing)} in all); "
                            "give them for every individual that is scanned")
    xc = xc.loc[list(ids)].astype(float)
    if covariates is None:
        return xc
    cov = covariates.loc[list(ids)]
    from .design import DEPENDENCE_TOLERANCE, design_matrix

    # the span of the additive covariates as the design codes them (text columns as indicators, the intercept)
    Q, _ = np.linalg.qr(design_matrix(cov, len(ids), warn=False).matrix)
    x = xc.to_numpy()
    resid = x - Q @ (Q.T @ x)
    spanned = np.linalg.norm(resid, axis=0) <= DEPENDENCE_TOLERANCE * np.linalg.norm(x, axis=0)
    keep = [c for c, inside in zip(xc.columns, spanned) if not inside]
    xc = xc[keep].rename(columns={c: f"X_{c}" for c in keep if c in set(map(str, cov.columns))})
    return cov.join(xc)


def merge_part_tables(tables: Sequence[pd.DataFrame], genotypes: Genotypes, names: Sequence[str],
                      effect_names: Sequence[str], refit: bool) -> pd.DataFrame:
    """One scan table from the tables of the autosome and X parts.

    The effect columns are those of ``effect_names`` (NaN where a part's
    chromosomes lack a genotype); rows are phenotypes in ``names`` order,
    then markers in the order of ``genotypes``; the other columns keep the
    order of :attr:`lmmcore.scan.ScanResult.table`.
    """
    table = pd.concat(list(tables), ignore_index=True)
    head = [c for c in tables[0].columns if not c.startswith(("beta_", "se_"))]
    cut = head.index("p_value") + 1
    cols = head[:cut] + [f"beta_{e}" for e in effect_names] + [f"se_{e}" for e in effect_names]
    if refit:
        cols += [c for c in head[cut:] if c not in ("flag", "wald", "p_wald")]
        cols += [f"beta_wald_{e}" for e in effect_names] + [f"se_wald_{e}" for e in effect_names]
        cols += ["wald", "p_wald"]
    cols.append("flag")
    rank = {nm: i for i, nm in enumerate(names)}
    order = pd.Index(genotypes.markers).get_indexer(table["marker"])
    return (table.reindex(columns=cols).assign(_p=table["phenotype"].map(rank).to_numpy(), _m=order)
            .sort_values(["_p", "_m"], kind="stable").drop(columns=["_p", "_m"]).reset_index(drop=True))



def x_flags(pieces: list) -> list:
    """The X part's pieces with the rank-deficient flags that X's design explains taken off.

    On X the genotype columns overlap the X covariates by design (R/qtl2's
    ``Xcovar``), so a marker keeps its rank-deficient flag only where its df
    is below the trait's full df on X, the largest df of the trait's X
    markers. The df of a marker depends on the individuals of the trait's
    missingness pattern only, so all the traits of a piece share their full
    df and the flags stay one per marker.

    Parameters
    ----------
    pieces : list of ScanPiece
        Every piece of the X part (:mod:`lmmcore.scan_tasks`).
    """
    full: dict[str, int] = {}
    for piece in pieces:
        top = int(np.max(piece.df)) if len(piece.df) else -1
        for name in piece.phenotypes:
            full[name] = max(full.get(name, -1), top)
    out = []
    for piece in pieces:
        tops = {full[name] for name in piece.phenotypes}
        assert len(tops) == 1, "the traits of a piece share their individuals, hence their df"
        flag = np.asarray(piece.flag, dtype=object)
        keep = (flag != FLAG_RANK_DEFICIENT) | (np.asarray(piece.df) < tops.pop())
        out.append(replace(piece, flag=np.where(keep, flag, "").astype(object)))
    return out
