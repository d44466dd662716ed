"""The polygenic null model shared by the effects (:mod:`lmmcore.effects`, :mod:`lmmcore.effects_blup`).

:func:`null_model` aligns one phenotype's individuals (genotypes, kinship,
complete covariates, observed phenotype), picks the kinship of a chromosome
(LOCO by default: computed from the markers of every other chromosome),
fits ``y = 1 mu + C b + e``, ``var(e) = v (h K + (1 - h) I)`` by REML (or ML)
through :func:`lmmcore.fit.fit_rotated`, and keeps ``K = U D U'`` and the
weights ``w_i = 1 / (h d_i + 1 - h)`` that whiten every column,
``W^{1/2} U' A``. :func:`genotype_columns` gives the genotype columns of
positions, with R/qtl2's ``contrasts`` applied (:func:`contrast_matrix`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .constants import SINGULAR_EDGE
from .errors import LMMInputError, report
from .selection import check_names

__all__ = ["ADDITIVE_DOMINANCE", "H2_TOL", "NullModel", "contrast_matrix", "genotype_columns", "null_model"]

#: Absolute tolerance on h2 of the null fit (the coefficients move with h2 to first order).
H2_TOL = 1e-10

ADDITIVE_DOMINANCE = "additive-dominance"


# --------------------------------------------------------------------------- #
# The null model, shared by scan1coef, scan1blup and fit1
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class NullModel:
    """The polygenic null model of one phenotype and chromosome, whitened once.

    Attributes
    ----------
    ids : tuple of str
        Individuals used, in the order of the genotypes.
    rows : ndarray of int
        Their rows in the genotypes.
    y : ndarray, shape (n,)
    covariates : ndarray, shape (n, q)
        The covariates without the intercept (R/qtl2's ``addcovar``).
    covariate_names : tuple of str
    kinship : ndarray, shape (n, n)
    U, d : ndarray
        ``K = U diag(d) U'``.
    h2, sigma2 : float
        Null fit (``sigma2`` is v).
    weights : ndarray, shape (n,)
        ``1 / (h d_i + 1 - h)``.
    kinship_label, method, phenotype, chromosome : str
    null_covariates : ndarray, shape (n, r)
        Covariates of the null model only (R/qtl2's ``nullcovar``: the X
        covariates on the X chromosome), after those equal to a covariate
        are left out; r = 0 without them.
    null_covariate_names : tuple of str
    """

    ids: tuple[str, ...]
    rows: np.ndarray
    y: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    kinship: np.ndarray
    U: np.ndarray
    d: np.ndarray
    h2: float
    sigma2: float
    weights: np.ndarray
    kinship_label: str
    method: str
    phenotype: str
    chromosome: str
    null_covariates: np.ndarray | None = None
    null_covariate_names: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return int(self.y.size)

    def whiten(self, A: np.ndarray) -> np.ndarray:
        """``W^{1/2} U' A`` for A of shape (n, ...)."""
        shape = A.shape
        out = self.U.T @ A.reshape(shape[0], -1)
        out *= np.sqrt(self.weights)[:, None]
        return out.reshape(shape)


def null_model(
    genotypes,
    phenotypes,
    covariates=None,
    *,
    phenotype: str | None = None,
    chromosome: str,
    kinship="loco",
    kind: str = "standardized",
    method: str = "reml",
    h2: float | None = None,
    nullcovar: pd.DataFrame | None = None,
) -> NullModel:
    """Align the data, pick the kinship for ``chromosome`` and fit the null model (see the module docstring).

    ``nullcovar`` (R/qtl2's argument of ``scan1coef``, ``scan1blup`` and
    ``fit1``): numeric covariates of the null model only, in the fit of h2
    (and in ``fit1``'s null model for the LOD) but not in the model with
    the genotypes. On the X chromosome they are the X covariates
    (:func:`lmmcore.xchr.x_covariates`), which the X genotypes (e.g. an
    F2's ``SS, SB, BS, BB, SY, BY``) already span; individuals without them
    are left out (R/qtl2's complete cases).
    """
    from . import decompose_kinship, design_matrix, fit_rotated, rotate
    from .genotypes import Genotypes

    if not isinstance(genotypes, Genotypes):
        raise LMMInputError("genotypes must be a Genotypes record (see lmmcore.genotypes.read_*)")
    method = str(method).lower()
    if method not in ("reml", "ml"):
        raise LMMInputError(f"method must be 'reml' or 'ml', not '{method}'")
    chromosome = str(chromosome)
    if chromosome not in set(genotypes.chromosome):
        raise LMMInputError(
            f"chromosome '{chromosome}' is not in the genotypes; they have "
            + ", ".join(genotypes.chromosomes[:25]) + (" ..." if len(genotypes.chromosomes) > 25 else "")
        )
    name, values = _one_phenotype(phenotypes, phenotype)
    kin_ids, K, label = _kinship_matrix(genotypes, chromosome, kinship, kind)

    ids = pd.Index(genotypes.ids)
    keep = ids.isin(values.index[values.notna()]) & ids.isin(kin_ids)
    if covariates is not None:
        covariates = covariates.copy()
        covariates.index = covariates.index.astype(str)
        if covariates.index.duplicated().any():
            raise LMMInputError(f"individual '{covariates.index[covariates.index.duplicated()][0]}' is listed twice "
                                "in the covariates; give each individual once")
        complete = covariates.index[covariates.notna().all(axis=1)]
        keep &= ids.isin(complete)
    nullcovar = _null_covariates(nullcovar)
    if nullcovar is not None:
        keep &= ids.isin(nullcovar.index[nullcovar.notna().all(axis=1)])
    used = ids[keep]
    if 3 <= len(used) < len(ids):
        report(f"{len(ids) - len(used)} of {len(ids)} genotyped individuals were left out (no value of '{name}', "
               "no kinship or a missing covariate" + (" or null-model covariate)" if nullcovar is not None else ")"))
    if len(used) < 3:
        raise LMMInputError(
            f"only {len(used)} individual(s) have genotypes, a kinship, covariates and a value of '{name}'; "
            "the model needs at least 3 (check that the IDs of the files match)"
        )
    y = values.loc[used].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        raise LMMInputError(f"phenotype '{name}' has the same value for every individual used; there is nothing to fit")
    design = design_matrix(covariates.loc[used] if covariates is not None else None, len(used), "the covariates")
    X = design.matrix
    others = [i for i in range(design.p) if i != design.constant_column]
    C = X[:, others]
    null_cols, null_names = np.zeros((len(used), 0)), ()
    names0 = tuple(design.names)
    if nullcovar is not None and nullcovar.shape[1]:
        from .xchr import x_scan_covariates

        numeric = pd.DataFrame(C, index=used, columns=[design.names[i] for i in others])
        joined = x_scan_covariates(numeric, nullcovar, list(used))
        extra = [c for c in joined.columns if c not in set(numeric.columns)]
        for col in extra:  # R/qtl2 drops dependent columns of cbind(addcovar, nullcovar)
            trial = np.column_stack([X, joined[col].to_numpy(dtype=float)])
            if np.linalg.matrix_rank(trial) == trial.shape[1]:
                X, names0 = trial, names0 + (col,)
                null_cols, null_names = np.column_stack([null_cols, trial[:, -1]]), null_names + (col,)
            else:
                report(f"the null-model covariate '{col}' is constant or collinear with the covariates on the "
                       f"{len(used)} individuals used; it is left out of the null model")
    kin_index = pd.Index(kin_ids).get_indexer(used)
    K_used = K[np.ix_(kin_index, kin_index)]
    saved = _saved_decomposition(kinship, chromosome, kin_index)
    eig = saved if saved is not None else decompose_kinship(K_used)
    rot = rotate(eig, y, X)
    if h2 is None:
        fit = fit_rotated(rot, method, phenotype_names=[name], coef_names=names0, tol=H2_TOL)[0]
        h2 = float(fit.h2)
        if not math.isfinite(h2):
            raise LMMInputError(f"h2 of '{name}' cannot be estimated under the null model ({fit.message}); give h2")
    else:
        h2 = float(h2)
        if not 0 <= h2 <= 1:
            raise LMMInputError(f"h2 is {h2}; it must be in [0, 1]")
    if np.any(h2 * eig.values + 1.0 - h2 <= 0):
        # h2 = 1 with a singular kinship: evaluate just inside, as lmmcore.fit does for the coefficients
        report(f"h2 of '{name}' is 1 and the kinship of chromosome '{chromosome}' is singular; the effects are "
               f"computed at h2 = 1 - {SINGULAR_EDGE:g}")
        h2 = 1.0 - SINGULAR_EDGE
    weights = 1.0 / (h2 * eig.values + 1.0 - h2)
    from .wls import solve_wls

    sigma2 = float(solve_wls(rot, np.array([h2]), method).sigma2[0, 0])
    return NullModel(
        ids=tuple(used), rows=np.flatnonzero(keep), y=y, covariates=C,
        covariate_names=tuple(design.names[i] for i in others), kinship=K_used, U=eig.vectors, d=eig.values,
        h2=h2, sigma2=sigma2, weights=weights, kinship_label=label, method=method, phenotype=name,
        chromosome=chromosome, null_covariates=null_cols, null_covariate_names=null_names,
    )


def _null_covariates(nullcovar) -> pd.DataFrame | None:
    """``nullcovar`` as a numeric DataFrame indexed by str IDs (None when absent)."""
    if nullcovar is None:
        return None
    if not isinstance(nullcovar, pd.DataFrame):
        raise LMMInputError("nullcovar must be a DataFrame indexed by individual ID (e.g. lmmcore.x_covariates)")
    out = nullcovar.copy()
    out.index = out.index.astype(str)
    out.columns = [str(c) for c in out.columns]
    if out.index.duplicated().any():
        raise LMMInputError(f"individual '{out.index[out.index.duplicated()][0]}' is listed twice in nullcovar")
    return out


def _one_phenotype(phenotypes, phenotype) -> tuple[str, pd.Series]:
    if isinstance(phenotypes, pd.Series):
        phenotypes = phenotypes.to_frame(phenotypes.name if phenotypes.name is not None else "y")
    if not isinstance(phenotypes, pd.DataFrame):
        raise LMMInputError("phenotypes must be a DataFrame (or Series) indexed by individual ID")
    columns = [str(c) for c in phenotypes.columns]
    if phenotype is None:
        if len(columns) != 1:
            raise LMMInputError(
                f"there are {len(columns)} phenotype columns; name the one to fit (phenotype=...): "
                + ", ".join(columns[:20])
            )
        phenotype = columns[0]
    phenotype = str(phenotype)
    check_names([phenotype], columns)
    values = phenotypes.iloc[:, columns.index(phenotype)]
    values.index = values.index.astype(str)
    try:
        values = values.astype(float)
    except (TypeError, ValueError):
        raise LMMInputError(f"phenotype '{phenotype}' must be numeric (NaN for missing values)") from None
    if values.index.duplicated().any():
        raise LMMInputError(f"individual '{values.index[values.index.duplicated()][0]}' is listed twice in the phenotypes")
    return phenotype, values


def _saved_decomposition(kinship, chromosome: str, kin_index: np.ndarray):
    """The saved decomposition (``--eigen``) when every one of its individuals is used, in its order; else None."""
    from .eigenstore import SavedEigen

    if not isinstance(kinship, SavedEigen) or not np.array_equal(kin_index, np.arange(len(kinship.ids))):
        return None
    return kinship.decomposition(chromosome if kinship.mode == "loco" else "all")


def _kinship_matrix(genotypes, chromosome: str, kinship, kind: str) -> tuple[list[str], np.ndarray, str]:
    """``(ids, K, label)``: the LOCO or overall kinship computed here, or the one given."""
    from .kinship import Kinship, compute_kinship, kinship_from_dosages, kinship_from_genoprobs

    from .eigenstore import SavedEigen

    if isinstance(kinship, SavedEigen):  # recovered U diag(d) U' (the null model reuses the decomposition)
        label = chromosome if kinship.mode == "loco" else "all"
        return list(kinship.ids), kinship.kinship(label), kinship.mode
    if isinstance(kinship, str):
        key = kinship.strip().lower()
        if key == "overall":
            return list(genotypes.ids), compute_kinship(genotypes, kind=kind).matrix, "overall"
        if key != "loco":
            raise LMMInputError(f"kinship must be 'loco', 'overall' or a matrix, not '{kinship}'")
        others = np.asarray(genotypes.chromosome) != chromosome
        if not others.any():
            raise LMMInputError(
                f"every marker is on chromosome '{chromosome}', so its LOCO kinship has no markers; "
                "use the overall kinship"
            )
        if genotypes.kind == "genoprobs":
            K = kinship_from_genoprobs(genotypes.probs[:, others], genotypes.genotype_names,
                                       allele_map=genotypes.allele_matrix()[1])
        else:
            K = kinship_from_dosages(genotypes.dosage[:, others], kind)
        return list(genotypes.ids), K, "loco"
    if isinstance(kinship, Mapping):
        if chromosome not in kinship:
            raise LMMInputError(f"the LOCO kinships have no chromosome '{chromosome}'; give one per chromosome")
        ids, K, _ = _kinship_matrix(genotypes, chromosome, kinship[chromosome], kind)
        return ids, K, "loco"
    if isinstance(kinship, Kinship):
        return list(kinship.ids), np.asarray(kinship.matrix, dtype=float), "given"
    if isinstance(kinship, pd.DataFrame):
        ids = [str(i) for i in kinship.index]
        cols = [str(c) for c in kinship.columns]
        if set(ids) != set(cols) or len(set(ids)) != len(ids):
            raise LMMInputError("the kinship's row and column labels must be the same IDs, each once")
        K = kinship.set_axis(ids, axis=0).set_axis(cols, axis=1).loc[ids, ids]
        return ids, K.to_numpy(dtype=float), "given"
    K = np.asarray(kinship, dtype=float)
    if K.shape != (genotypes.n, genotypes.n):
        raise LMMInputError(
            f"the kinship is {K.shape[0]} x {K.shape[1] if K.ndim > 1 else 1}; a matrix without labels must be "
            f"{genotypes.n} x {genotypes.n}, in the order of the genotypes' IDs"
        )
    return list(genotypes.ids), K, "given"


# --------------------------------------------------------------------------- #
# Genotype columns and parameterisations
# --------------------------------------------------------------------------- #
def contrast_matrix(contrasts, genotype_names) -> tuple[np.ndarray, tuple[str, ...]]:
    """The k x k matrix ``A`` of ``contrasts`` and the names of ``G A``'s columns.

    ``contrasts`` is ``"additive-dominance"`` (three genotypes: ``mu, a, d``),
    a DataFrame indexed by genotype (columns: the new names), or an array.
    """
    k = len(genotype_names)
    if isinstance(contrasts, str):
        if contrasts.strip().lower() != ADDITIVE_DOMINANCE:
            raise LMMInputError(f"unknown contrasts '{contrasts}'; the named one is '{ADDITIVE_DOMINANCE}'")
        if k != 3:
            raise LMMInputError(
                f"additive-dominance contrasts need three genotypes (as an F2: AA, AB, BB); these genotypes "
                f"are {', '.join(genotype_names)}"
            )
        return np.array([[1.0, -1.0, 0.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), ("mu", "a", "d")
    if isinstance(contrasts, pd.DataFrame):
        rows = [str(i) for i in contrasts.index]
        if sorted(rows) != sorted(genotype_names):
            raise LMMInputError("the contrasts' rows must be the genotypes: " + ", ".join(genotype_names))
        A = contrasts.loc[list(genotype_names)].to_numpy(dtype=float) if rows != list(genotype_names) else \
            contrasts.to_numpy(dtype=float)
        names = tuple(str(c) for c in contrasts.columns)
    else:
        A = np.asarray(contrasts, dtype=float)
        names = tuple(f"contrast{j + 1}" for j in range(A.shape[1] if A.ndim == 2 else 0))
    if A.shape != (k, k):
        raise LMMInputError(f"the contrasts must be a {k} x {k} matrix (one row and one column per genotype)")
    if abs(np.linalg.det(A)) < 1e-12:
        raise LMMInputError("the contrast matrix is singular; its columns must be linearly independent")
    return A, names


def _own_genotypes(genotypes, markers: np.ndarray) -> tuple[str, ...] | None:
    """The genotype set of the chromosome of ``markers`` when chromosomes have their own (None otherwise)."""
    by_chr = genotypes.genotypes_by_chr
    if not by_chr or not len(markers):
        return None
    own = by_chr.get(genotypes.chromosome[int(markers[0])])
    return tuple(own) if own else None


def genotype_columns(genotypes, markers: np.ndarray, rows: np.ndarray, contrasts=None, *, allow_empty: bool = False):
    """``(G, names)``: the genotype columns at ``markers`` (of one chromosome) for ``rows``, shape (n, m, k).

    When chromosomes have their own genotype sets (``genotypes_by_chr``, e.g.
    a cross's X chromosome), the columns are the chromosome's own genotypes
    in their order (an F2's X: ``SS, SB, BS, BB, SY, BY``).

    A marker with no genotypes (NaN throughout, as the readers keep it) is an
    error; with ``allow_empty`` the result is ``(G, names, empty)`` with such
    markers' columns set to 0 and ``empty`` marking them.
    """
    if genotypes.kind == "dosage":
        if contrasts is not None:
            raise LMMInputError("contrasts apply to genotype probabilities, not to dosages")
        G = genotypes.dosage[np.ix_(rows, markers)][:, :, None]
        names = ("dosage",)
    else:
        names = tuple(genotypes.genotype_names)
        own = _own_genotypes(genotypes, markers)
        if own is not None and own != names:  # union layout: the chromosome's own set, in its order (X: SS .. BY)
            G = genotypes.probs[rows][:, markers][:, :, [names.index(g) for g in own]]
            names = own
        else:
            G = genotypes.probs[rows][:, markers, :]
        if contrasts is not None:
            A, names = contrast_matrix(contrasts, names)
            G = G @ A
    missing = np.isnan(G).any(axis=(0, 2))
    if allow_empty:
        return np.where(np.isnan(G), 0.0, G), names, missing
    if missing.any():
        bad = np.flatnonzero(missing)[0]
        raise LMMInputError(
            f"marker '{genotypes.markers[markers[bad]]}' has missing genotypes for the individuals used; "
            "fill them in (e.g. with R/qtl2's calc_genoprob) or leave the marker out"
        )
    return G, names
