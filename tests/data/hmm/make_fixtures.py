"""Make the small R/qtl2 cross fixtures of tests/test_hmm_rqtl2.py (run once, by hand).

    python tests/data/hmm/make_fixtures.py /work/shared/data/qtl2

Subsets R/qtl2's example crosses (iron.zip: f2, 15 mice, chromosomes 13
and X; DOex.zip: do, 8 mice, chromosomes 3 and X) to individuals of both
sexes (and, for iron, both cross directions; for DOex, both generations)
and two chromosomes (one autosome and X), keeping every
marker of those chromosomes, and writes each as an R/qtl2 zip with a JSON
control file. The probabilities R/qtl2 computes for them are made by
``make_fixtures.R`` (see README.md).
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent


def _read(z: zipfile.ZipFile, name: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(z.read(name)), comment="#", dtype=str)


def _write_zip(path: Path, control_name: str, control: dict, tables: dict[str, pd.DataFrame]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(control_name, json.dumps(control, indent=2) + "\n")
        for name, df in tables.items():
            z.writestr(name, df.to_csv(index=False))


def _pick(covar: pd.DataFrame, by: list[str], n: int) -> list[str]:
    """n IDs spread over the combinations of the columns ``by``."""
    groups = [g.iloc[:, 0].tolist() for _, g in covar.groupby(by, sort=True)]
    out: list[str] = []
    k = 0
    while len(out) < n:
        for g in groups:
            if k < len(g) and len(out) < n:
                out.append(g[k])
        k += 1
    return out


def iron(src: Path) -> None:
    with zipfile.ZipFile(src / "iron.zip") as z:
        geno, gmap, covar, pheno = (_read(z, f"iron_{x}.csv") for x in ("geno", "gmap", "covar", "pheno"))
        pmap = _read(z, "iron_pmap.csv")
    ids = _pick(covar, ["sex", "cross_direction"], 15)
    chrs = ["13", "X"]
    markers = gmap.loc[gmap.iloc[:, 1].isin(chrs), gmap.columns[0]].tolist()
    sub = lambda df: df[df.iloc[:, 0].isin(ids)].set_index(df.columns[0]).loc[ids].reset_index()  # noqa: E731
    control = {
        "description": "15 mice of R/qtl2's iron example (chromosomes 13 and X), for lmmcore's tests",
        "crosstype": "f2",
        "geno": "iron_geno.csv", "gmap": "iron_gmap.csv", "pmap": "iron_pmap.csv",
        "pheno": "iron_pheno.csv", "covar": "iron_covar.csv",
        "alleles": ["S", "B"], "genotypes": {"SS": 1, "SB": 2, "BB": 3},
        "sex": {"covar": "sex", "f": "female", "m": "male"},
        "cross_info": {"covar": "cross_direction", "(SxB)x(SxB)": 0, "(BxS)x(BxS)": 1},
        "x_chr": "X", "na.strings": ["-", "NA"],
    }
    _write_zip(HERE / "iron_sub.zip", "iron_sub.json", control, {
        "iron_geno.csv": sub(geno)[[geno.columns[0]] + markers],
        "iron_gmap.csv": gmap[gmap.iloc[:, 1].isin(chrs)],
        "iron_pmap.csv": pmap[pmap.iloc[:, 1].isin(chrs)],
        "iron_pheno.csv": sub(pheno), "iron_covar.csv": sub(covar),
    })


def doex(src: Path) -> None:
    with zipfile.ZipFile(src / "DOex.zip") as z:
        geno, gmap, pmap, covar, pheno, fg = (
            _read(z, f"DOex_{x}.csv") for x in ("geno", "gmap", "pmap", "covar", "pheno", "foundergeno")
        )
        control = json.loads(z.read("DOex.json"))
    ids = _pick(covar, ["Sex", "ngen"], 8)
    chrs = ["3", "X"]
    keep = gmap.iloc[:, 1].isin(chrs)
    markers = gmap.loc[keep, gmap.columns[0]].tolist()
    sub = lambda df: df[df.iloc[:, 0].isin(ids)].set_index(df.columns[0]).loc[ids].reset_index()  # noqa: E731
    control["description"] = "8 mice of R/qtl2's DOex example (chromosomes 3 and X), for lmmcore's tests"
    _write_zip(HERE / "DOex_sub.zip", "DOex_sub.json", control, {
        "DOex_geno.csv": sub(geno)[[geno.columns[0]] + markers],
        "DOex_foundergeno.csv": fg[fg.iloc[:, 0].isin(markers)],
        "DOex_gmap.csv": gmap[keep], "DOex_pmap.csv": pmap[keep],
        "DOex_pheno.csv": sub(pheno), "DOex_covar.csv": sub(covar),
    })


def synthetic_ril(crosstype: str, n_founders: int, funnel: bool, seed: int, x: bool = False) -> None:
    """A small random multi-parent RIL cross (6 lines, 2 chromosomes): founder
    SNP alleles 1/3 (a few unknown), line calls A/H/B/- (hets and missing
    included), and for funnel types the order of the founders per line."""
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = [chr(ord("A") + i) for i in range(n_founders)]
    n, chrs = 6, {"1": 8, ("X" if x else "2"): 6}
    markers, gmap_rows = [], []
    for c, m in chrs.items():
        pos = np.sort(rng.uniform(0, 60, m)).round(2)
        pos[2] = pos[1]  # two markers at the same position
        names = [f"s{c}_{k}" for k in range(m)]
        markers += names
        gmap_rows += list(zip(names, [c] * m, pos))
    M = len(markers)
    fg = rng.choice(np.array(["A", "B"]), size=(M, n_founders))
    fg[rng.random((M, n_founders)) < 0.05] = "-"
    calls = rng.choice(np.array(["A", "B", "A", "B", "H", "-"]), size=(n, M))
    ids = [f"L{i:02d}" for i in range(n)]
    control = {
        "description": f"synthetic {crosstype} cross for lmmcore's tests",
        "crosstype": crosstype, "geno": "geno.csv", "founder_geno": "founder_geno.csv", "gmap": "gmap.csv",
        "alleles": letters, "genotypes": {"A": 1, "H": 2, "B": 3}, "na.strings": ["-"],
        "geno_transposed": False, "founder_geno_transposed": True,
    }
    tables = {
        "geno.csv": pd.DataFrame(calls, columns=markers).assign(id=ids)[["id"] + markers],
        "founder_geno.csv": pd.DataFrame(fg, columns=letters).assign(marker=markers)[["marker"] + letters],
        "gmap.csv": pd.DataFrame(gmap_rows, columns=["marker", "chr", "pos"]),
    }
    if x:
        control["x_chr"] = "X"
    if funnel:
        orders = np.array([rng.permutation(n_founders) + 1 for _ in range(n)])
        orders[1] = orders[0]  # two lines from the same funnel
        control["cross_info"] = {"file": "cross_info.csv"}
        tables["cross_info.csv"] = pd.DataFrame(orders, columns=letters).assign(id=ids)[["id"] + letters]
    _write_zip(HERE / f"{crosstype}_synthetic.zip", f"{crosstype}.json", control, tables)


def synthetic_cross(crosstype: str, seed: int) -> None:
    """A small random cross of a type without example data in R/qtl2 (8
    individuals, chromosomes 1 and X where the type models X, both sexes),
    with random calls of the codes R/qtl2 accepts for each sex, missing
    calls, two markers at the same position, and cross information (AIL:
    generations and direction, RIL by sib mating: direction, HS: generations)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = 8
    ids = [f"i{k}" for k in range(n)]
    female = np.array([True, False] * (n // 2))
    has_x = crosstype in ("bc", "risib", "ail", "hs")
    chrs = {"1": 6, "X": 5} if has_x else {"1": 6, "2": 4}
    two = {"A": 1, "H": 2, "B": 3, "D": 4, "C": 5}
    codes = {  # per chromosome kind: female/autosome and male X letters
        "bc": (["A", "H"], ["A", "B"]), "risib": (["A", "B"], ["A", "B"]), "dh": (["A", "B"], None),
        "haploid": (["A", "B"], None), "ail": (["A", "H", "B", "D", "C"], ["A", "B", "D", "C"]),
        "hs": (["A", "H", "B", "D", "C"], ["A", "B"]),
    }[crosstype]
    genotypes = {"risib": {"A": 1, "B": 2}, "dh": {"A": 1, "B": 2}, "haploid": {"A": 1, "B": 2}}.get(crosstype, two)
    markers, gmap_rows, cols = [], [], []
    for c, m in chrs.items():
        pos = np.sort(rng.uniform(0, 50, m)).round(2)
        pos[2] = pos[1]
        names = [f"s{c}_{k}" for k in range(m)]
        markers += names
        gmap_rows += list(zip(names, [c] * m, pos))
        auto = rng.choice(np.array(codes[0]), size=(n, m))
        if c == "X" and codes[1] is not None:
            auto[~female] = rng.choice(np.array(codes[1]), size=(int((~female).sum()), m))
        auto[rng.random((n, m)) < 0.15] = "-"
        cols.append(auto)
    geno = pd.DataFrame(np.hstack(cols), columns=markers).assign(id=ids)[["id"] + markers]
    control = {
        "description": f"synthetic {crosstype} cross for lmmcore's tests", "crosstype": crosstype,
        "geno": "geno.csv", "gmap": "gmap.csv", "covar": "covar.csv", "genotypes": genotypes,
        "alleles": list("ABCDEFGH") if crosstype == "hs" else ["A", "B"], "na.strings": ["-"],
    }
    tables = {"geno.csv": geno, "gmap.csv": pd.DataFrame(gmap_rows, columns=["marker", "chr", "pos"])}
    covar = pd.DataFrame({"id": ids, "sex": np.where(female, "f", "m")})
    if has_x:
        control["x_chr"] = "X"
        control["sex"] = {"covar": "sex", "f": "female", "m": "male"}
    info = {
        "ail": pd.DataFrame({"ngen": [2, 3, 5, 5, 9, 9, 12, 4], "dir": [0, 0, 1, 1, 2, 2, 0, 1]}),
        "risib": pd.DataFrame({"dir": [0, 1, 0, 1, 1, 0, 0, 1]}),
        "hs": pd.DataFrame({"ngen": [1, 1, 3, 3, 10, 10, 25, 2]}),
    }.get(crosstype)
    if info is not None:
        control["cross_info"] = {"file": "cross_info.csv"}
        tables["cross_info.csv"] = info.assign(id=ids)[["id", *info.columns]]
    if crosstype == "hs":
        fg = rng.choice(np.array(["A", "B"]), size=(len(markers), 8))
        fg[rng.random(fg.shape) < 0.05] = "-"
        tables["founder_geno.csv"] = pd.DataFrame(fg, columns=list("ABCDEFGH")).assign(marker=markers)[
            ["marker", *"ABCDEFGH"]]
        control["founder_geno"] = "founder_geno.csv"
        control["founder_geno_transposed"] = True
    tables["covar.csv"] = covar
    _write_zip(HERE / f"{crosstype}_synthetic.zip", f"{crosstype}.json", control, tables)


def reference_subsets(src: Path) -> None:
    """R/qtl2 0.43-5's probabilities for the fixtures' mice, cut from the shared
    reference files (``calc_genoprob(cross, error_prob = 0.002)``, Haldane,
    markers only; the HMM is per individual and per chromosome, so the rows
    and chromosomes of the full crosses are exactly those of the subsets).
    """
    jobs = [
        ("iron_sub.zip", "iron_covar.csv", src.parent / "iron" / "iron_genoprobs.csv", "iron_sub_genoprob_rqtl2.csv"),
        ("DOex_sub.zip", "DOex_covar.csv", src / "DOex_genoprob_rqtl2.csv.gz", "DOex_sub_genoprob_rqtl2.csv.gz"),
        ("DOex_sub.zip", "DOex_covar.csv", src / "DOex_alleleprob_rqtl2.csv.gz", "DOex_sub_alleleprob_rqtl2.csv.gz"),
    ]
    for zname, covar_name, ref, out in jobs:
        with zipfile.ZipFile(HERE / zname) as z:
            ids = _read(z, covar_name).iloc[:, 0].tolist()
            markers = set(_read(z, covar_name.replace("covar", "gmap")).iloc[:, 0])
        df = pd.read_csv(ref, index_col=0, dtype=str)
        df.index = df.index.astype(str)
        keep = [c for c in df.columns if c.rsplit(":", 1)[0] in markers]
        df.loc[ids, keep].to_csv(HERE / out, index_label="")


def renamed_alleles(zname: str, alleles: list[str], out: str) -> None:
    """A copy of a fixture cross whose control file names the alleles (founders) by several letters,
    as real crosses do (``B6``, ``CAST``; DO's ``AJ`` ... ``WSB``): only ``alleles`` changes."""
    with zipfile.ZipFile(HERE / zname) as z:
        control_name = next(n for n in z.namelist() if n.endswith(".json"))
        control = json.loads(z.read(control_name))
        tables = {n: _read(z, n) for n in z.namelist() if n != control_name}
    control["alleles"] = alleles
    control["description"] += f"; alleles renamed {', '.join(alleles)}"
    _write_zip(HERE / out, out.replace(".zip", ".json"), control, tables)


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/qtl2")
    if "--synthetic-only" not in sys.argv:
        iron(src)
        doex(src)
        reference_subsets(src)
    synthetic_ril("riself4", 4, True, 4)
    synthetic_ril("riself8", 8, True, 8)
    synthetic_ril("riself16", 16, True, 16)
    synthetic_ril("magic19", 19, False, 19)
    synthetic_ril("risib4", 4, True, 44, x=True)
    synthetic_ril("risib8", 8, True, 88, x=True)
    for k, ct in enumerate(["bc", "risib", "dh", "haploid", "ail", "hs"]):
        synthetic_cross(ct, 100 + k)
    renamed_alleles("iron_sub.zip", ["B6", "CAST"], "iron_sub_b6cast.zip")
    renamed_alleles("DOex_sub.zip", ["AJ", "B6", "129", "NOD", "NZO", "CAST", "PWK", "WSB"], "DOex_sub_founders.zip")
