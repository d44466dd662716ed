"""A corpus of malformed inputs, each run through the command line and the dashboard.

CASES (below) holds {count} cases, {n_error} "error" and {n_warn} "warn", built
here from one small valid data set made with numpy (40 individuals, a
kinship, two phenotypes, a text and a numeric covariate, 24 markers as
dosages, genotype probabilities and a map).
Each case corrupts one file and states what must happen:

* ``"error"`` -- ``lmmcore fit`` (phenotype, kinship and covariate files) or
  ``lmmcore scan`` / ``lmmcore kinship`` (genotype and map files) exits with
  status 2 and one ``lmmcore: error:`` line that contains the case's words:
  the file's name, the column, ID or marker at fault, and what to do. No
  traceback, and no output file. The dashboard (an
  :class:`app.state.ExplorerState` with a valid data set installed, to which
  the bad file is uploaded with ``receive_upload``) shows an error notice with
  the same words and keeps the data set, the chosen phenotype and the fit it
  had, which still work.
* ``"warn"`` -- the input is recoverable: the command exits with status 0,
  writes its output and prints a ``lmmcore: warning:`` line with the case's
  words; when ``same_result`` is set the heritabilities equal those of the
  valid data set (a reordered or re-delimited file changes nothing). The
  dashboard installs the new data set and says the same thing in a warning.

Cases that cannot be uploaded (a path that does not exist, a folder) run on
the command line only; genotype and map files are not dashboard uploads.

A defect found later should be added as a strict xfail with its reason, so
that fixing it turns the case into a failure until the mark is removed; there
are none at present.
"""

from __future__ import annotations

import gzip
import io
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from lmmcore.cli import main
from lmmcore.errors import LMMInputError, LMMWarning
from lmmcore.genotypes import read_dosages, read_genoprobs, read_map
from lmmcore.io import read_covariates, read_kinship_file, read_phenotypes

N = 40
IDS = [f"ind{i:02d}" for i in range(N)]
N_CHR, PER_CHR = 2, 12
MARKERS = [f"c{c}m{j:02d}" for c in range(1, N_CHR + 1) for j in range(PER_CHR)]
GENOTYPES = ("AA", "AB", "BB")


# --------------------------------------------------------------------------- the valid data set


def make_valid() -> SimpleNamespace:
    """A small, clean data set as DataFrames indexed by ID (all numbers from numpy)."""
    rng = np.random.default_rng(20240611)
    freq = rng.uniform(0.2, 0.8, 300)
    G = rng.binomial(2, freq, size=(N, 300)).astype(float)
    Z = (G - 2 * freq) / np.sqrt(2 * freq * (1 - freq))
    K = Z @ Z.T / 300
    K = (K + K.T) / 2
    d, U = np.linalg.eigh(K)
    g = U @ (np.sqrt(np.clip(d, 0, None)) * rng.normal(size=N))
    sex = rng.choice(["f", "m"], N)
    age = rng.integers(20, 60, N).astype(float)
    male = (sex == "m").astype(float)
    pheno = pd.DataFrame(
        {
            "height": 170 + 5 * male + 3 * g + 2 * rng.normal(size=N),
            "weight": 70 + 0.1 * age + 2 * g + 3 * rng.normal(size=N),
        },
        index=pd.Index(IDS, name="id"),
    )
    pheno.iloc[[4, 11], 1] = np.nan
    covar = pd.DataFrame({"sex": sex, "age": age}, index=pd.Index(IDS, name="id"))
    dosage = rng.binomial(2, rng.uniform(0.3, 0.7, len(MARKERS)), size=(N, len(MARKERS))).astype(float)
    probs = np.full((N, len(MARKERS), 3), 0.02)
    for k in range(3):
        probs[..., k][dosage == k] = 0.96
    gmap = pd.DataFrame(
        {
            "marker": MARKERS,
            "chr": [m[1] for m in MARKERS],
            "pos": [5.0 * j + 1.0 for _ in range(N_CHR) for j in range(PER_CHR)],
        }
    )
    return SimpleNamespace(
        kinship=pd.DataFrame(K, index=pd.Index(IDS, name="id"), columns=IDS),
        pheno=pheno,
        covar=covar,
        dosage=pd.DataFrame(dosage, index=pd.Index(IDS, name="id"), columns=MARKERS),
        probs=pd.DataFrame(
            probs.reshape(N, -1),
            index=pd.Index(IDS, name="id"),
            columns=[f"{m}:{g}" for m in MARKERS for g in GENOTYPES],
        ),
        map=gmap,
    )


