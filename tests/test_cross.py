"""Reading R/qtl2 crosses: ``lmmcore.read_cross`` against hand-written expectations and R/qtl2 itself.

Fixtures (tests/data/cross/, see the README there):

* ``tiny_f2/``: a hand-written F2 with an X chromosome, unsorted maps and
  chromosomes out of order; the expected codes below are written by hand
  from the CSV text.
* ``tiny_do/``: a hand-written Diversity Outbred cross (JSON control, ``;``,
  lists of genotype and phenotype files, transposed founder genotypes, sex
  and cross information in files).
* ``iron_subset.zip``: 20 mice of R/qtl2's iron example (chromosomes 1, 7
  and X).
* ``r_reference/``: what R/qtl2 0.43-5's ``read_cross2`` makes of the three
  (``make_r_reference.R``), compared field by field.

Variants of ``tiny_f2`` (zip, bytes, JSON, ``sep``, transposed files,
lists of files, sex and cross information from files, comments, other
missing-value codes, CRLF and quoted cells) must give the same cross.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import lmmcore
from lmmcore import read_cross
from lmmcore.cross import CROSS_TYPES, Cross
from lmmcore.cross_files import _distinct
from lmmcore.cross_table import read_sheet
from lmmcore.errors import LMMWarning

DATA = Path(__file__).parent / "data" / "cross"
TINY_F2 = DATA / "tiny_f2"
TINY_DO = DATA / "tiny_do"
R_REF = DATA / "r_reference"

# Written by hand from tiny_f2/geno.csv: AA=1, AB=2, BB=3, notBB=4, notAA=5, '-'/NA=0,
# columns in map order (chr 2: m2a, m2b; chr 10: m10a, m10b, m10c; X: mXa, mXb), rows i1..i6.
F2_GENO = {
    "2": [[3, 2], [2, 1], [1, 4], [5, 3], [2, 1], [3, 2]],
    "10": [[1, 2, 0], [2, 3, 2], [3, 0, 3], [2, 1, 1], [1, 2, 2], [3, 3, 1]],
    "X": [[1, 1], [0, 3], [2, 2], [3, 1], [1, 0], [3, 3]],
}
F2_GMAP = {"2": {"m2a": 10.0, "m2b": 40.0}, "10": {"m10a": 3.0, "m10b": 20.5, "m10c": 20.5},
           "X": {"mXa": 5.0, "mXb": 25.0}}
F2_PMAP = {"2": {"m2a": 12.25, "m2b": 51.5}, "10": {"m10a": 4.125, "m10b": 30.0, "m10c": 30.5},
           "X": {"mXa": 8.0, "mXb": 60.75}}


def copy_fixture(src: Path, tmp: Path) -> Path:
    dest = tmp / src.name
    shutil.copytree(src, dest)
    return dest


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, prefix + f.name)
    return dest


def read_quiet(source, **kw) -> tuple[Cross, list[str]]:
    messages: list[str] = []
    return read_cross(source, report=messages.append, **kw), messages


def edit_control(folder: Path, name: str, **changes) -> Path:
    path = folder / name
    control = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            control.pop(key, None)
        else:
            control[key] = value
    path.write_text(yaml.safe_dump(control, sort_keys=False))
    return path


def assert_same_cross(a: Cross, b: Cross) -> None:
    assert a.crosstype == b.crosstype and a.ids == b.ids and a.alleles == b.alleles
    assert list(a.geno) == list(b.geno)
    for c in a.geno:
        np.testing.assert_array_equal(a.geno[c], b.geno[c])
        pd.testing.assert_series_equal(a.gmap[c], b.gmap[c])
        if a.pmap is not None or b.pmap is not None:
            pd.testing.assert_series_equal(a.pmap[c], b.pmap[c])
    assert a.is_x_chr == b.is_x_chr
    np.testing.assert_array_equal(a.is_female, b.is_female)
    np.testing.assert_array_equal(a.cross_info, b.cross_info)
    pd.testing.assert_frame_equal(a.pheno, b.pheno)
    for x, y in ((a.covar, b.covar), (a.phenocovar, b.phenocovar)):
        assert (x is None) == (y is None)
        if x is not None:
            pd.testing.assert_frame_equal(x, y)


# --------------------------------------------------------------------------- the hand-written F2


@pytest.fixture(scope="module")
def tiny_f2() -> Cross:
    cross, messages = read_quiet(TINY_F2 / "tiny_f2.yaml")
    assert messages == []
    return cross


def test_tiny_f2_genotypes_match_the_text_by_hand(tiny_f2):
    assert tiny_f2.crosstype == "f2"
    assert tiny_f2.ids == ("i1", "i2", "i3", "i4", "i5", "i6")
    assert tiny_f2.chromosomes == ("2", "10", "X")  # natural order, not the file's (10 first)
    for c, expected in F2_GENO.items():
        assert tiny_f2.geno[c].dtype == np.int8
        np.testing.assert_array_equal(tiny_f2.geno[c], np.array(expected))
    assert tiny_f2.genotype_codes == {"AA": 1, "AB": 2, "BB": 3, "notBB": 4, "notAA": 5}


def test_tiny_f2_maps_are_sorted_with_ties_in_file_order(tiny_f2):
    for c in F2_GMAP:
        assert tiny_f2.gmap[c].to_dict() == F2_GMAP[c]
        assert list(tiny_f2.gmap[c].index) == list(F2_GMAP[c])  # m10b before m10c (tie at 20.5)
        assert list(tiny_f2.pmap[c].index) == list(F2_PMAP[c])
        assert tiny_f2.pmap[c].to_dict() == F2_PMAP[c]
    assert tiny_f2.markers == ("m2a", "m2b", "m10a", "m10b", "m10c", "mXa", "mXb")


def test_tiny_f2_sex_direction_and_x(tiny_f2):
    np.testing.assert_array_equal(tiny_f2.is_female, [True, False, True, False, True, False])
    np.testing.assert_array_equal(tiny_f2.cross_info, [[0], [0], [0], [1], [1], [1]])
    assert tiny_f2.cross_info_names == ("dir",)
    assert tiny_f2.is_x_chr == {"2": False, "10": False, "X": True}
    assert tiny_f2.x_chr == ("X",)
    assert tiny_f2.alleles == ("A", "B") and tiny_f2.founders == () and tiny_f2.founder_geno is None


def test_tiny_f2_phenotypes_follow_the_genotypes_order(tiny_f2):
    # pheno.csv lists i3, i1, i2, i6, i5, i4; R/qtl2 puts them in the genotypes' order.
    expected = pd.DataFrame(
        {"weight": [11, np.nan, 10.5, 8, 12, 9.25], "length": [100, 98.5, np.nan, np.nan, 99, 101]},
        index=pd.Index(["i1", "i2", "i3", "i4", "i5", "i6"], name="id"),
    )
    pd.testing.assert_frame_equal(tiny_f2.pheno, expected, check_index_type=False)
    assert list(tiny_f2.covar.columns) == ["sex", "dir", "age"]
    assert tiny_f2.covar["age"].tolist() == [10, 12, 11, 10, 9, 12]
    assert tiny_f2.covar["sex"].tolist() == ["f", "m", "f", "m", "f", "m"]
    assert tiny_f2.phenocovar["unit"].to_dict() == {"weight": "g", "length": "mm"}


def test_summary_reads_like_r_qtl2(tiny_f2):
    # r_reference/*_summary.txt: R/qtl2's print(summary(read_cross2(...))) (make_r_reference.R)
    iron = read_quiet(DATA / "iron_subset.zip")[0]
    r_text = (R_REF / "iron_subset_summary.txt").read_text()
    assert str(iron).startswith(r_text)
    # R/qtl2 keeps the map file's chromosome order (10, 2, X); the rest is the same text
    r_text = (R_REF / "tiny_f2_summary.txt").read_text().replace("10  2  X \n 3  2  2", " 2 10  X \n 2  3  2")
    text = str(tiny_f2)
    assert text.startswith(r_text)
    for line in ("X chromosome: X", "Sexes: 3 female, 3 male", "Cross information: dir", "Alleles: A B"):
        assert line in text.splitlines(), line
    assert repr(tiny_f2).startswith("<Cross 'f2': 6 individuals, 2 phenotypes, 3 chromosomes, 7 markers, X = X")


def test_read_cross_is_a_public_lazy_name():
    assert "read_cross" in lmmcore.__all__ and "Cross" in lmmcore.__all__
    assert lmmcore.Cross is Cross


# --------------------------------------------------------------------------- variants give the same cross


def _variant_zip(tmp, folder):
    return zip_folder(folder, tmp / "tiny.zip")


def _variant_zip_subfolder(tmp, folder):
    return zip_folder(folder, tmp / "tiny.zip", prefix="tiny_f2/")


def _variant_json(tmp, folder):
    control = yaml.safe_load((folder / "tiny_f2.yaml").read_text())
    (folder / "tiny_f2.yaml").unlink()
    (folder / "tiny_f2.json").write_text(json.dumps(control))
    return folder / "tiny_f2.json"


def _variant_semicolon(tmp, folder):
    for f in folder.glob("*.csv"):
        f.write_text(f.read_text().replace(",", ";"))
    return edit_control(folder, "tiny_f2.yaml", sep=";")


def _transpose_csv(path: Path) -> None:
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    rows = [ln.split(",") for ln in lines]
    path.write_text("\n".join(",".join(col) for col in zip(*rows)) + "\n")


def _variant_transposed(tmp, folder):
    for name in ("geno", "pheno", "covar"):
        _transpose_csv(folder / f"{name}.csv")
    return edit_control(folder, "tiny_f2.yaml", geno_transposed=True, pheno_transposed=True,
                        covar_transposed=True)


def _variant_lists(tmp, folder):
    geno = pd.read_csv(folder / "geno.csv", comment="#", dtype=str, keep_default_na=False)
    # two genotype files with their rows in different orders (joined by ID)
    geno[["id", "mXb", "m10b", "m2a"]].to_csv(folder / "geno_a.csv", index=False)
    geno[["id", "m10a", "mXa", "m2b", "m10c"]].iloc[::-1].to_csv(folder / "geno_b.csv", index=False)
    gmap = pd.read_csv(folder / "gmap.csv", comment="#", dtype=str)
    for c in ("10", "2", "X"):
        gmap[gmap["chr"] == c].to_csv(folder / f"gmap_{c}.csv", index=False)
    pheno = pd.read_csv(folder / "pheno.csv", dtype=str, keep_default_na=False)
    pheno[["id", "weight"]].to_csv(folder / "pheno_w.csv", index=False)
    pheno[["id", "length"]].iloc[[5, 0, 1, 2, 3, 4]].to_csv(folder / "pheno_l.csv", index=False)
    return edit_control(folder, "tiny_f2.yaml", geno=["geno_a.csv", "geno_b.csv"],
                        gmap=["gmap_10.csv", "gmap_2.csv", "gmap_X.csv"], pheno=["pheno_w.csv", "pheno_l.csv"])


def _variant_sex_and_cross_info_files(tmp, folder):
    covar = pd.read_csv(folder / "covar.csv", dtype=str)
    covar[["id", "sex"]].iloc[::-1].to_csv(folder / "sex.csv", index=False)
    covar[["id", "dir"]].to_csv(folder / "ci.csv", index=False)
    return edit_control(folder, "tiny_f2.yaml", sex={"file": "sex.csv", "f": "female", "m": "male"},
                        cross_info={"file": "ci.csv", "(AxB)x(AxB)": 0, "(BxA)x(BxA)": 1})


def _variant_cross_info_integers_file(tmp, folder):
    covar = pd.read_csv(folder / "covar.csv", dtype=str)
    pd.DataFrame({"id": covar["id"], "dir": (covar["dir"] == "(BxA)x(BxA)").astype(int)}).to_csv(
        folder / "ci.csv", index=False)
    return edit_control(folder, "tiny_f2.yaml", cross_info="ci.csv")


def _variant_comment_char(tmp, folder):
    for f in folder.glob("*.csv"):
        text = f.read_text().replace("# ", "% ")
        f.write_text("% a comment line\n%another\n" + text)
    return edit_control(folder, "tiny_f2.yaml", comment__char="%")


def _variant_na_strings(tmp, folder):
    for name in ("geno.csv", "pheno.csv"):
        f = folder / name
        f.write_text(f.read_text().replace(",-", ",.").replace(",NA", ",."))
    return edit_control(folder, "tiny_f2.yaml", na__strings=["."])


def _variant_crlf_blanks_quotes(tmp, folder):
    geno = folder / "geno.csv"
    geno.write_text(geno.read_text().replace(",", " , ").replace("\n", "\r\n"))
    covar = folder / "covar.csv"
    covar.write_text(covar.read_text().replace("(AxB)x(AxB)", '"(AxB)x(AxB)"'))
    return folder / "tiny_f2.yaml"


def _variant_lists_of_covar_and_pmap(tmp, folder):
    covar = pd.read_csv(folder / "covar.csv", dtype=str)
    # two covariate files joined by ID (the second in another row order), the physical map stacked by chromosome
    covar[["id", "sex", "dir"]].to_csv(folder / "covar_a.csv", index=False)
    covar[["id", "age"]].iloc[::-1].to_csv(folder / "covar_b.csv", index=False)
    pmap = pd.read_csv(folder / "pmap.csv", comment="#", dtype=str)
    for c in ("X", "2", "10"):
        pmap[pmap["chr"] == c].to_csv(folder / f"pmap_{c}.csv", index=False)
    return edit_control(folder, "tiny_f2.yaml", covar=["covar_a.csv", "covar_b.csv"],
                        pmap=["pmap_X.csv", "pmap_2.csv", "pmap_10.csv"])


def _variant_transposed_maps_and_phenocovar(tmp, folder):
    for name in ("gmap", "pmap", "phenocovar"):
        _transpose_csv(folder / f"{name}.csv")
    return edit_control(folder, "tiny_f2.yaml", gmap_transposed=True, pmap_transposed=True,
                        phenocovar_transposed=True)


VARIANTS = {
    "zip": _variant_zip,
    "zip_control_in_a_subfolder": _variant_zip_subfolder,
    "json_control": _variant_json,
    "sep_semicolon": _variant_semicolon,
    "transposed_geno_pheno_covar": _variant_transposed,
    "lists_of_files": _variant_lists,
    "sex_and_cross_info_from_files": _variant_sex_and_cross_info_files,
    "cross_info_file_of_integers": _variant_cross_info_integers_file,
    "comment_char": _variant_comment_char,
    "na_strings": _variant_na_strings,
    "crlf_blanks_and_quotes": _variant_crlf_blanks_quotes,
    "lists_of_covar_and_pmap": _variant_lists_of_covar_and_pmap,
    "transposed_maps_and_phenocovar": _variant_transposed_maps_and_phenocovar,
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_give_the_same_cross(variant, tiny_f2, tmp_path):
    folder = copy_fixture(TINY_F2, tmp_path)
    source = VARIANTS[variant](tmp_path, folder)
    cross, messages = read_quiet(source)
    assert messages == []
    assert_same_cross(cross, tiny_f2)


def test_zip_bytes_with_a_display_name(tiny_f2, tmp_path):
    data = zip_folder(TINY_F2, tmp_path / "t.zip").read_bytes()
    cross, _ = read_quiet(data, name="upload.zip")
    assert_same_cross(cross, tiny_f2)
    assert cross.source == "upload.zip"


# --------------------------------------------------------------------------- the hand-written DO cross


def test_tiny_do_by_hand():
    cross, messages = read_quiet(TINY_DO / "tiny_do.json")
    assert cross.crosstype == "do" and cross.ids == ("d1", "d2", "d3", "d4", "d5")
    # geno_chr1.csv: A=1, H=2, B=3, '-'=0
    np.testing.assert_array_equal(cross.geno["1"], [[1, 2, 3, 1], [3, 3, 2, 0], [2, 1, 1, 3], [1, 1, 3, 2],
                                                    [3, 2, 1, 1]])
    # geno_X.csv lacks d3 (missing), lists d5 first: joined by ID as R/qtl2's cbind_expand
    np.testing.assert_array_equal(cross.geno["X"], [[2, 1], [3, 1], [0, 0], [1, 0], [1, 3]])
    # founder_geno.csv is transposed (markers in rows): founders A..H are the rows here
    assert cross.founders == tuple("ABCDEFGH")
    np.testing.assert_array_equal(cross.founder_geno["1"].T, [[1, 1, 3, 3, 1, 3, 1, 3], [3, 1, 1, 1, 3, 3, 1, 1],
                                                              [1, 3, 0, 3, 1, 1, 3, 3], [3, 3, 1, 1, 1, 3, 3, 1]])
    np.testing.assert_array_equal(cross.founder_geno["X"].T, [[1, 1, 1, 3, 3, 3, 1, 3], [3, 1, 3, 1, 3, 1, 3, 1]])
    np.testing.assert_array_equal(cross.is_female, [True, False, True, False, True])
    np.testing.assert_array_equal(cross.cross_info, [[4], [5], [6], [7], [8]])
    assert cross.cross_info_names == ("ngen",)
    assert cross.gmap["1"].to_dict() == {"s1": 0.5, "s2": 1.5, "s3": 1.5, "s4": 3.25}
    assert cross.pmap is None
    # two phenotype files joined by ID: the union (d6 has no genotypes; R/qtl2 keeps it)
    expected = pd.DataFrame({"bw": [20.5, 22, np.nan, 19.75, 21, np.nan],
                             "glucose": [np.nan, 160, 170.5, np.nan, 150, 140]},
                            index=pd.Index(["d1", "d2", "d3", "d4", "d5", "d6"], name="id"))
    pd.testing.assert_frame_equal(cross.pheno, expected, check_index_type=False)
    assert len(messages) == 1 and "1 individual of pheno_a.csv, pheno_b.csv has no genotypes ('d6')" in messages[0]


def test_tiny_do_founder_files_and_cross_info_columns_as_lists(tmp_path):
    """founder_geno as two (transposed) files joined by founder, sex and cross_info from covariate columns
    (a list of columns for cross_info): the same cross as tiny_do.json."""
    folder = copy_fixture(TINY_DO, tmp_path)
    lines = (folder / "founder_geno.csv").read_text().splitlines()
    head, rows = lines[0], lines[1:]
    (folder / "fg_a.csv").write_text("\n".join([head] + rows[:3]) + "\n")
    (folder / "fg_b.csv").write_text("\n".join([head] + rows[3:]) + "\n")
    sex = pd.read_csv(folder / "sex.csv", sep=";", dtype=str)
    info = pd.read_csv(folder / "crossinfo.csv", sep=";", dtype=str)
    covar = sex.merge(info, on=sex.columns[0])
    covar["ngen2"] = covar["ngen"]
    covar.to_csv(folder / "covar.csv", sep=";", index=False)
    control = json.loads((folder / "tiny_do.json").read_text())
    control.update(founder_geno=["fg_a.csv", "fg_b.csv"], covar="covar.csv",
                   sex={"covar": sex.columns[1], **{k: v for k, v in control["sex"].items() if k != "file"}},
                   cross_info={"covar": ["ngen", "ngen2"]})
    (folder / "tiny_do.json").write_text(json.dumps(control))
    cross, _ = read_quiet(folder / "tiny_do.json")
    base, _ = read_quiet(TINY_DO / "tiny_do.json")
    assert cross.founders == base.founders
    for c in base.geno:
        np.testing.assert_array_equal(cross.founder_geno[c], base.founder_geno[c])
    np.testing.assert_array_equal(cross.is_female, base.is_female)
    np.testing.assert_array_equal(cross.cross_info, np.repeat(base.cross_info, 2, axis=1))
    assert cross.cross_info_names == ("ngen", "ngen2")


# --------------------------------------------------------------------------- against R/qtl2's read_cross2


def assert_matches_r(cross: Cross, prefix: Path) -> None:
    """Compare every field with R/qtl2's reading written by make_r_reference.R."""
    geno = pd.read_csv(f"{prefix}_geno.csv", dtype={"chr": str, "id": str, "marker": str})
    assert sorted(cross.geno) == sorted(geno["chr"].unique())
    for c, part in geno.groupby("chr"):
        expected = part.pivot(index="id", columns="marker", values="code")
        expected = expected.loc[list(cross.ids), list(cross.gmap[c].index)]
        np.testing.assert_array_equal(cross.geno[c], expected.to_numpy(), err_msg=f"chr {c}")
    maps = pd.read_csv(f"{prefix}_map.csv", dtype={"chr": str, "marker": str})
    for c, part in maps.groupby("chr", sort=False):
        assert list(cross.gmap[c].index) == part["marker"].tolist()  # same marker order within chr
        np.testing.assert_allclose(cross.gmap[c].to_numpy(), part["gmap"].to_numpy(), rtol=0, atol=1e-12)
        if part["pmap"].notna().any():
            np.testing.assert_allclose(cross.pmap[c].to_numpy(), part["pmap"].to_numpy(), rtol=0, atol=1e-12)
        else:
            assert cross.pmap is None
    ind = pd.read_csv(f"{prefix}_ind.csv", dtype={"id": str})
    assert list(cross.ids) == ind["id"].tolist()
    np.testing.assert_array_equal(cross.is_female, ind["is_female"].to_numpy())
    np.testing.assert_array_equal(cross.cross_info, ind.iloc[:, 2:].to_numpy())
    pheno = pd.read_csv(f"{prefix}_pheno.csv", index_col=0, dtype={0: str})
    assert list(cross.pheno.index) == list(pheno.index.astype(str))
    np.testing.assert_array_equal(cross.pheno.to_numpy(), pheno.to_numpy())
    founder = Path(f"{prefix}_founder.csv")
    if founder.exists():
        f = pd.read_csv(founder, dtype={"chr": str, "founder": str, "marker": str})
        for c, part in f.groupby("chr"):
            expected = part.pivot(index="founder", columns="marker", values="code")
            expected = expected.loc[list(cross.founders), list(cross.gmap[c].index)]
            np.testing.assert_array_equal(cross.founder_geno[c], expected.to_numpy())
    else:
        assert cross.founder_geno is None
    warnings = Path(f"{prefix}_warnings.txt").read_text().strip()
    assert warnings == ""  # R/qtl2 said nothing about these crosses


