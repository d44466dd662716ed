"""The one reader of the engine's CSV tables: sources, encoding, delimiter, header, IDs, missing values.

:mod:`lmmcore.io` (phenotypes, covariates, kinships) and
:mod:`lmmcore.genotypes` (genotype probabilities, dosages, maps) read every
CSV through :func:`read_table` (a table of IDs and values) or
:func:`read_text_table` (a table of text found by column name, such as a
map). See :mod:`lmmcore.io` for the conventions: sources (a path, or bytes
with a display name), delimiters, R's row names, comment lines, and the
missing-value tokens :data:`MISSING_TOKENS`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence, Union

import numpy as np
import pandas as pd

from .errors import LMMInputError, report

__all__ = [
    "MISSING_TOKENS",
    "Source",
    "Input",
    "agree",
    "check_unique",
    "display_name",
    "list_names",
    "member_of",
    "open_input",
    "plural",
    "read_table",
    "read_text_table",
    "sniff_delimiter",
    "verb",
]

#: Cell contents read as missing, in every input file.
MISSING_TOKENS = ["NA", "N/A", "na", "NaN", "nan", "", ".", "-", "NULL", "null"]

#: What a reader accepts: a path, or the file's bytes (or a binary file object) with ``name=``.
Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]

_HEAD_BYTES = 65536  # read to check the encoding and find the delimiter
_SAMPLE_CHARS = 1 << 20  # at most this much of the first rows is looked at for R's row names


def _name(path) -> str:
    return os.path.basename(str(path)) or str(path)


def list_names(names: Sequence, limit: int = 5) -> str:
    """``"a, b, c"``, or the first ``limit`` names ``"and N more"``."""
    names = [str(x) for x in names]
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def plural(count: int, noun: str) -> str:
    """``"1 marker"`` / ``"3 markers"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def agree(count: int, singular: str, plural_: str) -> str:
    """``"1 value is"`` / ``"3 values are"``."""
    return f"{count} {verb(count, singular, plural_)}"


def verb(count: int, singular: str, plural_: str) -> str:
    """``singular`` for a count of 1, else ``plural_``."""
    return singular if count == 1 else plural_


def check_unique(values, where: str, what: str, todo: str) -> None:
    """Raise :class:`LMMInputError` if ``values`` repeat, naming the first repeated value.

    The message: "The {what} 'x' appears 2 times in {where}; each {what} must
    be unique (none may appear more than once), so {todo}."
    """
    series = pd.Series(np.asarray(values, dtype=object))
    dup = series[series.duplicated(keep=False)]
    if len(dup):
        counts = dup.value_counts(sort=False)
        more = (f" ({len(counts)} values repeat: {list_names(counts.index.tolist())})"
                if len(counts) > 1 else "")
        raise LMMInputError(
            f"The {what} {counts.index[0]!r} appears {counts.iloc[0]} times in {where}{more}; each "
            f"{what} must be unique (none may appear more than once), so {todo}."
        )


# --------------------------------------------------------------------------- #
# Sources: a path, or bytes with a display name
# --------------------------------------------------------------------------- #
def member_of(index: pd.Index, values) -> np.ndarray:
    """``index.isin(values)``: whether each entry of ``index`` is among ``values`` (IDs, marker names).

    The same answer by one hash lookup of the distinct values
    (:meth:`pandas.Index.get_indexer`): pandas 3's ``isin`` of a text index
    turns every one of ``values`` into an Arrow scalar first, about 10 us
    each (10 ms for 1000 IDs, at every call). With a missing value on either
    side ``isin`` itself answers (it matches None and NaN across dtypes).
    """
    distinct = pd.Index(values)
    if index.hasnans or distinct.hasnans:
        return index.isin(values)
    return distinct.unique().get_indexer(index) >= 0


def display_name(source: Source, name: str | None = None, *, full: bool = False) -> str:
    """The name messages use for ``source``: ``name`` if given, else the path (its base name
    unless ``full``), else ``"upload"`` for bytes."""
    if name:
        return str(name)
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
        label = getattr(source, "name", None)
        return _name(label) if isinstance(label, str) and label else "upload"
    text = os.fspath(source)
    return text if full else _name(text)


@dataclass(frozen=True)
class Input:
    """One input file: its display name, and its path or its bytes."""

    name: str
    path: Path | None = None
    data: bytes | None = None

    def open(self) -> BinaryIO:
        return open(self.path, "rb") if self.path is not None else io.BytesIO(self.data)

    def text(self):
        """The file as text (UTF-8, undecodable bytes replaced), for the csv module."""
        return io.TextIOWrapper(self.open(), encoding="utf-8-sig", errors="replace", newline="")


