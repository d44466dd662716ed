"""Genetic maps: map functions and pseudomarkers, as R/qtl2 computes them.

A map function turns a genetic distance ``d`` (cM) into the recombination
fraction ``r`` between two loci, and its inverse turns ``r`` back into cM.
:func:`insert_pseudomarkers` adds positions between (and beyond) the markers
at which :func:`lmmcore.hmm.genoprob` also computes genotype probabilities,
named as R/qtl2's ``insert_pseudomarkers`` names them (``c1.loc28``).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

from .errors import LMMInputError

__all__ = [
    "MAP_FUNCTIONS",
    "distance_to_recfrac",
    "insert_pseudomarkers",
    "map_to_recfrac",
    "recfrac_to_distance",
]

#: The map functions R/qtl2 knows, in its order.
MAP_FUNCTIONS = ("haldane", "kosambi", "c-f", "morgan")

#: Smallest recombination fraction between adjacent positions (R/qtl2's
#: ``map2rf(tol = 1e-12)``): positions at the same cM are 1e-12 apart.
MIN_RECFRAC = 1e-12

#: A pseudomarker closer than this (cM) to a marker is dropped (R/qtl2's
#: ``tol``), for ``stepwidth="fixed"``.
PSEUDOMARKER_TOL = 0.01


def _check_map_function(map_function: str) -> str:
    if map_function not in MAP_FUNCTIONS:
        raise LMMInputError(
            f"Unknown map function {map_function!r}; use one of {', '.join(MAP_FUNCTIONS)}."
        )
    return map_function


def _cf_inverse(r: np.ndarray) -> np.ndarray:
    r = np.minimum(r, 0.5 - 1e-14)
    return 12.5 * (np.log1p(2 * r) - np.log1p(-2 * r)) + 25 * np.arctan(2 * r)


def distance_to_recfrac(d, map_function: str = "haldane") -> np.ndarray:
    """Recombination fraction for genetic distances ``d`` (cM).

    Parameters
    ----------
    d : array_like of float
        Non-negative distances in cM.
    map_function : {"haldane", "kosambi", "c-f", "morgan"}
        The map function.

    Returns
    -------
    ndarray of float
        ``r`` in ``[0, 0.5]``, same shape as ``d``.

    Notes
    -----
    With ``d`` in cM (``d/100`` Morgans):

    * Haldane: ``r = (1 - exp(-2 d/100)) / 2``
    * Kosambi: ``r = tanh(2 d/100) / 2``
    * Morgan: ``r = min(d/100, 1/2)``
    * Carter-Falconer: the inverse of
      ``d = 12.5 (log(1 + 2r) - log(1 - 2r)) + 25 atan(2r)``, solved by
      a vectorised bracketing root search (``d`` capped at 300 cM, as R/qtl2 does).
    """
    _check_map_function(map_function)
    d = np.asarray(d, dtype=float)
    if map_function == "haldane":
        return 0.5 * -np.expm1(-d / 50.0)
    if map_function == "kosambi":
        return 0.5 * np.tanh(d / 50.0)
    if map_function == "morgan":
        return np.minimum(d / 100.0, 0.5)
    # c-f has no closed form: one bracketing root search (Chandrupatla's) for all distances at
    # once; only c-f needs scipy.optimize, which is slow to import
    from scipy.optimize import elementwise

    a = np.minimum(d, 300.0)
    found = elementwise.find_root(lambda r, a: _cf_inverse(r) - a,
                                  (np.zeros_like(a), np.full_like(a, 0.5 - 1e-14)), args=(a,),
                                  tolerances=dict(xatol=1e-16, xrtol=4 * np.finfo(float).eps))
    return np.where(a > 0, found.x, 0.0)


def recfrac_to_distance(r, map_function: str = "haldane") -> np.ndarray:
    """Genetic distance (cM) for recombination fractions ``r``.

    Parameters
    ----------
    r : array_like of float
        Recombination fractions in ``[0, 0.5]``; values ``>= 0.5`` are taken
        as ``0.5 - 1e-14`` (as R/qtl2 does), giving a large finite distance.
    map_function : {"haldane", "kosambi", "c-f", "morgan"}
        The map function.

    Returns
    -------
    ndarray of float
        ``d`` in cM.

    Notes
    -----
    Haldane ``d = -50 log(1 - 2r)``; Kosambi ``d = 50 atanh(2r)``;
    Morgan ``d = 100 min(r, 1/2)``; Carter-Falconer
    ``d = 12.5 (log(1 + 2r) - log(1 - 2r)) + 25 atan(2r)``.
    """
    _check_map_function(map_function)
    r = np.asarray(r, dtype=float)
    if map_function == "morgan":
        return np.minimum(r * 100.0, 50.0)
    rr = np.minimum(r, 0.5 - 1e-14)
    if map_function == "haldane":
        return -50.0 * np.log1p(-2 * rr)
    if map_function == "kosambi":
        return 50.0 * np.arctanh(2 * rr)
    return _cf_inverse(rr)


def map_to_recfrac(positions, map_function: str = "haldane") -> np.ndarray:
    """Recombination fractions between adjacent positions of one chromosome.

    ``r_k = max(mf(pos[k+1] - pos[k]), 1e-12)`` (R/qtl2's ``map2rf``): two
    positions at the same cM are treated as ``1e-12`` apart.
    """
    rf = distance_to_recfrac(np.diff(np.asarray(positions, dtype=float)), map_function)
    return np.maximum(rf, MIN_RECFRAC)


# --------------------------------------------------------------------------- #
# Pseudomarkers
# --------------------------------------------------------------------------- #
def _r_seq_by(start: float, stop: float, step: float) -> np.ndarray:
    """R's ``seq(start, stop, by = step)`` (``step`` may be negative)."""
    span = stop - start
    if span == 0 or abs(span) / max(abs(stop), abs(start)) < 100 * np.finfo(float).eps:
        return np.array([start])
    n = int(span / step + 1e-10)
    x = start + np.arange(n + 1) * step
    return np.minimum(x, stop) if step > 0 else np.maximum(x, stop)


def _r_number(x: float) -> str:
    """``as.character`` of a double in R (15 significant digits)."""
    text = f"{x + 0.0:.15g}"
    if "e" in text:  # R writes 1e-04 and 1e+05
        mant, exp = text.split("e")
        text = f"{mant}e{exp[0]}{int(exp[1:]):02d}"
    return text


def _r_round(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``round(x, digits)`` (R >= 4.0.0), which differs from Python's ``round`` at ties.

    Notes
    -----
    For ``digits > 0`` R takes the two candidates ``xd = floor(10^d |x|) / 10^d``
    and ``xu = ceil(10^d |x|) / 10^d`` and returns the one nearer to ``|x|``,
    the distances ``xu - |x|`` and ``|x| - xd`` computed in double precision;
    at an equal distance the even one of ``floor(10^d |x|)``, ``ceil(...)``
    (so ``round(66.55, 1)`` is 66.6 and ``round(18.05, 1)`` is 18 in R, where
    Python, rounding the exact binary value, gives 66.5 and 18.1). Numbers
    with more than 15 significant digits below ``10^-d`` are returned as
    they are. ``digits = 0`` rounds half to even. Checked against R 4.2.2's
    ``round`` on 53,555 numbers (14 of them, and R/qtl2's pseudomarker names
    of iron, in tests/test_genomap.py).
    """
    x = np.asarray(x, dtype=float)
    if digits == 0:
        return np.rint(x)
    a = np.abs(x)
    p10 = 10.0 ** digits
    x10 = p10 * a
    i10 = np.floor(x10)
    xd, xu = i10 / p10, np.ceil(x10) / p10
    du, dd = xu - a, a - xd
    up = (du < dd) | ((du == dd) & (np.fmod(i10, 2.0) == 1))
    out = np.copysign(np.where(up, xu, xd), x)
    with np.errstate(divide="ignore"):
        exact = (np.log10(2.0) * (0.5 + np.floor(np.log2(a))) + digits > 15) | (a == 0) | ~np.isfinite(a)
    return np.where(exact, x, out)


def _pseudomarker_names(pos: np.ndarray, step: float, stem: str) -> list[str]:
    """R/qtl2's ``create_pseudomarker_names``: ``stem`` + position rounded to
    ``ceiling(-log10(step))`` digits (at least 0), more until unique (R's
    ``round``, :func:`_r_round`)."""
    digits = max(0, math.ceil(-math.log10(step)))
    while True:
        names = [stem + _r_number(float(p)) for p in _r_round(pos, digits)]
        if len(set(names)) == len(names):
            return names
        digits += 1


def _one_chromosome(
    gmap: pd.Series, step: float, off_end: float, stepwidth: str, stem: str, tol: float
) -> pd.Series:
    pos = gmap.to_numpy(dtype=float)
    if step == 0 or len(pos) == 0:
        return gmap.astype(float)
    lo, hi = float(pos.min()), float(pos.max())
    if stepwidth == "fixed":
        grid = _r_seq_by(lo - off_end, hi + off_end, step)
        nearest = np.abs(pos[:, None] - grid[None, :]).min(axis=0)
        pmar = grid[nearest >= tol]
    else:  # "max": fewest pseudomarkers so that no gap exceeds step
        parts = [_r_seq_by(lo, lo - off_end, -step)[1:], _r_seq_by(hi, hi + off_end, step)[1:]]
        gaps = np.diff(pos)
        for a in np.flatnonzero(gaps > step):
            k = math.ceil(gaps[a] / step) + 1
            parts.append(np.linspace(pos[a], pos[a + 1], k)[1:-1])
        pmar = np.concatenate(parts)
    if len(pmar) == 0:
        return gmap.astype(float)
    names = _pseudomarker_names(pmar, step, stem)
    values = np.concatenate([pos, pmar])
    order = np.argsort(values, kind="stable")  # markers first at ties, as R's sort
    index = np.concatenate([gmap.index.astype(str).to_numpy(), np.array(names, dtype=object)])
    return pd.Series(values[order], index=pd.Index(index[order], dtype=object), name=gmap.name)


def insert_pseudomarkers(
    gmap: Mapping[str, pd.Series],
    step: float = 0,
    off_end: float = 0,
    stepwidth: str = "fixed",
    *,
    tol: float = PSEUDOMARKER_TOL,
) -> dict[str, pd.Series]:
    """Add pseudomarkers to a genetic map, as R/qtl2's ``insert_pseudomarkers``.

    Parameters
    ----------
    gmap : mapping of str to pandas.Series, or a Cross
        Per chromosome, marker positions (cM) indexed by marker name,
        non-decreasing (a :class:`~lmmcore.cross.Cross` gives its ``gmap``).
    step : float
        Distance between pseudomarkers (cM); 0 adds none.
    off_end : float
        How far beyond the first and last marker to add pseudomarkers (cM).
    stepwidth : {"fixed", "max"}
        ``"fixed"``: a grid ``min - off_end, min - off_end + step, ...`` up to
        ``max + off_end``, dropping grid points within ``tol`` of a marker.
        ``"max"``: the fewest pseudomarkers, equally spaced within each gap
        longer than ``step``, so that no gap exceeds ``step`` (and every
        ``step`` beyond the ends, up to ``off_end``).
    tol : float
        Tolerance of ``"fixed"`` (R/qtl2's default 0.01 cM).

    Returns
    -------
    dict of str to pandas.Series
        Same chromosomes; markers and pseudomarkers sorted by position
        (markers first at equal positions). Pseudomarkers on chromosome
        ``c`` are named ``"c" + c + ".loc" + position`` with the position
        rounded to ``max(0, ceiling(-log10(step)))`` decimals (more if names
        would repeat), e.g. ``c1.loc28`` or ``cX.loc12.5``.

    Raises
    ------
    LMMInputError
        For a negative ``step`` or ``off_end``, ``tol >= step``, an unknown
        ``stepwidth``, or an unsorted map.
    """
    gmap = getattr(gmap, "gmap", gmap)
    if not (np.isfinite(step) and step >= 0):
        raise LMMInputError(f"The pseudomarker step is {step}; it must be a number >= 0 (cM).")
    if not (np.isfinite(off_end) and off_end >= 0):
        raise LMMInputError(f"off_end is {off_end}; it must be a number >= 0 (cM).")
    if stepwidth not in ("fixed", "max"):
        raise LMMInputError(f"stepwidth is {stepwidth!r}; use 'fixed' or 'max'.")
    if step > 0 and tol >= step:
        raise LMMInputError(f"The pseudomarker step ({step} cM) must be larger than tol ({tol} cM).")
    out = {}
    for chrom, series in gmap.items():
        pos = series.to_numpy(dtype=float)
        if not np.all(np.isfinite(pos)):
            raise LMMInputError(f"The map of chromosome {chrom} has missing positions; every marker needs one.")
        if np.any(np.diff(pos) < 0):
            raise LMMInputError(
                f"The map of chromosome {chrom} is not sorted by position; sort its markers."
            )
        out[str(chrom)] = _one_chromosome(series, float(step), float(off_end), stepwidth, f"c{chrom}.loc", tol)
    return out
