"""Sex, cross information and the checks of R/qtl2's ``check_cross2``, for :func:`lmmcore.read_cross`.

R/qtl2 reads sex and cross information from a covariate column or a file,
through a code map in the control file::

    sex:                          cross_info:
      covar: Sex                    covar: cross_direction
      f: female                     (SxB)x(SxB): 0
      m: male                       (BxS)x(BxS): 1

In the sex map the keys are the codes in the data and the values say which
sex (their first letter, ``f`` or ``m``); without a map the column must hold
0 (female) and 1 (male). In the cross-information map the keys are the codes
in the data and the values the integers; without a map the columns must
hold integers. Missing sex or cross information, and values not in the map,
are errors (as in R/qtl2).

The checks of each cross type (its cross information, founder genotypes,
valid observed codes, alleles) follow R/qtl2's C++ classes; see
:class:`lmmcore.cross.CrossType`.
"""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .cross_table import Sheet, counted, listed
from .errors import LMMInputError, report

if TYPE_CHECKING:  # pragma: no cover
    from .cross_files import _Control, _Geno

__all__ = ["check_alleles", "check_cross_info", "check_founders", "check_observed", "cross_info_values",
           "sex_values"]


def _column_source(control: "_Control", field: str, spec: dict, covar: pd.DataFrame | None, na_strings):
    """The values (text, ``NaN`` missing), their IDs, column names and where they came from."""
    if "covar" in spec:
        cols = spec["covar"] if isinstance(spec["covar"], list) else [spec["covar"]]
        cols = [str(c) for c in cols]
        if covar is None:
            raise LMMInputError(
                f"{control.where} takes {field} from the covariate column {listed(cols)}, but names no "
                "covariate file (covar); add it or give the file of the " + field + "."
            )
        absent = [c for c in cols if c not in covar.columns]
        if absent:
            raise LMMInputError(
                f"{control.where} takes {field} from the covariate column {listed(absent)}, which the "
                f"covariate file does not have (it has {listed(covar.columns)}); correct the column name."
            )
        where = ", ".join(control.src.label(f) for f in control.files("covar"))
        return covar.index.to_numpy(str), covar[cols].to_numpy(object), cols, where
    sheet: Sheet = control.sheet(spec["file"], field)
    values = sheet.strings()
    values[np.isin(values, list(na_strings))] = np.nan
    return sheet.rownames.astype(str), values, list(sheet.colnames), sheet.file


def _missing(values: np.ndarray) -> np.ndarray:
    return pd.isna(values) | (values == "")


def sex_values(control: "_Control", covar: pd.DataFrame | None):
    """``(ids, is_female)`` from the control file's ``sex`` field, or ``None`` (R/qtl2's ``convert_sex``)."""
    spec = control.raw.get("sex")
    if spec is None:
        return None
    if not isinstance(spec, dict) or not ({"covar", "file"} & set(map(str, spec))):
        raise LMMInputError(
            f"{control.where} gives sex: {spec!r}; it must name a covariate column ('covar: Sex') or a "
            "file ('file: sex.csv'), with the codes, e.g. 'f: female' and 'm: male'."
        )
    spec = {str(k): v for k, v in spec.items()}
    # R/qtl2 reads a sex file with no missing-value codes, and a covariate column as the covariates.
    ids, values, _, where = _column_source(control, "sex", spec, covar, na_strings=())
    values = values[:, 0]
    missing = _missing(values)
    if missing.any():
        raise LMMInputError(
            f"{where}: {counted(int(missing.sum()), 'individual')} without sex ({listed(ids[missing])}); sex cannot be "
            "missing (R/qtl2): fill it in or remove those individuals."
        )
    text = np.char.strip(values.astype(str))
    codes = {str(k).strip(): v for k, v in spec.items() if k not in ("covar", "file")}
    if not codes:
        number = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy()
        bad = ~np.isin(number, (0, 1))
        if bad.any():
            raise LMMInputError(
                f"{where}: sex {str(text[bad][0])!r} of {str(ids[bad][0])!r} is neither 0 (female) nor 1 (male) and the "
                "control file gives no sex codes; add them, e.g. 'f: female' and 'm: male'."
            )
        return ids, number == 0
    female = {}
    for code, meaning in codes.items():
        letter = str(meaning).strip().lower()[:1]
        if letter not in ("f", "m"):
            raise LMMInputError(
                f"{control.where} maps the sex code {code!r} to {meaning!r}; the meaning must be female or "
                "male: correct the sex codes."
            )
        female[code] = letter == "f"
    known = np.isin(text, list(female))
    if not known.all():
        unknown = pd.unique(text[~known])
        reversed_map = all(u in {str(v).strip() for v in codes.values()} for u in unknown)
        hint = (" (the map looks reversed: its keys are the codes in the data and its values the sexes, "
                "e.g. 'f: female')" if reversed_map else "")
        raise LMMInputError(
            f"{where}: {counted(int((~known).sum()), 'sex', 'sexes')} not among the control file's sex codes "
            f"({listed(unknown)}, e.g. for {str(ids[~known][0])!r}){hint}; add the codes to the sex map "
            "or correct the data (sex cannot be missing)."
        )
    is_female = pd.Series(text).map(female).to_numpy(bool)
    return ids, is_female