VALID_FILES = {
    "kinship": "K.csv",
    "pheno": "P.csv",
    "covar": "C.csv",
    "dosage": "D.csv",
    "probs": "G.csv",
    "map": "M.csv",
}


def write_valid(folder: Path, v: SimpleNamespace) -> dict[str, Path]:
    paths = {k: folder / name for k, name in VALID_FILES.items()}
    v.kinship.to_csv(paths["kinship"])
    v.pheno.to_csv(paths["pheno"], na_rep="NA")
    v.covar.to_csv(paths["covar"])
    v.dosage.to_csv(paths["dosage"])
    v.probs.to_csv(paths["probs"])
    v.map.to_csv(paths["map"], index=False)
    return paths


# --------------------------------------------------------------------------- helpers for builders


def frame(tmp: Path, name: str, df: pd.DataFrame, **kw) -> Path:
    path = tmp / name
    kw.setdefault("na_rep", "NA")
    df.to_csv(path, **kw)
    return path


def raw(tmp: Path, name: str, content: bytes | str) -> Path:
    path = tmp / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def with_cell(df: pd.DataFrame, row, col, value) -> pd.DataFrame:
    out = df.copy().astype(object) if isinstance(value, str) else df.copy()
    out.iloc[row, col] = value
    return out


def relabel(df: pd.DataFrame, mapping: dict[str, str], columns: bool = False) -> pd.DataFrame:
    out = df.rename(index=mapping)
    if columns:
        out = out.rename(columns=mapping)
    return out


def permuted(df: pd.DataFrame, seed: int, columns: bool = False, rows: bool = True) -> pd.DataFrame:
    order = np.random.default_rng(seed).permutation(len(df))
    out = df.iloc[order] if rows else df
    if columns:
        out = out.iloc[:, order]
    return out


def not_psd(K: pd.DataFrame) -> pd.DataFrame:
    out = K.copy()
    out.iloc[0, 1] = out.iloc[1, 0] = 3.0 * float(np.max(np.diag(K.to_numpy())))
    return out


def wide_covariates(v) -> pd.DataFrame:
    values = np.random.default_rng(4).normal(size=(N, N + 2))
    return pd.DataFrame(values, index=v.covar.index, columns=[f"pc{i}" for i in range(N + 2)])


def many_text_levels(v) -> pd.DataFrame:
    c = v.covar.copy()
    c["cage"] = [f"cage{i}" for i in range(N)]
    return c


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """One malformed input and the behaviour it must produce.

    Attributes
    ----------
    name : str
    corrupts : str
        Which input is bad: ``pheno``, ``kinship``, ``covar`` (``lmmcore fit``
        and dashboard uploads) or ``dosage``, ``probs``, ``map`` (``lmmcore
        scan`` or ``lmmcore kinship``).
    build : callable
        ``build(valid, tmp)`` writes the bad file into ``tmp`` (starting from
        the valid DataFrames) and returns its path.
    outcome : {"error", "warn"}
    words : tuple of str
        What the message must say besides the file name: the column, ID or
        marker and the problem.
    todo : str
        The instruction the message must give (for "error" always; for
        "warn" when the user has something to check).
    names_file : bool
        Whether the message must name the bad file (false only where the
        message is about several files and names them all).
    same_result : bool
        For "warn": the fit gives the same heritabilities as the valid data.
    command : str
        ``fit``, ``scan`` or ``kinship``.
    upload : bool
        Whether the case is also run through the dashboard.
    app_marks : tuple
        pytest marks for the dashboard run only (known defects of ``app/``).
    """

    name: str
    corrupts: str
    build: Callable[[SimpleNamespace, Path], Path]
    outcome: str
    words: tuple[str, ...]
    todo: str = ""
    names_file: bool = True
    same_result: bool = False
    command: str = ""
    upload: bool = True
    marks: tuple = field(default=(), compare=False)
    app_marks: tuple = field(default=(), compare=False)

    def __post_init__(self):
        assert self.outcome in ("error", "warn")
        assert self.todo or self.outcome == "warn", f"{self.name}: an error must say what to do"
        if not self.command:
            object.__setattr__(self, "command", "fit" if self.corrupts in ("pheno", "kinship", "covar") else "scan")
        if self.command != "fit":
            object.__setattr__(self, "upload", False)


