"""CSV text of a table, byte for byte what ``DataFrame.to_csv`` writes, without its per-cell machinery.

``DataFrame.to_csv`` formats every float through NumPy's ``astype(str)``
(Dragon4, one cell at a time) and passes every row through the ``csv``
module; for the long tables of a genome scan (10^4-10^6 rows of twenty
columns) that is most of the time spent writing. Python's own
``float.__repr__`` gives the same shortest round-trip digits and the same
notation as NumPy's ``str`` (the tests compare both on random doubles of
every exponent), so the common tables (float64, integer, boolean and text
columns whose cells need no quoting) are formatted here as whole columns and
joined row by row.

Anything else (other dtypes, a MultiIndex, labels that the ``csv`` module
would quote, a single column, an empty table) returns ``None``, and a text
cell that would be quoted raises :class:`NotPlain` while writing; either way
the caller falls back on ``to_csv``: the bytes written never depend on which
route was taken.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

__all__ = ["FORMULA_START", "NotPlain", "csv_chunks"]

#: Text cells starting with one of these are run as formulas by spreadsheets; they get a leading quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Characters that make the ``csv`` module quote a cell (delimiter, quote character, line breaks).
_NEEDS_QUOTING = (",", '"', "\r", "\n")
#: Rows formatted at a time (bounds the memory of the cells' text).
ROWS_PER_CHUNK = 50_000


class NotPlain(Exception):
    """A cell that only ``to_csv`` writes right (it needs quoting, or is not text): start again with ``to_csv``."""


def _text_cells(values: np.ndarray, neutralise: bool) -> list[str]:
    """Text cells of an object column (missing cells empty); :class:`NotPlain` when one is not plain text."""
    missing = pd.isna(values)
    cells = values.tolist()
    if missing.any():
        cells = ["" if gone else v for v, gone in zip(cells, missing.tolist())]
    if set(map(type, cells)) - {str}:
        raise NotPlain
    if neutralise:
        cells = ["'" + v if v.startswith(FORMULA_START) else v for v in cells]
    joined = "".join(cells)
    if any(c in joined for c in _NEEDS_QUOTING):
        raise NotPlain
    return cells


def _formatter(series: pd.Series, neutralise: bool):
    """A function of a row slice giving one column's cells as ``to_csv`` writes them, or None if not handled."""
    dtype = series.dtype
    if isinstance(dtype, pd.StringDtype):
        return lambda rows: _text_cells(series.iloc[rows].to_numpy(dtype=object, na_value=None), neutralise)
    if not isinstance(dtype, np.dtype):
        return None
    values = series.to_numpy()
    if dtype == np.float64:
        def floats(rows: slice) -> list[str]:
            part = values[rows]
            cells = list(map(float.__repr__, part.tolist()))
            for i in np.flatnonzero(np.isnan(part)).tolist():
                cells[i] = ""
            return cells
        return floats
    if dtype.kind in "iu":
        return lambda rows: list(map(str, values[rows].tolist()))
    if dtype.kind == "b":
        return lambda rows: ["True" if v else "False" for v in values[rows].tolist()]
    if dtype == object:
        return lambda rows: _text_cells(values[rows], neutralise)
    return None


def _plain(labels) -> bool:
    return all(isinstance(v, str) for v in labels) and not any(c in v for v in labels for c in _NEEDS_QUOTING)


def csv_chunks(df: pd.DataFrame, *, index: bool = False, neutralise: bool = True) -> Iterator[str] | None:
    """The CSV text of ``df`` in pieces, exactly as ``df.to_csv(index=index)`` writes it; None if not handled.

    Parameters
    ----------
    df : DataFrame
    index : bool
        Write the row labels first (they must be text, none missing; the
        header's first cell is the index's name, or empty).
    neutralise : bool
        Prefix text cells that start like a spreadsheet formula
        (:data:`FORMULA_START`) with a quote, as
        :func:`lmmcore.io.neutralise_formulas` does.

    Returns
    -------
    iterator of str or None
        The header line, then blocks of :data:`ROWS_PER_CHUNK` rows, each
        ending with a line break; None when the table has a column type or
        label that only ``to_csv`` handles (the caller uses it).

    Raises
    ------
    NotPlain
        While iterating, at the first block with a text cell that the
        ``csv`` module would quote (or an object cell that is not text): the
        caller discards what it wrote and uses ``to_csv``. Text is checked
        block by block, so no copy of a whole text column is held.

    Notes
    -----
    ``to_csv`` (quoting minimal, ``na_rep=""``) writes a float64 cell as
    ``numpy.str_(x)`` and a missing one as nothing; ``float.__repr__(x)``
    is the same text for every finite and infinite double (shortest digits
    that round-trip, positional for exponents -4 to 15, ``1e-05`` style
    otherwise). Integers and booleans are written with ``str``.
    """
    if isinstance(df.columns, pd.MultiIndex) or isinstance(df.index, pd.MultiIndex):
        return None
    if not df.columns.is_unique or df.shape[0] == 0 or df.shape[1] + int(index) < 2:
        return None
    labels = list(df.columns)
    if index:
        name = df.index.name
        labels = ["" if name is None else name] + labels
    if not _plain(labels):
        return None
    formatters = []
    if index:
        ids = df.index.to_numpy(dtype=object)

        def id_cells(rows: slice) -> list[str]:
            cells = _text_cells(ids[rows], neutralise=False)
            if "" in cells:
                raise NotPlain
            return cells

        formatters.append(id_cells)
    for k in range(df.shape[1]):
        fmt = _formatter(df.iloc[:, k], neutralise)
        if fmt is None:
            return None
        formatters.append(fmt)
    n = df.shape[0]

    def pieces() -> Iterator[str]:
        yield ",".join(labels) + "\n"
        for start in range(0, n, ROWS_PER_CHUNK):
            rows = slice(start, min(n, start + ROWS_PER_CHUNK))
            yield "\n".join(map(",".join, zip(*(fmt(rows) for fmt in formatters)))) + "\n"

    return pieces()