def cross_info_values(control: "_Control", covar: pd.DataFrame | None):
    """``(ids, values int (n, k), names)`` from ``cross_info``, or ``None`` (R/qtl2's ``convert_cross_info``)."""
    spec = control.raw.get("cross_info")
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"file": spec}
    if not isinstance(spec, dict) or not ({"covar", "file"} & set(map(str, spec))):
        raise LMMInputError(
            f"{control.where} gives cross_info: {spec!r}; it must name covariate columns ('covar: ngen') "
            "or a file ('file: cross_info.csv'), with codes if the values are not integers."
        )
    spec = {str(k): v for k, v in spec.items()}
    ids, values, names, where = _column_source(control, "cross_info", spec, covar, na_strings=("NA", "-"))
    missing = _missing(values)
    if missing.any():
        rows = np.flatnonzero(missing.any(axis=1))
        raise LMMInputError(
            f"{where}: {counted(int(missing.sum()), 'cross information value')} missing ({listed(ids[rows])}); "
            "cross_info cannot be missing (R/qtl2): fill it in or remove those individuals."
        )
    text = np.char.strip(values.astype(str))
    codes = {str(k).strip(): v for k, v in spec.items() if k not in ("covar", "file")}
    if codes:
        if text.shape[1] > 1:
            report(f"cross_info has {text.shape[1]} columns but uses one code map (R/qtl2 warns the same); "
                   "the codes are applied to every column.")
        for code, value in codes.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise LMMInputError(
                    f"{control.where} maps the cross_info code {code!r} to {value!r}; the keys are the codes in "
                    "the data and the values must be integers, e.g. '(AxB)x(AxB): 0'."
                )
        known = np.isin(text, list(codes))
        if not known.all():
            i = np.argwhere(~known)[0]
            raise LMMInputError(
                f"{where}: {counted(int((~known).sum()), 'cross_info value')} not among the control file's codes "
                f"({listed(pd.unique(text[~known]))}, e.g. for {str(ids[i[0]])!r}); add them to the cross_info "
                "map or correct the data."
            )
        numbers = pd.Series(text.ravel()).map(codes).to_numpy(np.int64).reshape(text.shape)
        return ids, numbers, names
    numbers = pd.to_numeric(pd.Series(text.ravel()), errors="coerce").to_numpy(float).reshape(text.shape)
    bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LMMInputError(
            f"{where}: cross_info {str(text[i, j])!r} of {str(ids[i])!r} (column {str(names[j])!r}) is not an integer; give "
            "integers or a code map in the control file (e.g. '(AxB)x(AxB): 0')."
        )
    return ids, numbers.astype(np.int64), names


def check_cross_info(control: "_Control", info: np.ndarray, ids: np.ndarray, any_x: bool) -> None:
    """R/qtl2's ``check_crossinfo`` of the cross type; an error where its model cannot work without it."""
    ct = control.crosstype
    n_col = info.shape[1]

    def fail(problem: str, todo: str, bad: np.ndarray | None = None):
        who = f" ({listed(ids[bad])})" if bad is not None and bad.any() else ""
        raise LMMInputError(f"{control.where}: {ct.a_cross} {problem}{who}; {todo}.")

    if ct.cross_info == "direction" and any_x:
        if n_col != 1:
            fail(f"with an X chromosome needs the cross direction, one column of cross_info (it has {n_col})",
                 "add 'cross_info' with one column, 0 = (AxB)x(AxB), 1 = (BxA)x(BxA)")
        fail_if = ~np.isin(info[:, 0], (0, 1))
        if fail_if.any():
            fail("needs the cross direction 0 or 1 in cross_info", "correct those values", fail_if)
    elif ct.cross_info in ("ail", "generations"):
        least = 2 if ct.cross_info == "ail" else 1
        if n_col == 0:
            fail("needs the number of generations in cross_info",
                 "add 'cross_info' naming the column of generations, e.g. 'cross_info: {covar: ngen}'")
        low = info[:, 0] < least
        if low.any():
            fail(f"needs at least {least} generations in the first column of cross_info", "correct those values", low)
        if ct.cross_info == "ail":
            if n_col == 1 and any_x:
                fail("with an X chromosome needs a second cross_info column, the direction (0, 1 or 2)",
                     "add it")
            if n_col > 2:
                fail(f"has at most 2 cross_info columns (generations, direction), not {n_col}", "remove the others")
            if n_col == 2:
                bad = ~np.isin(info[:, 1], (0, 1, 2))
                if bad.any():
                    fail("needs the direction 0, 1 or 2 in the second cross_info column", "correct those values", bad)
    elif ct.cross_info == "funnel":
        k = ct.n_alleles
        if n_col != k:
            fail(f"needs {k} cross_info columns, the order of the founders in each funnel (it has {n_col})",
                 f"give each individual's funnel as {k} columns")
        bad = (np.sort(info, axis=1) != np.arange(1, k + 1)).any(axis=1)
        if bad.any():
            fail(f"needs each row of cross_info to be a permutation of 1..{k}", "correct those rows", bad)


