"""Where markers are: the marker map file and the genome order (chromosomes in natural order, then position).

:func:`read_map` reads R/qtl2's ``pmap``/``gmap`` CSV (``marker, chr, pos``)
through :func:`lmmcore.tables.read_text_table`; :func:`place_on_map` puts
the markers of a genotype file in genome order. The genotype readers of
:mod:`lmmcore.genotypes` use both, and re-export :func:`read_map`,
:func:`chromosome_sort_key` and :func:`sort_chromosomes`.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import LMMInputError
from .tables import Source, agree, check_unique, display_name, list_names, read_text_table, verb

__all__ = ["chromosome_sort_key", "genome_order", "place_on_map", "read_map", "sort_chromosomes", "sort_map"]

#: Non-numeric chromosome names in the order they follow the numbered ones.
_SPECIAL_CHROMOSOMES = ("X", "Y", "XY", "MT", "M")

def chromosome_sort_key(name: str) -> tuple:
    """Sort key giving the natural order ``1, 2, ..., 10, ..., X, Y, XY, MT``.

    A leading ``chr`` is ignored; numbered chromosomes come first by number,
    then ``X, Y, XY, MT`` (``M``), then any other names alphabetically.
    """
    core = re.sub(r"^chr", "", str(name).strip(), flags=re.IGNORECASE)
    if core.isdigit():
        return (0, int(core), core)
    upper = core.upper()
    if upper in _SPECIAL_CHROMOSOMES:
        return (1, _SPECIAL_CHROMOSOMES.index(upper), core)
    return (2, 0, core)


def sort_chromosomes(names: Iterable[str]) -> list[str]:
    """Chromosome names in natural order (see :func:`chromosome_sort_key`)."""
    return sorted(names, key=chromosome_sort_key)


def read_map(source: Source, name: str | None = None) -> pd.DataFrame:
    """Read a marker map: a CSV with columns ``marker``, ``chr`` and ``pos``.

    Parameters
    ----------
    source : str, Path, bytes or binary file object
        CSV file (R/qtl2's ``pmap``/``gmap`` format), or its bytes. Column
        names are matched without regard to case; other columns are ignored;
        leading lines starting with ``#`` are comments.
    name : str, optional
        The name messages use for the file (default: the path as given;
        ``"upload"`` for bytes).

    Returns
    -------
    DataFrame
        Columns ``marker`` (str), ``chr`` (str) and ``pos`` (float), one row
        per marker, sorted by chromosome in natural order and then by
        position (ties keep the file's order), with a fresh ``RangeIndex``.

    Raises
    ------
    LMMInputError
        If the file is missing or empty, a column is missing, a marker is
        listed twice, or a position is missing or not a number.
    """
    path = display_name(source, name, full=True)
    df = read_text_table(source, "map", name=path, comments=True,
                         needs="a header row with the columns marker, chr, pos and one row per marker")
    lower = {str(c).strip().lower(): c for c in df.columns}
    absent = [c for c in ("marker", "chr", "pos") if c not in lower]
    if absent:
        raise LMMInputError(
            f"The map file {path} has no column {', '.join(absent)}; it needs the columns "
            f"marker, chr and pos (found: {', '.join(map(str, df.columns))})."
        )
    marker = df[lower["marker"]].str.strip()
    chrom = df[lower["chr"]].str.strip()
    pos_text = df[lower["pos"]].str.strip()
    if (marker == "").any():
        row = int(np.flatnonzero(marker.to_numpy() == "")[0])
        raise LMMInputError(
            f"Row {row + 1} of the map file {path} has no marker name; give every row a marker."
        )
    check_unique(marker.to_numpy(), f"the map file {path}", "marker", "remove the duplicate rows")
    if (chrom == "").any():
        bad = marker[chrom == ""].tolist()
        raise LMMInputError(
            f"{agree(len(bad), 'marker', 'markers')} of the map file {path} "
            f"{verb(len(bad), 'has', 'have')} no chromosome ({list_names(bad)}); "
            "fill in the chr column."
        )
    pos = pd.to_numeric(pos_text, errors="coerce")
    bad = ~np.isfinite(pos.to_numpy(dtype=float))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise LMMInputError(
            f"The position of marker {marker.iloc[k]!r} in the map file {path} is "
            f"{pos_text.iloc[k]!r}, which is not a number "
            f"({agree(int(bad.sum()), 'such row', 'such rows')}); "
            "every marker needs a numeric position in the pos column."
        )
    out = pd.DataFrame({"marker": marker.to_numpy(), "chr": chrom.to_numpy(), "pos": pos.to_numpy(float)})
    return sort_map(out)


def sort_map(df: pd.DataFrame) -> pd.DataFrame:
    order = genome_order(df["chr"].to_numpy(dtype=str), df["pos"].to_numpy(dtype=float))
    return df.iloc[order].reset_index(drop=True)


def genome_order(chrom: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Stable permutation sorting markers by natural chromosome order, then position."""
    names = sort_chromosomes(set(chrom.tolist()))
    rank = pd.Index(names).get_indexer(chrom)
    return np.lexsort((np.arange(len(pos)), pos, rank))


def place_on_map(
    path: str, markers: Sequence[str], map_source: Source, map_name: str | None
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Genome order of ``markers`` from the map, with their chromosomes and positions."""
    map_path = display_name(map_source, map_name, full=True)
    gmap = read_map(map_source, map_path)
    where = pd.Index(gmap["marker"]).get_indexer(pd.Index(markers))
    if (where < 0).any():
        absent = [markers[k] for k in np.flatnonzero(where < 0)]
        raise LMMInputError(
            f"{len(absent)} of the {len(markers)} markers of {path} "
            f"{verb(len(absent), 'is', 'are')} not in the map file {map_path} "
            f"({list_names(absent)}); add the missing markers to the map (marker, chr, pos) "
            "or remove their columns from the genotype file."
        )
    order = np.argsort(where, kind="stable")  # the map is already in genome order
    rows = where[order]
    chrom = tuple(gmap["chr"].to_numpy(dtype=str)[rows].tolist())
    pos = gmap["pos"].to_numpy(dtype=float)[rows]
    return order, chrom, pos