@pytest.mark.parametrize("name, source", [("iron_subset", "iron_subset.zip"), ("tiny_f2", "tiny_f2/tiny_f2.yaml"),
                                          ("tiny_do", "tiny_do/tiny_do.json")])
def test_matches_r_qtl2_read_cross2(name, source):
    cross, _ = read_quiet(DATA / source)
    assert_matches_r(cross, R_REF / name)


def test_iron_subset_by_its_text():
    cross, messages = read_quiet(DATA / "iron_subset.zip")
    assert messages == [] and cross.n == 20 and cross.chromosomes == ("1", "7", "X")
    assert cross.n_markers == {"1": 3, "7": 7, "X": 2}
    # iron_geno.csv, mouse 1: BB,SB,SB on chr 1 and BB,BB on X (SS=1, SB=2, BB=3)
    np.testing.assert_array_equal(cross.geno["1"][0], [3, 2, 2])
    np.testing.assert_array_equal(cross.geno["X"][0], [3, 3])
    # mice 1-75 are males, 146-215 females; (BxS)x(BxS) = 1 for 1-5 and 146-150
    np.testing.assert_array_equal(cross.is_female, [False] * 10 + [True] * 10)
    np.testing.assert_array_equal(cross.cross_info[:, 0], ([1] * 5 + [0] * 5) * 2)


