"""Peaks of a genome scan and their support intervals (R/qtl2's ``find_peaks``, ``lod_int``, ``bayes_int``).

A LOD curve is one phenotype's LOD scores along one chromosome, positions in
increasing order. :func:`find_peaks` finds its peaks and, on request, an
interval for each, with the semantics of R/qtl2 0.43-5 (``src/find_peaks.cpp``,
``src/lod_int.cpp``, ``src/bayes_int.cpp``), reproduced here in our own code:

Peaks (``threshold``, ``peakdrop``)
    Walk along the curve keeping the last peak ``P`` and the lowest LOD ``m``
    seen since it (both start at 0). A position with LOD ``> threshold`` is
    a *new* peak when there is no peak yet, or when ``P > m + peakdrop`` and
    ``LOD > m + peakdrop`` (the curve fell by more than ``peakdrop`` and
    rose again by more than ``peakdrop``); otherwise it *replaces* the last
    peak if its LOD is higher. After a new or replaced peak, ``m`` is reset to
    its LOD. With ``peakdrop = inf`` there is at most one peak per
    chromosome, its maximum (when above the threshold). The *valleys* are
    the first lowest positions between consecutive peaks (and the two ends).

LOD support interval (``drop``)
    For a peak of LOD ``M`` between valleys ``a`` and ``b``: the interval
    runs from one position left of the leftmost position in ``[a, b]``
    whose LOD is ``> M - drop`` to one position right of the rightmost such
    position, clipped to ``[a, b]``. (The positions inside need not all be
    above ``M - drop``: a dip inside does not split the interval.)

Bayes credible interval (``prob``)
    Each position ``i`` gets the weight ``10^LOD_i w_i`` with
    ``w_i = (pos_{i+1} - pos_{i-1}) / 2`` (one-sided at the chromosome's
    ends: ``pos_1 - pos_0`` and ``pos_{n-1} - pos_{n-2}``), normalised over
    ``[a, b]``, the valleys around the peak: the rectangle rule for the
    posterior ``10^LOD`` under a uniform prior on the QTL position. Positions
    are added in decreasing order of LOD until their total weight reaches
    ``prob``; the interval spans the positions added (and the peak).

Peak position
    With ties (positions sharing the peak's LOD exactly), R/qtl2 reports the
    mean of the tied positions: the contiguous run of ties for plain peaks,
    every tie in ``[a, b]`` for LOD intervals, and -- as R/qtl2 0.43-5's
    ``bayes_int_contained`` records the peak index for every tie -- the
    peak's own position for Bayes intervals. ``marker`` is the marker at the
    first position that reaches the peak's LOD.

``expand_to_markers``
    An interval end at a pseudomarker (a name like ``c1.loc28``, R/qtl2's
    pattern ``^c.+\\.loc-*[0-9]+(\\.[0-9]+)*$``) moves outwards to the next
    genotyped marker (to the chromosome's end if there is none).

Differences from R/qtl2, all at edges: R/qtl2's ``find_peaks`` expands to
markers by default (``expand2markers = TRUE``) and here the default is not to;
positions with a missing LOD (flagged markers of the scan) are left out of the
curve (reported); a chromosome with a single position gets the interval
``[pos, pos]`` for ``prob`` (R/qtl2 stops with an error); and when LODs tie
exactly, the order in which R/qtl2 adds tied positions to a Bayes interval is
that of ``std::sort`` (unspecified), here by position.
"""

from __future__ import annotations

import math
import re
from typing import Mapping

import numpy as np
import pandas as pd

from .errors import LMMInputError, report, reporting

__all__ = ["find_peaks", "is_pseudomarker", "PEAK_COLUMNS", "PSEUDOMARKER_PATTERN"]

#: R/qtl2's pattern for pseudomarker names (``c1.loc28``, ``cX.loc-2.5``).
PSEUDOMARKER_PATTERN = re.compile(r"^c.+\.loc-*[0-9]+(\.[0-9]+)*$")

#: The columns of :func:`find_peaks`' table, in order.
PEAK_COLUMNS = ("phenotype", "chr", "pos", "marker", "lod", "ci_lo", "ci_hi", "ci_lo_marker", "ci_hi_marker")

_LN10 = math.log(10.0)


