"""Reading the engine's input tables, aligning them by ID, writing results.

Sources
-------
Every reader takes a *source*: a path, or the file's content as ``bytes``
(or a binary file object such as :class:`io.BytesIO`) together with
``name=``, the name that messages use for it (an upload's file name). A
reader never writes a temporary file, and its messages name only ``name``
(by default the file's base name; the genotype readers of
:mod:`lmmcore.genotypes` name the path as given).

Tables
------
CSV with the individual IDs in the first column (its header may be empty,
as R's ``write.csv`` writes it). A file delimited by semicolons or tabs is
read too, with a message; so is a header with one name fewer than the rows
(R's ``write.table`` with row names), whose first column is then the IDs.
In genotype files and maps, leading lines that start with ``#`` are
comments. :func:`read_table` (from :mod:`lmmcore.tables`, re-exported here) is
the one reader of such ID tables: the phenotype, covariate and kinship
readers below and the genotype readers use it; :func:`read_kinship_file`
also reads the long LOCO kinship format (columns ``chr, id``, then one
column per individual).

Missing values
--------------
:data:`MISSING_TOKENS` lists the cells read as missing in every file: an
empty cell, ``NA``, ``na``, ``N/A``, ``NaN``, ``nan``, ``NULL``, ``null``,
``.`` and ``-``. An ID spelled as one of them is a missing ID (an error).

Every problem is an :class:`~lmmcore.errors.LMMInputError` that names the
file and the row, column or ID at fault; messages that do not stop the work
go through :func:`lmmcore.errors.report`.

Output
------
:func:`write_csv_atomic` writes through a temporary file in the target's
folder and a rename, so an interrupted write leaves nothing behind; the file
gets the permissions a plain ``open()`` gives (``0666 & ~umask``, e.g. 0644),
and an existing file is replaced only with ``force``.
"""

from __future__ import annotations

import csv
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from .csv_text import FORMULA_START as _FORMULA_START
from .csv_text import NotPlain, csv_chunks
from .eigen import validate_kinship_matrix
from .errors import LMMInputError, report
from .tables import (
    MISSING_TOKENS,
    Input,
    Source,
    check_unique,
    delimiter,
    display_name,
    head_text,
    id_table,
    member_of,
    open_input,
    read_frame,
    read_table,
    read_text_table,
)

__all__ = [
    "LMMData",
    "MISSING_TOKENS",
    "Source",
    "align",
    "atomic_output",
    "check_output_path",
    "check_unique",
    "display_name",
    "load_data",
    "neutralise_formulas",
    "read_covariates",
    "read_kinship",
    "read_kinship_file",
    "read_phenotypes",
    "read_table",
    "read_text_table",
    "write_csv_atomic",
    "write_kinship_file",
]


# --------------------------------------------------------------------------- #
# Phenotypes, covariates, kinships
# --------------------------------------------------------------------------- #
def _numeric(df: pd.DataFrame, name: str, what: str, missing_ok: bool = True) -> pd.DataFrame:
    """Every column as float; name the first cell that is not a number."""
    todo = (
        ", and NA for missing values" if missing_ok
        else f": a {what} needs a number for every pair of individuals"
    )
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in df.dtypes]
    if all(numeric):  # the common case, checked as one array
        values = df.to_numpy(dtype=float)
        inf = np.isinf(values)
        if inf.any():
            i, j = np.argwhere(inf)[0]
            raise LMMInputError(
                f"{what} file '{name}', column '{df.columns[j]}', individual '{df.index[i]}': the value "
                f"is infinite; use finite numbers{todo}"
            )
        return pd.DataFrame(values, index=df.index, columns=df.columns)
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            num = s.astype(float)
        else:
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                row = bad.index[bad.to_numpy()][0]
                raise LMMInputError(
                    f"{what} file '{name}', column '{col}', individual '{row}': the value "
                    f"'{s[row]}' is not a number; use numbers{todo}"
                )
            num = num.astype(float)
        inf = np.isinf(num.to_numpy())
        if inf.any():
            row = num.index[inf][0]
            raise LMMInputError(
                f"{what} file '{name}', column '{col}', individual '{row}': the value is infinite; "
                f"use finite numbers{todo}"
            )
        out[col] = num
    return pd.DataFrame(out, index=df.index)


def read_phenotypes(source: Source, name: str | None = None) -> pd.DataFrame:
    """Read a phenotype file: IDs, then one numeric column per phenotype (NA = missing).

    ``source`` is a path, or the file's bytes with ``name`` for messages (see :func:`read_table`).
    """
    inp = open_input(source, "phenotype", name)
    return _numeric(id_table(inp, "phenotype"), inp.name, "phenotype")