# --------------------------------------------------------------------------- R/qtl2's semantics, one by one


def _cross(tmp: Path, control: dict, files: dict[str, str]):
    folder = tmp / "c"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    (folder / "c.yaml").write_text(yaml.safe_dump(control))
    return read_quiet(folder / "c.yaml")


RIL_MAP = "marker,chr,pos\nm1,1,0\nm2,1,10\nm3,1,20\n"


def test_codes_outside_genotypes_are_missing_with_a_message(tmp_path):
    cross, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv",
                                        "genotypes": {"A": 1, "B": 2}},
                             {"g.csv": "id,m1,m2,m3\nr1,A,B,Q\nr2,Q,A,B\nr3,B,B,A\n", "m.csv": RIL_MAP})
    np.testing.assert_array_equal(cross.geno["1"], [[1, 2, 0], [0, 1, 2], [2, 2, 1]])
    assert len(messages) == 1 and "g.csv" in messages[0] and "2 genotypes" in messages[0] and "'Q'" in messages[0]


def test_codes_the_type_cannot_hold_are_missing_with_a_message(tmp_path):
    # R/qtl2's riself holds 1 and 2 only; 3 (B in the default map) is "invalid" and ignored by its HMM
    cross, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv"},
                             {"g.csv": "id,m1,m2,m3\nr1,A,H,B\nr2,B,A,A\n", "m.csv": RIL_MAP})
    np.testing.assert_array_equal(cross.geno["1"], [[1, 2, 0], [0, 1, 1]])
    assert "2 genotypes with codes an riself cross cannot hold (3)" in messages[0]