def is_pseudomarker(names) -> np.ndarray:
    """Which names are R/qtl2 pseudomarkers (``c<chr>.loc<pos>``), as a boolean array."""
    return np.fromiter((bool(PSEUDOMARKER_PATTERN.match(str(n))) for n in names), dtype=bool)


# --------------------------------------------------------------------------- #
# One curve
# --------------------------------------------------------------------------- #
def _relevant_positions(lod: np.ndarray, threshold: float) -> np.ndarray:
    """Positions that can change the peak walk's state: LOD above the threshold, and gap minima.

    Between two positions above the threshold only the running minimum (and
    where it was first reached) changes, so each gap is represented by the
    first position of its lowest LOD; the walk over these few positions is
    the walk over the whole curve.
    """
    above = lod > threshold
    if not above.any():
        return np.flatnonzero(above)
    gaps = np.flatnonzero(~above)
    if gaps.size == 0:
        return np.flatnonzero(above)
    gap_id = np.cumsum(above)[gaps]  # positions of one gap share the count of candidates before them
    starts = np.flatnonzero(np.r_[True, gap_id[1:] != gap_id[:-1]])
    values = lod[gaps]
    lowest = np.minimum.reduceat(values, starts)
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, gaps.size]))
    at_min = np.flatnonzero(values == lowest[group])
    first = at_min[np.r_[True, group[at_min][1:] != group[at_min][:-1]]]  # first minimum of each gap
    return np.sort(np.concatenate((np.flatnonzero(above), gaps[first])))


def _peaks_and_valleys(lod: np.ndarray, threshold: float, peakdrop: float) -> tuple[list[int], list[int]]:
    """R/qtl2's ``find_peaks_valleys``: peak indexes, and valleys ``[0, v_1, ..., n - 1]``."""
    peaks: list[int] = []
    valleys = [0]
    last_peak = 0.0
    min_since = 0.0
    min_loc = 0
    values = lod.tolist()
    for i in _relevant_positions(lod, threshold).tolist():
        value = values[i]
        if value < min_since:
            min_since, min_loc = value, i
        if not value > threshold:
            continue
        if not peaks:
            peaks.append(i)
            last_peak = min_since = value
        elif last_peak > min_since + peakdrop and value > min_since + peakdrop:
            peaks.append(i)
            valleys.append(min_loc)
            min_loc = i
            last_peak = min_since = value
        elif value > last_peak:
            peaks[-1] = i
            last_peak = min_since = value
            min_loc = i
    valleys.append(lod.size - 1)
    return peaks, valleys


def _contiguous_ties(lod: np.ndarray, peak: int) -> np.ndarray:
    """The peak and the neighbours on either side that share its LOD (R/qtl2's ``find_peaks``)."""
    value = lod[peak]
    lo = peak
    while lo > 0 and not lod[lo - 1] < value:
        lo -= 1
    hi = peak
    while hi < lod.size - 1 and not lod[hi + 1] < value:
        hi += 1
    idx = np.arange(lo, hi + 1)
    return idx[lod[idx] == value]


def _lod_intervals(lod: np.ndarray, peaks: np.ndarray, drop: float, starts: np.ndarray, ends: np.ndarray,
                   block: int = 256):
    """R/qtl2's ``lod_int_contained`` for every peak of a curve at once.

    Returns the interval ends and, per peak, the boolean mask of the
    positions in ``[start, end]`` tied with the peak's LOD.
    """
    idx = np.arange(lod.size)
    left = np.empty(peaks.size, dtype=int)
    right = np.empty(peaks.size, dtype=int)
    ties = np.zeros((peaks.size, lod.size), dtype=bool) if peaks.size * lod.size <= 1 << 24 else None
    tie_masks = []
    for b in range(0, peaks.size, block):
        sl = slice(b, b + block)
        top = lod[peaks[sl]][:, None]
        window = (idx[None, :] >= starts[sl, None]) & (idx[None, :] <= ends[sl, None])
        above = window & (lod[None, :] > top - drop)
        first = np.argmax(above, axis=1)
        last = lod.size - 1 - np.argmax(above[:, ::-1], axis=1)
        left[sl] = np.maximum(first - 1, starts[sl])
        right[sl] = np.minimum(last + 1, ends[sl])
        tied = window & (lod[None, :] == top)
        if ties is not None:
            ties[sl] = tied
        else:
            tie_masks.extend(tied)
    return left, right, (ties if ties is not None else tie_masks)