def read_covariates(source: Source, name: str | None = None) -> pd.DataFrame:
    """Read a covariate file: IDs, then numeric or text columns (text becomes indicators).

    ``source`` is a path, or the file's bytes with ``name`` for messages (see :func:`read_table`).
    """
    inp = open_input(source, "covariate", name)
    df = id_table(inp, "covariate")
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float)
            if np.isinf(out[col].to_numpy()).any():
                row = s.index[np.isinf(out[col].to_numpy())][0]
                raise LMMInputError(
                    f"covariate file '{inp.name}', column '{col}', individual '{row}': the value is infinite; "
                    "use finite numbers, and NA for missing values"
                )
        else:
            num = pd.to_numeric(s, errors="coerce")
            text = num.isna() & s.notna()
            if not text.any():
                out[col] = num.astype(float)
                continue
            if int(text.sum()) < int(num.notna().sum()):  # mostly numbers: a typo, not a category
                row = s.index[text.to_numpy()][0]
                raise LMMInputError(
                    f"covariate file '{inp.name}', column '{col}', individual '{row}': the value "
                    f"'{s[row]}' is not a number, but most of the column is; use numbers, and NA for "
                    "missing values (a category column needs levels that are not numbers)"
                )
            out[col] = s.astype("string").str.strip()
    return pd.DataFrame(out, index=df.index)


def read_kinship(source: Source, name: str | None = None) -> pd.DataFrame:
    """Read a kinship file: an n x n matrix with the IDs as row and column labels.

    ``source`` is a path, or the file's bytes with ``name`` for messages (see
    :func:`read_table`). Columns listed in another order than the rows are
    reordered to match (with a message); labels that differ, and missing
    values, are an error.
    """
    return _square_kinship(open_input(source, "kinship", name))


def _square_kinship(inp: Input) -> pd.DataFrame:
    name = inp.name
    if inp.path is not None:  # a plain file: pyarrow's reader instead of pandas' parse (the same numbers)
        from .kinship_csv import read_plain_kinship

        plain = read_plain_kinship(inp.path)
        if plain is not None:
            return plain_kinship_frame(plain, name)
    df = id_table(inp, "kinship")
    cols = pd.Index([c.strip() for c in df.columns])
    if df.shape[0] != df.shape[1]:
        raise LMMInputError(
            f"kinship file '{name}' is {df.shape[0]} x {df.shape[1]} (rows x columns after the ID "
            "column); it must be square with one row and one column per individual"
        )
    rows = df.index
    if not cols.equals(rows):
        missing = [c for c in rows if c not in set(cols)]
        if missing:
            raise LMMInputError(
                f"kinship file '{name}': row ID '{missing[0]}' has no column of the same name; "
                "the column labels must be the same IDs as the rows"
            )
        df.columns = cols
        df = df.loc[:, rows]
        report(
            f"kinship file '{name}': the columns list the individuals in another order than the rows; "
            "they were matched by ID",
            stacklevel=3,
        )
    df.columns = rows
    K = _numeric(df, name, "kinship", missing_ok=False)
    values = K.to_numpy()
    if np.isnan(values).any():
        i, j = np.argwhere(np.isnan(values))[0]
        raise LMMInputError(
            f"kinship file '{name}', row '{rows[i]}', column '{rows[j]}': the value is missing; "
            "a kinship must be complete, with a number for every pair of individuals"
        )
    validate_kinship_matrix(values, f"kinship file '{name}'", ids=list(rows))
    return K


def plain_kinship_frame(plain, name: str) -> pd.DataFrame:
    """The kinship of a plain file (:class:`lmmcore.kinship_csv.PlainKinship`), validated and labelled by ID.

    The same frame as the validating reader's (index and columns the IDs,
    named ``id``); ``name`` names the file in messages.
    """
    rows = pd.Index(np.array(plain.ids, dtype=object), name="id")
    if not plain.validated:
        validate_kinship_matrix(plain.matrix, f"kinship file '{name}'", ids=list(rows))
    return pd.DataFrame(plain.matrix, index=rows, columns=rows, copy=False)  # no second n x n copy


