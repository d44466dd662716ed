"""The genome axis of the LOD plot: chromosomes laid end to end, and one phenotype's scan placed on it.

Pure geometry over :class:`lmmcore.scan.ScanResult` tables (no state, no panel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from lmmcore.genotypes import sort_chromosomes
from lmmcore.scan import ScanResult

__all__ = ["CHROMOSOME_GAP", "LOD_COLUMNS", "GenomeLayout", "genome_layout", "lod_frame"]

#: Gap between chromosomes on the genome axis, as a fraction of the summed chromosome lengths.
CHROMOSOME_GAP = 0.02

#: Columns of :func:`lod_frame`.
LOD_COLUMNS = ["marker", "chr", "pos", "x", "lod", "p_value", "flag", "lod_exact", "h2_exact"]


@dataclass(frozen=True)
class GenomeLayout:
    """Where each chromosome sits on a genome-wide axis.

    A marker at position ``pos`` on chromosome ``c`` is drawn at
    ``x = start[c] + pos - first[c]``; chromosomes follow each other in
    natural order (``1, 2, ..., 10, X``) with a gap between them.

    Attributes
    ----------
    chromosomes : tuple of str
    first : ndarray
        Smallest marker position of each chromosome.
    start, end : ndarray
        Genome-axis extent of each chromosome.
    """

    chromosomes: tuple[str, ...]
    first: np.ndarray
    start: np.ndarray
    end: np.ndarray

    @property
    def middle(self) -> np.ndarray:
        return 0.5 * (self.start + self.end)

    def ticks(self) -> list[tuple[float, str]]:
        """``(x, name)`` at the middle of each chromosome, for the axis labels."""
        return [(float(x), str(c)) for x, c in zip(self.middle, self.chromosomes)]

    def shaded(self) -> tuple[np.ndarray, np.ndarray]:
        """Extents (with half the gap on each side) of every other chromosome, for alternating shading."""
        half = 0.5 * self.gap
        return self.start[1::2] - half, self.end[1::2] + half

    @property
    def gap(self) -> float:
        return float(self.start[1] - self.end[0]) if self.start.size > 1 else 0.0

    def x(self, chromosome: Sequence[str], position) -> np.ndarray:
        """Genome-axis coordinates of markers."""
        index = pd.Index(self.chromosomes).get_indexer(np.asarray(chromosome, dtype=str))
        return self.start[index] + np.asarray(position, dtype=float) - self.first[index]



def genome_layout(chromosome: Sequence[str], position) -> GenomeLayout:
    """Lay the chromosomes end to end in natural order (see :class:`GenomeLayout`).

    Each chromosome spans its markers' positions (at least 1% of the summed
    spans, so that a one-marker chromosome has a width); the gap between
    chromosomes is :data:`CHROMOSOME_GAP` of the summed spans.
    """
    chrom = np.asarray(chromosome, dtype=str)
    pos = np.asarray(position, dtype=float)
    names = tuple(sort_chromosomes(set(chrom.tolist())))
    if not names:
        empty = np.zeros(0)
        return GenomeLayout((), empty, empty, empty)
    codes = pd.Index(names).get_indexer(chrom)
    grouped = pd.Series(pos).groupby(codes)
    first = grouped.min().reindex(range(len(names))).to_numpy(dtype=float)
    last = grouped.max().reindex(range(len(names))).to_numpy(dtype=float)
    width = last - first
    total = float(width.sum())
    width = np.maximum(width, 0.01 * total if total > 0 else 1.0)
    gap = CHROMOSOME_GAP * float(width.sum())
    start = np.concatenate([[0.0], np.cumsum(width + gap)[:-1]])
    return GenomeLayout(names, first, start, start + width)


def lod_frame(result: ScanResult, phenotype: str, layout: GenomeLayout | None = None) -> pd.DataFrame:
    """One phenotype's scan in genome order with genome-axis coordinates.

    Returns
    -------
    DataFrame
        ``marker, chr, pos, x, lod, p_value, flag, lod_exact, h2_exact`` (one
        row per marker; LOD NaN for flagged markers). ``lod_exact`` and
        ``h2_exact`` are the exact scan's ``lod_lrt`` and ``h2_ml`` (h2
        re-estimated at every marker), NaN when the scan was not exact.
    """
    table = result.table
    rows = table[table["phenotype"] == phenotype]
    layout = layout or genome_layout(rows["chr"], rows["pos"])
    out = rows[["marker", "chr", "pos", "lod", "p_value", "flag"]].reset_index(drop=True).copy()
    out["chr"] = out["chr"].astype(str)
    out["marker"] = out["marker"].astype(str)
    out.insert(3, "x", layout.x(out["chr"], out["pos"]))
    refit = bool(result.refit)
    out["lod_exact"] = rows["lod_lrt"].to_numpy(dtype=float) if refit else np.nan
    out["h2_exact"] = rows["h2_ml"].to_numpy(dtype=float) if refit else np.nan
    return out