def E(name, corrupts, build, *words, **kw):
    """An error case; the last of ``words`` is the instruction (``todo``)."""
    return Case(name, corrupts, build, "error", tuple(words[:-1]), todo=words[-1], **kw)


def W(name, corrupts, build, *words, **kw):
    """A recoverable case; ``todo=`` when the warning must also say what to check."""
    return Case(name, corrupts, build, "warn", tuple(words), **kw)


class MissingInstruction(AssertionError):
    """The message names the problem but does not say what to do."""





CASES: list[Case] = [
    # ---- phenotype file: unreadable, empty, binary, wrongly delimited
    E("pheno_path_missing", "pheno", lambda v, t: t / "no_such_pheno.csv", "does not exist", "check the path",
      upload=False),
    E("pheno_path_is_a_folder", "pheno", lambda v, t: (t / "pheno_folder.csv").mkdir() or t / "pheno_folder.csv",
      "is a directory", "give the CSV file", upload=False),
    E("pheno_empty", "pheno", lambda v, t: raw(t, "empty.csv", b""), "empty", "header row"),
    E("pheno_blank_lines_only", "pheno", lambda v, t: raw(t, "blank.csv", "\n  \n\n"), "empty", "header row"),
    E("pheno_gzip_binary", "pheno",
      lambda v, t: raw(t, "gz.csv", gzip.compress(v.pheno.to_csv().encode(), mtime=0)),
      "not a text file", "save it as CSV"),
    E("pheno_xlsx_binary", "pheno", lambda v, t: raw(t, "book.csv", _zip_bytes(v.pheno.to_csv())),
      "not a text file", "save it as CSV"),
    E("pheno_utf16", "pheno", lambda v, t: raw(t, "utf16.csv", v.pheno.to_csv().encode("utf-16")),
      "UTF-16", "save it as CSV UTF-8"),
    E("pheno_header_only", "pheno", lambda v, t: raw(t, "header.csv", "id,height,weight\n"),
      "no rows of data", "one row per individual"),
    E("pheno_space_delimited", "pheno", lambda v, t: frame(t, "spaces.csv", v.pheno, sep=" "),
      "1 column", "delimited by commas"),
    E("pheno_ragged_row", "pheno",
      lambda v, t: raw(t, "ragged.csv", v.pheno.to_csv(na_rep="NA").replace("\nind03,", "\nind03,1.5,", 1)),
      "line 5", "same number of fields"),
    W("pheno_semicolon", "pheno", lambda v, t: frame(t, "semi.csv", v.pheno, sep=";"), "semicolon",
      same_result=True),
    W("pheno_tab", "pheno", lambda v, t: frame(t, "tabs.csv", v.pheno, sep="\t"), "tab", same_result=True),
    W("pheno_r_rownames_header", "pheno",
      lambda v, t: raw(t, "rnames.csv", v.pheno.to_csv(na_rep="NA").split("\n", 1)[1].join(["height,weight\n", ""])),
      "header", "first column", same_result=True),
    # ---- phenotype values and IDs
    E("pheno_text_value", "pheno", lambda v, t: frame(t, "text.csv", with_cell(v.pheno, 5, 0, "tall")),
      "'height'", "'ind05'", "'tall'", "use numbers"),
    E("pheno_infinite", "pheno", lambda v, t: frame(t, "inf.csv", with_cell(v.pheno, 7, 1, np.inf)),
      "'weight'", "'ind07'", "infinite", "finite numbers"),
    E("pheno_duplicate_id", "pheno", lambda v, t: frame(t, "dup.csv", relabel(v.pheno, {"ind09": "ind03"})),
      "'ind03'", "more than once", "rename"),
    E("pheno_empty_id", "pheno",
      lambda v, t: raw(t, "noid.csv", v.pheno.to_csv(na_rep="NA").replace("\nind06,", "\n,", 1)),
      "line 8", "every row needs an ID"),
    E("pheno_duplicate_column", "pheno",
      lambda v, t: raw(t, "dupcol.csv", v.pheno.to_csv(na_rep="NA").replace("weight", "height", 1)),
      "'height'", "more than once", "rename"),
    E("pheno_constant", "pheno", lambda v, t: frame(t, "const.csv", v.pheno[["height"]].assign(height=3.0)),
      "'height'", "constant", "remove it"),
    E("pheno_all_missing", "pheno", lambda v, t: frame(t, "allna.csv", v.pheno[["weight"]].assign(weight=np.nan)),
      "'weight'", "observed value", "at least 3", "remove it"),
    E("pheno_nearly_all_missing", "pheno",
      lambda v, t: frame(t, "mostna.csv", v.pheno[["weight"]].where(np.arange(N)[:, None] < 2)),
      "'weight'", "2 observed value", "at least 3", "add observations"),
    E("pheno_ids_do_not_overlap", "pheno",
      lambda v, t: frame(t, "other_ids.csv", v.pheno.rename(index=lambda s: s.replace("ind", "mouse"))),
      "'mouse00'", "'ind00'", "K.csv", "same IDs"),
    W("pheno_few_unmatched_ids", "pheno",
      lambda v, t: frame(t, "unmatched.csv", relabel(v.pheno, {"ind01": "x1", "ind02": "x2", "ind03": "x3"})),
      "dropped", "3 in the phenotype file", "'x1'", "37 remain", todo="make the IDs match"),
    W("pheno_rows_in_another_order", "pheno", lambda v, t: frame(t, "shuffled.csv", permuted(v.pheno, 1)),
      "another order", "matched by ID", same_result=True),
    # ---- kinship file
    E("kinship_empty", "kinship", lambda v, t: raw(t, "kempty.csv", b""), "empty", "header row"),
    E("kinship_npy_binary", "kinship", lambda v, t: raw(t, "k.npy.csv", _npy_bytes(v.kinship.to_numpy())),
      "not a text file", "save it as CSV"),
    E("kinship_not_square", "kinship", lambda v, t: frame(t, "rect.csv", v.kinship.iloc[:, :-1]),
      "40 x 39", "must be square"),
    E("kinship_extra_row", "kinship",
      lambda v, t: frame(t, "tall.csv", pd.concat([v.kinship, v.kinship.iloc[[0]].rename(index={"ind00": "ind40"})])),
      "41 x 40", "must be square"),
    E("kinship_not_symmetric", "kinship",
      lambda v, t: frame(t, "asym.csv", with_cell(v.kinship, 0, 1, 0.9)), "not symmetric", "same order"),
    E("kinship_not_psd", "kinship", lambda v, t: frame(t, "notpsd.csv", not_psd(v.kinship)),
      "not positive semidefinite", "check how it was computed"),
    E("kinship_negative_definite", "kinship", lambda v, t: frame(t, "negdef.csv", -v.kinship),
      "no positive eigenvalue", "positive semidefinite"),
    E("kinship_nan", "kinship", lambda v, t: frame(t, "knan.csv", with_cell(v.kinship, 2, 5, np.nan)),
      "'ind02'", "'ind05'", "missing", "complete"),
    E("kinship_infinite", "kinship", lambda v, t: frame(t, "kinf.csv", with_cell(v.kinship, 3, 3, np.inf)),
      "'ind03'", "infinite", "a number for every pair", "use finite numbers"),
    E("kinship_text_value", "kinship", lambda v, t: frame(t, "ktext.csv", with_cell(v.kinship, 4, 6, "high")),
      "'ind04'", "'ind06'", "'high'", "a number for every pair", "use numbers"),
    E("kinship_row_and_column_ids_differ", "kinship",
      lambda v, t: frame(t, "labels.csv", v.kinship.rename(columns={"ind07": "ind7"})),
      "'ind07'", "no column", "same IDs as the rows"),
    E("kinship_duplicate_id", "kinship",
      lambda v, t: frame(t, "kdup.csv", relabel(v.kinship, {"ind08": "ind09"}, columns=True)),
      "'ind09'", "more than once", "rename"),
    E("kinship_ids_do_not_overlap", "kinship",
      lambda v, t: frame(t, "kother.csv", relabel(v.kinship, {i: i.upper() for i in IDS}, columns=True)),
      "'IND00'", "'ind00'", "P.csv", "same IDs"),
    W("kinship_semicolon", "kinship", lambda v, t: frame(t, "ksemi.csv", v.kinship, sep=";"), "semicolon",
      same_result=True),
    W("kinship_columns_in_another_order", "kinship",
      lambda v, t: frame(t, "kcols.csv", permuted(v.kinship, 2, columns=True, rows=False)),
      "columns", "another order", "matched", same_result=True),
    W("kinship_rows_and_columns_in_another_order", "kinship",
      lambda v, t: frame(t, "kperm.csv", permuted(v.kinship, 3, columns=True)),
      "another order", "matched by ID", same_result=True),
    W("kinship_lacks_a_few_individuals", "kinship",
      lambda v, t: frame(t, "ksub.csv", v.kinship.iloc[3:, 3:]), "dropped",
      "3 in the phenotype file 'P.csv' but not in the kinship file", "'ind00'", todo="make the IDs match"),
    # ---- covariate file
    W("covar_collinear", "covar", lambda v, t: frame(t, "collinear.csv", v.covar.assign(age_months=v.covar.age * 12)),
      "dropped 1 column", "age_months", "linear combinations"),
    W("covar_constant_text", "covar", lambda v, t: frame(t, "strain.csv", v.covar.assign(strain="B6")),
      "'strain'", "'B6'", "left out"),
    W("covar_constant_number", "covar", lambda v, t: frame(t, "batch.csv", v.covar.assign(batch=2.0)),
      "'batch'", "constant", "intercept"),
    W("covar_all_zero", "covar", lambda v, t: frame(t, "zero.csv", v.covar.assign(dose=0.0)),
      "dropped 1 column", "dose"),
    E("covar_text_in_numeric_column", "covar", lambda v, t: frame(t, "agetext.csv", with_cell(v.covar, 6, 1, "old")),
      "'age'", "'ind06'", "'old'", "use numbers"),
    E("covar_more_than_individuals", "covar",
      lambda v, t: frame(t, "wide.csv", wide_covariates(v)),
      "coefficients", "only 40 individuals", "use fewer covariates"),
    E("covar_text_with_a_level_per_individual", "covar", lambda v, t: frame(t, "cage.csv", many_text_levels(v)),
      "'cage'", "40 levels", "use fewer covariates"),
    E("covar_infinite", "covar", lambda v, t: frame(t, "cinf.csv", with_cell(v.covar, 8, 1, -np.inf)),
      "'age'", "'ind08'", "infinite", "finite numbers"),
    E("covar_column_all_missing", "covar", lambda v, t: frame(t, "cna.csv", v.covar.assign(age=np.nan)),
      "'age'", "every individual", "remove the column"),
    W("covar_a_few_missing", "covar", lambda v, t: frame(t, "cfew.csv", with_cell(v.covar, 5, 1, np.nan)),
      "dropped", "1 with a missing value", "'ind05'", todo="fill in the missing covariates"),
    E("covar_ids_do_not_overlap", "covar",
      lambda v, t: frame(t, "cother.csv", v.covar.rename(index=lambda s: s + "_")),
      "'ind00_'", "'ind00'", "same IDs"),
    W("covar_few_unmatched_ids", "covar",
      lambda v, t: frame(t, "cunmatched.csv", v.covar.drop(index=["ind10", "ind11"])),
      "dropped", "2 not in the covariate file", "'ind10'", todo="make the IDs match"),
    W("covar_rows_in_another_order", "covar", lambda v, t: frame(t, "cshuffled.csv", permuted(v.covar, 4)),
      "another order", "matched by ID", same_result=True),
    E("covar_duplicate_id", "covar", lambda v, t: frame(t, "cdup.csv", relabel(v.covar, {"ind12": "ind13"})),
      "'ind13'", "more than once", "rename"),
    E("covar_header_only", "covar", lambda v, t: raw(t, "cheader.csv", "id,sex,age\n"),
      "no rows of data", "one row per individual"),
    W("covar_semicolon", "covar", lambda v, t: frame(t, "csemi.csv", v.covar, sep=";"), "semicolon",
      same_result=True),
    # ---- genotype and map files (lmmcore scan / lmmcore kinship)
    E("dosage_marker_not_in_map", "dosage",
      lambda v, t: frame(t, "dnomap.csv", v.dosage.rename(columns={"c1m03": "rs99"})),
      "rs99", "not in the map file", "add the missing markers"),
    E("probs_marker_not_in_map", "probs",
      lambda v, t: frame(t, "gnomap.csv", v.probs.rename(columns=lambda c: c.replace("c2m05", "rs7"))),
      "rs7", "not in the map file", "add the missing markers"),
    E("probs_do_not_sum_to_one", "probs", lambda v, t: frame(t, "gsum.csv", with_cell(v.probs, 3, 4, 0.5)),
      "c1m01", "'ind03'", "sum to", "must sum to 1"),
    E("probs_outside_0_1", "probs", lambda v, t: frame(t, "grange.csv", with_cell(v.probs, 2, 0, 1.5)),
      "c1m00:AA", "'ind02'", "between 0 and 1"),
    E("probs_missing_value", "probs", lambda v, t: frame(t, "gna.csv", with_cell(v.probs, 1, 7, np.nan)),
      "c1m02:AB", "'ind01'", "missing", "calc_genoprob"),
    E("probs_marker_lacks_a_genotype", "probs",
      lambda v, t: frame(t, "glack.csv", v.probs.drop(columns=["c1m04:BB"])),
      "c1m04", "BB", "same genotype columns"),
    E("probs_column_not_marker_genotype", "probs",
      lambda v, t: frame(t, "gname.csv", v.probs.rename(columns={"c2m00:AA": "c2m00AA"})),
      "c2m00AA", "MARKER:GENOTYPE", "name each column"),
    W("dosage_missing_values", "dosage",
      lambda v, t: frame(t, "dna.csv", v.dosage.mask(np.eye(N, len(MARKERS), dtype=bool))),
      "missing dosage", "marker's mean"),
    W("dosage_marker_all_missing", "dosage", lambda v, t: frame(t, "dallna.csv", v.dosage.assign(c2m07=np.nan)),
      "c2m07", "no observed genotype", "flagged"),
    E("dosage_outside_0_2", "dosage", lambda v, t: frame(t, "drange.csv", with_cell(v.dosage, 9, 2, 3.0)),
      "c1m02", "'ind09'", "between 0 and 2"),
    E("dosage_text_value", "dosage", lambda v, t: frame(t, "dtext.csv", with_cell(v.dosage, 4, 5, "AB")),
      "c1m05", "'ind04'", "'AB'", "number or NA"),
    E("dosage_infinite", "dosage", lambda v, t: frame(t, "dinf.csv", with_cell(v.dosage, 6, 8, np.inf)),
      "c1m08", "'ind06'", "infinite", "finite number"),
    W("dosage_monomorphic_marker", "dosage", lambda v, t: frame(t, "dmono.csv", v.dosage.assign(c1m06=1.0)),
      "monomorphic", names_file=False),
    E("dosage_duplicate_id", "dosage", lambda v, t: frame(t, "ddup.csv", relabel(v.dosage, {"ind14": "ind15"})),
      "'ind15'", "unique", "remove or rename"),
    E("dosage_empty", "dosage", lambda v, t: raw(t, "dempty.csv", b""), "no data rows", "one row per individual"),
    E("dosage_binary", "dosage", lambda v, t: raw(t, "dbin.csv", gzip.compress(v.dosage.to_csv().encode(), mtime=0)),
      "not a text file", "save it as CSV"),
    E("dosage_ids_do_not_overlap", "dosage",
      lambda v, t: frame(t, "dother.csv", v.dosage.rename(index=lambda s: "g" + s)),
      "'gind00'", "'ind00'", "same IDs", names_file=False),
    W("dosage_semicolon", "dosage", lambda v, t: frame(t, "dsemi.csv", v.dosage, sep=";"), "semicolon"),
    E("map_missing_column", "map", lambda v, t: frame(t, "mnopos.csv", v.map.drop(columns=["pos"]), index=False),
      "pos", "needs the columns marker, chr and pos", command="kinship"),
    E("map_duplicate_marker", "map",
      lambda v, t: frame(t, "mdup.csv", pd.concat([v.map, v.map.iloc[[3]]]), index=False),
      "c1m03", "unique", "remove the duplicate rows", command="kinship"),
    E("map_position_not_a_number", "map",
      lambda v, t: frame(t, "mpos.csv", with_cell(v.map, 5, 2, "5cM"), index=False),
      "c1m05", "'5cM'", "numeric position", command="kinship"),
    E("map_empty", "map", lambda v, t: raw(t, "mempty.csv", b""), "empty", "marker, chr, pos", command="kinship"),
    E("dosage_path_missing", "dosage", lambda v, t: t / "no_such_dosage.csv", "does not exist", "check the path",
      command="kinship"),
]


