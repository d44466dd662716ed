"""Say in words which model is fitted: the columns of X actually used, and the ones left out and why.

Built from :func:`lmmcore.design_matrix` (the same call the fit makes), so
the description is the fitted design, not the covariate file's header: text
columns appear as their indicators (``batch[B]``), a file's own intercept
column is not doubled, and dropped columns are named with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmmcore import LMMData, design_matrix

__all__ = ["ModelDescription", "describe_model"]


@dataclass(frozen=True)
class ModelDescription:
    """The fixed-effect part of the model, as fitted.

    Attributes
    ----------
    terms : tuple of str
        The columns of X, in order (the fit's ``coef_names``).
    intercept : str
        The name of the column that acts as the intercept (``"intercept"``
        when one was added; the file's own constant column otherwise; ``""``
        when the kept columns only span a constant jointly).
    intercept_added : bool
    dropped : tuple of (str, str)
        ``(column, why)`` for each column left out.
    covariates_used : bool
        False when there are covariates but the user switched them off.
    has_covariates : bool
    """

    terms: tuple[str, ...]
    intercept: str
    intercept_added: bool
    dropped: tuple[tuple[str, str], ...] = ()
    covariates_used: bool = True
    has_covariates: bool = True

    @property
    def formula(self) -> str:
        """``"X = intercept + sex[m] + batch[B]"`` (plain text)."""
        parts = []
        for name in self.terms:
            if name == self.intercept and not self.intercept_added:
                parts.append(f"intercept (the file's column '{name}')" if name != "intercept" else "intercept")
            else:
                parts.append(name)
        text = "X = " + " + ".join(parts)
        if len(self.terms) == 1 and self.terms[0] == self.intercept:
            if not self.has_covariates:
                text += " only (no covariate file)"
            elif not self.covariates_used:
                text += " only (covariates not used)"
        return text

    @property
    def notes(self) -> tuple[str, ...]:
        """One sentence per column left out, and one when the file's own intercept is used."""
        out = []
        if self.covariates_used and self.has_covariates and not self.intercept_added and self.intercept:
            out.append(f"The file's constant column '{self.intercept}' is the intercept; no second one is added.")
        for name, why in self.dropped:
            out.append(f"'{name}' is not fitted: {why}.")
        return tuple(out)

    @property
    def text(self) -> str:
        """The formula and the notes (plain text)."""
        return " ".join([self.formula + ".", *self.notes])


def _encoded_column(covariates: pd.DataFrame, name: str) -> np.ndarray | None:
    """The values of design column ``name`` (a numeric column or an indicator ``col[level]``)."""
    if name in covariates.columns:
        return covariates[name].to_numpy(dtype=float)
    if name.endswith("]") and "[" in name:
        base, level = name[: name.index("[")], name[name.index("[") + 1: -1]
        if base in covariates.columns:
            return (covariates[base].astype(str).to_numpy() == level).astype(float)
    return None


def _why_dropped(covariates: pd.DataFrame, name: str, X: np.ndarray, kept: tuple[str, ...]) -> str:
    """Why ``lmmcore.design_matrix`` left column ``name`` out (it keeps earlier columns)."""
    values = _encoded_column(covariates, name)
    if values is None:
        return "it is a linear combination of the columns before it"
    if values.size and np.all(values == values[0]):
        if values[0] == 0:
            return "it is zero for every individual"
        return f"it is constant ({values[0]:g} for every individual), and the intercept already covers it"
    coef, *_ = np.linalg.lstsq(X, values, rcond=None)
    used = [kept[i] for i in np.flatnonzero(np.abs(coef) > 1e-8 * max(1.0, float(np.abs(coef).max())))]
    if used:
        return f"it is a linear combination of {', '.join(used)}, which are fitted (collinear)"
    return "it is a linear combination of the columns before it"


def describe_model(data: LMMData, phenotype: str | None, use_covariates: bool) -> ModelDescription:
    """The design of ``phenotype`` (its observed individuals) as the fit builds it.

    Parameters
    ----------
    data : LMMData
    phenotype : str or None
        Whose observed individuals to use (None: all).
    use_covariates : bool
    """
    has = data.covariates is not None and data.covariates.shape[1] > 0
    used = bool(use_covariates and has)
    if phenotype is not None and phenotype in data.phenotypes.columns:
        observed = data.phenotypes[phenotype].notna().to_numpy()
    else:
        observed = np.ones(data.n, dtype=bool)
    covar = data.covariates.loc[observed] if used else None
    design = design_matrix(covar, int(observed.sum()), warn=False)
    intercept = design.names[design.constant_column] if design.constant_column >= 0 else ""
    dropped: list[tuple[str, str]] = []
    if used:
        for name in design.dropped:
            dropped.append((name, _why_dropped(covar, name, design.matrix, design.names)))
        for column in covar.columns:
            label = str(column)
            represented = any(n == label or n.startswith(label + "[") for n in (*design.names, *design.dropped))
            if not represented:
                value = covar[column].astype(str).iloc[0] if len(covar) else ""
                dropped.append((label, f"it has the same value ('{value}') for every individual"))
    return ModelDescription(
        terms=tuple(design.names),
        intercept=intercept,
        intercept_added=bool(design.intercept_added),
        dropped=tuple(dropped),
        covariates_used=used,
        has_covariates=has,
    )
