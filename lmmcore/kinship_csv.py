"""A plain square kinship CSV read without pandas, and decomposed while the command goes on.

A kinship file written by ``lmmcore kinship`` (or by pandas' ``to_csv``) is
*plain*: a header of comma-separated IDs after an ID column, then one row per
individual with its ID and n numbers, the rows in the order of the header.
:func:`read_plain_kinship` parses such a file with pyarrow's multi-threaded
CSV reader (which releases the GIL and does not need pandas) and returns
``None`` for anything else: then :func:`lmmcore.io.read_kinship_file`'s
validating reader reads the file and says what is wrong with it (or reorders
its columns, reads R's row names, another delimiter, ...). A plain file gives
exactly the numbers the validating reader gives (both parse decimal text to
the nearest double).

:func:`prepare_kinship` is what ``lmmcore scan --kinship FILE`` starts in a
background thread (:class:`lmmcore.prefetch.Prefetch`) before it imports
pandas and SciPy: read, validated and eigendecomposed
(:func:`lmmcore.eigen.decompose_kinship`, the scan's own call) while the
main thread imports. A file that is not plain or not valid gives ``None``
(the main thread reads it as before and reports the problem in the usual
order); a kinship that cannot be decomposed gives no decomposition (the scan
decomposes it and reports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .eigen import Eigendecomposition, decompose_kinship, validate_kinship_matrix
from .errors import LMMInputError

__all__ = ["PlainKinship", "prepare_kinship", "read_plain_kinship"]

_HEAD_BYTES = 65536


@dataclass(frozen=True, eq=False)
class PlainKinship:
    """A plain kinship file's IDs and matrix (and, from :func:`prepare_kinship`, its decomposition).

    Attributes
    ----------
    path : str
        The file, as given.
    ids : tuple of str
        The IDs of the rows (equal to the header's), stripped.
    matrix : ndarray, shape (n, n)
    eig : Eigendecomposition or None
        ``decompose_kinship(matrix, check=False)``, when computed.
    validated : bool
        Whether ``validate_kinship_matrix`` has passed it (square, finite, symmetric).
    """

    path: str
    ids: tuple[str, ...]
    matrix: np.ndarray
    eig: Eigendecomposition | None = None
    validated: bool = False


def _plain_header(path) -> list[str] | None:
    """The header's IDs (after the ID column) of a plain file, or None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return None
    end = head.find(b"\n")
    if end < 0 or b"\x00" in head or head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return None  # a header longer than the sample, binary, a byte-order mark: the validating reader
    try:
        line = head[:end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None
    if any(c in line for c in ';\t"'):  # another delimiter, or quoted names
        return None
    cells = [c.strip() for c in line.split(",")]
    ids = cells[1:]
    if not ids or cells[0].lower() == "chr" or not all(ids) or len(set(ids)) != len(ids):
        return None  # LOCO format, unnamed or repeated columns
    return ids


def read_plain_kinship(path: str | os.PathLike) -> PlainKinship | None:
    """Read a plain square kinship CSV (module docstring) with pyarrow; None if the file is not plain.

    Returns
    -------
    PlainKinship or None
        The rows' IDs and the matrix, with no decomposition. None when the
        file is not plain: another delimiter, quoted names, a byte-order
        mark, R's row names, a trailing delimiter, rows not in the header's
        order, a missing, infinite or non-numeric value, a row with more or
        fewer fields, a matrix that is not square, IDs that repeat or are
        empty.
    """
    ids = _plain_header(path)
    if ids is None:
        return None
    import pyarrow as pa
    import pyarrow.csv as pcsv

    n = len(ids)
    names = [f"c{k}" for k in range(n + 1)]
    try:
        table = pcsv.read_csv(
            os.fspath(path),
            # two blocks: both cores parse, and few chunks to copy out
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=names, use_threads=True,
                                          block_size=max(1 << 20, os.path.getsize(path) // 2 + 1)),
            parse_options=pcsv.ParseOptions(delimiter=",", newlines_in_values=False, ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                column_types={names[0]: pa.string(), **{c: pa.float64() for c in names[1:]}},
                null_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False,
                true_values=[], false_values=[],
            ),
        )
    except (pa.ArrowException, OSError, ValueError):
        return None  # not plain (a cell that is not a number, a row of another length, ...)
    if table.num_rows != n:
        return None
    rows = _strings(table.column(0))
    if rows is None or rows != ids:
        return None
    columns = np.empty((n, n))  # row k: column k of the file (the matrix is its transpose, a view)
    for k in range(n):
        start = 0
        for chunk in table.column(k + 1).chunks:
            if chunk.null_count:
                return None
            size = len(chunk)
            # the chunk's values buffer, without pyarrow's to_numpy (which imports pandas)
            columns[k, start:start + size] = np.frombuffer(chunk.buffers()[1], dtype=np.float64, count=size,
                                                           offset=chunk.offset * 8)
            start += size
    if not np.isfinite(columns).all():
        return None
    return PlainKinship(path=os.fspath(path), ids=tuple(rows), matrix=columns.T)


def _strings(column) -> list[str] | None:
    """A pyarrow string column as stripped Python strings (from its buffers: no pandas); None if one is empty."""
    out: list[str] = []
    for chunk in column.chunks:
        if chunk.null_count:
            return None
        _, offsets, data = chunk.buffers()
        off = np.frombuffer(offsets, dtype=np.int32, count=len(chunk) + 1, offset=chunk.offset * 4)
        raw = data.to_pybytes() if data is not None else b""
        out += [raw[a:b].decode("utf-8").strip() for a, b in zip(off[:-1].tolist(), off[1:].tolist())]
    return out if all(out) else None


def prepare_kinship(path: str | os.PathLike, name: str, *, decompose: bool = True) -> PlainKinship | None:
    """Read, validate and decompose a plain kinship file (module docstring); None unless plain and valid.

    ``name`` is the file's name in messages (as :func:`lmmcore.io.read_kinship_file` names it).
    Without ``decompose`` the kinship is only read and validated (a caller
    whose scan runs BLAS on another number of threads than this thread
    would: LAPACK's result depends on it in the last bits).
    """
    plain = read_plain_kinship(path)
    if plain is None:
        return None
    try:
        validate_kinship_matrix(plain.matrix, f"kinship file '{name}'", ids=list(plain.ids))
    except LMMInputError:
        return None  # the validating reader says it, in its turn
    eig = None
    if decompose:
        try:
            eig = decompose_kinship(plain.matrix, check=False)
        except LMMInputError:
            pass  # the scan decomposes it again and says what is wrong, in its turn
    return PlainKinship(path=plain.path, ids=plain.ids, matrix=plain.matrix, eig=eig, validated=True)