def test_backcross_male_x_holds_hemizygous_codes(tmp_path):
    files = {"g.csv": "id,m1,x1\nf1,AB,AB\nm1,AB,AB\nm2,AA,BB\n",
             "m.csv": "marker,chr,pos\nm1,1,0\nx1,X,0\n", "c.csv": "id,sex\nf1,f\nm1,m\nm2,m\n"}
    control = {"crosstype": "bc", "geno": "g.csv", "gmap": "m.csv", "covar": "c.csv", "x_chr": "X",
               "genotypes": {"AA": 1, "AB": 2, "BB": 3}, "sex": {"covar": "sex", "f": "female", "m": "male"}}
    cross, messages = _cross(tmp_path, control, files)
    np.testing.assert_array_equal(cross.geno["1"][:, 0], [2, 2, 1])
    np.testing.assert_array_equal(cross.geno["X"][:, 0], [2, 0, 3])  # a male cannot be AB on X; BB is B(Y)
    assert "1 genotype with codes a bc cross cannot hold (2)" in messages[0]


def test_markers_missing_from_the_map_or_genotypes_are_left_out(tmp_path):
    cross, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv",
                                        "genotypes": {"A": 1, "B": 2}},
                             {"g.csv": "id,m1,m2,m3,extra\nr1,A,B,A,B\n", "m.csv": RIL_MAP + "m9,1,30\nm4,1,NA\n"})
    assert list(cross.gmap["1"].index) == ["m1", "m2", "m3"]
    text = " ".join(messages)
    assert "'m4'" in text and "without genetic map position" in text
    assert "'extra'" in text and "'m9'" in text and "left out" in text