def _zip_bytes(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("xl/worksheets/sheet1.xml", text)
    return buf.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


__doc__ = __doc__.format(
    count=len(CASES),
    n_error=sum(c.outcome == "error" for c in CASES),
    n_warn=sum(c.outcome == "warn" for c in CASES),
)


def _param(case: Case):
    return pytest.param(case, id=case.name, marks=case.marks)


UPLOAD_KIND = {"pheno": "phenotypes", "kinship": "kinship", "covar": "covariates"}
FLAG = {"pheno": "--pheno", "kinship": "--kinship", "covar": "--covar", "dosage": "--genotypes",
        "probs": "--genoprobs", "map": "--map"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def valid():
    return make_valid()


@pytest.fixture(scope="module")
def valid_files(valid, tmp_path_factory):
    return write_valid(tmp_path_factory.mktemp("valid"), valid)


def run_cli(argv, capsys) -> tuple[int, str]:
    capsys.readouterr()
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def cli_argv(command: str, paths: dict[str, Path], out: Path, genotypes: str = "dosage") -> list:
    """The command line of ``command`` on ``paths`` (``genotypes``: read ``dosage`` or ``probs``)."""
    if command == "fit":
        return ["fit", "--kinship", paths["kinship"], "--pheno", paths["pheno"], "--covar", paths["covar"],
                "--out", out]
    source = [FLAG[genotypes], paths[genotypes], "--map", paths["map"]]
    if command == "kinship":
        return ["kinship", *source, "--out", out]
    return ["scan", *source, "--pheno", paths["pheno"], "--covar", paths["covar"], "--kinship", "overall",
            "--out", out]


def case_argv(case: Case, paths: dict[str, Path], bad: Path, out: Path) -> list:
    genotypes = "probs" if case.corrupts == "probs" else "dosage"
    return cli_argv(case.command, {**paths, case.corrupts: bad}, out, genotypes)


@pytest.fixture(scope="module")
def baseline(valid_files, tmp_path_factory) -> pd.DataFrame:
    """``lmmcore fit`` on the valid data set: the reference for 'same_result' cases."""
    out = tmp_path_factory.mktemp("baseline") / "fit.csv"
    assert main([str(a) for a in cli_argv("fit", valid_files, out)]) == 0
    return pd.read_csv(out)


# --------------------------------------------------------------------------- the tests


def test_corpus_is_large_and_covers_every_input():
    assert len(CASES) >= 45
    assert len({c.name for c in CASES}) == len(CASES)
    assert {c.corrupts for c in CASES} == set(FLAG)
    assert {c.outcome for c in CASES} == {"error", "warn"}


@pytest.mark.parametrize("command, genotypes", [("fit", ""), ("scan", "dosage"), ("kinship", "probs")])
def test_the_valid_data_set_runs_cleanly(command, genotypes, valid_files, tmp_path, capsys):
    """Without this, a warning in a "warn" case could come from the valid files."""
    status, err = run_cli(cli_argv(command, valid_files, tmp_path / "out.csv", genotypes or "dosage"), capsys)
    assert status == 0, err
    assert "warning" not in err and "error" not in err, err


def check_message(case: Case, bad: Path, message: str) -> None:
    """The file name, the case's words, then the instruction (a MissingInstruction if absent)."""
    for word in ([bad.name] if case.names_file else []) + list(case.words):
        assert word in message, f"{word!r} not in: {message}"
    if case.todo and case.todo not in message:
        raise MissingInstruction(f"{case.todo!r} not in: {message}")


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_command_line(case, valid, valid_files, baseline, tmp_path, capsys):
    bad = case.build(valid, tmp_path)
    out = tmp_path / "out.csv"
    status, err = run_cli(case_argv(case, valid_files, bad, out), capsys)
    assert "Traceback" not in err and "internal error" not in err, err
    if case.outcome == "error":
        assert status == 2, err
        assert err.count("lmmcore: error:") == 1, err
        assert not out.exists()
        message = err
    else:
        assert status == 0, err
        assert "lmmcore: warning:" in err
        assert out.exists()
        message = "\n".join(line for line in err.splitlines() if line.startswith("lmmcore: warning:"))
    check_message(case, bad, message)
    if case.same_result:
        got = pd.read_csv(out)
        np.testing.assert_allclose(got["h2"], baseline["h2"], atol=1e-7)


# ---- the dashboard


@pytest.fixture(scope="module")
def valid_uploads(valid_files):
    return {kind: valid_files[key].read_bytes() for key, kind in UPLOAD_KIND.items()}


def _loaded_state(valid_uploads):
    from app.state import ExplorerState

    state = ExplorerState()
    assert state.receive_upload("covariates", "C.csv", valid_uploads["covariates"]) is False
    assert state.receive_upload("kinship", "K.csv", valid_uploads["kinship"]) is False
    assert state.receive_upload("phenotypes", "P.csv", valid_uploads["phenotypes"]) is True, state.notice
    assert not state.messages, state.messages
    return state


UPLOAD_CASES = [c for c in CASES if c.upload]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=c.app_marks) for c in UPLOAD_CASES])
def test_dashboard(case, valid, valid_uploads, tmp_path):
    pytest.importorskip("param")
    state = _loaded_state(valid_uploads)
    before = (state.dataset, state.source_label, state.phenotype, state.method, state.fit)
    bad = case.build(valid, tmp_path)
    kind = UPLOAD_KIND[case.corrupts]
    installed = state.receive_upload(kind, bad.name, bad.read_bytes())
    if case.outcome == "error":
        assert installed is False
        assert state.notice["level"] == "error", state.notice
        # the data set in use is untouched and still works: the fit, another method, the profile, a probe
        assert (state.dataset, state.source_label, state.phenotype, state.method, state.fit) == before
        assert np.isfinite(state.fits("ml")[state.phenotype].h2)
        assert len(state.profile()) > 0 and state.probe(0.3) is not None
        check_message(case, bad, state.notice["text"])
    else:
        assert installed is True, state.notice
        assert state.dataset is not before[0]
        assert state.dataset.sources[kind] == bad.name
        assert state.fit is not None and np.isfinite(state.fit.h2)
        if case.same_result:
            assert state.fit.h2 == pytest.approx(before[4].h2, abs=1e-7)
        check_message(case, bad, "\n".join(state.messages))


