"""Covariates to a design matrix: indicators for text, an intercept, no dependent columns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import LMMInputError, report

__all__ = ["Design", "design_matrix"]

#: A column whose part not explained by the columns before it is smaller than
#: this fraction of its own norm counts as linearly dependent.
DEPENDENCE_TOLERANCE = 1e-8


@dataclass(frozen=True)
class Design:
    """The fixed-effect design matrix and how it was made.

    Attributes
    ----------
    matrix : ndarray, shape (n, p)
    names : tuple of str
        Coefficient names: the covariate file's column names, ``intercept``
        for an added intercept, ``column[level]`` for indicators of text columns.
    dropped : tuple of str
        Columns removed because they were linear combinations of earlier ones.
    intercept_added : bool
    constant_column : int
        Index of a constant column (the intercept or the user's own), or -1
        when the kept columns only span a constant jointly.
    """

    matrix: np.ndarray
    names: tuple[str, ...]
    dropped: tuple[str, ...]
    intercept_added: bool
    constant_column: int

    @property
    def p(self) -> int:
        return int(self.matrix.shape[1])


def _encode(covariates: pd.DataFrame, source: str, warn: bool = True) -> tuple[list[np.ndarray], list[str]]:
    columns, names = [], []
    for name in covariates.columns:
        col = covariates[name]
        label = str(name)
        if col.isna().any():
            first = col.index[col.isna()][0]
            raise LMMInputError(
                f"{source}: column '{label}' has a missing value for individual '{first}'; "
                "individuals with missing covariates must be removed first"
            )
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            values = col.to_numpy(dtype=float)
            if not np.all(np.isfinite(values)):
                bad = col.index[~np.isfinite(values)][0]
                raise LMMInputError(
                    f"{source}: column '{label}' has an infinite value for individual '{bad}'; "
                    "covariates must be finite numbers"
                )
            columns.append(values)
            names.append(label)
            continue
        # text (or categorical): one indicator per level except the first, sorted
        levels = sorted(col.astype(str).unique())
        text = col.astype(str).to_numpy()
        if len(levels) == 1:
            if warn:
                report(
                    f"{source}: column '{label}' has the same value ('{levels[0]}') for every individual; "
                    "it was left out of the model",
                    stacklevel=3,
                )
        for level in levels[1:]:
            columns.append((text == level).astype(float))
            names.append(f"{label}[{level}]")
    return columns, names


def design_matrix(covariates: pd.DataFrame | None, n: int, source: str = "the covariates", *,
                  warn: bool = True) -> Design:
    """Build the design matrix X from a covariate table.

    Parameters
    ----------
    covariates : DataFrame or None
        One row per individual (already aligned), one column per covariate.
        Numeric columns are used as they are; text columns become indicator
        columns named ``column[level]`` for every level but the first in
        sorted order (so ``sex`` with f/m gives ``sex[m]``).
    n : int
        Number of individuals (used when ``covariates`` is None).
    source : str
        How to name the covariates in messages (usually the file name).
    warn : bool
        False: no warnings (for a caller that has already reported them;
        thread-safe, unlike filtering them out with ``warnings.catch_warnings``).

    Returns
    -------
    Design

    Raises
    ------
    LMMInputError
        Missing or infinite covariate values, or more coefficients than
        individuals.

    Warns
    -----
    LMMWarning
        Through :func:`lmmcore.errors.report` (so a caller's ``report=``
        receives them instead): when linearly dependent columns are dropped
        (named in the message), a text column has a single level (left out),
        or a constant column other than a column of ones takes the place of
        the intercept.

    Notes
    -----
    An intercept column named ``intercept`` is put first unless a column is
    already constant and non-zero. Columns are then taken in order and a
    column is dropped when ``||(I - P) x|| <= 1e-8 ||x||``, P the projection on
    the columns kept so far: earlier columns win.
    """
    if covariates is None or covariates.shape[1] == 0:
        columns, names = [], []
        n_rows = n
    else:
        columns, names = _encode(covariates, source, warn)
        n_rows = covariates.shape[0]
    constant = [i for i, c in enumerate(columns) if c.size and np.all(c == c[0]) and c[0] != 0]
    intercept_added = not constant
    if warn and constant and columns[constant[0]][0] != 1:
        report(
            f"{source}: column '{names[constant[0]]}' is constant ({columns[constant[0]][0]:g} for every "
            "individual); it serves as the intercept, so no separate intercept is added",
            stacklevel=2,
        )
    if intercept_added:
        columns.insert(0, np.ones(n_rows))
        names.insert(0, "intercept")
    kept: list[int] = []
    dropped: list[str] = []
    basis = np.empty((n_rows, 0))
    for i, col in enumerate(columns):
        norm = np.linalg.norm(col)
        resid = col - basis @ (basis.T @ col) if basis.shape[1] else col
        if norm == 0 or np.linalg.norm(resid) <= DEPENDENCE_TOLERANCE * norm:
            dropped.append(names[i])
            continue
        # re-orthogonalise once for stability (classical Gram-Schmidt twice)
        resid = resid - basis @ (basis.T @ resid) if basis.shape[1] else resid
        basis = np.column_stack([basis, resid / np.linalg.norm(resid)])
        kept.append(i)
    if warn and dropped:
        report(
            f"{source}: dropped {len(dropped)} column(s) that are constant or linear combinations "
            f"of the columns before them: {', '.join(dropped)}",
            stacklevel=2,
        )
    X = np.column_stack([columns[i] for i in kept]) if kept else np.empty((n_rows, 0))
    kept_names = tuple(names[i] for i in kept)
    if X.shape[1] >= n_rows:
        indicators: dict[str, int] = {}
        for name in names:
            if name.endswith("]") and "[" in name:
                base = name[: name.index("[")]
                indicators[base] = indicators.get(base, 0) + 1
        widest = max(indicators, key=indicators.get) if indicators else None
        because = (
            f" (the text column '{widest}' has {indicators[widest] + 1} levels, one coefficient for each "
            "level after the first)"
            if widest is not None and indicators[widest] >= 2
            else ""
        )
        raise LMMInputError(
            f"{source}: the model has {X.shape[1]} coefficients but only {n_rows} individuals{because}; "
            "it needs more individuals than coefficients (use fewer covariates)"
        )
    const_idx = next((i for i in range(X.shape[1]) if np.all(X[:, i] == X[0, i])), -1)
    return Design(X, kept_names, tuple(dropped), intercept_added, const_idx)