def test_individuals_without_sex_are_left_out(tmp_path):
    files = {"g.csv": "id,m1,x1\na,AA,AA\nb,AB,BB\nc,BB,AA\n", "m.csv": "marker,chr,pos\nm1,1,0\nx1,X,0\n",
             "c.csv": "id,sex,dir\na,f,0\nc,m,1\n"}
    control = {"crosstype": "f2", "geno": "g.csv", "gmap": "m.csv", "covar": "c.csv", "x_chr": "X",
               "genotypes": {"AA": 1, "AB": 2, "BB": 3}, "sex": {"covar": "sex", "f": "female", "m": "male"},
               "cross_info": {"covar": "dir"}}
    cross, messages = _cross(tmp_path, control, files)
    assert cross.ids == ("a", "c")
    np.testing.assert_array_equal(cross.geno["1"][:, 0], [1, 3])
    np.testing.assert_array_equal(cross.cross_info[:, 0], [0, 1])
    assert "1 genotyped individual without sex" in messages[0] and "'b'" in messages[0]


def test_no_sex_with_an_x_means_all_female_with_a_message(tmp_path):
    files = {"g.csv": "id,m1,x1\na,AA,AA\nb,AB,BB\n", "m.csv": "marker,chr,pos\nm1,1,0\nx1,X,0\n",
             "ci.csv": "id,d\na,0\nb,0\n"}
    control = {"crosstype": "f2", "geno": "g.csv", "gmap": "m.csv", "x_chr": "X",
               "genotypes": {"AA": 1, "AB": 2, "BB": 3}, "cross_info": {"file": "ci.csv"}}
    cross, messages = _cross(tmp_path, control, files)
    assert cross.is_female.all() and "all individuals are taken as female" in messages[0]


