"""The table of ``lmmcore fit`` for many phenotypes, built from whole columns.

:func:`fit_table` runs the fit of :func:`lmmcore.batch.fit_phenotypes` (the
same patterns, blocks and checks) but keeps each pattern's answers as arrays
(:func:`lmmcore.fit.fit_columns`) and assembles the table from them: no
:class:`~lmmcore.fit.FitResult` and no optimiser trace per phenotype. The
table is ``results_table(fit_phenotypes(...))``, byte for byte in CSV.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .batch import FIT_BLOCK, PatternCache, ProgressCallback, _pattern_models
from .errors import Report, reporting
from .io import LMMData
from .optimize import DEFAULT_GRID, DEFAULT_TOL

__all__ = ["fit_table"]


def fit_table(
    data: LMMData,
    phenotypes: Sequence[str] | None = None,
    *,
    method: str = "reml",
    tol: float = DEFAULT_TOL,
    grid: int | np.ndarray = DEFAULT_GRID,
    kinship_scale: float | str = 1.0,
    cache: PatternCache | dict | None = None,
    block: int = FIT_BLOCK,
    progress: ProgressCallback | None = None,
    report: Report | None = None,
) -> pd.DataFrame:
    """``results_table(fit_phenotypes(...))``, built from whole columns: the table of ``lmmcore fit --out``.

    The same fit and the same table (parameters as :func:`lmmcore.batch.fit_phenotypes`),
    without a :class:`~lmmcore.fit.FitResult` or an optimiser trace per
    phenotype: each pattern's answers come as arrays
    (:func:`lmmcore.fit.fit_columns`) and the table is assembled from them.
    A coefficient that one pattern's design lacks (e.g. a covariate
    constant on its individuals) is NaN in that pattern's rows, and the
    columns come in the order in which the rows first name them, as
    :func:`lmmcore.batch.results_table` gives them.
    """
    with reporting(report):
        names, models = _pattern_models(data, phenotypes, method, kinship_scale, cache, progress, block)
        parts = []
        for model in models:
            parts.append(model.fit_columns(method, tol=tol, grid=grid))
        return _assemble(parts, names)


def _assemble(parts: list[dict[str, object]], names: list[str]) -> pd.DataFrame:
    """One table from the column dicts of the patterns, rows in the order of ``names``.

    Columns in order of first appearance (pattern by pattern, as the rows'
    dicts would give them); a column that a pattern lacks is NaN there.
    """
    sizes = [len(part["phenotype"]) for part in parts]
    offsets = np.cumsum([0, *sizes])
    row_of: dict[str, int] = {}
    for part, offset in zip(parts, offsets):
        row_of.update((name, offset + j) for j, name in enumerate(part["phenotype"]))
    order = np.array([row_of[name] for name in names], dtype=np.intp)
    keys = list(dict.fromkeys(k for part in parts for k in part))
    columns = {}
    for key in keys:
        pieces = [part[key] if key in part else np.full(size, np.nan) for part, size in zip(parts, sizes)]
        if isinstance(pieces[0], list) and all(isinstance(piece, list) for piece in pieces):
            flat = [value for piece in pieces for value in piece]
            columns[key] = [flat[i] for i in order]
        else:
            columns[key] = np.concatenate([np.asarray(piece) for piece in pieces])[order]
    return pd.DataFrame(columns, columns=keys)
