"""Reading phenotype, covariate and kinship CSV files, aligning them by ID, writing results.

Files are CSV with the individual IDs in the first column (its header may be
empty, as R's ``write.csv`` writes it). Missing values may be written as
``NA``, an empty cell, ``NaN``, ``.`` or ``-``. A file delimited by semicolons
or tabs is read too, with a warning. Every problem is reported as an
:class:`~lmmcore.errors.LMMInputError` that names the file and the row, column
or ID at fault.
"""

from __future__ import annotations

import csv
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .eigen import validate_kinship_matrix
from .errors import LMMInputError, LMMWarning

__all__ = [
    "LMMData",
    "read_table",
    "read_phenotypes",
    "read_covariates",
    "read_kinship",
    "align",
    "load_data",
    "write_csv_atomic",
    "check_output_path",
]

MISSING_TOKENS = ["NA", "N/A", "na", "NaN", "nan", "", ".", "-", "NULL", "null"]


def _name(path) -> str:
    return os.path.basename(str(path)) or str(path)


def sniff_delimiter(path: Path, first_line: str) -> str:
    """Comma, semicolon or tab: whichever the header line has most of (a warning unless comma)."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        return ","
    if best != ",":
        label = "semicolon" if best == ";" else "tab"
        warnings.warn(
            f"{_name(path)}: read as a {label}-delimited file (its first line has no commas)",
            LMMWarning,
            stacklevel=3,
        )
    return best


def _header_fields(lines: list[str], sep: str) -> list[str]:
    """The stripped header cells of a file's first line."""
    if not lines:
        return []
    row = next(csv.reader([lines[0]], delimiter=sep), [])
    return [c.strip() for c in row]


def _has_row_names(lines: list[str], sep: str, n_header: int) -> bool:
    """Whether every data line (of those given) has exactly one field more than the header.

    Lines that all end in an empty field have a trailing delimiter instead.
    """
    rows = [r for r in csv.reader(lines[1:201], delimiter=sep) if r and any(c.strip() for c in r)]
    return (
        n_header >= 1
        and bool(rows)
        and all(len(r) == n_header + 1 for r in rows)
        and not all(r[-1].strip() == "" for r in rows)
    )