# --------------------------------------------------------------------------- the readers from memory

READ = {
    "pheno": lambda src, v, **kw: read_phenotypes(src, **kw),
    "kinship": lambda src, v, **kw: read_kinship_file(src, **kw),
    "covar": lambda src, v, **kw: read_covariates(src, **kw),
    "dosage": lambda src, v, **kw: read_dosages(src, v["map"], **kw),
    "probs": lambda src, v, **kw: read_genoprobs(src, v["map"], **kw),
    "map": lambda src, v, **kw: read_map(src, **kw),
}


def _outcome(read):
    """(result, error message, messages reported) of ``read()``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result, error = read(), None
        except LMMInputError as exc:
            result, error = None, str(exc)
    return result, error, [str(w.message) for w in caught if issubclass(w.category, LMMWarning)]


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_reading_the_bytes_gives_what_reading_the_file_gives(case, valid, valid_files, tmp_path):
    """The dashboard can read an upload from memory: the engine's reader, given the file's bytes and its
    name, returns the same table, or raises and reports the same messages word for word, as from the file."""
    bad = case.build(valid, tmp_path)
    if not bad.is_file():
        return  # a path that does not exist, a folder: not an upload
    read = READ[case.corrupts]
    # the table readers name a file by its base name, the genotype readers by the path as given
    shown = bad.name if case.corrupts in ("pheno", "kinship", "covar") else str(bad)
    from_file = _outcome(lambda: read(bad, valid_files))
    from_bytes = _outcome(lambda: read(bad.read_bytes(), valid_files, name=shown))
    assert from_bytes[1:] == from_file[1:]
    if from_file[1] is not None:
        assert shown in from_file[1]  # the message names the file, so it names the upload from memory
    if from_file[0] is not None:
        expected, got = from_file[0], from_bytes[0]
        if isinstance(expected, pd.DataFrame):
            pd.testing.assert_frame_equal(got, expected)
        else:  # Genotypes: the same arrays; the source is the name given
            assert (got.ids, got.markers, got.source) == (expected.ids, expected.markers, shown)
            np.testing.assert_array_equal(got.data, expected.data)
