"""What the user may change about the model's inputs: the kinship's scale and a phenotype transform.

Pure functions on tables (no panel, no state). The scale follows the command
line's ``--kinship-scale`` (:func:`lmmcore.kinship_scale_factor`); a
transform is applied to each phenotype's observed values before fitting and
is named in every output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "KINSHIP_SCALES",
    "TRANSFORMS",
    "TransformedPhenotypes",
    "rank_inverse_normal",
    "transform_phenotypes",
    "boundary_note",
]

#: Kinship scales offered (the value given to :func:`lmmcore.kinship_scale_factor`) and their labels.
KINSHIP_SCALES: dict[str, str] = {
    "as-is": "as given",
    "2": "2 K (R/qtl2's convention)",
    "diag": "mean diagonal 1",
    "gower": "Gower (sample variance)",
}

#: Phenotype transforms offered and how outputs name them.
TRANSFORMS: dict[str, str] = {
    "none": "none",
    "log": "log",
    "rint": "rank-based inverse normal",
}

#: Share of traits at h2 = 1 (and at least this many) above which :func:`boundary_note` speaks.
BOUNDARY_SHARE, BOUNDARY_MIN = 0.2, 2


@dataclass(frozen=True)
class TransformedPhenotypes:
    """Phenotypes after a transform.

    Attributes
    ----------
    table : DataFrame
        Same index, columns and missing values as the input.
    applied : dict
        ``{phenotype: transform key}`` actually applied (``"none"`` where the
        transform is undefined, e.g. log of a trait with values <= 0).
    messages : tuple of str
        Why a phenotype was left as measured.
    """

    table: pd.DataFrame
    applied: dict[str, str]
    messages: tuple[str, ...] = ()


def rank_inverse_normal(values: np.ndarray) -> np.ndarray:
    """Blom's rank-based inverse normal transform of the observed values (NaN stays NaN).

    Notes
    -----
    ``z_i = Phi^{-1}((r_i - 3/8) / (n + 1/4))`` with ``r_i`` the rank of
    value i among the n observed values (ties get their average rank).
    """
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    observed = np.isfinite(values)
    n = int(observed.sum())
    if n:
        ranks = stats.rankdata(values[observed], method="average")
        out[observed] = stats.norm.ppf((ranks - 0.375) / (n + 0.25))
    return out


def transform_phenotypes(table: pd.DataFrame, transform: str) -> TransformedPhenotypes:
    """Apply ``transform`` (a key of :data:`TRANSFORMS`) to every column's observed values.

    ``log`` is the natural logarithm; a column with a value <= 0 is left as
    measured and a message says so.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; expected one of {sorted(TRANSFORMS)}")
    applied = {str(c): transform for c in table.columns}
    if transform == "none":
        return TransformedPhenotypes(table, applied)
    out = table.astype(float).copy()
    messages = []
    for name in table.columns:
        values = out[name].to_numpy(dtype=float)
        if transform == "rint":
            out[name] = rank_inverse_normal(values)
            continue
        observed = values[np.isfinite(values)]
        if observed.size and observed.min() <= 0:
            applied[str(name)] = "none"
            messages.append(
                f"phenotype '{name}' has values <= 0 (smallest {observed.min():g}), so its log is undefined; "
                "it is fitted as measured (use the rank-based inverse normal transform instead)"
            )
        else:
            out[name] = np.log(values)
    return TransformedPhenotypes(out, applied, tuple(messages))


def boundary_note(h2: np.ndarray | list[float], scale: str, transform: str) -> str:
    """A note when many traits sit at h2 = 1 (empty otherwise).

    The kinship's scale and the phenotypes' distribution are the first things
    to check then (e.g. R/qtl2's kinship as given puts 11 of recla's 26 traits
    at h2 = 1).
    """
    h2 = np.asarray(h2, dtype=float)
    at_one = int(np.sum(h2 >= 1.0 - 1e-6))
    if h2.size == 0 or at_one < BOUNDARY_MIN or at_one < BOUNDARY_SHARE * h2.size:
        return ""
    hints = []
    if scale == "as-is":
        hints.append("the kinship's scale (try 2 for an R/qtl2 kinship, or diag or Gower)")
    else:
        hints.append(f"the kinship's scale (now {KINSHIP_SCALES[scale]})")
    if transform == "none":
        hints.append("the phenotypes' distribution (try a log or rank-based inverse normal transform)")
    else:
        hints.append(f"the phenotypes' distribution (now {TRANSFORMS[transform]})")
    return (f"{at_one} of {h2.size} traits sit at h² = 1: check {' and '.join(hints)} first; "
            "an h² of 1 usually means the model's scale does not fit the data, not that nothing is environmental.")
