"""The user's selections checked against the inputs: phenotype names, and (``--strict-ids``) matching IDs.

:func:`check_names` is the one check of a selection of phenotype columns:
``--phenotypes`` of ``fit``, ``scan``, ``effects`` and ``fit1``, and the
``phenotypes=``/``select=``/``phenotype=`` arguments of the engine all end
here. An unknown name is an error that names the file, suggests the nearest
column names (:func:`difflib.get_close_matches`) and lists the columns.

:func:`check_same_ids` is ``--strict-ids``: an individual present in one
input but not in another (one that ID alignment would drop with a warning)
is an error naming the inputs and the first IDs, so that a pipeline stops
instead of silently fitting fewer individuals.
"""

from __future__ import annotations

import difflib
from typing import Mapping, Sequence

import pandas as pd

from .errors import LMMInputError

__all__ = ["check_names", "unknown_name_message", "check_same_ids", "kinship_ids", "strict_cli_ids", "SHOWN_COLUMNS",
           "SHOWN_IDS"]

#: Columns listed in the message about an unknown name.
SHOWN_COLUMNS = 20
#: IDs named per pair of inputs by --strict-ids.
SHOWN_IDS = 3


def unknown_name_message(name: str, columns: Sequence[str], source: str | None = None,
                         what: str = "phenotype") -> str:
    """``no phenotype column named 'liverr' in <source>; did you mean 'liver'? The columns are: ...``."""
    columns = [str(c) for c in columns]
    where = f" in {source}" if source else ""
    text = f"no {what} column named '{name}'{where}"
    close = difflib.get_close_matches(str(name), columns, n=3, cutoff=0.6)
    if not close:  # a difference of case only ('Liver' for 'liver') is not always close enough above
        lower = {c.lower(): c for c in columns}
        close = [lower[m] for m in difflib.get_close_matches(str(name).lower(), list(lower), n=3, cutoff=0.6)]
    if close:
        text += "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    if columns:
        shown = ", ".join(columns[:SHOWN_COLUMNS]) + (" ..." if len(columns) > SHOWN_COLUMNS else "")
        text += f" The columns are: {shown}" if close else f"; the columns are: {shown}"
    else:
        text += f"; it has no {what} columns"
    return text


def check_names(names: Sequence[str], columns: Sequence[str], source: str | None = None,
                what: str = "phenotype") -> list[str]:
    """Check that every name in ``names`` is a column; return the names as strings.

    Parameters
    ----------
    names : sequence of str
        The selection (e.g. ``--phenotypes A,B``).
    columns : sequence of str
        The columns of the table.
    source : str, optional
        How the table is named in messages (e.g. ``"phenotype file 'pheno.csv'"``).
    what : str
        The kind of column, for messages.

    Raises
    ------
    LMMInputError
        The first unknown name, with the nearest column names and the list of columns.
    """
    cols = [str(c) for c in columns]
    have = set(cols)
    names = [str(n) for n in names]
    for name in names:
        if name not in have:
            raise LMMInputError(unknown_name_message(name, cols, source, what))
    return names


def check_same_ids(inputs: Mapping[str, Sequence[str]], flag: str = "--strict-ids") -> None:
    """With ``--strict-ids``: every input must list the same individuals.

    Parameters
    ----------
    inputs : mapping of str to sequence of str
        ``{description of the input (e.g. "phenotype file 'p.csv'"): its IDs}``.
        Inputs mapped to ``None`` are skipped.
    flag : str
        The option named in the message.

    Raises
    ------
    LMMInputError
        Naming, for each input that lacks individuals of another, how many
        and up to :data:`SHOWN_IDS` of them.
    """
    given = {label: pd.Index([str(i) for i in ids]).unique() for label, ids in inputs.items() if ids is not None}
    problems = []
    for label, ids in given.items():
        for other, other_ids in given.items():
            if other == label:
                continue
            missing = list(ids[~ids.isin(other_ids)])
            if missing:
                shown = ", ".join(f"'{i}'" for i in missing[:SHOWN_IDS]) + (" ..." if len(missing) > SHOWN_IDS else "")
                problems.append(f"{len(missing)} individual(s) of the {label} are not in the {other} ({shown})")
    if problems:
        raise LMMInputError(
            f"{flag}: the inputs do not list the same individuals: " + "; ".join(problems)
            + f". Make the IDs match, or drop {flag} to leave such individuals out with a warning"
        )


def kinship_ids(kinship) -> list[str] | None:
    """The IDs of a kinship given as a file's table, LOCO tables, a Kinship or a saved decomposition.

    None for ``"loco"``/``"overall"`` (computed from the genotypes, so on their IDs).
    """
    if isinstance(kinship, str) or kinship is None:
        return None
    if isinstance(kinship, Mapping):
        tables = list(kinship.values())
        return kinship_ids(tables[0]) if tables else None
    if isinstance(kinship, pd.DataFrame):
        return [str(i) for i in kinship.index]
    ids = getattr(kinship, "ids", None)
    return [str(i) for i in ids] if ids is not None else None


def strict_cli_ids(args, genotypes, pheno: pd.DataFrame, pheno_name: str, covar, kinship) -> None:
    """``--strict-ids`` of ``scan``, ``effects`` and ``fit1``: the genotypes, phenotypes, covariates and kinship file.

    Does nothing without the flag. A kinship computed here (``loco``,
    ``overall``) has the genotypes' IDs and is not checked separately.
    """
    if not getattr(args, "strict_ids", False):
        return
    where = f"cross '{args.cross}'" if getattr(args, "cross", None) else (
        f"genotypes '{genotypes.source}'" if genotypes.source else "genotypes")
    inputs: dict[str, Sequence[str] | None] = {f"{where} (genotyped individuals)": genotypes.ids,
                                               pheno_name: pheno.index}
    if covar is not None:
        inputs[f"covariate file '{args.covar}'" if args.covar else "cross's covariates"] = covar.index
    key = (getattr(args, "kinship", None) or "").strip()
    if key.lower() not in ("", "loco", "overall"):
        inputs[f"kinship file '{key}'"] = kinship_ids(kinship)
    elif getattr(args, "eigen", None):
        inputs[f"eigen file '{args.eigen}'"] = kinship_ids(kinship)
    check_same_ids(inputs)