def test_sex_without_codes_is_zero_female_one_male(tmp_path):
    files = {"g.csv": "id,m1\na,A\nb,B\n", "m.csv": "marker,chr,pos\nm1,1,0\n", "s.csv": "id,sex\na,1\nb,0\n"}
    cross, _ = _cross(tmp_path, {"crosstype": "bc", "geno": "g.csv", "gmap": "m.csv", "sex": {"file": "s.csv"}},
                      files)
    np.testing.assert_array_equal(cross.is_female, [False, True])


def test_f2_without_x_needs_no_cross_info_and_defaults(tmp_path):
    cross, messages = _cross(tmp_path, {"crosstype": "f2", "geno": "g.csv", "gmap": "m.csv"},
                             {"g.csv": "id,m1,m2\na,A,H\nb,B,C\nc,D,-\n", "m.csv": "marker,chr,pos\nm1,1,0\nm2,1,5\n"})
    # R/qtl2's default codes A=1, H=2, B=3, D=4, C=5; '-' is not in the default na.strings (NA)
    np.testing.assert_array_equal(cross.geno["1"], [[1, 2], [3, 5], [4, 0]])
    assert cross.cross_info.shape == (3, 0) and cross.alleles == ("A", "B") and cross.is_female.all()
    assert cross.pheno.shape == (0, 0) and "'-'" in messages[0]