def open_input(source: Source, what: str, name: str | None = None, *, full: bool = False) -> Input:
    """Resolve a source: bytes or a file object are read into memory; a path must be an existing file.

    ``what`` names the kind of file in messages; ``name`` and ``full`` are
    as in :func:`display_name`.
    """
    shown = display_name(source, name, full=full)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Input(shown, data=bytes(source))
    if hasattr(source, "read"):
        data = source.read()
        return Input(shown, data=data.encode("utf-8") if isinstance(data, str) else bytes(data))
    path = Path(source)
    if not path.exists():
        raise LMMInputError(f"{what} file {path} does not exist; check the path")
    if path.is_dir():
        raise LMMInputError(f"{what} file '{path}' is a directory; give the CSV file inside it")
    return Input(shown, path=path)


def head_text(inp: Input, what: str, needs: str) -> tuple[str, bool]:
    """The decoded start of the file, and whether that is the whole file; refuse binary or UTF-16 files."""
    try:
        if inp.data is not None:
            head = inp.data[:_HEAD_BYTES]
        else:
            with open(inp.path, "rb") as fh:
                head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise LMMInputError(f"cannot read {what} file '{inp.name}': {exc.strerror}") from None
    if not head.strip():
        raise LMMInputError(f"{what} file '{inp.name}' is empty (no header, no data rows); it needs {needs}")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LMMInputError(
            f"{what} file '{inp.name}' is saved as UTF-16 text (as Excel's 'Unicode text'); "
            "save it as CSV UTF-8 (comma-separated)"
        )
    if b"\x00" in head:
        raise LMMInputError(
            f"{what} file '{inp.name}' is not a text file (it contains binary data); "
            "save it as CSV (comma-separated text)"
        )
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = head.decode("latin-1")  # only to find the delimiter; the cells are read as UTF-8
    return text, len(head) < _HEAD_BYTES


def delimiter(first_line: str) -> str:
    """Comma, semicolon or tab: whichever ``first_line`` has most of (comma if none)."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def sniff_delimiter(name: str, first_line: str) -> str:
    """Comma, semicolon or tab: whichever the header line has most of (a message unless comma)."""
    sep = delimiter(first_line)
    if sep != ",":
        label = "semicolon" if sep == ";" else "tab"
        report(f"{name}: read as a {label}-delimited file (its first line has no commas)", stacklevel=3)
    return sep


def _comment_lines(lines: list[str]) -> int:
    """How many of ``lines`` at the top start with ``#``."""
    count = 0
    for line in lines:
        if not line.startswith("#"):
            break
        count += 1
    return count


def _has_row_names(rows: list[list[str]], n_header: int) -> bool:
    """Whether every data row (of those given) has exactly one field more than the header.

    Rows that all end in an empty field have a trailing delimiter instead.
    """
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    return (
        n_header >= 1
        and bool(rows)
        and all(len(r) == n_header + 1 for r in rows)
        and not all(r[-1].strip() == "" for r in rows)
    )


def _header(inp: Input, sep: str, skip: int, complete: bool) -> tuple[list[str] | None, list[list[str]]]:
    """The header cells (stripped) and the first rows after it (at most about 1 MB of them)."""
    with inp.text() as fh:
        reader = csv.reader(fh, delimiter=sep)
        for _ in range(skip):
            next(reader, None)
        header = next(reader, None)
        rows, size = [], 0
        for row in reader:
            rows.append(row)
            size += sum(len(c) for c in row)
            if len(rows) >= 200 or size > _SAMPLE_CHARS:
                if not complete:
                    rows.pop()  # possibly cut by the sample's end: look only at whole rows
                break
    return (None if header is None else [c.strip() for c in header]), rows


# --------------------------------------------------------------------------- #
# The one table reader
# --------------------------------------------------------------------------- #
def _parse(inp: Input, what: str, sep: str, skip: int, keys: list[str], text: list[str], missing: bool,
           usecols: list[str] | None = None) -> pd.DataFrame:
    """pandas' parse of the rows below the header (``text`` columns as str; :data:`MISSING_TOKENS` as NaN)."""
    try:
        with inp.open() as fh:
            return pd.read_csv(
                fh,
                sep=sep,
                header=None,
                skiprows=skip + 1,
                names=keys,
                usecols=usecols,
                dtype={k: str for k in text},
                na_values=MISSING_TOKENS if missing else None,
                keep_default_na=False,
                skipinitialspace=True,
                index_col=False,
                encoding="utf-8-sig",
                encoding_errors="replace",
            )
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=keys)
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parse error"
        raise LMMInputError(
            f"{what} file '{inp.name}' is not a well-formed CSV ({detail}); every row must have "
            "the same number of fields as the header"
        ) from None


