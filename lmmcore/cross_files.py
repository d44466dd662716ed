"""Read an R/qtl2 cross: :func:`read_cross`, as R/qtl2's ``read_cross2`` and ``check_cross2`` do.

A cross is a set of CSV files named by a YAML or JSON control file, in a zip
or in a folder (R/qtl2's "input file format"). The control file's fields:

``crosstype``; ``geno``, ``founder_geno``, ``gmap``, ``pmap``, ``pheno``,
``covar``, ``phenocovar`` (a file or a list of files) and their
``*_transposed`` flags; ``genotypes`` (code -> integer), ``alleles``,
``x_chr``, ``sex`` and ``cross_info`` (a covariate column or a file, with a
code map), ``na.strings``, ``sep``, ``comment.char``; ``description`` and
``comments`` are kept out of the way.

What R/qtl2 does, and so this reader, field by field (R/qtl2 0.43-5):

* Lists of files: map files are stacked (rows); genotype, founder,
  phenotype and covariate files are joined on their IDs (row names), the
  union of the IDs kept and absent cells missing (R/qtl2's ``cbind_expand``).
* Genotype codes outside ``genotypes`` (and not in ``na.strings``) are read
  as missing with a message (R/qtl2: "N genotypes treated as missing").
* Markers not in all of the genotypes, maps and founder genotypes, and map
  positions that are missing, are left out with a message; an error only
  when no marker remains.
* Markers are sorted by position within a chromosome (R/qtl2 sorts too, so an
  unsorted map file is not an error); ties keep the file's order.
  Chromosomes are put in natural order (``1, 2, ..., 19, X``), where R/qtl2
  keeps the map file's order. A physical map that is out of order once the
  markers follow the genetic map gets a message (R/qtl2 warns).
* Individuals: genotyped individuals without sex or cross information (when
  the cross has them) are left out with a message; the phenotypes and
  covariates keep their own individuals, put in the genotypes' order when
  they hold the same ones. No individual in common between the genotypes
  and the phenotypes is an error here (R/qtl2 only warns, but nothing can
  be mapped); a covariate file whose individuals differ from the phenotype
  file's gets a message.
* Errors where R/qtl2 stops: bad control file, missing file, repeated IDs,
  a ``# nrow``/``# ncol`` comment that disagrees, genotype code 0, a sex or
  cross-information column that is absent, missing, or not in the code map.
* Errors where R/qtl2's ``check_cross2`` only warns but its hidden Markov
  model cannot work: cross information missing or invalid for the type, and
  founder genotypes missing or with the wrong number of founders.
* Messages (``lmmcore.errors.report``) where R/qtl2 warns: ``x_chr`` naming
  no chromosome, a chromosome called X not marked as the X, no sex for a
  cross with an X (all female assumed), observed codes the type cannot hold
  and founder genotypes other than 1 or 3 (read as missing), ``alleles`` of
  the wrong length, unused control fields.
* Where this reader differs on purpose: file names with ``..``, absolute
  paths and web addresses are refused (R/qtl2 reads and downloads them; see
  :mod:`lmmcore.cross_source`); ``cross_info: file.csv`` (a plain string)
  must name a file (R/qtl2 ignores it when the file is absent); covariate
  columns that are all numbers become floats (R/qtl2 keeps text); a
  control file may also end in ``.yml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cross import CROSS_TYPES, Cross, CrossType
from .cross_checks import (
    check_alleles,
    check_cross_info,
    check_founders,
    check_observed,
    cross_info_values,
    sex_values,
)
from .cross_source import MAX_CROSS_BYTES, CrossSource, open_source
from .cross_table import Sheet, counted, decode, listed, read_sheet
from .errors import LMMInputError, Report, report, reporting
from .genotypes import chromosome_sort_key
from .tables import member_of

__all__ = ["DEFAULT_GENOTYPES", "MAX_CROSS_BYTES", "read_cross"]

#: R/qtl2's genotype codes when the control file gives none.
DEFAULT_GENOTYPES = {"A": 1, "H": 2, "B": 3, "D": 4, "C": 5}

_SECTIONS = ("geno", "founder_geno", "gmap", "pmap", "pheno", "covar", "phenocovar")
_OTHER_KEYS = ("crosstype", "genotypes", "alleles", "x_chr", "sex", "cross_info", "na.strings", "sep",
               "comment.char", "description", "comments")


def read_cross(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    max_bytes: int = MAX_CROSS_BYTES,
    report: Report | None = None,
) -> Cross:
    """Read an R/qtl2 cross as R/qtl2's ``read_cross2`` does, with its checks.

    Parameters
    ----------
    source : str, Path or bytes
        A ``.zip`` holding the files and one ``.yaml``/``.json`` control
        file; a ``.yaml``/``.json`` control file beside its files; or the
        bytes of a zip (an upload, read without temporary files).
    name : str, optional
        How messages name the cross (default: the path; for bytes, "the
        uploaded cross").
    max_bytes : int
        Cap on the total uncompressed size of the files read
        (:data:`MAX_CROSS_BYTES`, 2 GiB).
    report : callable, optional
        Receives the messages about recoverable problems (default: an
        :class:`~lmmcore.errors.LMMWarning` each).

    Returns
    -------
    Cross

    Raises
    ------
    LMMInputError
        With one sentence naming the file, row, marker or ID and what to do
        (see the module's notes for which problems are errors).

    Notes
    -----
    Only the zip's members, or the files in the control file's folder, are
    read; see :mod:`lmmcore.cross_source` for the size caps.
    """
    with reporting(report):
        with open_source(source, name, max_bytes) as src:
            control = _Control.parse(src)
            return _assemble(control, src)


# --------------------------------------------------------------------------- control file


@dataclass
class _Control:
    src: CrossSource
    raw: dict
    crosstype: CrossType
    genotypes: dict[str, int]
    na: tuple[str, ...]
    sep: str
    comment: str | None

    @classmethod
    def parse(cls, src: CrossSource) -> "_Control":
        where = src.label(src.control_name)
        try:
            text = src.control.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise LMMInputError(f"{where} is not UTF-8 text; save the control file as UTF-8.") from None
        if src.control_name.lower().endswith(".json"):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise LMMInputError(
                    f"{where} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                    "correct the control file."
                ) from None
        else:
            import yaml  # a YAML control file only (PyYAML takes a while to import)

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(exc, "problem", None) or type(exc).__name__
                raise LMMInputError(f"{where} is not valid YAML ({problem}{at}); correct the control file.") from None
        if not isinstance(raw, dict):
            raise LMMInputError(
                f"{where} does not hold R/qtl2's control fields (crosstype, geno, gmap, ...); give the "
                "control file of an R/qtl2 cross."
            )
        raw = {str(k): v for k, v in raw.items()}
        crosstype = raw.get("crosstype")
        if crosstype is None:
            raise LMMInputError(f"{where} has no crosstype; add one, e.g. 'crosstype: f2'.")
        if str(crosstype) not in CROSS_TYPES:
            raise LMMInputError(
                f"{where} gives the cross type {crosstype!r}, which is not supported; use one of "
                f"{', '.join(CROSS_TYPES)}."
            )
        sep = raw.get("sep", ",")
        if not isinstance(sep, str) or len(sep) != 1:
            raise LMMInputError(f"{where} gives sep: {sep!r}; it must be one character such as ',' or ';'.")
        comment = raw.get("comment.char", "#")
        if comment is not None and not isinstance(comment, str):
            raise LMMInputError(f"{where} gives comment.char: {comment!r}; it must be one character such as '#'.")
        na = raw.get("na.strings", ["NA"])
        na = tuple(str(v) for v in (na if isinstance(na, list) else [na]) if v is not None)
        control = cls(src, raw, CROSS_TYPES[str(crosstype)], DEFAULT_GENOTYPES, na, sep, comment or None)
        control.genotypes = control._genotype_map()
        return control

    @property
    def where(self) -> str:
        return self.src.label(self.src.control_name)

    def _genotype_map(self) -> dict[str, int]:
        codes = self.raw.get("genotypes", DEFAULT_GENOTYPES)
        if not isinstance(codes, dict) or not codes:
            raise LMMInputError(
                f"{self.where} gives genotypes: {codes!r}; it must map each code in the genotype file "
                "to an integer, e.g. 'genotypes: {A: 1, H: 2, B: 3}'."
            )
        out = {}
        for key, value in codes.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 127:
                word = "0, which is used for missing values" if value == 0 else repr(value)
                raise LMMInputError(
                    f"{self.where} maps the genotype {key!r} to {word}; codes must be integers from 1 "
                    "(R/qtl2's 1 = AA, 2 = AB, 3 = BB, ...): correct the genotypes map."
                )
            out[str(key).strip()] = value
        return out

    def files(self, section: str) -> list[str]:
        value = self.raw[section]
        files = value if isinstance(value, list) else [value]
        if not files:
            raise LMMInputError(f"{self.where} gives an empty list for {section}; name at least one file.")
        for f in files:
            if not isinstance(f, str):
                raise LMMInputError(
                    f"{self.where} gives {section}: {value!r}; it must be a file name or a list of file "
                    "names: correct the control file."
                )
        return files

    def transposed(self, section: str) -> bool:
        value = self.raw.get(f"{section}_transposed", False)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if not isinstance(value, (bool, int)):
            raise LMMInputError(f"{self.where} gives {section}_transposed: {value!r}; it must be true or false.")
        return bool(value)

    def sheets(self, section: str) -> list[Sheet]:
        """The files of one section, each read and (if the control file says so) transposed."""
        out = []
        for f in self.files(section):
            sheet = read_sheet(self.src.read(f, section), self.src.label(f), sep=self.sep, comment_char=self.comment)
            out.append(sheet.transposed() if self.transposed(section) else sheet)
        return out

    def sheet(self, name: str, what: str) -> Sheet:
        return read_sheet(self.src.read(name, what), self.src.label(name), sep=self.sep, comment_char=self.comment)


# --------------------------------------------------------------------------- cells to values


def _distinct(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(index, values, counts)`` with ``values[index] == cells``, without a Python loop over cells.

    One- and two-byte cells (genotype codes) index a table of every possible
    value (256 or 65,536) directly, so that recoding is a single gather;
    ``counts[k]`` is how many cells hold ``values[k]`` (0 for values absent).
    """
    size = cells.dtype.itemsize
    if size <= 2:
        kind = np.uint8 if size == 1 else np.uint16
        index = cells.view(kind)
        flat = index.ravel()
        counts = np.zeros(1 << (8 * size), dtype=np.int64)
        for a in range(0, flat.size, 1 << 22):  # chunks: bincount's int64 copy stays small
            counts += np.bincount(flat[a: a + (1 << 22)], minlength=counts.size)
        return index, np.arange(counts.size, dtype=kind).view(f"S{size}"), counts
    if size <= 8:
        width, kind = (4, np.uint32) if size <= 4 else (8, np.uint64)
        keys = cells.astype(f"S{width}").view(kind)
        inverse, uniques = pd.factorize(keys.ravel())
        values = np.asarray(uniques, dtype=kind).view(f"S{width}")
    else:
        values, inverse = np.unique(cells, return_inverse=True)
    inverse = inverse.reshape(cells.shape)
    return inverse, values, np.bincount(inverse.ravel(), minlength=len(values))


def _recode(sheet: Sheet, control: _Control, what: str) -> np.ndarray:
    """Genotype cells to R/qtl2's integer codes (int8, 0 = missing), as R/qtl2's ``recode_geno``."""
    index, values, counts = _distinct(sheet.cells)
    present = np.flatnonzero(counts)
    names = decode(values[present], sheet.file)
    na = set(control.na)
    table = np.zeros(len(values), dtype=np.int8)
    unknown = []
    for k, code in zip(present, names):  # the distinct codes (a handful), not the cells
        if code in control.genotypes:
            table[k] = control.genotypes[code]
        elif code not in na:
            unknown.append(k)
    codes = table[index]
    if unknown:
        n_bad = int(counts[unknown].sum())
        report(
            f"{sheet.file}: {counted(n_bad, what[:-1])} not among the control file's genotypes "
            f"({listed(decode(values[unknown], sheet.file))}), read as missing (as R/qtl2 does); add the codes to "
            "genotypes or na.strings, or correct the file."
        )
    return codes


def _numbers(sheet: Sheet, control: _Control) -> np.ndarray:
    """Cells to floats (missing: ``na.strings`` and empty cells); other text is missing with a message."""
    cells = sheet.cells
    na = np.isin(cells, np.array([s.encode() for s in control.na] + [b""], dtype=object).astype(bytes))
    filled = np.where(na, b"nan", cells)
    try:
        return filled.astype(np.float64)
    except ValueError:
        pass
    values = pd.to_numeric(pd.Series(decode(filled.ravel(), sheet.file)), errors="coerce").to_numpy(float)
    values = values.reshape(cells.shape)
    bad = np.isnan(values) & ~na
    i, j = np.argwhere(bad)[0]
    report(
        f"{sheet.file}: {counted(int(bad.sum()), 'value')} not numbers (e.g. {str(decode(cells[i, j], sheet.file))[:40]!r} "
        f"for {str(sheet.rownames[i])!r} in column {str(sheet.colnames[j])!r}), read as missing; correct "
        "them or add their code to na.strings."
    )
    return values


def _strings(sheet: Sheet, control: _Control) -> pd.DataFrame:
    values = sheet.strings()
    values[np.isin(values, list(control.na) + [""])] = np.nan
    return pd.DataFrame(values, index=pd.Index(sheet.rownames, name="id"), columns=sheet.colnames)


def _numeric_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every value is a number become floats (R/qtl2's ``convert_numeric_columns``)."""
    out = frame.copy()
    for col in range(out.shape[1]):  # covariates, not individuals or markers
        s = out.iloc[:, col]
        num = pd.to_numeric(s, errors="coerce")
        if num.notna().sum() == s.notna().sum():
            out.isetitem(col, num.astype(float))
    return out


# --------------------------------------------------------------------------- sections


@dataclass
class _Geno:
    ids: np.ndarray
    markers: np.ndarray
    codes: np.ndarray  # int8 (n_ids, n_markers)
    files: str


def _genotype_section(control: _Control, section: str) -> _Geno:
    what = "genotypes" if section == "geno" else "founder genotypes"
    sheets = control.sheets(section)
    for s in sheets:
        _unique_rows(s.rownames, s.file, "individual" if section == "geno" else "founder")
    pieces = [(s.rownames, s.colnames, _recode(s, control, what)) for s in sheets]
    ids = pd.Index(np.concatenate([p[0] for p in pieces])).unique()
    markers = np.concatenate([p[1] for p in pieces])
    codes = np.zeros((len(ids), len(markers)), dtype=np.int8)
    col = 0
    for rows, cols, values in pieces:  # one file at a time (R/qtl2's cbind_expand)
        codes[ids.get_indexer(rows), col: col + len(cols)] = values
        col += len(cols)
    first = ~pd.Index(markers).duplicated()
    if not first.all():
        if len(sheets) > 1:
            report(f"The {section} files name {listed(pd.unique(markers[~first]))} more than once; the "
                   "first column of each is used: rename or remove the repeated markers.")
        markers, codes = markers[first], codes[:, first]
    return _Geno(np.asarray(ids, dtype=str), markers, codes, ", ".join(s.file for s in sheets))


def _unique_rows(names: np.ndarray, file: str, what: str) -> None:
    """Each row name once (R/qtl2 stops on repeated IDs); for transposed files they come from the header."""
    if len(names) > len(set(names.tolist())):
        values, counts = np.unique(names, return_counts=True)
        raise LMMInputError(
            f"{file} lists the {what} {listed(values[counts > 1])} more than once; each {what} must appear "
            "once: rename or remove the repeated ones."
        )


def _map_section(control: _Control, section: str) -> pd.DataFrame:
    """Stacked map files: index = marker, columns ``chr`` (str), ``pos`` (float), missing positions dropped."""
    frames = []
    for s in control.sheets(section):
        if s.shape[1] < 2:
            raise LMMInputError(
                f"{s.file} has {s.shape[1] + 1} columns; a map file has a marker column, then chr and "
                "pos: correct the file."
            )
        chrom = Sheet(s.file, s.rownames, s.colnames[:1], s.cells[:, :1])
        pos = Sheet(s.file, s.rownames, s.colnames[1:2], s.cells[:, 1:2])
        frame = pd.DataFrame(
            {"chr": chrom.strings()[:, 0], "pos": _numbers(pos, control)[:, 0]}, index=pd.Index(s.rownames)
        )
        frame["file"] = s.file
        frames.append(frame)
    out = pd.concat(frames) if len(frames) > 1 else frames[0]
    dup = out.index.duplicated()
    if dup.any():
        raise LMMInputError(
            f"The {section} files list {listed(pd.unique(out.index[dup]))} more than once; each marker "
            "must appear once in a map: remove the repeated rows."
        )
    missing = out["pos"].isna() | out["chr"].isin(["", *control.na])
    if missing.any():
        label = "genetic" if section == "gmap" else "physical"
        report(
            f"{', '.join(pd.unique(out['file'][missing]))}: {counted(int(missing.sum()), 'marker')} without {label} map position or chromosome "
            f"({listed(out.index[missing])}), left out (as R/qtl2 does)."
        )
        out = out[~missing]
    return out


def _frame_section(control: _Control, section: str, numeric: bool) -> pd.DataFrame:
    """Phenotype, covariate or phenotype-covariate files, joined on their IDs (union, as R/qtl2)."""
    frames = []
    for s in control.sheets(section):
        _unique_rows(s.rownames, s.file, "phenotype" if section == "phenocovar" else "individual")
        if numeric:
            frames.append(pd.DataFrame(_numbers(s, control), index=pd.Index(s.rownames, name="id"),
                                       columns=s.colnames))
        else:
            frames.append(_strings(s, control))
    out = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1, join="outer", sort=False)
    dup = out.columns.duplicated()
    if dup.any():
        if len(frames) > 1:
            report(f"The {section} files name the column {listed(pd.unique(out.columns[dup]))} more than "
                   "once; the first is used: rename the columns to keep them all.")
        out = out.loc[:, ~dup]
    out.index.name = "id"
    return out


# --------------------------------------------------------------------------- assembling the cross


def _assemble(control: _Control, src: CrossSource) -> Cross:
    raw, ct = control.raw, control.crosstype
    if "geno" not in raw:
        raise LMMInputError(f"{control.where} names no genotype file (geno); add 'geno: <file>'.")
    if "gmap" not in raw and "pmap" not in raw:
        raise LMMInputError(f"{control.where} names no marker map (gmap or pmap); add 'gmap: <file>'.")
    geno = _genotype_section(control, "geno")
    if len(geno.ids) == 0:
        raise LMMInputError(f"{geno.files} has no rows of genotypes; give one row per individual (or set "
                            "geno_transposed if the individuals are the columns).")
    founder = _genotype_section(control, "founder_geno") if "founder_geno" in raw else None
    gmap = _map_section(control, "gmap") if "gmap" in raw else None
    pmap = _map_section(control, "pmap") if "pmap" in raw else None
    pheno = _frame_section(control, "pheno", numeric=True) if "pheno" in raw else None
    covar_text = _frame_section(control, "covar", numeric=False) if "covar" in raw else None
    phenocovar = _frame_section(control, "phenocovar", numeric=False) if "phenocovar" in raw else None

    chroms, gmaps, pmaps, columns = _markers(geno, founder, gmap, pmap, control)
    x_chr = _x_chromosomes(control, chroms)
    is_x = {c: c in x_chr for c in chroms}

    sex = sex_values(control, covar_text)
    info = cross_info_values(control, covar_text)
    keep = pd.Index(geno.ids)
    for found in (sex, info):
        if found is not None:
            keep = keep[member_of(keep, found[0])]
    if len(keep) < len(geno.ids):
        dropped = pd.Index(geno.ids).difference(keep, sort=False)
        report(
            f"{counted(len(dropped), 'genotyped individual')} without sex or cross information ({listed(dropped)}), "
            "left out (as R/qtl2 does); add them to the sex or cross_info data to keep them."
        )
    if len(keep) == 0:
        raise LMMInputError(
            f"No genotyped individual in {geno.files} has sex or cross information; the IDs of the "
            "genotype file and of the sex/cross_info data must match: correct them."
        )
    rows = pd.Index(geno.ids).get_indexer(keep)
    ids = np.asarray(keep, dtype=str)
    any_x = any(is_x.values())
    if sex is None:
        is_female = np.ones(len(ids), dtype=bool)
        if ct.needs_sex and any_x:
            report(f"{control.where} gives no sex for {ct.a_cross} with an X chromosome; all "
                   "individuals are taken as female (as R/qtl2 does): add 'sex' to the control file.")
    else:
        is_female = sex[1][pd.Index(sex[0]).get_indexer(keep)]
    if info is None:
        cross_info, info_names = np.zeros((len(ids), 0), dtype=np.int64), ()
    else:
        cross_info = info[1][pd.Index(info[0]).get_indexer(keep)]
        info_names = info[2]
    check_cross_info(control, cross_info, ids, any_x)
    if any_x and not ct.handles_x:
        report(f"R/qtl2 does not model the X chromosome of {ct.a_cross}; chromosome "
               f"{', '.join(c for c in chroms if is_x[c])} is treated as an autosome (as R/qtl2 does).")

    geno_by_chr = {}
    for c in chroms:
        codes = np.ascontiguousarray(geno.codes[np.ix_(rows, columns[c])])
        geno_by_chr[c] = codes
    check_observed(control, geno_by_chr, is_x, is_female, geno.files)
    founders, founder_by_chr = check_founders(control, founder, chroms, gmaps)
    alleles = check_alleles(control, founders)

    pheno = _align_rows(pheno, ids)
    covar = None
    if covar_text is not None:
        covar = _numeric_columns(_align_rows(covar_text, ids))
    _check_individuals(control, ids, pheno, covar, geno.files)
    if phenocovar is not None:
        phenocovar = _numeric_columns(phenocovar)
        _check_phenocovar(control, pheno, phenocovar)
    _unused(control)
    return Cross(
        crosstype=ct.name,
        ids=tuple(ids.tolist()),
        geno=geno_by_chr,
        gmap=gmaps,
        is_x_chr=is_x,
        is_female=np.asarray(is_female, dtype=bool),
        cross_info=np.asarray(cross_info, dtype=np.int64),
        alleles=alleles,
        pheno=pheno if pheno is not None else pd.DataFrame(index=pd.Index([], name="id", dtype=str)),
        pmap=pmaps,
        founder_geno=founder_by_chr,
        cross_info_names=tuple(info_names),
        covar=covar,
        phenocovar=phenocovar,
        source=src.display,
        genotype_codes=dict(control.genotypes),
        founders=founders,
    )


def _markers(geno: _Geno, founder: _Geno | None, gmap, pmap, control: _Control):
    """Markers in all of genotypes, maps and founders, sorted; per chromosome: maps and geno columns."""
    sets = [("the genotypes", geno.files, pd.Index(geno.markers))]
    for label, frame in (("the genetic map", gmap), ("the physical map", pmap)):
        if frame is not None:
            sets.append((label, frame["file"].iloc[0] if len(frame) else "", frame.index))
    if founder is not None:
        sets.append(("the founder genotypes", founder.files, pd.Index(founder.markers)))
    keep = pd.Index(geno.markers)
    for _, _, idx in sets[1:]:
        keep = keep[member_of(keep, idx)]
    main = gmap if gmap is not None else pmap
    if pmap is not None and gmap is not None and len(keep):
        differ = keep[(pmap.loc[keep, "chr"].to_numpy() != gmap.loc[keep, "chr"].to_numpy())]
        if len(differ):
            report(f"{counted(len(differ), 'marker')} on different chromosomes in the genetic and physical maps "
                   f"({listed(differ)}), left out (as R/qtl2 does); correct the maps.")
            keep = keep.difference(differ, sort=False)
    union = pd.Index(np.concatenate([np.asarray(idx, dtype=object) for _, _, idx in sets])).unique()
    if len(keep) < len(union):
        parts = []
        for label, files, idx in sets:
            absent = union[~member_of(union, idx)]
            if len(absent):
                parts.append(f"{len(absent)} not in {label} ({files}: {listed(absent, 3)})")
        if parts:
            report(f"{counted(len(union) - len(keep), 'marker')} not in all of the genotypes, maps and founder "
                   f"genotypes, left out (as R/qtl2 does): {'; '.join(parts)}.")
    if len(keep) == 0:
        raise LMMInputError(
            f"No marker is in both the genotypes ({geno.files}) and the map ({main['file'].iloc[0] if len(main) else 'empty'}); "
            "the marker names must match: correct them."
        )
    table = main.loc[member_of(main.index, keep), ["chr", "pos"]]  # the map file's order: ties keep it
    chrom = table["chr"].astype(str).to_numpy()
    names = pd.unique(chrom)
    ranks = {c: i for i, c in enumerate(sorted(names, key=chromosome_sort_key))}
    order = np.lexsort((np.arange(len(table)), table["pos"].to_numpy(), pd.Series(chrom).map(ranks).to_numpy()))
    table = table.iloc[order]
    chroms = sorted(names, key=chromosome_sort_key)
    # one look-up for all markers, then a slice per chromosome (the table is sorted by chromosome)
    sorted_chr = table["chr"].astype(str).to_numpy()
    bounds = np.flatnonzero(sorted_chr[1:] != sorted_chr[:-1]) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(table)]
    marker_names = np.asarray(table.index, dtype=object)
    positions = table["pos"].to_numpy(float)
    geno_columns = pd.Index(geno.markers).get_indexer(table.index)
    physical = pmap["pos"].reindex(table.index).to_numpy(float) if pmap is not None and gmap is not None else None
    gmaps, pmaps, columns = {}, ({} if physical is not None else None), {}
    for a, b in zip(starts, ends):  # one slice per chromosome
        c = str(sorted_chr[a])
        index = pd.Index(marker_names[a:b], dtype=object)
        gmaps[c] = pd.Series(positions[a:b], index=index, name=c)
        columns[c] = geno_columns[a:b]
        if pmaps is not None:
            values = physical[a:b]
            pmaps[c] = pd.Series(values, index=index.copy(), name=c)
            back = np.flatnonzero(np.diff(values) < 0)
            if back.size:
                m1, m2 = index[back[0]], index[back[0] + 1]
                report(f"The physical map is out of order on chromosome {c} once the markers follow the "
                       f"genetic map ({m1!r} at {values[back[0]]:g} Mbp before {m2!r} at {values[back[0] + 1]:g}); "
                       "check the maps (R/qtl2 warns the same).")
    return chroms, gmaps, pmaps, columns


def _x_chromosomes(control: _Control, chroms: list[str]) -> list[str]:
    value = control.raw.get("x_chr")
    names = [] if value is None else [str(v) for v in (value if isinstance(value, list) else [value])]
    absent = [n for n in names if n not in chroms]
    if absent:
        report(f"{control.where} names {listed(absent)} as the X chromosome, but the genotypes have no such "
               "chromosome (R/qtl2 warns the same); check x_chr.")
    found = [n for n in names if n in chroms]
    looks_x = [c for c in chroms if c in ("X", "x")]
    if looks_x and (set(looks_x) != set(found)):
        report(f"Suspicious X chromosome in {control.where}: chromosome {listed(looks_x)} is called X but "
               f"x_chr gives {listed(found) or 'none'}; check x_chr (R/qtl2 warns the same).")
    return found


def _align_rows(frame: pd.DataFrame | None, ids: np.ndarray) -> pd.DataFrame | None:
    """Rows in the genotypes' order when the frame holds exactly the genotyped individuals (as R/qtl2)."""
    if frame is None:
        return None
    if len(frame.index) == len(ids) and set(frame.index) == set(ids) and not (frame.index == ids).all():
        return frame.loc[list(ids)]
    return frame


def _check_individuals(control, ids, pheno, covar, geno_files) -> None:
    pheno_files = ", ".join(control.files("pheno")) if "pheno" in control.raw else ""
    covar_files = ", ".join(control.files("covar")) if "covar" in control.raw else ""
    if pheno is not None and len(pheno.index):
        common = member_of(pheno.index, ids)
        if not common.any():
            raise LMMInputError(
                f"No individual of the phenotypes in {pheno_files} ({listed(pheno.index, 3)}) is among the genotyped "
                f"individuals of {geno_files} ({listed(ids, 3)}); the IDs must be the same: correct them."
            )
        absent = pheno.index[~common]
        if len(absent):
            report(f"{_count(len(absent), 'individual')} of {pheno_files} {_has(len(absent))} no genotypes "
                   f"({listed(absent)}); {_count(int(common.sum()), 'individual')} {_has(int(common.sum()))} both "
                   "(R/qtl2 keeps them all).")
        missing = pd.Index(ids)[~member_of(pd.Index(ids), pheno.index)]
        if len(missing):
            report(f"{_count(len(missing), 'genotyped individual')} {_has(len(missing))} no phenotypes in "
                   f"{pheno_files} ({listed(missing)}).")
    if pheno is not None and covar is not None:
        if len(pheno.index) != len(covar.index) or not (pheno.index == covar.index).all():
            only_p = pheno.index.difference(covar.index, sort=False)
            only_c = covar.index.difference(pheno.index, sort=False)
            detail = "in another order" if not len(only_p) and not len(only_c) else (
                f"{len(only_p)} only in the phenotypes ({listed(only_p, 3)}), {len(only_c)} only in the "
                f"covariates ({listed(only_c, 3)})")
            report(f"The individuals of the covariates in {covar_files} differ from those of the phenotypes in "
                   f"{pheno_files} ({detail}); R/qtl2 warns the same: check the IDs of the covariate file.")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _has(n: int) -> str:
    return "has" if n == 1 else "have"


def _check_phenocovar(control, pheno, phenocovar) -> None:
    names = list(pheno.columns) if pheno is not None else []
    if list(phenocovar.index) != names:
        report(f"The phenotype covariates (phenocovar) list {len(phenocovar)} phenotypes "
               f"({listed(phenocovar.index, 3)}) but the phenotype file has {len(names)} "
               f"({listed(names, 3)}); R/qtl2 warns the same: check phenocovar.")


def _unused(control: _Control) -> None:
    known = set(_OTHER_KEYS) | set(_SECTIONS) | {f"{s}_transposed" for s in _SECTIONS if s in control.raw}
    unused = [k for k in control.raw if k not in known]
    if unused:
        report(f"{control.where} has control fields this reader does not use: {listed(unused)} "
               "(R/qtl2 warns the same); check their spelling.")