def read_table(path, what: str = "table") -> pd.DataFrame:
    """Read a CSV whose first column holds IDs; return it indexed by ID (as text).

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is (``"phenotype"``, ``"kinship"``, ...), for messages.

    Returns
    -------
    DataFrame
        Index: IDs as stripped strings. Columns: as in the file, values as
        pandas parsed them (numbers, or text).

    Raises
    ------
    LMMInputError
        Missing, unreadable, empty, binary or UTF-16 file; no data columns or
        no rows; a duplicated column; an empty or duplicated ID.

    Warns
    -----
    LMMWarning
        A semicolon- or tab-delimited file; a header with one name fewer than
        the rows (R's ``write.table`` with row names), read with the first
        column as the IDs.
    """
    path = Path(path)
    name = _name(path)
    if not path.exists():
        raise LMMInputError(f"{what} file '{path}' does not exist; check the path")
    if path.is_dir():
        raise LMMInputError(f"{what} file '{path}' is a directory; give the CSV file inside it")
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise LMMInputError(f"cannot read {what} file '{path}': {exc.strerror}") from None
    if not head.strip():
        raise LMMInputError(f"{what} file '{name}' is empty; it needs a header row and one row per individual")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LMMInputError(
            f"{what} file '{name}' is saved as UTF-16 text (as Excel's 'Unicode text'); "
            "save it as CSV UTF-8 (comma-separated)"
        )
    if b"\x00" in head:
        raise LMMInputError(
            f"{what} file '{name}' is not a text file (it contains binary data); "
            "save it as CSV (comma-separated text)"
        )
    try:
        text_head = head.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text_head = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
            raise LMMInputError(f"{what} file '{name}' is not readable text; save it as UTF-8 CSV") from None
    lines = text_head.splitlines()
    first_line = lines[0] if lines else ""
    sep = sniff_delimiter(path, first_line)
    header = _header_fields(lines, sep)
    names = None
    if _has_row_names(lines if len(head) < 65536 else lines[:-1], sep, len(header)):
        # R's write.table(row.names = TRUE) leaves out the header cell of the ID column
        names = ["", *header]
    labels = pd.Index([c for c in (names or header)[1:] if c])
    if labels.has_duplicates:
        raise LMMInputError(
            f"{what} file '{name}': the column '{labels[labels.duplicated()][0]}' appears more than once; "
            "rename or remove one of them"
        )
    if names:
        warnings.warn(
            f"{_name(path)}: the header has one name fewer than the rows (as R's write.table writes "
            "row names); the first column was read as the IDs",
            LMMWarning,
            stacklevel=2,
        )
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=None if names else 0,
            skiprows=1 if names else None,
            names=names,
            converters={0: str},
            na_values=MISSING_TOKENS,
            keep_default_na=False,
            skipinitialspace=True,
            encoding="utf-8-sig",
            encoding_errors="replace",
        )
    except pd.errors.EmptyDataError:
        raise LMMInputError(f"{what} file '{name}' is empty; it needs a header row and one row per individual") from None
    except (pd.errors.ParserError, ValueError, csv.Error) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "parse error"
        raise LMMInputError(
            f"{what} file '{name}' is not a well-formed CSV ({detail}); every row must have "
            "the same number of fields as the header"
        ) from None
    if df.shape[1] < 2:
        raise LMMInputError(
            f"{what} file '{name}' has {df.shape[1]} column(s); it needs the IDs in the first "
            "column and at least one data column (is it delimited by commas?)"
        )
    if df.shape[0] == 0:
        raise LMMInputError(
            f"{what} file '{name}' has a header but no rows of data; add one row per individual below the header"
        )
    ids = df.iloc[:, 0].astype(str).str.strip()
    empty = ids.isna() | ids.isin(["", "nan", "NA"])
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + 2
        raise LMMInputError(f"{what} file '{name}', line {row}: the ID in the first column is empty; every row needs an ID")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise LMMInputError(
            f"{what} file '{name}': the ID '{dup.iloc[0]}' appears more than once; IDs must be unique, "
            "so remove or rename the duplicate rows"
        )
    df = df.iloc[:, 1:]
    df.index = pd.Index(ids.to_numpy(), name="id")
    df.columns = [str(c).strip() for c in df.columns]
    dup_cols = pd.Index(df.columns)[pd.Index(df.columns).duplicated()]
    if len(dup_cols):
        raise LMMInputError(f"{what} file '{name}': the column '{dup_cols[0]}' appears more than once")
    return df


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


def read_phenotypes(path) -> pd.DataFrame:
    """Read a phenotype file: IDs, then one numeric column per phenotype (NA = missing)."""
    df = read_table(path, "phenotype")
    return _numeric(df, _name(path), "phenotype")


def read_covariates(path) -> pd.DataFrame:
    """Read a covariate file: IDs, then numeric or text columns (text becomes indicators)."""
    df = read_table(path, "covariate")
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float)
            if np.isinf(out[col].to_numpy()).any():
                row = s.index[np.isinf(out[col].to_numpy())][0]
                raise LMMInputError(
                    f"covariate file '{_name(path)}', column '{col}', individual '{row}': the value is infinite; "
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
                    f"covariate file '{_name(path)}', column '{col}', individual '{row}': the value "
                    f"'{s[row]}' is not a number, but most of the column is; use numbers, and NA for "
                    "missing values (a category column needs levels that are not numbers)"
                )
            out[col] = s.astype("string").str.strip()
    return pd.DataFrame(out, index=df.index)


