"""Start-up overlap of ``lmmcore scan``: the plain kinship reader, the background prefetch, lazy imports.

The plain reader (:mod:`lmmcore.kinship_csv`, pyarrow) is checked against the
validating pandas reader on the same bytes; the prefetched decomposition
against the scan's own; and the work started before pandas and SciPy are
imported is checked not to import them (no timing in tests).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from lmmcore import LMMInputError
from lmmcore.eigen import decompose_kinship
from lmmcore.errors import report, reporting
from lmmcore.io import _square_kinship, read_kinship, read_kinship_file, write_kinship_file
from lmmcore.kinship_csv import prepare_kinship, read_plain_kinship
from lmmcore.kinship_source import DecomposedKinship
from lmmcore.prefetch import Prefetch
from lmmcore.tables import Input


def _kinship(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    G = rng.normal(size=(n, 3 * n))
    return G @ G.T / (3 * n)


def _slow(text: bytes, name: str = "k.csv"):
    """The validating (pandas) reader of the same bytes: the independent reference."""
    return _square_kinship(Input(name, data=text))


PLAIN = [
    ",a,b,c\na,1,0.25,0\nb,0.25,1,0.5\nc,0,0.5,1\n",  # as to_csv writes it
    "id,a,b,c\r\na,1,0.25,0\r\nb,0.25,1,0.5\r\nc,0,0.5,1\r\n",  # CRLF, named ID column
    ",001,2\n001,1,5e-1\n2,.5,1\n",  # IDs that look like numbers, exponents
    ',a,b\n"a",1,0.1\n"b",0.1,1\n\n',  # quoted IDs, a blank last line
    ",NA,b\nNA,1,0.1\nb,0.1,1\n",  # an individual called NA
]
NOT_PLAIN = [
    ",b,a\na,0.2,1\nb,1,0.2\n",  # columns in another order: reordered with a message
    ",a,c\na,1,0.2\nb,0.2,1\n",  # labels that differ: an error
    ",a,b\na,1,NA\nb,0.1,1\n",  # a missing value
    ",a,b\na,1,inf\nb,inf,1\n",  # infinite
    ",a,b\na,1,x\nb,x,1\n",  # not a number
    "a;b\na;1;0.1\nb;0.1;1\n",  # semicolons
    "a,b\na,1,0.1\nb,0.1,1\n",  # R's row names (one header name fewer)
    ",a,b,\na,1,0.1,\nb,0.1,1,\n",  # a trailing delimiter
    "\ufeff,a,b\na,1,0.1\nb,0.1,1\n",  # a byte-order mark
    ",a,a\na,1,0.1\na,0.1,1\n",  # repeated IDs
    ",a,b,c\na,1,0.1,0\nb,0.1,1,0\n",  # not square
    "chr,id,a,b\n1,a,1,0\n1,b,0,1\n",  # LOCO format
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_kinship_reads_as_the_validating_reader(tmp_path, text):
    path = tmp_path / "k.csv"
    path.write_bytes(text.encode())
    plain = read_plain_kinship(path)
    assert plain is not None
    expected = _slow(text.encode())
    assert plain.ids == tuple(expected.index)
    np.testing.assert_array_equal(plain.matrix, expected.to_numpy())
    pd.testing.assert_frame_equal(read_kinship(path), expected, check_exact=True)


@pytest.mark.filterwarnings("ignore::lmmcore.errors.LMMWarning")
@pytest.mark.parametrize("text", NOT_PLAIN)
def test_other_kinship_files_fall_back_to_the_validating_reader(tmp_path, text):
    path = tmp_path / "k.csv"
    path.write_bytes(text.encode())
    assert read_plain_kinship(path) is None
    assert prepare_kinship(path, "k.csv") is None
    try:
        expected = _slow(text.encode())
    except LMMInputError as exc:  # the same sentence from a path as from the bytes
        with pytest.raises(LMMInputError) as got:
            read_kinship(path)
        assert str(got.value) == str(exc)
    else:
        pd.testing.assert_frame_equal(read_kinship(path), expected, check_exact=True)


def test_asymmetric_plain_kinship_gets_the_validating_readers_error(tmp_path):
    text = b",a,b\na,1,0.3\nb,0.1,1\n"
    path = tmp_path / "k.csv"
    path.write_bytes(text)
    assert read_plain_kinship(path) is not None  # plain to parse, but not a kinship:
    assert prepare_kinship(path, "k.csv") is None  # the main thread's reader says so, in its turn
    with pytest.raises(LMMInputError) as expected:
        _slow(text)
    with pytest.raises(LMMInputError, match="not symmetric") as got:
        read_kinship(path)
    assert str(got.value) == str(expected.value)


def test_written_kinship_round_trips_through_the_plain_reader(tmp_path):
    K = _kinship(40, seed=3)
    ids = [f"m{i:03d}" for i in range(40)]
    write_kinship_file(K, ids, tmp_path / "K.csv")
    plain = read_plain_kinship(tmp_path / "K.csv")
    assert plain is not None and plain.ids == tuple(ids)
    np.testing.assert_array_equal(plain.matrix, K)  # to_csv's shortest repr parses back exactly
    pd.testing.assert_frame_equal(read_kinship_file(tmp_path / "K.csv"), _slow((tmp_path / "K.csv").read_bytes()),
                                  check_exact=True)


def test_prepared_decomposition_is_the_scans_own(tmp_path):
    K = _kinship(30, seed=4)
    write_kinship_file(K, [f"i{i}" for i in range(30)], tmp_path / "K.csv")
    prepared = prepare_kinship(tmp_path / "K.csv", "K.csv")
    eig = decompose_kinship(K, check=False)
    np.testing.assert_array_equal(prepared.eig.values, eig.values)
    np.testing.assert_array_equal(prepared.eig.vectors, eig.vectors)


def test_prefetch_hands_over_messages_in_order_and_its_error():
    def work(fail: bool):
        report("first")
        report("second")
        if fail:
            raise LMMInputError("kinship file 'k.csv' is bad")
        return 42

    heard: list[str] = []
    with reporting(heard.append):
        job = Prefetch(work, False)
        assert heard == []  # held back until the result is taken
        assert job.result() == 42
        assert job.result() == 42
    assert heard == ["first", "second"]  # once, in the calling thread's channel
    heard.clear()
    with reporting(heard.append):
        job = Prefetch(work, True)
        with pytest.raises(LMMInputError, match="is bad"):
            job.result()
    assert heard == ["first", "second"]


@pytest.mark.filterwarnings("ignore::lmmcore.errors.LMMWarning")
def test_scan_with_a_decomposed_kinship_equals_the_plain_scan(monkeypatch):
    from lmmcore import pattern_dummies
    from lmmcore.scan import scan
    from lmmcore.simulate import simulate_genotype_dosages

    g = simulate_genotype_dosages(50, 60, n_chr=2, seed=5)
    rng = np.random.default_rng(6)
    K = pd.DataFrame(_kinship(50, seed=7), index=list(g.ids), columns=list(g.ids))
    genetic = np.linalg.cholesky(K.to_numpy() + 1e-9 * np.eye(50)) @ rng.normal(size=(50, 2))
    pheno = pd.DataFrame(genetic + 0.5 * rng.normal(size=(50, 2)), index=list(g.ids), columns=["y", "z"])
    pheno.iloc[3, 1] = np.nan  # z: a sub-kinship, decomposed by the scan itself
    eig = decompose_kinship(K.to_numpy(), check=False)
    plain = scan(g, pheno, kinship=K, refit=True)
    given = scan(g, pheno, kinship=DecomposedKinship(K, eig), refit=True)
    pd.testing.assert_frame_equal(given.table, plain.table, check_exact=True)
    other = decompose_kinship(_kinship(50, seed=8), check=False)  # another decomposition: y's rows change, z's not
    monkeypatch.setattr(pattern_dummies, "MODE", "never")  # z on its own pattern's decomposition
    changed = scan(g, pheno, kinship=DecomposedKinship(K, other)).table
    assert not np.allclose(changed.loc[changed.phenotype == "y", "lod"],
                           plain.table.loc[plain.table.phenotype == "y", "lod"])
    pd.testing.assert_frame_equal(changed.loc[changed.phenotype == "z"].reset_index(drop=True),
                                  scan(g, pheno[["z"]], kinship=K).table, check_exact=True)
    monkeypatch.setattr(pattern_dummies, "MODE", "always")  # z served by the given one, with an indicator
    shared = scan(g, pheno, kinship=DecomposedKinship(K, other)).table
    assert not np.allclose(shared.loc[shared.phenotype == "z", "lod"],
                           plain.table.loc[plain.table.phenotype == "z", "lod"])


def test_scan_command_with_prefetch_equals_the_api(tmp_path):
    from lmmcore.cli import main
    from lmmcore.genotypes import read_plink
    from lmmcore.scan import scan
    from lmmcore.simulate import simulate_genotype_dosages, write_plink

    g = simulate_genotype_dosages(40, 50, n_chr=2, seed=8)
    write_plink(tmp_path / "d", g.dosage, g.ids, g.chromosome, np.round(g.position * 1e6) + 1, g.markers)
    K = _kinship(40, seed=9)
    write_kinship_file(K, g.ids, tmp_path / "K.csv")
    y = np.random.default_rng(10).normal(size=40)
    pd.DataFrame({"y": y}, index=pd.Index(list(g.ids), name="id")).to_csv(tmp_path / "P.csv")
    assert main(["scan", "--bed", str(tmp_path / "d"), "--pheno", str(tmp_path / "P.csv"), "--kinship",
                 str(tmp_path / "K.csv"), "--refit", "--out", str(tmp_path / "s.csv"), "--quiet"]) == 0
    api = scan(read_plink(tmp_path / "d"), pd.read_csv(tmp_path / "P.csv", index_col=0, dtype={"id": str}),
               kinship=read_kinship_file(tmp_path / "K.csv"), refit=True).table
    got = pd.read_csv(tmp_path / "s.csv", keep_default_na=False, na_values=[""])
    for col in ("lod", "p_value", "h2_ml", "p_lrt", "p_wald"):
        np.testing.assert_array_equal(got[col].to_numpy(), api[col].to_numpy())


def test_work_started_before_the_imports_needs_no_pandas_or_scipy(tmp_path):
    # scan --kinship FILE starts reading and decomposing the kinship before it imports pandas and SciPy:
    # if a module-level import of either came back on that path, the overlap would be lost
    write_kinship_file(_kinship(20), [f"i{i}" for i in range(20)], tmp_path / "K.csv")
    (tmp_path / "P.csv").write_text("id,y\n" + "".join(f"i{i},{i}\n" for i in range(20)))
    code = textwrap.dedent(f"""
        import sys
        from lmmcore.cli import build_parser
        from lmmcore import scan_cli
        args = build_parser().parse_args(["scan", "--genotypes", "D.csv", "--map", "M.csv", "--pheno",
                                          {str(tmp_path / 'P.csv')!r}, "--kinship", {str(tmp_path / 'K.csv')!r},
                                          "--out", "s.csv"])
        job = scan_cli._prefetch_kinship(args)
        prepared = job.result()
        assert prepared is not None and prepared.eig is not None
        print(sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'scipy')))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cross_path_imports_no_scipy_before_the_scan_import_starts():
    # scan --cross imports lmmcore.scan (and with it SciPy) in a background thread while the cross is read and
    # the HMM runs: the main thread's work up to then (the default table's sink, reading the cross, the HMM)
    # must not import SciPy itself, or the background import only waits for it
    code = textwrap.dedent("""
        import sys
        from lmmcore.cli import build_parser
        from lmmcore import cross_files, crosstypes, genomap, hmm, io, scan_output, xchr  # noqa: F401
        args = build_parser().parse_args(["scan", "--cross", "c.zip", "--kinship", "loco", "--out", "s.csv"])
        assert scan_output.make_sink(args) == (None, None)
        print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