def _log_widths(pos: np.ndarray) -> np.ndarray:
    """``log`` of each position's share of the chromosome (the rectangle rule's widths)."""
    with np.errstate(divide="ignore"):
        width = np.empty(pos.size)
        width[0] = pos[1] - pos[0]
        width[-1] = pos[-1] - pos[-2]
        width[1:-1] = (pos[2:] - pos[:-2]) / 2.0
        return np.log(width)


def _bayes_interval(lod: np.ndarray, log_width: np.ndarray, peak: int, prob: float, start: int,
                    end: int) -> tuple[int, int]:
    """R/qtl2's ``bayes_int_contained``: the smallest set of highest-LOD positions with ``prob`` of the weight.

    ``log_width`` is :func:`_log_widths` of the curve's positions (None for a single position).
    """
    if log_width is None:
        return peak, peak
    idx = np.arange(start, end + 1)
    area = lod[idx] * _LN10 + log_width[idx]
    top = np.max(area)
    if not np.isfinite(top):  # every position at one place: no width to weigh by
        return start, end
    share = np.exp(area - top)
    share /= share.sum()
    order = np.lexsort((idx, -lod[idx]))  # decreasing LOD, ties by position
    reached = np.cumsum(share[order]) >= prob
    count = int(np.argmax(reached)) + 1 if reached.any() else idx.size
    chosen = idx[order[:count]]
    return min(int(chosen.min()), peak), max(int(chosen.max()), peak)


def _expand(left: int, right: int, pseudo: np.ndarray) -> tuple[int, int]:
    """Move interval ends at pseudomarkers out to the next genotyped markers (R/qtl2's rule)."""
    markers = np.flatnonzero(~pseudo)
    if pseudo[left]:
        below = markers[markers <= left]
        left = int(below.max()) if below.size else 0
    if pseudo[right]:
        beyond = markers[markers >= right]
        right = int(beyond.min()) if beyond.size else pseudo.size - 1
    return left, right


def _curve_peaks(lod, pos, names, threshold, peakdrop, drop, prob, expand) -> list[dict]:
    """Peaks (and intervals) of one curve, as rows without phenotype and chr."""
    found, valleys = _peaks_and_valleys(lod, threshold, peakdrop)
    if not found:
        return []
    peaks = np.asarray(found, dtype=int)
    starts = np.asarray(valleys[:-1], dtype=int)
    ends = np.asarray(valleys[1:], dtype=int)
    pseudo = is_pseudomarker(names) if expand else None
    if drop is not None:
        lefts, rights, tie_masks = _lod_intervals(lod, peaks, drop, starts, ends)
    log_width = _log_widths(pos) if prob is not None and pos.size >= 2 else None
    rows = []
    for k, peak in enumerate(found):
        left = right = -1
        if drop is not None:
            left, right = int(lefts[k]), int(rights[k])
            ties = np.flatnonzero(tie_masks[k])
        elif prob is not None:
            left, right = _bayes_interval(lod, log_width, peak, prob, int(starts[k]), int(ends[k]))
            ties = np.array([peak])
        else:
            ties = _contiguous_ties(lod, peak)
        first = int(ties.min())
        row = {"pos": float(np.mean(pos[ties])), "marker": names[first], "lod": float(lod[peak])}
        if left >= 0:
            if expand:
                left, right = _expand(left, right, pseudo)
            row.update(ci_lo=float(pos[left]), ci_hi=float(pos[right]),
                       ci_lo_marker=names[left], ci_hi_marker=names[right])
        else:
            row.update(ci_lo=np.nan, ci_hi=np.nan, ci_lo_marker="", ci_hi_marker="")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# The entry point