def read_kinship(path) -> pd.DataFrame:
    """Read a kinship file: an n x n matrix with the IDs as row and column labels.

    Columns listed in another order than the rows are reordered to match
    (with a warning); labels that differ, and missing values, are an error.
    """
    name = _name(path)
    df = read_table(path, "kinship")
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
        warnings.warn(
            f"kinship file '{name}': the columns list the individuals in another order than the rows; "
            "they were matched by ID",
            LMMWarning,
            stacklevel=2,
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
) -> LMMData:
    """Keep the individuals present in every table, in the kinship's order.

    Individuals missing from a file, or with a missing covariate, are dropped
    and counted (a warning names the files and the first IDs); no shared ID,
    or no individual with complete covariates, is an error. Tables that list
    the individuals in another order than the kinship are matched by ID, with
    a warning.
    """
    sources = dict(sources or {})
    kin_file = _file_label(sources, "kinship")
    pheno_file = _file_label(sources, "phenotypes", "phenotype")
    cov_file = _file_label(sources, "covariates", "covariate")
    k_ids = pd.Index(kinship.index)
    keep = k_ids.intersection(phenotypes.index, sort=False)
    if len(keep) == 0:
        raise LMMInputError(
            f"no individual ID appears in every file: for example the {kin_file} has '{k_ids[0]}' and "
            f"the {pheno_file} has '{phenotypes.index[0]}'; the first column of each file must hold "
            "the same IDs"
        )
    dropped, said = {}, []
    not_pheno = k_ids[~k_ids.isin(phenotypes.index)]
    not_kin = phenotypes.index[~phenotypes.index.isin(k_ids)]
    if len(not_pheno):
        dropped["in the kinship only (no phenotype row)"] = len(not_pheno)
        said.append(f"{len(not_pheno)} in the {kin_file} but not in the {pheno_file} ({_examples(not_pheno)})")
    if len(not_kin):
        dropped["with phenotypes but not in the kinship"] = len(not_kin)
        said.append(f"{len(not_kin)} in the {pheno_file} but not in the {kin_file} ({_examples(not_kin)})")
    if covariates is not None:
        in_cov = keep[keep.isin(covariates.index)]
        if len(in_cov) == 0:
            raise LMMInputError(
                f"no individual ID of the {cov_file} is in the other files: for example it has "
                f"'{covariates.index[0]}' where the {kin_file} has '{keep[0]}'; the first column of "
                "each file must hold the same IDs"
            )
        complete_rows = covariates.notna().all(axis=1)
        incomplete = covariates.index[~complete_rows.to_numpy()]
        complete = in_cov[in_cov.isin(covariates.index[complete_rows.to_numpy()])]
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
            said.append(f"{n_not_cov} not in the {cov_file} ({_examples(keep[~keep.isin(covariates.index)])})")
        if len(incomplete):
            dropped["with a missing covariate"] = len(incomplete)
            said.append(f"{len(incomplete)} with a missing value in the {cov_file} ({_examples(incomplete)})")
        keep = complete
    if dropped:
        todo = [t for t, needed in (
            ("make the IDs match", set(dropped) - {"with a missing covariate"}),
            ("fill in the missing covariates", "with a missing covariate" in dropped),
        ) if needed]
        warnings.warn(
            "individuals dropped by ID alignment: " + ", ".join(said) + f"; {len(keep)} remain "
            f"({' or '.join(todo)} if they should be used)",
            LMMWarning,
            stacklevel=2,
        )
    order = list(keep)
    reordered = [
        label
        for label, table in ((pheno_file, phenotypes), (cov_file, covariates))
        if table is not None and list(table.index[table.index.isin(keep)]) != order
    ]
    if reordered:
        verb = "lists" if len(reordered) == 1 else "list"
        warnings.warn(
            f"the {' and the '.join(reordered)} {verb} the individuals in another order than the "
            f"{kin_file}; rows were matched by ID",
            LMMWarning,
            stacklevel=2,
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


def load_data(kinship_path, pheno_path, covar_path=None) -> LMMData:
    """Read the three CSV files and align them by ID (see :func:`align`)."""
    K = read_kinship(kinship_path)
    P = read_phenotypes(pheno_path)
    C = read_covariates(covar_path) if covar_path is not None else None
    sources = {"kinship": _name(kinship_path), "phenotypes": _name(pheno_path)}
    if covar_path is not None:
        sources["covariates"] = _name(covar_path)
    return align(K, P, C, sources)


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


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a quote."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def write_csv_atomic(df: pd.DataFrame, path, *, force: bool = False, index: bool = False) -> Path:
    """Write a CSV through a temporary file in the same folder and a rename.

    An interrupted write leaves no partial file; an existing file is replaced
    only with ``force``.
    """
    path = check_output_path(path, force)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            neutralise_formulas(df).to_csv(fh, index=index)
        if path.exists() and not force:  # appeared while we were writing
            raise LMMInputError(f"output file '{path}' appeared while writing; pass --force to replace it")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
