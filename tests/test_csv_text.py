"""The fast CSV text (lmmcore.csv_text) against pandas' own ``to_csv``, byte for byte."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmmcore import csv_text
from lmmcore.csv_text import NotPlain, csv_chunks
from lmmcore.io import neutralise_formulas, write_csv_atomic


def _pandas_text(df: pd.DataFrame, index: bool = False) -> str:
    return neutralise_formulas(df).to_csv(index=index, lineterminator="\n")


def _fast_text(df: pd.DataFrame, index: bool = False) -> str | None:
    pieces = csv_chunks(df, index=index)
    try:
        return None if pieces is None else "".join(pieces)
    except NotPlain:
        return None


def _awkward_floats(rng, size: int) -> np.ndarray:
    """Random bit patterns (every exponent), normal values at many scales, and the edge cases of notation."""
    bits = rng.integers(0, 2**64, size=size, dtype=np.uint64).view(np.float64)
    scaled = rng.normal(size=size) * 10.0 ** rng.integers(-25, 25, size=size)
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 0.00012345,
             5e-324, 1.7976931348623157e308, 2.0**-1074, 0.1, 1 / 3]
    out = np.concatenate([bits, scaled, edges])
    rng.shuffle(out)
    return out


def test_floats_match_numpy_str_on_random_bit_patterns():
    # the premise of the module: float.__repr__ is numpy's astype(str), which to_csv uses
    values = _awkward_floats(np.random.default_rng(1), 200_000)
    values = values[np.isfinite(values) | np.isinf(values)]
    assert list(map(float.__repr__, values.tolist())) == values.astype(str).tolist()


def test_scan_like_table_is_identical_to_to_csv():
    rng = np.random.default_rng(2)
    n = 3000
    df = pd.DataFrame({
        "marker": [f"snp{i:06d}" for i in range(n)],
        "chr": rng.choice(["1", "2", "X"], size=n),
        "pos": rng.uniform(0, 200, size=n),
        "phenotype": "y",
        "n": rng.integers(100, 2000, size=n),
        "lod": _awkward_floats(rng, n)[:n],
        "flag": rng.random(n) < 0.5,
        "p": rng.random(n),
    })
    df.loc[::7, "lod"] = np.nan
    df.loc[::11, "p"] = np.inf
    assert _fast_text(df) == _pandas_text(df)


def test_text_cells_formulas_missing_and_pandas_string_dtype():
    df = pd.DataFrame({
        "id": ["a", "=SUM(A1)", "+1", "-x", "@y", "\tz", None, "plain", "é ü"],
        "v": [1.5, -2.0, np.nan, 3e-7, 1e20, 0.0, 7.0, 8.0, 9.0],
    })
    for frame in (df, df.astype({"id": "string"}), df.astype({"id": object})):
        assert _fast_text(frame) == _pandas_text(frame)


def test_index_written_as_to_csv_does():
    ids = ["m1", "m2", "m3"]
    K = pd.DataFrame(np.random.default_rng(3).normal(size=(3, 3)), index=pd.Index(ids, name="id"), columns=ids)
    assert _fast_text(K, index=True) == _pandas_text(K, index=True)
    K.index.name = None
    assert _fast_text(K, index=True) == _pandas_text(K, index=True)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": ["x,y", "z"], "b": [1.0, 2.0]}),  # a cell the csv module quotes
    pd.DataFrame({"a": ['say "hi"', "z"], "b": [1.0, 2.0]}),
    pd.DataFrame({"a": ["line\nbreak", "z"], "b": [1.0, 2.0]}),
    pd.DataFrame({"a": ["\rstart", "z"], "b": [1.0, 2.0]}),  # neutralised, then quoted
    pd.DataFrame({"a,b": [1.0], "c": [2.0]}),  # a label the csv module quotes
    pd.DataFrame({"a": [1.0, 2.0]}),  # one column: an empty cell would be written as ""
    pd.DataFrame({"a": np.float32([1.1, 2.2]), "b": [1, 2]}),  # float32: numpy's own shortest digits
    pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1.0, 2.0]}),
    pd.DataFrame({"a": pd.Categorical(["u", "v"]), "b": [1.0, 2.0]}),
    pd.DataFrame({"a": [1, "text"], "b": [1.0, 2.0]}),  # mixed objects
    pd.DataFrame({"a": pd.to_datetime(["2020-01-01", "2021-02-03"]), "b": [1.0, 2.0]}),
    pd.DataFrame({0: [1.0], 1: [2.0]}),  # labels that are not text
    pd.DataFrame({"a": [], "b": []}),
])
def test_other_tables_fall_back_to_to_csv(frame, tmp_path):
    assert _fast_text(frame) is None
    # and write_csv_atomic still writes what to_csv writes
    target = write_csv_atomic(frame, tmp_path / "out.csv")
    assert target.read_bytes() == _pandas_text(frame).encode()


def test_chunks_join_to_the_same_text(monkeypatch, tmp_path):
    monkeypatch.setattr(csv_text, "ROWS_PER_CHUNK", 7)
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"m": [f"k{i}" for i in range(50)], "x": rng.normal(size=50), "i": np.arange(50)})
    df.loc[::5, "x"] = np.nan
    assert _fast_text(df) == _pandas_text(df)
    target = write_csv_atomic(df, tmp_path / "out.csv")
    assert target.read_bytes() == _pandas_text(df).encode()


def test_a_cell_to_quote_in_a_later_block_restarts_with_to_csv(monkeypatch, tmp_path):
    # the text is checked block by block: a quoted cell after the first block discards what was written
    monkeypatch.setattr(csv_text, "ROWS_PER_CHUNK", 4)
    df = pd.DataFrame({"m": [f"k{i}" for i in range(10)], "x": np.arange(10.0)})
    df.loc[9, "m"] = "k,9"
    assert _fast_text(df) is None
    target = write_csv_atomic(df, tmp_path / "out.csv")
    assert target.read_bytes() == _pandas_text(df).encode()