def test_chromosome_x_not_marked_and_x_chr_absent_get_messages(tmp_path):
    files = {"g.csv": "id,m1,x1\na,A,A\n", "m.csv": "marker,chr,pos\nm1,1,0\nx1,X,0\n"}
    _, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv", "x_chr": "Z",
                                    "genotypes": {"A": 1}}, files)
    text = " ".join(messages)
    assert "'Z' as the X chromosome" in text and "Suspicious X chromosome" in text


def test_alleles_of_the_wrong_length_are_padded(tmp_path):
    files = {"g.csv": "id,m1\na,A\n", "m.csv": "marker,chr,pos\nm1,1,0\n"}
    cross, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv",
                                        "alleles": ["L"], "unknown_field": 3}, files)
    assert cross.alleles == ("L", "A")
    assert any("1 alleles" in m for m in messages) and any("'unknown_field'" in m for m in messages)


def test_physical_map_out_of_order_gets_a_message(tmp_path):
    files = {"g.csv": "id,m1,m2\na,A,B\n", "m.csv": "marker,chr,pos\nm1,1,0\nm2,1,5\n",
             "p.csv": "marker,chr,pos\nm1,1,9\nm2,1,3\n"}
    cross, messages = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "gmap": "m.csv", "pmap": "p.csv",
                                        "genotypes": {"A": 1, "B": 2}}, files)
    assert list(cross.pmap["1"].index) == ["m1", "m2"] and cross.pmap["1"].tolist() == [9, 3]
    assert "out of order on chromosome 1" in messages[0]


