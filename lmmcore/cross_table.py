"""One R/qtl2 CSV sheet, read as R/qtl2's ``fread_csv`` reads it, fast for wide genotype files.

R/qtl2's data files are plain delimited text: leading comment lines (which
may state the size, ``# nrow 284`` and ``# ncol 67``, the ID column
included), a header row, and one row per individual (or per marker when the
control file says the file is transposed); the first column holds the row
names. R/qtl2 reads every cell as text.

A genotype file of a Diversity Outbred study has 10^5 columns; pandas'
parser takes minutes on such a wide file, so the cells are cut out of the
bytes with NumPy instead: the positions of the delimiters and line ends are
found at once, and each cell becomes an element of a fixed-width byte array
(``S1`` for one-letter genotype codes). Files with quotes, or with cells so
long that a fixed-width array would be wasteful, go through pandas (slower,
same result).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import LMMInputError, report

__all__ = ["Sheet", "counted", "listed", "read_sheet"]

_NL, _CR, _SPACE, _TAB, _QUOTE = 10, 13, 32, 9, 34

#: Bytes of one block of lines tokenised at once (bounds the index arrays).
_BLOCK_BYTES = 1 << 24

#: A fixed-width cell array may use at most this many times the file's bytes.
_WIDTH_BLOWUP = 8


def listed(names, limit: int = 5) -> str:
    """``'a', 'b', 'c' and 4 more``: the first ``limit`` names, quoted."""
    names = list(names)
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def counted(n: int, word: str, plural: str | None = None) -> str:
    """``1 marker``, ``2 markers`` (``plural`` when it is not ``word + 's'``)."""
    return f"{n} {word if n == 1 else (plural or word + 's')}"


@dataclass(frozen=True)
class Sheet:
    """A table of text cells with row and column names, as R/qtl2 reads a CSV file.

    Attributes
    ----------
    file : str
        The file's name, for messages.
    rownames : ndarray of str, shape (n_rows,)
        The first column (stripped of surrounding blanks).
    colnames : ndarray of str, shape (n_cols,)
        The header row without its first cell.
    cells : ndarray of bytes (``S`` dtype), shape (n_rows, n_cols)
        The cells' UTF-8 text, stripped of surrounding blanks; empty cells
        are ``b""``.
    """

    file: str
    rownames: np.ndarray
    colnames: np.ndarray
    cells: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.cells.shape

    def transposed(self) -> "Sheet":
        """Rows become columns (R/qtl2's ``*_transposed: true``)."""
        return Sheet(self.file, self.colnames, self.rownames, self.cells.T)

    def strings(self) -> np.ndarray:
        """The cells as an object array of ``str``."""
        return decode(self.cells, self.file).astype(object)


def decode(values: np.ndarray, file: str) -> np.ndarray:
    """UTF-8 bytes (``S`` array) to text (``U`` array), with a clear error for other encodings."""
    try:
        return np.char.decode(values, "utf-8")
    except UnicodeDecodeError:
        raise LMMInputError(
            f"{file} is not UTF-8 text; save it as CSV UTF-8."
        ) from None


def read_sheet(data: bytes, file: str, *, sep: str = ",", comment_char: str | None = "#") -> Sheet:
    """Read one delimited file the way R/qtl2's ``fread_csv`` does.

    Parameters
    ----------
    data : bytes
        The file's contents.
    file : str
        Its name, for messages.
    sep : str
        The one-character field delimiter (the control file's ``sep``).
    comment_char : str or None
        Leading lines that start with it are comments (R/qtl2 skips them;
        ``# nrow N`` and ``# ncol M`` among them give the expected size).

    Returns
    -------
    Sheet

    Raises
    ------
    LMMInputError
        If the file is binary, UTF-16, empty, has no header, has a row with
        a different number of fields than the header, disagrees with its
        ``# nrow``/``# ncol`` comment, or lists a row name twice (as
        R/qtl2's ``fread_csv``).
    """
    if len(sep) != 1 or sep in "\r\n\"":
        raise LMMInputError(f"The control file's sep {sep!r} cannot delimit {file}; use one character such as ',' or ';'.")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LMMInputError(f"{file} is UTF-16 text; save it as CSV UTF-8.")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data[:65536] or b"\x00" in data[-65536:]:
        raise LMMInputError(f"{file} is not a text file; save it as CSV.")
    comments, header_line, body_start, header_lineno = _split_header(data, file, comment_char)
    header = _parse_header(header_line, file, sep)
    if len(header) < 2:
        raise LMMInputError(
            f"{file} has {counted(len(header), 'column')} in its header; R/qtl2 files need an ID column and at "
            f"least one more, delimited by {sep!r} (the control file's sep)."
        )
    body = data[body_start:]
    if body and not body.endswith(b"\n"):
        body = body + b"\n"
    arr = np.frombuffer(body, dtype=np.uint8)
    fast = _QUOTE not in arr
    if fast:
        parsed = _tokenize(body, arr, ord(sep), len(header), file, header_lineno)
        fast = parsed is not None
    if not fast:
        parsed = _pandas_cells(body, sep, len(header), file, header_lineno)
    rownames_b, cells = parsed
    rownames = decode(rownames_b, file)
    _check_size(comments, file, n_rows=len(rownames), n_cols=len(header))
    if rownames.size:
        names, counts = np.unique(rownames, return_counts=True)
        if (counts > 1).any():
            raise LMMInputError(
                f"{file} lists {listed(names[counts > 1])} more than once in its first column; "
                "each row name (ID or marker) must be unique: rename or remove the repeated rows."
            )
    colnames = np.array(header[1:], dtype=object).astype(str)
    names, counts = np.unique(colnames, return_counts=True)
    if (counts > 1).any():
        report(f"{file} has the column {listed(names[counts > 1])} more than once in its header; "
               "the first is used: rename the columns to keep them all.")
    return Sheet(file, rownames, colnames, cells)


# --------------------------------------------------------------------------- header and comments


def _split_header(data: bytes, file: str, comment_char: str | None):
    """Leading comment lines, the header line, where the body starts and the header's line number."""
    pos, lineno, comments = 0, 0, []
    cc = comment_char.encode() if comment_char else None
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        line = data[pos:end].rstrip(b"\r")
        lineno += 1
        stripped = line.strip()
        if cc and line.startswith(cc):
            comments.append(line.decode("utf-8", "replace"))
        elif stripped:
            return comments, line, end + 1, lineno
        pos = end + 1
    raise LMMInputError(f"{file} is empty (no header row); R/qtl2 files start with a header row naming the columns.")


def _parse_header(line: bytes, file: str, sep: str) -> list[str]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise LMMInputError(f"{file} is not UTF-8 text; save it as CSV UTF-8.") from None
    fields = next(csv.reader([text], delimiter=sep, skipinitialspace=False))
    return [f.strip() for f in fields]


def _check_size(comments: list[str], file: str, *, n_rows: int, n_cols: int) -> None:
    """R/qtl2's ``# nrow N`` / ``# ncol M`` comments (``M`` counts the ID column)."""
    for what, actual in (("nrow", n_rows), ("ncol", n_cols)):
        found = [c for c in comments if re.match(rf"^#\s*{what}\s*\d+", c)]
        if len(found) > 1:
            raise LMMInputError(f"{file} has {len(found)} comment lines giving '{what}'; keep one.")
        if found:
            expected = int(re.findall(r"\d+", found[0].split(what, 1)[1])[0])
            if expected != actual:
                label = "rows" if what == "nrow" else "columns"
                raise LMMInputError(
                    f"{file} has {actual} {label} but its comment '{found[0].strip()}' says {expected}; "
                    "correct the comment or the file."
                )


# --------------------------------------------------------------------------- tokenising


def _tokenize(body: bytes, arr: np.ndarray, sep: int, n_fields: int, file: str, header_lineno: int):
    """Rows of ``n_fields`` cells cut out of ``arr`` (lines end in ``\\n``) with NumPy.

    Returns ``(rownames, cells)`` as ``S`` arrays, or ``None`` when the
    cells are too long for a fixed-width array (the caller then uses pandas).
    """
    if arr.size == 0:
        return np.array([], dtype="S1"), np.empty((0, n_fields - 1), dtype="S1")
    # Blocks of whole lines.
    cuts = [0]
    while arr.size - cuts[-1] > _BLOCK_BYTES:
        nxt = body.find(b"\n", cuts[-1] + _BLOCK_BYTES) + 1
        if nxt <= 0 or nxt >= arr.size:
            break
        cuts.append(nxt)
    cuts.append(arr.size)
    strip_blanks = sep not in (_SPACE, _TAB)
    names, cells, lines_before = [], [], header_lineno
    for a, b in zip(cuts[:-1], cuts[1:]):
        blk = arr[a:b]
        result = _tokenize_block(blk, body[a:b], sep, n_fields, file, lines_before, strip_blanks)
        if result is None:
            return None
        rn, cl, n_lines = result
        names.append(rn)
        cells.append(cl)
        lines_before += n_lines
    width = max(c.dtype.itemsize for c in cells)
    total = sum(c.size for c in cells)
    if total * width > _WIDTH_BLOWUP * arr.size + (1 << 20):
        return None
    return np.concatenate(names), np.concatenate(cells, axis=0)


def _tokenize_block(blk, raw, sep, n_fields, file, lines_before, strip_blanks):
    """One block of whole lines: row names and cells (``S`` arrays), and the number of lines."""
    delims = np.flatnonzero((blk == sep) | (blk == _NL))
    line_ends = np.flatnonzero(blk[delims] == _NL)  # index into delims of each line's end
    n_lines = line_ends.size
    per_line = np.diff(line_ends, prepend=-1)
    starts = np.empty(delims.size, dtype=np.int64)
    starts[0] = 0
    starts[1:] = delims[:-1] + 1
    ends = delims
    if b"\r" in raw or (strip_blanks and (b" " in raw or b"\t" in raw)):
        ends = _strip(blk, starts, ends.copy(), strip_blanks)
    lengths = ends - starts
    blank = (per_line == 1) & (lengths[line_ends] == 0)
    bad = (per_line != n_fields) & ~blank
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise LMMInputError(
            f"{file}: line {lines_before + i + 1} has {counted(int(per_line[i]), 'field')} but the header has "
            f"{n_fields}; every row needs the same number of fields (check the delimiter and the row)."
        )
    if blank.any():
        keep = np.repeat(~blank, per_line)
        starts, lengths = starts[keep], lengths[keep]
    starts = starts.reshape(-1, n_fields)
    lengths = lengths.reshape(-1, n_fields)
    names = _fixed_width(blk, starts[:, 0], lengths[:, 0])
    cells = _fixed_width(blk, starts[:, 1:], lengths[:, 1:])
    if names is None or cells is None:
        return None
    return names, cells, n_lines


def _strip(blk, starts, ends, strip_blanks):
    """Move ``starts``/``ends`` past a line's CR and the blanks around each cell (in place)."""
    last = blk.size - 1
    ends -= (ends > starts) & (blk[np.maximum(ends - 1, 0)] == _CR)
    if strip_blanks:
        for _ in range(256):
            byte = blk[np.minimum(starts, last)]
            lead = (ends > starts) & ((byte == _SPACE) | (byte == _TAB))
            if not lead.any():
                break
            starts += lead
        for _ in range(256):
            byte = blk[np.maximum(ends - 1, 0)]
            trail = (ends > starts) & ((byte == _SPACE) | (byte == _TAB))
            if not trail.any():
                break
            ends -= trail
    return ends


def _fixed_width(blk: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
    """Cells as an ``S{w}`` array of the shape of ``starts`` (``w`` = the longest cell).

    Built one byte column at a time; ``None`` when the longest cell would make
    the array much larger than the text.
    """
    width = max(int(lengths.max()) if lengths.size else 1, 1)
    if width > 64 and lengths.size * width > _WIDTH_BLOWUP * blk.size + (1 << 20):
        return None
    last = blk.size - 1
    if width == 1:
        out = blk[np.minimum(starts, last)]
        if not lengths.all():
            out = np.where(lengths > 0, out, 0).astype(np.uint8)
        return out.view("S1")
    out = np.zeros(lengths.shape + (width,), dtype=np.uint8)
    for k in range(width):
        out[..., k] = np.where(lengths > k, blk[np.minimum(starts + k, last)], 0)
    return out.view(f"S{width}")[..., 0]


def _pandas_cells(body: bytes, sep: str, n_fields: int, file: str, header_lineno: int):
    """Quoted files: pandas' C parser (cells as text, no NA conversion), then the same ``S`` arrays."""
    try:
        frame = pd.read_csv(
            io.BytesIO(body), sep=sep, header=None, dtype=object, keep_default_na=False,
            na_filter=False, skip_blank_lines=True, encoding="utf-8", quotechar='"',
            names=list(range(n_fields)), index_col=False, engine="c",
        )
    except pd.errors.ParserError as exc:
        raise LMMInputError(
            f"{file} could not be split into {n_fields} fields per row ({_first_line(exc)}, counting "
            f"from the line after the header, line {header_lineno}); every row needs the same number "
            "of fields as the header."
        ) from None
    except UnicodeDecodeError:
        raise LMMInputError(f"{file} is not UTF-8 text; save it as CSV UTF-8.") from None
    values = frame.to_numpy(dtype=object)
    if values.size:
        values = np.char.strip(values.astype(str))
    else:
        values = values.astype(str).reshape(0, n_fields)
    encoded = np.char.encode(values, "utf-8")
    return encoded[:, 0], encoded[:, 1:]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1].replace("C error: ", "")
