"""What the genome-scan tab shows after the scan, as tables: peaks, intervals, effects, QQ, heat map.

Pure reshaping of the engine's results (no state, no panel, no statistics
of its own): the peaks and their support intervals are
:func:`lmmcore.find_peaks`, the effects along a chromosome
:func:`lmmcore.scan1coef` / :func:`lmmcore.scan1blup` (their tables, as
they are), the heat map the LOD column of a scan of several phenotypes, and
the QQ plot the scan's own p-values against the uniform quantiles.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lmmcore import EffectsResult, find_peaks
from lmmcore.scan import ScanResult

from .genome import GenomeLayout, genome_layout

__all__ = [
    "CC_COLOURS",
    "INTERVAL_TYPES",
    "PEAK_TABLE_COLUMNS",
    "effect_colours",
    "effects_frame",
    "heat_frame",
    "interval_spans",
    "peak_table",
    "qq_frame",
]

#: R/qtl2's ``CCcolors``: the eight founders of the Collaborative Cross and Diversity Outbred mice.
CC_COLOURS: dict[str, str] = {
    "A": "#FFDC00",  # A/J
    "B": "#888888",  # C57BL/6J
    "C": "#F08080",  # 129S1/SvImJ
    "D": "#0064C9",  # NOD/ShiLtJ
    "E": "#7FDBFF",  # NZO/HlLtJ
    "F": "#2ECC40",  # CAST/EiJ
    "G": "#FF4136",  # PWK/PhJ
    "H": "#B10DC9",  # WSB/EiJ
}
#: The founders' strain names, for legends.
CC_STRAINS: dict[str, str] = {"A": "AJ", "B": "B6", "C": "129", "D": "NOD", "E": "NZO", "F": "CAST", "G": "PWK",
                              "H": "WSB"}
#: Colours of other genotype sets (two-founder crosses: AA, AB, BB; dosages: one slope), in order.
_OTHER_COLOURS = ("#1f5fbf", "#7c3aed", "#dc2626", "#059669", "#d97706", "#0891b2", "#be185d", "#4b5563")

#: Interval types of the peaks table: key -> label.
INTERVAL_TYPES: dict[str, str] = {"lod": "LOD drop", "bayes": "Bayes credible"}

#: The columns of :func:`peak_table` (those of :func:`lmmcore.find_peaks`).
PEAK_TABLE_COLUMNS = ["phenotype", "chr", "pos", "marker", "lod", "ci_lo", "ci_hi", "ci_lo_marker", "ci_hi_marker"]


#: The founders' strain names as crosses spell them (upper case) -> their letter.
_CC_LETTER: dict[str, str] = {
    **{v: k for k, v in CC_STRAINS.items()},
    "A/J": "A", "C57BL/6J": "B", "C57BL/6": "B", "B6J": "B", "129S1": "C", "129S1/SVIMJ": "C",
    "NOD/SHILTJ": "D", "NZO/HLLTJ": "E", "CAST/EIJ": "F", "PWK/PHJ": "G", "WSB/EIJ": "H",
}


def effect_colours(names) -> dict[str, str]:
    """A colour per effect: R/qtl2's CC colours for the founders (``A`` … ``H``, or their strain names
    ``AJ``, ``B6``, ``129``, ``NOD``, ``NZO``, ``CAST``, ``PWK``, ``WSB``), a fixed palette otherwise."""
    names = [str(n) for n in names]
    if names and all(n in CC_COLOURS for n in names):
        return {n: CC_COLOURS[n] for n in names}
    letters = [_CC_LETTER.get(n.strip().upper()) for n in names]
    if names and all(letters) and len(set(letters)) == len(letters):
        return {n: CC_COLOURS[a] for n, a in zip(names, letters)}
    return {n: _OTHER_COLOURS[k % len(_OTHER_COLOURS)] for k, n in enumerate(names)}


def peak_table(result: ScanResult, phenotype: str, *, threshold: float = 3.0, peakdrop: float = math.inf,
               interval: str = "lod", drop: float = 1.5, prob: float = 0.95) -> pd.DataFrame:
    """The peaks of ``phenotype`` with their intervals: :func:`lmmcore.find_peaks` on its rows of the scan.

    ``interval`` is ``"lod"`` (LOD support interval, ``drop``) or
    ``"bayes"`` (Bayes credible interval, ``prob``). Rows in the order
    :func:`~lmmcore.find_peaks` gives (chromosome, then position).

    Raises
    ------
    LMMInputError
        Options that :func:`~lmmcore.find_peaks` refuses (e.g. a LOD drop above the peak drop).
    """
    if interval not in INTERVAL_TYPES:
        raise ValueError(f"interval must be one of {sorted(INTERVAL_TYPES)}, not {interval!r}")
    table = result.table
    rows = table[table["phenotype"].astype(str) == str(phenotype)]
    peaks = find_peaks(rows, threshold=threshold, peakdrop=peakdrop,
                       drop=drop if interval == "lod" else None, prob=prob if interval == "bayes" else None,
                       report=lambda _message: None)  # flagged markers: the LOD plot shows them as gaps already
    return peaks.reset_index(drop=True)


def interval_spans(peaks: pd.DataFrame, layout: GenomeLayout, chromosome: str | None = None) -> pd.DataFrame:
    """Where the support intervals of ``peaks`` are drawn: ``x0, x1`` (and ``chr, marker``).

    On the genome axis of ``layout``, or, with ``chromosome``, in that
    chromosome's positions (its peaks only).
    """
    empty = pd.DataFrame({"x0": [], "x1": [], "chr": [], "marker": []})
    if peaks.empty or "ci_lo" not in peaks:
        return empty
    rows = peaks[np.isfinite(peaks["ci_lo"].to_numpy(dtype=float))]
    if chromosome is not None:
        rows = rows[rows["chr"].astype(str) == str(chromosome)]
        x0, x1 = rows["ci_lo"].to_numpy(dtype=float), rows["ci_hi"].to_numpy(dtype=float)
    else:
        rows = rows[rows["chr"].astype(str).isin(layout.chromosomes)]
        x0 = layout.x(rows["chr"].astype(str), rows["ci_lo"])
        x1 = layout.x(rows["chr"].astype(str), rows["ci_hi"])
    return pd.DataFrame({"x0": x0, "x1": x1, "chr": rows["chr"].astype(str).to_numpy(),
                         "marker": rows["marker"].astype(str).to_numpy()})


def effects_frame(effects: EffectsResult | None) -> pd.DataFrame:
    """The table of :func:`lmmcore.scan1coef` / :func:`~lmmcore.scan1blup` as the plot draws it (positions sorted)."""
    if effects is None:
        return pd.DataFrame({"marker": [], "chr": [], "pos": []})
    return effects.table.sort_values("pos", kind="stable").reset_index(drop=True)


def qq_frame(p_values, markers=None) -> pd.DataFrame:
    """The QQ plot of p-values: ``expected, observed`` in ``-log10``, and the quantile ``q = (i - 0.5)/m``.

    The m finite p-values sorted increasingly; the i-th (from 1) is drawn
    against the uniform quantile ``(i - 0.5) / m``. ``markers`` (same order
    as ``p_values``) are carried along for the hover text.
    """
    p = np.asarray(p_values, dtype=float)
    names = np.asarray(markers if markers is not None else [""] * p.size, dtype=object)
    keep = np.isfinite(p)
    p, names = p[keep], names[keep]
    order = np.argsort(p, kind="stable")
    p, names = p[order], names[order]
    m = p.size
    q = (np.arange(1, m + 1) - 0.5) / m if m else np.zeros(0)
    with np.errstate(divide="ignore"):
        observed = -np.log10(np.maximum(p, np.finfo(float).tiny))  # p = 0 (LOD beyond double precision) at the top
    return pd.DataFrame({"marker": names.astype(str), "p_value": p, "q": q, "expected": -np.log10(q),
                         "observed": observed})


def heat_frame(result: ScanResult | None, layout: GenomeLayout | None = None) -> pd.DataFrame:
    """The LOD of every phenotype at every marker, in genome order: ``phenotype, marker, chr, pos, x, lod``.

    ``x`` is the genome-axis coordinate (:mod:`app.genome`); the LOD is the
    scan table's, unchanged.
    """
    columns = ["phenotype", "marker", "chr", "pos", "x", "lod"]
    if result is None or result.table.empty:
        return pd.DataFrame(columns=columns)
    table = result.table
    layout = layout or genome_layout(table["chr"].astype(str), table["pos"])
    out = table[["phenotype", "marker", "chr", "pos", "lod"]].copy()
    out["phenotype"] = out["phenotype"].astype(str)
    out["marker"] = out["marker"].astype(str)
    out["chr"] = out["chr"].astype(str)
    out.insert(4, "x", layout.x(out["chr"], out["pos"]))
    order = {name: k for k, name in enumerate(pd.unique(out["phenotype"]))}
    out = out.assign(_p=out["phenotype"].map(order)).sort_values(["_p", "x"], kind="stable").drop(columns="_p")
    return out.reset_index(drop=True)