def read_kinship_file(source: Source, name: str | None = None):
    """Read a kinship CSV: a square overall kinship, or the long LOCO format.

    The LOCO format (what ``lmmcore kinship --loco`` writes) is one CSV whose
    first two columns are ``chr`` and ``id``: the rows of chromosome c hold
    the n x n kinship computed without the markers of c, with the IDs as the
    other columns' labels.

    Parameters
    ----------
    source : path, bytes or binary file object
    name : str, optional
        The name messages use for the file (see :func:`read_table`).

    Returns
    -------
    DataFrame or dict of str to DataFrame
        The kinship labelled by ID, or ``{chromosome: kinship}``.

    Raises
    ------
    LMMInputError
        A missing file, a LOCO block that is not square or not labelled by
        the same IDs, values that are not numbers, a matrix that is not
        symmetric.
    """
    if isinstance(source, (str, os.PathLike)) and str(source).lower().endswith((".h5", ".hdf5")):
        from .eigenstore import read_kinship_h5  # binary kinship (lmmcore kinship --out K.h5)

        return read_kinship_h5(source)
    inp = open_input(source, "kinship", name)
    text, _ = head_text(inp, "kinship", "a header row and one row per individual")
    first = text.splitlines()[0] if text else ""
    header = [c.strip().lower() for c in next(csv.reader([first], delimiter=delimiter(first)), [])]
    if len(header) < 2 or header[0] != "chr":
        return _square_kinship(inp)
    name = inp.name
    if header[1] != "id":
        raise LMMInputError(
            f"kinship file '{name}' starts with a 'chr' column, so it is read as LOCO kinships; its "
            "second column must be 'id' (as lmmcore kinship --loco writes)"
        )
    df = read_frame(inp, "kinship", text_columns=2, min_columns=3)
    chr_col, id_col = df.columns[0], df.columns[1]
    ids = [str(c).strip() for c in df.columns[2:]]
    values = df.iloc[:, 2:].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any():
        r, c = np.argwhere(values.isna().to_numpy())[0]
        raise LMMInputError(
            f"kinship file '{name}', line {r + 2}, column '{ids[c]}': the value is missing or not a number"
        )
    out = {}
    for c, rows in df.groupby(chr_col, sort=False).groups.items():
        block_ids = [str(i).strip() for i in df.loc[rows, id_col]]
        if len(block_ids) != len(ids) or set(block_ids) != set(ids):
            raise LMMInputError(
                f"kinship file '{name}': the rows of chromosome '{c}' list {len(block_ids)} IDs, which are "
                f"not the {len(ids)} IDs of the column labels; each chromosome needs one row per individual"
            )
        K = pd.DataFrame(values.loc[rows].to_numpy(dtype=float), index=block_ids, columns=ids).loc[ids, ids]
        validate_kinship_matrix(K.to_numpy(), f"kinship file '{name}', chromosome '{c}'")
        out[str(c).strip()] = K
    return out


# --------------------------------------------------------------------------- #
# Alignment by ID
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class LMMData:
    """Phenotypes, covariates and kinship for the same individuals, in the same order.

    Attributes
    ----------
    ids : tuple of str
    kinship : ndarray, shape (n, n)
    phenotypes : DataFrame
        Indexed by ``ids``; NaN = missing.
    covariates : DataFrame or None
        Indexed by ``ids``; complete.
    dropped : dict
        Counts of individuals dropped and why, e.g. ``{"not in kinship": 3}``.
    sources : dict
        File names, for messages.
    """

    ids: tuple[str, ...]
    kinship: np.ndarray
    phenotypes: pd.DataFrame
    covariates: pd.DataFrame | None
    dropped: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_dropped(self) -> int:
        return int(sum(self.dropped.values()))

    def summary(self) -> str:
        """One paragraph saying what was loaded and what was dropped."""
        text = (
            f"{self.n} individuals, {self.phenotypes.shape[1]} phenotype(s), "
            f"{0 if self.covariates is None else self.covariates.shape[1]} covariate column(s)"
        )
        if self.dropped:
            parts = ", ".join(f"{v} {k}" for k, v in self.dropped.items() if v)
            text += f"; dropped {self.n_dropped} individual(s): {parts}"
        return text