def test_pmap_only_cross_uses_it_as_the_map(tmp_path):
    files = {"g.csv": "id,m1,m2\na,A,B\n", "p.csv": "marker,chr,pos\nm2,1,3\nm1,1,9\n"}
    cross, _ = _cross(tmp_path, {"crosstype": "riself", "geno": "g.csv", "pmap": "p.csv",
                                 "genotypes": {"A": 1, "B": 2}}, files)
    assert cross.gmap["1"].to_dict() == {"m2": 3.0, "m1": 9.0} and cross.pmap is None
    np.testing.assert_array_equal(cross.geno["1"], [[2, 1]])


def test_every_supported_cross_type_is_accepted():
    assert set(CROSS_TYPES) == {"bc", "f2", "riself", "risib", "dh", "haploid", "ail", "do", "riself4",
                                "riself8", "riself16", "risib4", "risib8", "magic19", "hs"}
    assert {n: CROSS_TYPES[n].n_alleles for n in ("do", "hs", "riself4", "riself16", "magic19")} == \
        {"do": 8, "hs": 8, "riself4": 4, "riself16": 16, "magic19": 19}


def test_default_messages_are_lmm_warnings(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "g.csv").write_text("id,m1\na,Q\n")
    (folder / "m.csv").write_text("marker,chr,pos\nm1,1,0\n")
    (folder / "c.yaml").write_text("crosstype: riself\ngeno: g.csv\ngmap: m.csv\n")
    with pytest.warns(LMMWarning, match="not among the control file's genotypes"):
        read_cross(folder / "c.yaml")


# --------------------------------------------------------------------------- the tokenizer


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tokenizer_matches_the_csv_module(seed):
    """Random cells (blanks, empty cells, long codes, CRLF) read as Python's csv module reads them."""
    import csv

    rng = np.random.default_rng(seed)
    alphabet = np.array(list("ABH-x.9"))
    n, m = 30, 40
    width = rng.integers(0, 12, size=(n, m))
    cells = [["".join(rng.choice(alphabet, w)) for w in row] for row in width]
    pad = rng.integers(0, 2, size=(n, m))
    ids = [f"id{i}" + ("é" if seed == 2 and i % 3 == 0 else "") for i in range(n)]  # UTF-8 IDs too
    lines = ["id," + ",".join(f"c{j}" for j in range(m))]
    lines += [ids[i] + "," + ",".join(" " * pad[i, j] + cells[i][j] for j in range(m)) for i in range(n)]
    text = ("\r\n" if seed == 1 else "\n").join(lines) + ("\n" if seed != 2 else "")
    sheet = read_sheet(text.encode(), "r.csv")
    expected = [[c.strip() for c in row[1:]] for row in csv.reader(io.StringIO(text))][1:]
    got = np.char.decode(sheet.cells, "utf-8").tolist()
    assert got == expected and sheet.rownames.tolist() == ids


@pytest.mark.parametrize("block", [16, 100, 1000])
def test_tokenizer_blocks_give_the_same_cells(block, monkeypatch, tiny_f2):
    """Lines are cut into blocks at line ends; tiny blocks (a line longer than a block) change nothing."""
    import lmmcore.cross_table as table

    rng = np.random.default_rng(block)
    text = "id," + ",".join(f"m{j}" for j in range(60)) + "\n" + "".join(
        f"r{i}," + ",".join(rng.choice(["AA", "AB", "B", "-", ""], 60)) + "\n" for i in range(40))
    whole = read_sheet(text.encode(), "w.csv")
    monkeypatch.setattr(table, "_BLOCK_BYTES", block)
    cut = read_sheet(text.encode(), "w.csv")
    np.testing.assert_array_equal(cut.cells, whole.cells)
    np.testing.assert_array_equal(cut.rownames, whole.rownames)
    assert_same_cross(read_quiet(TINY_F2 / "tiny_f2.yaml")[0], tiny_f2)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 9])
def test_distinct_matches_numpy_unique(width):
    rng = np.random.default_rng(width)
    words = np.array([b"".join(rng.choice([b"A", b"B", b"\xc3\xa9"], width))[:width] for _ in range(7)] + [b""])
    cells = rng.choice(words, size=(50, 30)).astype(f"S{width}")
    index, values, counts = _distinct(cells.T)  # a transposed (strided) view, as for transposed files
    np.testing.assert_array_equal(values[index], cells.T)
    expected, expected_counts = np.unique(cells, return_counts=True)
    order = np.argsort(values[counts > 0])
    assert values[counts > 0][order].tolist() == expected.tolist()
    assert counts[counts > 0][order].tolist() == expected_counts.tolist()
