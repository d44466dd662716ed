"""Many phenotypes at once: group by missingness pattern, share each eigendecomposition.

An individual with a missing value is dropped for that phenotype only. The
phenotypes that are observed on exactly the same individuals form a
*pattern*; each pattern needs one eigendecomposition of its sub-kinship and one
rotation, and all its phenotypes are then fitted together, vectorised
(R/qtl2's ``est_herit`` batches the same way; lmmlite leaves the loop to the
user).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from .design import design_matrix
from .eigen import Eigendecomposition, decompose_kinship, rotate
from .errors import LMMInputError
from .fit import FitResult, fit_rotated
from .io import LMMData
from .likelihood import profile_loglik
from .optimize import DEFAULT_GRID, DEFAULT_TOL

__all__ = [
    "MissingnessPattern",
    "pattern_decomposition",
    "missingness_patterns",
    "fit_phenotypes",
    "profile_table",
    "kinship_scale_factor",
    "results_table",
]

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class MissingnessPattern:
    """Phenotypes observed on the same individuals.

    Attributes
    ----------
    observed : ndarray of bool, shape (n,)
        Which individuals are used.
    phenotypes : tuple of str
    """

    observed: np.ndarray
    phenotypes: tuple[str, ...]

    @property
    def n(self) -> int:
        return int(self.observed.sum())

    @property
    def key(self) -> bytes:
        return np.packbits(self.observed).tobytes() + self.observed.size.to_bytes(8, "little")


def missingness_patterns(phenotypes: pd.DataFrame) -> list[MissingnessPattern]:
    """Group the columns of a phenotype table by which rows are observed.

    Patterns come in order of their first phenotype's column.
    """
    observed = phenotypes.notna().to_numpy()
    if observed.shape[1] == 0:
        return []
    _, first, inverse = np.unique(observed.T, axis=0, return_index=True, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    patterns = []
    for group in np.argsort(first, kind="stable"):
        cols = np.flatnonzero(inverse == group)
        names = tuple(str(phenotypes.columns[c]) for c in cols)
        patterns.append(MissingnessPattern(observed[:, cols[0]].copy(), names))
    return patterns


def kinship_scale_factor(kinship: np.ndarray, scale: float | str = 1.0) -> float:
    """The factor c such that the fitted kinship is ``c K``.

    Parameters
    ----------
    kinship : ndarray
    scale : float or {"as-is", "diag", "gower"}
        A positive number (``2`` gives R/qtl2's ``2 K`` convention for a
        kinship from ``calc_kinship``); ``"as-is"`` is 1; ``"diag"`` makes
        the mean diagonal 1; ``"gower"`` makes ``tr(P K P) / (n - 1) = 1``
        with P the centring matrix (Gower's factor: then h2 is the share of
        the *sample* variance due to K).

    Notes
    -----
    h2 depends on the scale of K: with ``K' = c K`` the same model has
    ``h2' = h2 / (h2 + c (1 - h2))`` (see :func:`lmmcore.fit.rescale_h2`).
    The likelihood, the fitted values and the test of h2 = 0 do not change.
    """
    if isinstance(scale, str):
        key = scale.strip().lower()
        n = kinship.shape[0]
        if key in ("as-is", "asis", "none", "1"):
            return 1.0
        if key == "diag":
            return float(n / np.trace(kinship))
        if key == "gower":
            centred_trace = np.trace(kinship) - kinship.sum() / n
            if centred_trace <= 0:
                raise LMMInputError("the kinship has no variation between individuals; Gower scaling is undefined")
            return float((n - 1) / centred_trace)
        try:
            scale = float(key)
        except ValueError:
            raise LMMInputError(
                f"kinship scale '{scale}' is not understood; give a positive number, 'diag' or 'gower'"
            ) from None
    scale = float(scale)
    if not np.isfinite(scale) or scale <= 0:
        raise LMMInputError(f"the kinship scale must be a positive number, not {scale}")
    return scale


def _check_phenotype(name: str, values: np.ndarray, source: str) -> None:
    observed = values[~np.isnan(values)]
    if observed.size == 0:
        raise LMMInputError(
            f"{source}: phenotype '{name}' has no observed value among the aligned individuals (all "
            "missing; at least 3 are needed); remove it, or check that its IDs match the kinship's"
        )
    if observed.size < 3:
        raise LMMInputError(
            f"{source}: phenotype '{name}' has only {observed.size} observed value(s) among the "
            "aligned individuals; a variance-component fit needs at least 3 (and more than the "
            "number of coefficients); remove it or add observations"
        )
    if np.all(observed == observed[0]):
        raise LMMInputError(
            f"{source}: phenotype '{name}' is constant (every value is {observed[0]:g}); "
            "it has no variance to split; remove it"
        )


def fit_phenotypes(
    data: LMMData,
    phenotypes: Sequence[str] | None = None,
    *,
    method: str = "reml",
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float | str = 1.0,
    cache: dict | None = None,
    progress: ProgressCallback | None = None,
) -> list[FitResult]:
    """Fit every requested phenotype of an aligned data set.

    Parameters
    ----------
    data : LMMData
        From :func:`lmmcore.io.load_data` or :func:`lmmcore.io.align`.
    phenotypes : sequence of str, optional
        Column names; all by default.
    method : {"reml", "ml"}
    tol : float
        Absolute tolerance on h2.
    grid : int or array_like
        Grid used to bracket local maxima.
    kinship_scale : float or str
        See :func:`kinship_scale_factor`.
    cache : dict, optional
        Eigendecompositions by pattern, reused between calls (the dashboard
        keeps one per session so that switching method costs no
        decomposition).
    progress : callable, optional
        ``progress(done, total, description)`` after each pattern.

    Returns
    -------
    list of FitResult
        In the order of ``phenotypes``.
    """
    method = str(method).lower()
    if method not in ("ml", "reml"):
        raise LMMInputError(f"method must be 'reml' or 'ml', not '{method}'")
    table = data.phenotypes
    source = data.sources.get("phenotypes", "phenotypes")
    names = list(table.columns) if phenotypes is None else [str(p) for p in phenotypes]
    unknown = [p for p in names if p not in table.columns]
    if unknown:
        raise LMMInputError(
            f"{source}: no phenotype column named '{unknown[0]}'; the columns are: "
            + ", ".join(map(str, table.columns[:20]))
            + (" ..." if table.shape[1] > 20 else "")
        )
    if not names:
        raise LMMInputError(f"{source}: no phenotype to fit")
    table = table[names]
    for name in names:
        _check_phenotype(name, table[name].to_numpy(dtype=float), source)
    factor = kinship_scale_factor(data.kinship, kinship_scale)
    cache = {} if cache is None else cache
    by_name: dict[str, FitResult] = {}
    patterns = missingness_patterns(table)
    fingerprint = _kinship_fingerprint(data.kinship)
    for i, pattern in enumerate(patterns):
        obs = pattern.observed
        try:
            eig = pattern_decomposition(data.kinship, obs, cache, fingerprint=fingerprint)
        except LMMInputError as exc:
            if "kinship" not in data.sources:
                raise
            raise LMMInputError(f"kinship file '{data.sources['kinship']}': {exc}") from None
        scaled = replace(eig, values=eig.values * factor) if factor != 1.0 else eig
        covar = data.covariates.loc[obs] if data.covariates is not None else None
        design = design_matrix(covar, int(obs.sum()), data.sources.get("covariates", "the covariates"))
        y = table.loc[obs, list(pattern.phenotypes)].to_numpy(dtype=float)
        rot = rotate(scaled, y, design.matrix)
        fits = fit_rotated(
            rot,
            method,
            phenotype_names=pattern.phenotypes,
            coef_names=design.names,
            tol=tol,
            grid=grid,
            kinship_scale=factor,
        )
        by_name.update({f.phenotype: f for f in fits})
        if progress is not None:
            progress(i + 1, len(patterns), f"{len(pattern.phenotypes)} phenotype(s) on {pattern.n} individuals")
    return [by_name[name] for name in names]


def _kinship_fingerprint(kinship: np.ndarray) -> bytes:
    K = np.ascontiguousarray(kinship, dtype=float)
    return hashlib.blake2b(memoryview(K).cast("B"), digest_size=16).digest() + repr(K.shape).encode()


def pattern_decomposition(
    kinship: np.ndarray, observed: np.ndarray, cache: dict | None = None, *, fingerprint: bytes | None = None
) -> Eigendecomposition:
    """The eigendecomposition of the kinship of the observed individuals, cached.

    Parameters
    ----------
    kinship : ndarray, shape (n, n)
    observed : ndarray of bool, shape (n,)
    cache : dict, optional
        Decompositions already made. Keys combine a fingerprint of the
        kinship's values with the pattern, so one cache can safely serve
        several data sets.
    fingerprint : bytes, optional
        The kinship's fingerprint, when the caller has it already (it costs
        one pass over K).

    Returns
    -------
    Eigendecomposition
    """
    observed = np.asarray(observed, dtype=bool)
    if fingerprint is None:
        fingerprint = _kinship_fingerprint(kinship)
    key = (fingerprint, MissingnessPattern(observed, ()).key)
    if cache is not None and key in cache:
        return cache[key]
    sub = kinship if observed.all() else kinship[np.ix_(observed, observed)]
    eig = decompose_kinship(sub, check=False)
    if cache is not None:
        cache[key] = eig
    return eig


def profile_table(
    data: LMMData,
    phenotypes: Sequence[str] | None = None,
    h2=None,
    *,
    method: str = "reml",
    kinship_scale: float | str = 1.0,
    cache: dict | None = None,
) -> pd.DataFrame:
    """The profile log-likelihood of each phenotype on a grid of h2 (long format).

    Columns ``phenotype, method, h2, loglik``; ``h2`` defaults to 101 equally
    spaced values from 0 to 1. Reuses the eigendecompositions in ``cache``.
    """
    method = str(method).lower()
    h2 = np.linspace(0.0, 1.0, 101) if h2 is None else np.asarray(h2, dtype=float)
    table = data.phenotypes if phenotypes is None else data.phenotypes[list(phenotypes)]
    factor = kinship_scale_factor(data.kinship, kinship_scale)
    cache = {} if cache is None else cache
    frames = []
    fingerprint = _kinship_fingerprint(data.kinship)
    for pattern in missingness_patterns(table):
        obs = pattern.observed
        eig = pattern_decomposition(data.kinship, obs, cache, fingerprint=fingerprint)
        scaled = replace(eig, values=eig.values * factor) if factor != 1.0 else eig
        covar = data.covariates.loc[obs] if data.covariates is not None else None
        design = design_matrix(covar, int(obs.sum()), warn=False)  # already said by the fit
        y = table.loc[obs, list(pattern.phenotypes)].to_numpy(dtype=float)
        ll = profile_loglik(rotate(scaled, y, design.matrix), h2, method)
        for j, name in enumerate(pattern.phenotypes):
            frames.append(pd.DataFrame({"phenotype": name, "method": method, "h2": h2, "loglik": ll[:, j]}))
    out = pd.concat(frames, ignore_index=True)
    order = {name: i for i, name in enumerate(table.columns)}
    return out.sort_values(["phenotype", "h2"], key=lambda s: s.map(order) if s.name == "phenotype" else s,
                           kind="stable").reset_index(drop=True)


def results_table(fits: Sequence[FitResult]) -> pd.DataFrame:
    """One row per fit with the columns of ``lmmcore fit --out``."""
    return pd.DataFrame([f.to_row() for f in fits])