def align(
    kinship: pd.DataFrame,
    phenotypes: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    sources: dict | None = None,
    *,
    strict_ids: bool = False,
) -> LMMData:
    """Keep the individuals present in every table, in the kinship's order.

    Individuals missing from a file, or with a missing covariate, are dropped
    and counted (a warning names the files and the first IDs); no shared ID,
    or no individual with complete covariates, is an error. Tables that list
    the individuals in another order than the kinship are matched by ID, with
    a warning. With ``strict_ids`` (``--strict-ids``) an individual present
    in one table but not another is an error instead
    (:func:`lmmcore.selection.check_same_ids`).
    """
    sources = dict(sources or {})
    kin_file = _file_label(sources, "kinship")
    pheno_file = _file_label(sources, "phenotypes", "phenotype")
    cov_file = _file_label(sources, "covariates", "covariate")
    if strict_ids:
        from .selection import check_same_ids

        check_same_ids({kin_file: kinship.index, pheno_file: phenotypes.index,
                        cov_file: None if covariates is None else covariates.index})
    k_ids = pd.Index(kinship.index)
    keep = k_ids.intersection(phenotypes.index, sort=False)
    if len(keep) == 0:
        raise LMMInputError(
            f"no individual ID appears in every file: for example the {kin_file} has '{k_ids[0]}' and "
            f"the {pheno_file} has '{phenotypes.index[0]}'; the first column of each file must hold "
            "the same IDs"
        )
    dropped, said = {}, []
    not_pheno = k_ids[~member_of(k_ids, phenotypes.index)]
    not_kin = phenotypes.index[~member_of(phenotypes.index, k_ids)]
    if len(not_pheno):
        dropped["in the kinship only (no phenotype row)"] = len(not_pheno)
        said.append(f"{len(not_pheno)} in the {kin_file} but not in the {pheno_file} ({_examples(not_pheno)})")
    if len(not_kin):
        dropped["with phenotypes but not in the kinship"] = len(not_kin)
        said.append(f"{len(not_kin)} in the {pheno_file} but not in the {kin_file} ({_examples(not_kin)})")
    if covariates is not None:
        in_cov = keep[member_of(keep, covariates.index)]
        if len(in_cov) == 0:
            raise LMMInputError(
                f"no individual ID of the {cov_file} is in the other files: for example it has "
                f"'{covariates.index[0]}' where the {kin_file} has '{keep[0]}'; the first column of "
                "each file must hold the same IDs"
            )
        complete_rows = covariates.notna().all(axis=1)
        incomplete = covariates.index[~complete_rows.to_numpy()]
        complete = in_cov[member_of(in_cov, covariates.index[complete_rows.to_numpy()])]
        if len(complete) == 0:
            shared = covariates.loc[in_cov]
            worst = shared.isna().sum().idxmax()
            raise LMMInputError(
                f"{cov_file}: every individual has a missing covariate (column '{worst}' is missing for "
                f"{int(shared[worst].isna().sum())} of the {len(in_cov)} individuals in every file); fill in "
                "the missing values or remove the column"
            )
        n_not_cov = len(keep) - len(in_cov)
        if n_not_cov:
            dropped["not in the covariate file"] = n_not_cov
            said.append(f"{n_not_cov} not in the {cov_file} ({_examples(keep[~member_of(keep, covariates.index)])})")
        if len(incomplete):
            dropped["with a missing covariate"] = len(incomplete)
            said.append(f"{len(incomplete)} with a missing value in the {cov_file} ({_examples(incomplete)})")
        keep = complete
    if dropped:
        todo = [t for t, needed in (
            ("make the IDs match", set(dropped) - {"with a missing covariate"}),
            ("fill in the missing covariates", "with a missing covariate" in dropped),
        ) if needed]
        report(
            "individuals dropped by ID alignment: " + ", ".join(said) + f"; {len(keep)} remain "
            f"({' or '.join(todo)} if they should be used)",
            stacklevel=3,
        )
    order = list(keep)
    reordered = [
        label
        for label, table in ((pheno_file, phenotypes), (cov_file, covariates))
        if table is not None and list(table.index[member_of(table.index, keep)]) != order
    ]
    if reordered:
        verb = "lists" if len(reordered) == 1 else "list"
        report(
            f"the {' and the '.join(reordered)} {verb} the individuals in another order than the "
            f"{kin_file}; rows were matched by ID",
            stacklevel=3,
        )
    K = kinship.loc[keep, keep].to_numpy(dtype=float)
    pheno = phenotypes.loc[keep]
    covar = covariates.loc[keep] if covariates is not None else None
    return LMMData(tuple(keep), K, pheno, covar, dropped, sources)


def _file_label(sources: dict, key: str, what: str | None = None) -> str:
    what = what or key
    return f"{what} file '{sources[key]}'" if key in sources else f"{what} table"


def _examples(ids, limit: int = 3) -> str:
    shown = ", ".join(f"'{i}'" for i in list(ids)[:limit])
    return ("e.g. " if len(ids) > limit else "") + shown