# --------------------------------------------------------------------------- #
def find_peaks(
    scan,
    threshold: float | Mapping[str, float] = 3.0,
    peakdrop: float = math.inf,
    drop: float | None = None,
    prob: float | None = None,
    expand_to_markers: bool = False,
    *,
    lod_column: str = "lod",
    report=None,
) -> pd.DataFrame:
    """Find the peaks of a genome scan, with LOD support or Bayes credible intervals.

    Parameters
    ----------
    scan : ScanResult or DataFrame
        A :class:`~lmmcore.scan.ScanResult` or its long table (as ``lmmcore
        scan --out`` writes it): columns ``marker, chr, pos`` and
        ``lod_column``, and ``phenotype`` when there are several curves.
        Rows with a missing LOD are left out (reported).
    threshold : float or mapping of phenotype to float
        A peak must have LOD strictly above it.
    peakdrop : float
        How far the LOD must fall between two peaks of one chromosome (and
        rise again) for both to count; ``inf`` (default): one peak per
        chromosome.
    drop : float, optional
        Give LOD support intervals: LOD within ``drop`` of the peak (R/qtl2
        uses 1.5 in its examples). Must not exceed ``peakdrop``.
    prob : float, optional
        Give Bayes credible intervals of this probability (e.g. 0.95).
        At most one of ``drop`` and ``prob``.
    expand_to_markers : bool
        Move interval ends at pseudomarkers out to the flanking genotyped
        markers (R/qtl2's ``expand2markers``, whose default is TRUE).
    lod_column : str
        The LOD column (``lod``, or ``lod_lrt`` of an exact scan).
    report : callable, optional
        Receives the messages (default: :class:`~lmmcore.errors.LMMWarning`).

    Returns
    -------
    DataFrame
        One row per peak, columns :data:`PEAK_COLUMNS`: ``phenotype, chr,
        pos, marker, lod, ci_lo, ci_hi, ci_lo_marker, ci_hi_marker``
        (interval columns NaN / empty without ``drop`` or ``prob``), ordered
        by phenotype (as in the scan), chromosome (as in the scan) and
        position.

    Raises
    ------
    LMMInputError
        Missing columns, non-numeric positions or LODs, a marker listed
        twice for a phenotype, both ``drop`` and ``prob``, ``drop >
        peakdrop``, a negative drop or peak drop, ``prob`` outside (0, 1].

    Notes
    -----
    The semantics are R/qtl2's, described in the module docstring. The
    peak walk visits only the positions above the threshold and the lowest
    position of each gap between them.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"marker": list("abcde"), "chr": "1", "pos": [0., 10, 20, 30, 40],
    ...                       "lod": [0.5, 2.0, 4.0, 3.5, 1.0]})
    >>> find_peaks(table, threshold=3, drop=1.5)[["chr", "pos", "lod", "ci_lo", "ci_hi"]]
      chr   pos  lod  ci_lo  ci_hi
    0   1  20.0  4.0   10.0   40.0
    """
    with reporting(report):
        table = _scan_table(scan, lod_column)
        threshold_of = _thresholds(threshold, table["phenotype"])
        peakdrop, drop, prob = _check_options(peakdrop, drop, prob)
        # curves in scan order (phenotypes, then chromosomes, as first seen), positions sorted (stable)
        ph_code, ph_names = pd.factorize(table["phenotype"], sort=False)
        chr_code, chr_names = pd.factorize(table["chr"], sort=False)
        pos_all = table["pos"].to_numpy(float)
        order = np.lexsort((pos_all, chr_code, ph_code))
        ph_code, chr_code, pos_all = ph_code[order], chr_code[order], pos_all[order]
        lod_all = table["lod"].to_numpy(float)[order]
        markers = table["marker"].to_numpy(dtype=object)[order]
        bounds = np.flatnonzero(np.r_[True, (ph_code[1:] != ph_code[:-1]) | (chr_code[1:] != chr_code[:-1]), True])
        rows = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            phenotype, chrom = ph_names[ph_code[lo]], chr_names[chr_code[lo]]
            found = _curve_peaks(lod_all[lo:hi], pos_all[lo:hi], markers[lo:hi], threshold_of[phenotype],
                                 peakdrop, drop, prob, bool(expand_to_markers))
            rows.extend({"phenotype": phenotype, "chr": chrom, **row} for row in found)
        return pd.DataFrame(rows, columns=list(PEAK_COLUMNS))


