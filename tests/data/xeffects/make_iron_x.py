"""Make iron_x.zip: 60 mice of R/qtl2's iron example, every chromosome (X effects tests).

Run from this folder with the iron zip of R/qtl2's sample data:
    python make_iron_x.py /work/shared/data/qtl2/iron.zip
Fifteen mice of each sex and cross direction (the first fifteen of each in
the file), all markers; the control file is iron's.
"""

import io
import sys
import zipfile

import pandas as pd

src = zipfile.ZipFile(sys.argv[1])
read = lambda n: pd.read_csv(io.BytesIO(src.read(n)), dtype=str, keep_default_na=False)  # noqa: E731
covar = read("iron_covar.csv")
ids = covar.groupby(["sex", "cross_direction"], sort=True).head(15)["id"]
ids = covar["id"][covar["id"].isin(ids)]  # file order
geno = read("iron_geno.csv")
files = {
    "iron_geno.csv": geno[geno["id"].isin(ids)],
    "iron_gmap.csv": read("iron_gmap.csv"),
    "iron_pmap.csv": read("iron_pmap.csv"),
    "iron_pheno.csv": read("iron_pheno.csv").pipe(lambda d: d[d["id"].isin(ids)]),
    "iron_covar.csv": covar[covar["id"].isin(ids)],
    "iron_phenocovar.csv": read("iron_phenocovar.csv"),
}
with zipfile.ZipFile("iron_x.zip", "w", zipfile.ZIP_DEFLATED) as out:
    out.writestr(zipfile.ZipInfo("iron.yaml", (2024, 1, 1, 0, 0, 0)), src.read("iron.yaml"))
    for name, frame in files.items():
        out.writestr(zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0)), frame.to_csv(index=False))
print(len(ids), "mice,", geno.shape[1] - 1, "markers")
