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


def _sniff_delimiter(path: Path, first_line: str) -> str:
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
        Missing, unreadable, empty or binary file; no data columns; an empty
        or duplicated ID.
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
    first_line = text_head.splitlines()[0] if text_head.splitlines() else ""
    sep = _sniff_delimiter(path, first_line)
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            header=0,
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
        raise LMMInputError(f"{what} file '{name}' has a header but no rows of data")
    ids = df.iloc[:, 0].astype(str).str.strip()
    empty = ids.isin(["", "nan", "NA"])
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + 2
        raise LMMInputError(f"{what} file '{name}', line {row}: the ID in the first column is empty; every row needs an ID")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise LMMInputError(
            f"{what} file '{name}': the ID '{dup.iloc[0]}' appears more than once; IDs must be unique"
        )
    df = df.iloc[:, 1:]
    df.index = pd.Index(ids.to_numpy(), name="id")
    df.columns = [str(c).strip() for c in df.columns]
    dup_cols = pd.Index(df.columns)[pd.Index(df.columns).duplicated()]
    if len(dup_cols):
        raise LMMInputError(f"{what} file '{name}': the column '{dup_cols[0]}' appears more than once")
    return df


def _numeric(df: pd.DataFrame, name: str, what: str) -> pd.DataFrame:
    """Every column as float; name the first cell that is not a number."""
    numeric = [pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in df.dtypes]
    if all(numeric):  # the common case, checked as one array
        values = df.to_numpy(dtype=float)
        inf = np.isinf(values)
        if inf.any():
            i, j = np.argwhere(inf)[0]
            raise LMMInputError(
                f"{what} file '{name}', column '{df.columns[j]}', individual '{df.index[i]}': the value "
                "is infinite; use finite numbers, and NA for missing values"
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
                    f"'{s[row]}' is not a number; use numbers, and NA for missing values"
                )
            num = num.astype(float)
        inf = np.isinf(num.to_numpy())
        if inf.any():
            row = num.index[inf][0]
            raise LMMInputError(
                f"{what} file '{name}', column '{col}', individual '{row}': the value is infinite; "
                "use finite numbers, and NA for missing values"
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
                    f"covariate file '{_name(path)}', column '{col}', individual '{row}': the value is infinite"
                )
        else:
            num = pd.to_numeric(s, errors="coerce")
            out[col] = num.astype(float) if (num.notna() == s.notna()).all() else s.astype("string").str.strip()
    return pd.DataFrame(out, index=df.index)


def read_kinship(path) -> pd.DataFrame:
    """Read a kinship file: an n x n matrix with the IDs as row and column labels.

    Columns listed in another order than the rows are reordered to match;
    labels that differ are an error.
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
    df.columns = rows
    K = _numeric(df, name, "kinship")
    validate_kinship_matrix(K.to_numpy(), f"kinship file '{name}'")
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
    and counted (a warning says how many); no shared ID is an error.
    """
    sources = dict(sources or {})
    k_ids = pd.Index(kinship.index)
    keep = k_ids.intersection(phenotypes.index, sort=False)
    dropped = {}
    n_not_pheno = int((~k_ids.isin(phenotypes.index)).sum())
    n_not_kin = int((~phenotypes.index.isin(k_ids)).sum())
    if covariates is not None:
        complete = covariates.index[covariates.notna().all(axis=1)]
        n_missing_cov = int(covariates.shape[0] - len(complete))
        n_not_cov = int((~keep.isin(covariates.index)).sum())
        keep = keep.intersection(complete, sort=False)
    if len(keep) == 0:
        raise LMMInputError(
            "no individual ID appears in every file: for example the kinship file "
            f"'{sources.get('kinship', 'kinship')}' has '{k_ids[0]}' and the phenotype file "
            f"'{sources.get('phenotypes', 'phenotypes')}' has '{phenotypes.index[0]}'; the first "
            "column of each file must hold the same IDs"
        )
    if n_not_pheno:
        dropped["in the kinship only (no phenotype row)"] = n_not_pheno
    if n_not_kin:
        dropped["with phenotypes but not in the kinship"] = n_not_kin
    if covariates is not None:
        if n_not_cov:
            dropped["not in the covariate file"] = n_not_cov
        if n_missing_cov:
            dropped["with a missing covariate"] = n_missing_cov
    if dropped:
        warnings.warn(
            "individuals dropped by ID alignment: "
            + ", ".join(f"{v} {k}" for k, v in dropped.items())
            + f"; {len(keep)} remain",
            LMMWarning,
            stacklevel=2,
        )
    K = kinship.loc[keep, keep].to_numpy(dtype=float)
    pheno = phenotypes.loc[keep]
    covar = covariates.loc[keep] if covariates is not None else None
    return LMMData(tuple(keep), K, pheno, covar, dropped, sources)


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
