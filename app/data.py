"""Getting data into the dashboard: the bundled example and uploaded CSV files.

Nothing here imports panel. Uploaded bytes are read from memory by the
engine's own readers (:mod:`lmmcore.io`: plain CSV parsing, no pickle, no
eval), given the user's file name (stripped of folders and control
characters) for their messages; nothing is written to disk.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from lmmcore import LMMData, LMMInputError, align, read_covariates, read_kinship, read_phenotypes

from .messages import engine_messages

__all__ = [
    "EXAMPLE_DIR_ENV",
    "MAX_UPLOAD_ENV",
    "DEFAULT_MAX_UPLOAD_MB",
    "UPLOAD_CEILING_MB",
    "UPLOAD_KINDS",
    "ExampleFiles",
    "display_name",
    "format_size",
    "max_upload_bytes",
    "too_large_message",
    "example_files",
    "example_folder",
    "load_example",
    "read_example",
    "parse_upload",
    "align_tables",
]

#: Environment variable naming a folder with ``pheno.csv``, ``kinship.csv`` and
#: (optionally) ``covar.csv`` to open instead of the bundled example (a lab can
#: serve the dashboard on its own data this way).
EXAMPLE_DIR_ENV = "LMM_EXPLORER_EXAMPLE_DIR"

#: Environment variable with the largest file (in MB, 1 MB = 2**20 bytes) a user may upload.
MAX_UPLOAD_ENV = "LMM_EXPLORER_MAX_UPLOAD_MB"
#: The upload limit when :data:`MAX_UPLOAD_ENV` is not set.
DEFAULT_MAX_UPLOAD_MB = 64
#: The largest limit that works: a file travels base64-encoded (4/3 of its size) in one
#: websocket message, and tornado closes a connection whose message outgrows its 100 MiB
#: read buffer (``panel serve`` has no flag to raise it).
UPLOAD_CEILING_MB = 72

_log = logging.getLogger(__name__)

#: The three kinds of file a user uploads, with the engine reader of each.
UPLOAD_KINDS: dict[str, Callable[..., pd.DataFrame]] = {
    "phenotypes": read_phenotypes,
    "kinship": read_kinship,
    "covariates": read_covariates,
}

_MAX_NAME = 80
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ExampleFiles:
    """Paths of the example data set.

    Attributes
    ----------
    folder : Path
    phenotypes, kinship : Path
    covariates : Path or None
    genoprobs, dosages : Path or None
        Genotype probabilities (``genoprobs.csv``) and dosages
        (``genotypes.csv``) for the genome scan, when the folder has them and
        a map.
    map : Path or None
        The marker map (``map.csv``).
    """

    folder: Path
    phenotypes: Path
    kinship: Path
    covariates: Path | None
    genoprobs: Path | None = None
    dosages: Path | None = None
    map: Path | None = None


def display_name(filename: str | None) -> str:
    """A file name fit to show in messages: no folders, no control characters, not too long.

    The result is plain text; views still escape it before putting it in HTML.
    """
    name = str(filename or "upload.csv")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("", name).strip() or "upload.csv"
    if len(name) > _MAX_NAME:
        name = name[: _MAX_NAME - 3] + "..."
    return name


def max_upload_bytes() -> int:
    """The largest file a user may upload, in bytes: ``$LMM_EXPLORER_MAX_UPLOAD_MB`` or 64 MB.

    A value that is not a positive number falls back to the default; one above
    :data:`UPLOAD_CEILING_MB` is lowered to it (larger files would close the
    websocket connection instead of arriving). Both are logged.
    """
    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    megabytes = float(DEFAULT_MAX_UPLOAD_MB)
    if raw:
        try:
            megabytes = float(raw)
            if not (math.isfinite(megabytes) and megabytes > 0):
                raise ValueError(raw)
        except ValueError:
            _log.warning("%s=%r is not a positive number of MB; using %d MB", MAX_UPLOAD_ENV, raw,
                         DEFAULT_MAX_UPLOAD_MB)
            megabytes = float(DEFAULT_MAX_UPLOAD_MB)
    if megabytes > UPLOAD_CEILING_MB:
        _log.warning("%s=%s is above the %d MB that one websocket message can carry; using %d MB",
                     MAX_UPLOAD_ENV, raw, UPLOAD_CEILING_MB, UPLOAD_CEILING_MB)
        megabytes = float(UPLOAD_CEILING_MB)
    return max(1, int(megabytes * 2**20))


def format_size(n_bytes: int | float) -> str:
    """A file size for people: ``"812 bytes"``, ``"340 KB"``, ``"2.5 MB"`` (powers of 1024)."""
    n = float(n_bytes)
    if n < 1024:
        return f"{int(n)} bytes"
    if n < 2**20:
        return f"{n / 1024:.0f} KB"
    mb = n / 2**20
    return f"{mb:.0f} MB" if mb >= 10 or mb == int(mb) else f"{mb:.1f} MB"


def too_large_message(kind: str, filename: str | None, size: int, limit: int) -> str:
    """What the user reads when a file is above the upload limit (plain text)."""
    return (
        f"the {kind} file '{display_name(filename)}' is {format_size(size)}, above this server's upload limit "
        f"of {format_size(limit)}, so it was not sent; the data loaded before are still in use "
        f"(the server's administrator sets the limit with {MAX_UPLOAD_ENV})"
    )


def example_folder(folder: str | os.PathLike | None = None) -> Path:
    """Where the example data set lives.

    ``folder`` if given, else ``$LMM_EXPLORER_EXAMPLE_DIR`` if set, else
    ``assets/`` next to the ``app`` package.
    """
    if folder is None:
        folder = os.environ.get(EXAMPLE_DIR_ENV) or Path(__file__).resolve().parent.parent / "assets"
    return Path(folder)


def example_files(folder: str | os.PathLike | None = None) -> ExampleFiles | None:
    """Locate the example data set (see :func:`example_folder`), or None when its files are missing."""
    folder = example_folder(folder)
    pheno, kin, covar = folder / "pheno.csv", folder / "kinship.csv", folder / "covar.csv"
    if not (pheno.is_file() and kin.is_file()):
        return None
    gmap = folder / "map.csv"
    genoprobs, dosages = folder / "genoprobs.csv", folder / "genotypes.csv"
    has_map = gmap.is_file()
    return ExampleFiles(
        folder,
        pheno,
        kin,
        covar if covar.is_file() else None,
        genoprobs=genoprobs if has_map and genoprobs.is_file() else None,
        dosages=dosages if has_map and dosages.is_file() else None,
        map=gmap if has_map else None,
    )


def read_example(files: ExampleFiles) -> tuple[dict[str, pd.DataFrame], dict[str, str], list[str]]:
    """Read the example files (not yet aligned).

    Returns
    -------
    tables : dict
        ``{"kinship", "phenotypes"[, "covariates"]}`` as the engine's readers return them.
    names : dict
        The file name of each table.
    messages : list of str
        What the readers reported.
    """
    paths = {"kinship": files.kinship, "phenotypes": files.phenotypes}
    if files.covariates is not None:
        paths["covariates"] = files.covariates
    with engine_messages() as messages:
        tables = {kind: UPLOAD_KINDS[kind](path) for kind, path in paths.items()}
    return tables, {kind: path.name for kind, path in paths.items()}, list(messages)


def load_example(files: ExampleFiles) -> tuple[LMMData, list[str]]:
    """Read and align the example files.

    Returns
    -------
    data : LMMData
    messages : list of str
        Warnings from reading and alignment (e.g. individuals dropped).
    """
    tables, names, messages = read_example(files)
    data, more = align_tables(tables["kinship"], tables["phenotypes"], tables.get("covariates"), names)
    return data, list(dict.fromkeys([*messages, *more]))


def parse_upload(kind: str, filename: str | None, content: bytes) -> tuple[pd.DataFrame, list[str]]:
    """Parse one uploaded CSV file held in memory.

    Parameters
    ----------
    kind : {"phenotypes", "kinship", "covariates"}
    filename : str
        The name the browser reported (used in messages only).
    content : bytes
        The file's bytes.

    Returns
    -------
    table : DataFrame
        As returned by the engine reader for that kind (indexed by ID).
    messages : list of str
        Warnings (e.g. a semicolon-delimited file), naming the user's file.

    Raises
    ------
    LMMInputError
        Whatever the engine reader finds wrong, with the user's file name.
    """
    if kind not in UPLOAD_KINDS:
        raise ValueError(f"unknown upload kind {kind!r}; expected one of {sorted(UPLOAD_KINDS)}")
    shown = display_name(filename)
    if not content:
        raise LMMInputError(f"{kind} file '{shown}' is empty; it needs a header row and one row per individual")
    with engine_messages() as messages:
        table = UPLOAD_KINDS[kind](content, name=shown)
    return table, list(messages)


def align_tables(
    kinship: pd.DataFrame,
    phenotypes: pd.DataFrame,
    covariates: pd.DataFrame | None,
    sources: dict[str, str],
) -> tuple[LMMData, list[str]]:
    """Align parsed tables by ID (see :func:`lmmcore.io.align`), collecting the warnings."""
    with engine_messages() as messages:
        data = align(kinship, phenotypes, covariates, sources)
    return data, list(messages)
