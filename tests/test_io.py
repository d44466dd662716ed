"""Readers and writers: IDs, delimiters, missing values, atomic output."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lmmcore import LMMInputError, LMMWarning
from lmmcore.io import read_covariates, read_kinship, read_phenotypes, write_csv_atomic


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