def check_observed(control: "_Control", geno: dict, is_x: dict, is_female: np.ndarray, files: str) -> None:
    """Observed codes the cross type cannot hold are set to 0 (missing) with a message (in place)."""
    ct = control.crosstype
    allowed = np.zeros(256, dtype=bool)
    allowed[[0, *ct.observed]] = True
    male_allowed = None
    if ct.observed_male_x is not None:
        male_allowed = np.zeros(256, dtype=bool)
        male_allowed[[0, *ct.observed_male_x]] = True
    total, values = 0, set()
    for c, codes in geno.items():
        ok = allowed[codes.view(np.uint8)]
        if is_x[c] and male_allowed is not None:
            males = ~is_female
            ok[males] = male_allowed[codes[males].view(np.uint8)]
        if not ok.all():
            total += int((~ok).sum())
            values.update(np.unique(codes[~ok]).tolist())
            codes[~ok] = 0
    if total:
        codes_text = ", ".join(map(str, sorted(values)))
        report(f"{files}: {counted(total, 'genotype')} with codes {ct.a_cross} cannot hold ({codes_text}), "
               "read as missing (R/qtl2 counts them as invalid and its model ignores them); check the "
               "genotypes map.")


def check_founders(control: "_Control", founder: "_Geno | None", chroms, gmaps):
    """Founder labels and per-chromosome founder genotypes (R/qtl2's founder checks)."""
    ct = control.crosstype
    if founder is None:
        if ct.needs_founder_geno:
            raise LMMInputError(
                f"{control.where}: {ct.a_cross} needs the founders' genotypes; add 'founder_geno: <file>' "
                f"(one row per founder, {ct.n_alleles} founders, or founder_geno_transposed: true)."
            )
        return (), None
    if not ct.needs_founder_geno:
        report(f"{control.where} gives founder genotypes, which {ct.a_cross} does not use "
               "(R/qtl2 warns the same); they are kept but not used.")
    if ct.needs_founder_geno and len(founder.ids) != ct.n_alleles:
        raise LMMInputError(
            f"{founder.files} has {len(founder.ids)} founders ({listed(founder.ids)}); {ct.a_cross} has "
            f"{ct.n_alleles}: give one row per founder (or set founder_geno_transposed)."
        )
    every = pd.Index(np.concatenate([np.asarray(gmaps[c].index, dtype=object) for c in chroms]))
    columns = np.split(pd.Index(founder.markers).get_indexer(every), np.cumsum([len(gmaps[c]) for c in chroms])[:-1])
    out = {c: np.ascontiguousarray(founder.codes[:, cols]) for c, cols in zip(chroms, columns)}
    bad_total = 0
    for codes in out.values():
        bad = ~np.isin(codes, (0, 1, 3))
        if bad.any():
            bad_total += int(bad.sum())
            codes[bad] = 0
    if bad_total:
        report(f"{founder.files}: {counted(bad_total, 'founder genotype')} not homozygous (code 1 or 3), read "
               "as missing (R/qtl2 warns that founder_geno contains invalid values).")
    return tuple(founder.ids.tolist()), out


def check_alleles(control: "_Control", founders) -> tuple[str, ...]:
    """The alleles (R/qtl2: padded or trimmed to the cross type's number, with a warning)."""
    n = control.crosstype.n_alleles
    value = control.raw.get("alleles")
    if value is None:
        return tuple(string.ascii_uppercase[:n]) if n <= 26 else tuple(f"F{i + 1}" for i in range(n))
    alleles = [str(a) for a in (value if isinstance(value, list) else [value])]
    if len(alleles) != n:
        report(f"{control.where} gives {len(alleles)} alleles ({listed(alleles)}); {control.crosstype.a_cross} "
               f"has {n} (R/qtl2 warns the same and pads or trims them).")
        alleles = (alleles + [c for c in string.ascii_uppercase if c not in alleles])[:n]
    if len(set(alleles)) != len(alleles):
        report(f"{control.where} gives alleles that are not distinct ({listed(alleles)}); R/qtl2 warns the same.")
    return tuple(alleles)