def read_frame(
    inp: Input,
    what: str,
    *,
    text_columns: int | None = 1,
    missing: bool = True,
    comments: bool = False,
    min_columns: int = 2,
    unit: str = "individual",
    needs: str | None = None,
) -> pd.DataFrame:
    """Parse ``inp`` into a DataFrame whose columns are the header's names (stripped).

    The first ``text_columns`` columns (None: all) are read as text, verbatim
    (an ID may be ``NA``), the others as pandas parses them; with ``missing``,
    :data:`MISSING_TOKENS` in them are NaN. Checks the encoding, the
    delimiter, the header (no repeated or unnamed column; a trailing
    delimiter is allowed) and that there are rows.
    """
    needs = needs or f"a header row and one row per {unit}"
    head, complete = head_text(inp, what, needs)
    lines = head.splitlines()
    skip = _comment_lines(lines if complete else lines[:-1]) if comments else 0
    sep = sniff_delimiter(inp.name, lines[skip] if len(lines) > skip else "")
    header, sample = _header(inp, sep, skip, complete)
    if not header or not any(header):
        raise LMMInputError(f"{what} file '{inp.name}' is empty (no header, no data rows); it needs {needs}")
    names = header
    if _has_row_names(sample, len(header)):
        # R's write.table(row.names = TRUE) leaves out the header cell of the ID column
        names = ["", *header]
        report(
            f"{inp.name}: the header has one name fewer than the rows (as R's write.table writes "
            "row names); the first column was read as the IDs",
            stacklevel=4,
        )
    if len(names) < min_columns:
        raise LMMInputError(
            f"{what} file '{inp.name}' has {len(names)} column(s); it needs the IDs in the first "
            "column and at least one data column (is it delimited by commas?)"
        )
    unnamed = [k for k, c in enumerate(names) if not c and k > 0]
    if unnamed and unnamed[0] < len(names) - 1:
        raise LMMInputError(
            f"column {unnamed[0] + 1} of the {what} file '{inp.name}' has no name; name every column"
        )
    check_unique([c for c in names[1:] if c], f"the {what} file '{inp.name}'", "column",
                 "rename or remove one of them")
    keys = [f"\x00{k}" for k in range(len(names))]
    text = keys if text_columns is None else keys[:text_columns]
    df = _parse(inp, what, sep, skip, keys, text, missing)
    if missing and text and df[text].isna().any().any():
        # a text cell spelled as a missing value (an individual called "NA"): read those columns verbatim
        df[text] = _parse(inp, what, sep, skip, keys, text, False, usecols=text)
    if df.shape[0] == 0:
        raise LMMInputError(
            f"{what} file '{inp.name}' has a header but no rows of data; add one row per {unit} below the header"
        )
    df.columns = names
    df.attrs["first_line"] = skip + 2  # the file's line number of the first row
    if unnamed:  # the last column has no name: a trailing delimiter, if it is empty throughout
        last = df.iloc[:, -1]
        if not (last.isna() | (last.astype(str).str.strip() == "")).all():
            raise LMMInputError(
                f"column {len(names)} of the {what} file '{inp.name}' has no name; name every column"
            )
        df = df.iloc[:, :-1]
    return df


def read_text_table(
    source: Source, what: str, *, name: str | None = None, comments: bool = False, needs: str | None = None
) -> pd.DataFrame:
    """Read a CSV with a header into a DataFrame of text (cells verbatim, no missing values).

    For tables whose columns are found by name, such as a marker map. Refuses
    the same files as :func:`read_table` (binary, UTF-16, empty, repeated
    column names); ``needs`` says what an empty file should have held.
    """
    inp = open_input(source, what, name)
    return read_frame(inp, what, text_columns=None, missing=False, comments=comments, min_columns=1,
                       unit="row", needs=needs)


def read_table(source: Source, what: str = "table", *, name: str | None = None,
               comments: bool = False) -> pd.DataFrame:
    """Read a CSV whose first column holds IDs; return it indexed by ID (as text).

    Parameters
    ----------
    source : path, bytes or binary file object
    what : str
        What the file is (``"phenotype"``, ``"kinship"``, ...), for messages.
    name : str, optional
        The name messages use for the file (default: its base name; ``"upload"`` for bytes).
    comments : bool
        Skip leading lines that start with ``#``.

    Returns
    -------
    DataFrame
        Index: IDs as stripped strings (named ``id``). Columns: as in the
        file, values as pandas parsed them (numbers, or text), with
        :data:`MISSING_TOKENS` as NaN.

    Raises
    ------
    LMMInputError
        Missing, unreadable, empty, binary or UTF-16 file; no data columns or
        no rows; a repeated or unnamed column; a missing or repeated ID.

    Notes
    -----
    Reports (:func:`lmmcore.errors.report`) a semicolon- or tab-delimited
    file and a header with one name fewer than the rows (R's ``write.table``
    with row names), read with the first column as the IDs.
    """
    return id_table(open_input(source, what, name), what, comments)


def id_table(inp: Input, what: str, comments: bool = False) -> pd.DataFrame:
    df = read_frame(inp, what, comments=comments)
    ids = df.iloc[:, 0]
    empty = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0]) + df.attrs["first_line"]
        raise LMMInputError(
            f"{what} file '{inp.name}', line {row}: the row has no ID in the first column (it is empty); "
            "every row needs an ID"
        )
    ids = ids.astype(str).str.strip()
    check_unique(ids.to_numpy(), f"the {what} file '{inp.name}'", "ID", "remove or rename the duplicate rows")
    df = df.iloc[:, 1:]
    df.index = pd.Index(ids.to_numpy(), name="id")
    return df
