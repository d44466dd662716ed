"""Readers and writers: IDs, delimiters, missing values, atomic output."""

from __future__ import annotations

import io
import os
import stat

import numpy as np
import pandas as pd
import pytest

from lmmcore import LMMInputError, LMMWarning
from lmmcore.genotypes import NA_STRINGS, read_dosages, read_genoprobs, read_map
from lmmcore.io import (
    MISSING_TOKENS,
    read_covariates,
    read_kinship,
    read_kinship_file,
    read_phenotypes,
    write_csv_atomic,
    write_kinship_file,
)


def test_r_style_file_with_empty_first_header_and_na(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text('"","a","b"\n"1",1.5,NA\n"2",,3\n"3",2.5,.\n')
    P = read_phenotypes(p)
    assert list(P.index) == ["1", "2", "3"] and list(P.columns) == ["a", "b"]
    assert np.isnan(P.loc["2", "a"]) and np.isnan(P.loc["1", "b"]) and np.isnan(P.loc["3", "b"])


def test_numeric_ids_keep_their_text(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text(",001,2\n001,1,0.5\n2,0.5,1\n")
    K = read_kinship(p)
    assert list(K.index) == ["001", "2"] and list(K.columns) == ["001", "2"]


def test_kinship_columns_in_another_order_are_reordered(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text(",b,a\na,0.2,1\nb,1,0.2\n")
    K = read_kinship(p)
    np.testing.assert_array_equal(K.to_numpy(), [[1, 0.2], [0.2, 1]])


def test_kinship_labels_that_differ_are_refused(tmp_path):
    p = tmp_path / "k.csv"
    p.write_text(",a,c\na,1,0.2\nb,0.2,1\n")
    with pytest.raises(LMMInputError, match="row ID 'b' has no column"):
        read_kinship(p)


def test_tab_delimited_file_is_read_with_a_warning(tmp_path):
    p = tmp_path / "p.tsv"
    p.write_text("id\tx\n1\t2.0\n2\t3.0\n")
    with pytest.warns(LMMWarning, match="tab-delimited"):
        P = read_phenotypes(p)
    assert P.loc["2", "x"] == 3.0


def test_text_covariates_stay_text_and_numbers_stay_numbers(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(",sex,age\n1,f,3\n2,m,4\n")
    C = read_covariates(p)
    assert C["age"].dtype == float and C["sex"].tolist() == ["f", "m"]


def test_ragged_rows_name_the_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(",a\n1,2\n2,3,4,5\n")
    with pytest.raises(LMMInputError, match="bad.csv"):
        read_phenotypes(p)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out.csv"
    df = pd.DataFrame({"a": np.arange(1000)})

    def explode(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", explode)
    with pytest.raises(KeyboardInterrupt):
        write_csv_atomic(df, target)
    assert os.listdir(tmp_path) == []  # neither the target nor a temporary file


def test_atomic_write_keeps_an_existing_file_unless_forced(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("keep")
    with pytest.raises(LMMInputError, match="--force"):
        write_csv_atomic(pd.DataFrame({"a": [1]}), target)
    assert target.read_text() == "keep"
    write_csv_atomic(pd.DataFrame({"a": [1]}), target, force=True)
    assert target.read_text().startswith("a")


def test_written_file_follows_the_umask(tmp_path):
    """A regression test: the temporary file of the atomic writer used to give results mode 0600."""
    old = os.umask(0o022)
    try:
        target = write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "out.csv")
        kinship = write_kinship_file(np.eye(2), ["a", "b"], tmp_path / "K.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(kinship).st_mode) == 0o644
    old = os.umask(0o077)
    try:
        private = write_csv_atomic(pd.DataFrame({"a": [1]}), tmp_path / "private.csv")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600


PHENO = b'"","a","b"\n"1",1.5,NA\n"2",,3\n"3",2.5,na\n'
KIN = b",x,y\nx,1,0.25\ny,0.25,1\n"
COVAR = b",sex,age\nx,f,3\ny,m,4\n"


@pytest.mark.parametrize("as_file", [False, True])
def test_readers_take_bytes_and_name_the_upload_in_messages(tmp_path, as_file):
    wrap = io.BytesIO if as_file else bytes
    P = read_phenotypes(wrap(PHENO), name="mine.csv")
    on_disk = tmp_path / "p.csv"
    on_disk.write_bytes(PHENO)
    pd.testing.assert_frame_equal(P, read_phenotypes(on_disk))
    pd.testing.assert_frame_equal(read_kinship(wrap(KIN), name="k.csv"), read_kinship(_file(tmp_path, "k.csv", KIN)))
    pd.testing.assert_frame_equal(read_covariates(wrap(COVAR), "c.csv"), read_covariates(_file(tmp_path, "c.csv", COVAR)))
    with pytest.raises(LMMInputError, match="phenotype file 'My data.csv', column 'a', individual '2'") as info:
        read_phenotypes(wrap(PHENO.replace(b'"2",,3', b'"2",tall,3')), name="My data.csv")
    assert "tmp" not in str(info.value) and "upload" not in str(info.value)
    with pytest.warns(LMMWarning, match="^semi.csv: read as a semicolon-delimited file"):
        read_phenotypes(wrap(PHENO.replace(b",", b";")), name="semi.csv")
    with pytest.raises(LMMInputError, match="phenotype file 'upload' is empty"):
        read_phenotypes(wrap(b""))


def _file(folder, name, content):
    path = folder / name
    path.write_bytes(content)
    return path


def test_one_list_of_missing_tokens_for_every_reader(tmp_path):
    """'na' was missing in phenotype files but a number error in genotype files; now every token is missing
    everywhere, and an ID spelled like one of them is kept as an ID."""
    assert set(MISSING_TOKENS) >= {"", "NA", "na", "N/A", "NaN", "nan", "NULL", "null", ".", "-"}
    assert NA_STRINGS == tuple(MISSING_TOKENS)
    cells = list(MISSING_TOKENS)
    body = "".join(f"i{k},{'1' if k % 2 else '0'},{token}\n" for k, token in enumerate(cells))
    text = ",m1,m2\n" + body + "NA,2,1\n"
    P = read_phenotypes(text.encode(), name="p.csv")
    assert np.isnan(P.loc[[f"i{k}" for k in range(len(cells))], "m2"]).all() and P.loc["NA", "m2"] == 1
    gmap = b"marker,chr,pos\nm1,1,0\nm2,1,5\n"
    with pytest.warns(LMMWarning, match=f"{len(cells)} missing dosages .* in the dosage file d.csv"):
        G = read_dosages(text.encode(), gmap, name="d.csv", map_name="map.csv")
    # every token was missing, so each got the mean of the one observed dosage (individual 'NA')
    assert G.ids[-1] == "NA" and G.source == "d.csv"
    np.testing.assert_array_equal(G.dosage[:, 1], np.ones(len(cells) + 1))


def test_genotype_readers_take_bytes(tmp_path):
    gmap = b"# a comment\nmarker,chr,pos\nm2,1,5\nm1,1,0\n"
    probs = b",m1:AA,m1:AB,m2:AA,m2:AB\na,1,0,0.25,0.75\nb,0.5,0.5,1,0\n"
    G = read_genoprobs(probs, io.BytesIO(gmap), name="g.csv", map_name="m.csv")
    on_disk = read_genoprobs(_file(tmp_path, "g.csv", probs), _file(tmp_path, "m.csv", gmap))
    np.testing.assert_array_equal(G.probs, on_disk.probs)
    assert G.markers == on_disk.markers == ("m1", "m2") and G.source == "g.csv"
    pd.testing.assert_frame_equal(read_map(gmap, "m.csv"), read_map(tmp_path / "m.csv"))
    with pytest.raises(LMMInputError, match=r"markers of g.csv is not in the map file m.csv \(m2\)"):
        read_genoprobs(probs, b"marker,chr,pos\nm1,1,0\n", name="g.csv", map_name="m.csv")


def test_loco_kinship_file_round_trip_from_path_and_bytes(tmp_path):
    rng = np.random.default_rng(3)
    ids = ["a", "b", "c"]
    blocks = {}
    for c in ("1", "2", "X"):
        Z = rng.normal(size=(3, 5))
        blocks[c] = Z @ Z.T / 5
    path = write_kinship_file(blocks, ids, tmp_path / "loco.csv")
    for source in (path, path.read_bytes()):
        back = read_kinship_file(source, name="loco.csv")
        assert list(back) == ["1", "2", "X"]
        for c, K in blocks.items():
            assert list(back[c].index) == ids and list(back[c].columns) == ids
            np.testing.assert_array_equal(back[c].to_numpy(), K)  # written with repr precision
    square = write_kinship_file(blocks["1"], ids, tmp_path / "K.csv")
    np.testing.assert_array_equal(read_kinship_file(square).to_numpy(), blocks["1"])
    bad = path.read_bytes().replace(b"\n2,b,", b"\n2,z,", 1)
    with pytest.raises(LMMInputError, match="kinship file 'bad.csv': the rows of chromosome '2'"):
        read_kinship_file(bad, name="bad.csv")


def test_member_of_is_index_isin():
    # tables.member_of replaces Index.isin for IDs and marker names: the same booleans, on text and object
    # indexes, values as lists, arrays or indexes, with repeats and missing values
    from lmmcore.tables import member_of

    rng = np.random.default_rng(12)
    pool = np.array([f"id{i}" for i in range(40)] + ["", "a,b"], dtype=object)
    for _ in range(200):
        a = list(rng.choice(pool, rng.integers(0, 25)))
        b = list(rng.choice(pool, rng.integers(0, 25)))
        if rng.random() < 0.3:
            a.append(None)
        if rng.random() < 0.3:
            b.append(None)
        for index in (pd.Index(a, dtype=object), pd.Index(a, dtype="str")):
            for values in (b, np.asarray(b, dtype=object), pd.Index(b, dtype=object), pd.Index(b, dtype="str")):
                np.testing.assert_array_equal(member_of(index, values), index.isin(values))