def load_data(kinship_path, pheno_path, covar_path=None, *, strict_ids: bool = False) -> LMMData:
    """Read the three files and align them by ID (see :func:`align`, also for ``strict_ids``); ``.h5`` read in binary."""
    if isinstance(kinship_path, (str, os.PathLike)) and str(kinship_path).lower().endswith((".h5", ".hdf5")):
        K = read_kinship_file(kinship_path)
        if isinstance(K, dict):
            raise LMMInputError(f"kinship file '{kinship_path}' holds LOCO kinships; a fit needs one kinship")
    else:
        K = read_kinship(kinship_path)
    P = read_phenotypes(pheno_path)
    C = read_covariates(covar_path) if covar_path is not None else None
    sources = {"kinship": display_name(kinship_path), "phenotypes": display_name(pheno_path)}
    if covar_path is not None:
        sources["covariates"] = display_name(covar_path)
    return align(K, P, C, sources, strict_ids=strict_ids)


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #
def check_output_path(path, force: bool = False) -> Path:
    """Refuse to replace an existing file without ``force``; check the folder is writable."""
    path = Path(path)
    if path.is_dir():
        raise LMMInputError(f"output '{path}' is a directory; give a file name")
    if path.exists() and not force:
        raise LMMInputError(f"output file '{path}' already exists; choose another name or pass --force to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise LMMInputError(f"cannot write '{path}': the folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise LMMInputError(f"cannot write '{path}': the folder '{folder}' is not writable")
    return path


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a quote."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def _create_beside(path: Path) -> tuple[int, Path]:
    """Create a new, empty temporary file next to ``path``, as ``open()`` would (mode 0666 & ~umask)."""
    folder = path.parent if str(path.parent) else Path(".")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - a clash of 48 random bits
            continue
    raise LMMInputError(f"cannot create a temporary file in '{folder}' to write '{path.name}'")  # pragma: no cover


@contextmanager
def atomic_output(path, *, force: bool = False) -> Iterator[Path]:
    """A temporary file beside ``path`` to write into; renamed to ``path`` when the block ends well.

    The one way the package writes a user's file: an existing file is
    replaced only with ``force``; an interrupted or failed write leaves no
    partial file (the temporary one is removed); the file gets the
    permissions that a plain ``open()`` gives, ``0666 & ~umask`` (0644 under
    the usual umask 022). The block receives the temporary path, already
    created, and writes it (opening it again with mode ``"w"`` keeps its
    permissions).
    """
    path = check_output_path(path, force)
    fd, tmp = _create_beside(path)
    os.close(fd)
    try:
        yield tmp
        if path.exists() and not force:  # appeared while we were writing
            raise LMMInputError(f"output file '{path}' appeared while writing; pass --force to replace it")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_csv_atomic(df: pd.DataFrame, path, *, force: bool = False, index: bool = False) -> Path:
    """Write a CSV through :func:`atomic_output`, spreadsheet formulas neutralised.

    Text cells that a spreadsheet would run as formulas are prefixed with a
    quote (:func:`neutralise_formulas`). Tables of numbers and plain text
    are formatted by :func:`lmmcore.csv_text.csv_chunks` (the bytes of
    ``to_csv``, several times faster); others by ``to_csv``.
    """
    with atomic_output(path, force=force) as tmp:
        with open(tmp, "w", newline="") as fh:
            pieces = csv_chunks(df, index=index)  # the same bytes as to_csv, formatted by whole columns
            if pieces is not None:
                try:
                    fh.writelines(pieces)
                except NotPlain:  # a cell to be quoted: start again with to_csv
                    fh.seek(0)
                    fh.truncate()
                    pieces = None
            if pieces is None:
                neutralise_formulas(df).to_csv(fh, index=index)
    return Path(path)


def write_kinship_file(kinships, ids, path, *, force: bool = False) -> Path:
    """Write an overall kinship (square CSV) or LOCO kinships (long CSV with ``chr, id``).

    The two formats that :func:`read_kinship_file` reads.

    Parameters
    ----------
    kinships : ndarray or dict of str to ndarray
        One matrix, or ``{chromosome: matrix}``.
    ids : sequence of str
    path : str or Path
    force : bool
        Replace an existing file.
    """
    ids = [str(i) for i in ids]
    if str(path).lower().endswith((".h5", ".hdf5")):
        from .eigenstore import write_kinship_h5  # binary, read back by read_kinship_file

        return write_kinship_h5(kinships, ids, path, force=force)
    if isinstance(kinships, dict):
        frames = []
        for c, K in kinships.items():
            frame = pd.DataFrame(np.asarray(K), columns=ids)
            frame.insert(0, "id", ids)
            frame.insert(0, "chr", str(c))
            frames.append(frame)
        return write_csv_atomic(pd.concat(frames, ignore_index=True), path, force=force)
    frame = pd.DataFrame(np.asarray(kinships), index=pd.Index(ids, name="id"), columns=ids)
    return write_csv_atomic(frame, path, force=force, index=True)
