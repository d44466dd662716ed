"""Make iron_subset.zip: 20 mice of R/qtl2's iron example, chromosomes 1, 7 and X.

Run from this folder with the iron zip of R/qtl2's sample data:
    python make_iron_subset.py /work/shared/data/qtl2/iron.zip
Five mice of each sex and cross direction (the first five of each in the
file), all markers of chromosomes 1, 7 and X; the control file is iron's.
"""

import io
import sys
import zipfile

import pandas as pd

src = zipfile.ZipFile(sys.argv[1])
read = lambda n: pd.read_csv(io.BytesIO(src.read(n)), dtype=str, keep_default_na=False)
covar = read("iron_covar.csv")
ids = covar.groupby(["sex", "cross_direction"], sort=True).head(5)["id"]
ids = covar["id"][covar["id"].isin(ids)]  # file order
gmap, pmap = read("iron_gmap.csv"), read("iron_pmap.csv")
markers = gmap["marker"][gmap["chr"].isin(["1", "7", "X"])]
geno = read("iron_geno.csv")
files = {
    "iron_geno.csv": geno[geno["id"].isin(ids)][["id", *markers]],
    "iron_gmap.csv": gmap[gmap["marker"].isin(markers)],
    "iron_pmap.csv": pmap[pmap["marker"].isin(markers)],
    "iron_pheno.csv": read("iron_pheno.csv").pipe(lambda d: d[d["id"].isin(ids)]),
    "iron_covar.csv": covar[covar["id"].isin(ids)],
    "iron_phenocovar.csv": read("iron_phenocovar.csv"),
}
with zipfile.ZipFile("iron_subset.zip", "w", zipfile.ZIP_DEFLATED) as out:
    out.writestr(zipfile.ZipInfo("iron.yaml", (2024, 1, 1, 0, 0, 0)), src.read("iron.yaml"))
    for name, frame in files.items():
        out.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), frame.to_csv(index=False))
print(len(ids), "mice,", len(markers), "markers")