def _scan_table(scan, lod_column: str) -> pd.DataFrame:
    """The columns find_peaks needs, validated: phenotype, marker, chr, pos, lod (no missing LOD)."""
    table = getattr(scan, "table", scan)
    if not isinstance(table, pd.DataFrame):
        raise LMMInputError("find_peaks needs a ScanResult or its table (a DataFrame with marker, chr, pos, lod)")
    missing = [c for c in ("marker", "chr", "pos", lod_column) if c not in table.columns]
    if missing:
        raise LMMInputError(
            f"the scan table has no column {', '.join(repr(c) for c in missing)}; it needs marker, chr, pos "
            f"and {lod_column!r} (the columns 'lmmcore scan --out' writes)"
        )
    out = pd.DataFrame({
        "phenotype": table["phenotype"].astype(str) if "phenotype" in table.columns else "lod",
        "marker": table["marker"].astype(str),
        "chr": table["chr"].astype(str),
        "pos": pd.to_numeric(table["pos"], errors="coerce"),
        "lod": pd.to_numeric(table[lod_column], errors="coerce"),
    })
    bad_pos = ~np.isfinite(out["pos"].to_numpy(float))
    if bad_pos.any():
        k = int(np.flatnonzero(bad_pos)[0])
        raise LMMInputError(
            f"row {k + 1} of the scan table (marker {out['marker'].iloc[k]!r}) has position "
            f"{table['pos'].iloc[k]!r}, which is not a number; every row needs a numeric pos"
        )
    text_lod = out["lod"].isna() & table[lod_column].notna()
    if text_lod.any():
        k = int(np.flatnonzero(text_lod.to_numpy())[0])
        raise LMMInputError(
            f"row {k + 1} of the scan table (marker {out['marker'].iloc[k]!r}) has {lod_column} "
            f"{table[lod_column].iloc[k]!r}, which is not a number"
        )
    dup = out.duplicated(["phenotype", "marker"])
    if dup.any():
        k = int(np.flatnonzero(dup.to_numpy())[0])
        raise LMMInputError(
            f"marker {out['marker'].iloc[k]!r} appears twice for phenotype {out['phenotype'].iloc[k]!r} in the "
            "scan table; give each marker once per phenotype"
        )
    missing_lod = out["lod"].isna()
    if missing_lod.any():
        report(f"{int(missing_lod.sum())} row(s) of the scan have no LOD (flagged markers) and were left out "
               "of the peak search")
        out = out[~missing_lod]
    return out


def _thresholds(threshold, phenotypes: pd.Series) -> dict:
    names = pd.unique(phenotypes)
    if isinstance(threshold, Mapping):
        absent = [p for p in names if p not in threshold]
        if absent:
            raise LMMInputError(f"no threshold is given for phenotype {absent[0]!r}; give one for every phenotype")
        values = {p: threshold[p] for p in names}
    else:
        values = dict.fromkeys(names, threshold)
    for p, t in values.items():
        try:
            t = float(t)
        except (TypeError, ValueError):
            raise LMMInputError(f"the threshold {t!r} is not a number") from None
        if not math.isfinite(t):
            raise LMMInputError(f"the threshold for {p!r} is {t}; give a finite LOD")
        values[p] = t
    return values


def _check_options(peakdrop, drop, prob) -> tuple[float, float | None, float | None]:
    try:
        peakdrop = float(peakdrop)
        drop = None if drop is None else float(drop)
        prob = None if prob is None else float(prob)
    except (TypeError, ValueError):
        raise LMMInputError("peakdrop, drop and prob must be numbers") from None
    if math.isnan(peakdrop) or peakdrop < 0:
        raise LMMInputError(f"the peak drop is {peakdrop}; it must be 0 or more (inf: one peak per chromosome)")
    if drop is not None and prob is not None:
        raise LMMInputError("give either a LOD drop (drop) or a probability (prob) for the intervals, not both")
    if drop is not None:
        if not (math.isfinite(drop) and drop >= 0):
            raise LMMInputError(f"the LOD drop is {drop}; it must be a finite number, 0 or more (e.g. 1.5)")
        if drop > peakdrop:
            raise LMMInputError(
                f"the LOD drop ({drop:g}) is larger than the peak drop ({peakdrop:g}); it must not be, or one "
                "interval could run into the next peak"
            )
    if prob is not None and not (0 < prob <= 1):
        raise LMMInputError(f"the interval probability is {prob}; it must be in (0, 1] (e.g. 0.95)")
    return peakdrop, drop, prob
